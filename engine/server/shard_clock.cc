#include "engine/server/shard_clock.h"

#include <algorithm>

#include "sim/assert.h"

namespace duro::engine {

sim::Result<ShardRecordData> decode_shard_record_data(const std::string& bytes) {
  if (bytes.empty()) return ShardRecordData{};
  return sim::decode<ShardRecordData>(bytes);
}

ShardClock::ShardClock(const sim::LocalClock& clock, sim::TimePoint floor)
    : clock_(&clock), base_(std::max(clock.now(), floor)), monotonic_base_(clock.monotonic_now()) {}

sim::TimePoint ShardClock::now() const noexcept {
  const sim::Duration elapsed = clock_->monotonic_now() - monotonic_base_;
  DURO_ASSERT(elapsed >= sim::Duration{0});
  return base_ + elapsed;
}

void ShardClock::advance_to(sim::TimePoint shard_time) noexcept {
  const sim::TimePoint current = now();
  if (shard_time > current) base_ += shard_time - current;
  DURO_ASSERT(now() >= shard_time);
}

sim::TimePoint ShardClock::true_at(sim::TimePoint shard_time) const noexcept {
  if (shard_time == sim::TimePoint::max()) return sim::TimePoint::max();
  return clock_->monotonic_true_at(monotonic_base_ + (shard_time - base_));
}

}  // namespace duro::engine
