// A shard's time: what its events are stamped with and its timers fire by.
//
// Each owner reads its own clock, and clocks disagree: stepped by NTP,
// skewed by minutes on a bad day. Read naively, a timer written by an owner
// whose clock runs ahead fires late by the skew under a new owner whose
// clock runs behind (the simulator found one 18 minutes late), and event
// times go back when a shard moves. So a shard's time is
//
//   shard now = max(owner's clock at takeover, the previous owner's last
//               shard time) + time elapsed on the owner's monotonic clock
//
// It never goes back, not within an owner (clock steps are ignored while it
// owns the shard) and not across owners (the last shard time travels in the
// shard record, written at every lease renewal). It may run ahead of true
// time by the largest forward skew among owners: a timer may fire early by
// that much, never late by more than a takeover's gap.
//
// A renewal can miss the last shard time: an owner whose clock ran ahead
// may write events and lose the shard before it renews. A run's events and
// timers are on its own latest event time when that is later (events never
// go back), so under a new owner its timers would wait out the whole skew —
// hours after a clock jump (`duro fuzz` found a controller stuck so). The
// owner therefore moves shard time up to the latest event time of any run
// it changes (advance_to).
#pragma once

#include <string>

#include "sim/codec.h"
#include "sim/local_clock.h"
#include "sim/result.h"

namespace duro::engine {

// What a shard owner keeps in the store's shard record (ShardRecord::data).
struct ShardRecordData {
  std::int64_t shard_time_ns = 0;  // The owner's shard time at its last renewal.
};
DURO_CODEC_FIELDS(ShardRecordData, shard_time_ns);

// Empty bytes (a shard never owned) decode as the zero record.
sim::Result<ShardRecordData> decode_shard_record_data(const std::string& bytes);

class ShardClock {
 public:
  // `floor`: the last shard time the previous owner recorded.
  ShardClock(const sim::LocalClock& clock, sim::TimePoint floor);

  sim::TimePoint now() const noexcept;
  // Moves shard time forward to `shard_time` if it is behind; never back.
  void advance_to(sim::TimePoint shard_time) noexcept;
  // The true instant at which now() will read `shard_time` (for arming a
  // wait: the simulator's timers run on true time).
  sim::TimePoint true_at(sim::TimePoint shard_time) const noexcept;

 private:
  const sim::LocalClock* clock_;
  sim::TimePoint base_;            // Shard time at takeover.
  sim::TimePoint monotonic_base_;  // The monotonic clock then.
};

}  // namespace duro::engine
