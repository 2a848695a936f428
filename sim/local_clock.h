// A node's own clock: what a real server reads from its system clock.
//
//   local = true simulated time + offset + drift * (true time - anchor)
//
// Each node reads time here, not from sim::Clock, for everything a real
// server takes from its own clock: leases, timeouts it computes, timestamps
// it writes. Offsets and drift differ per node and are faultable: a clock
// jump moves the offset forward or back at once, as NTP stepping a clock
// does. So a lease held "until local time T" on a node whose clock runs
// slow is really held longer, and clock faults expose lease bugs.
//
// Sleeping until a local instant converts it to true time when the sleep
// starts; a jump during the sleep does not move the wake-up (the timer is
// armed against the machine's monotonic clock, as timerfd and friends are).
//
// The monotonic clock (CLOCK_MONOTONIC) is read here too: the same crystal,
// so the same drift, but never stepped. It suits measuring how much time
// passed; its readings mean nothing to another node.
//
// Drift is in parts per billion and applied in integer arithmetic, so a
// local reading is exact and the same everywhere.
#pragma once

#include <cstdint>

#include "sim/assert.h"
#include "sim/clock.h"
#include "sim/simulator.h"

namespace duro::sim {

class LocalClock {
 public:
  // Drift beyond ±1% is not a clock, it is a broken crystal.
  static constexpr std::int64_t kDriftPpbMax = 10'000'000;

  explicit LocalClock(Simulator& sim, Duration offset = Duration{0}, std::int64_t drift_ppb = 0)
      : sim_(&sim), anchor_(sim.now()), offset_(offset), monotonic_offset_(offset), drift_ppb_(drift_ppb) {
    DURO_ASSERT(drift_ppb >= -kDriftPpbMax && drift_ppb <= kDriftPpbMax);
  }

  TimePoint now() const noexcept { return local_at(sim_->now()); }

  // The local reading at true instant `t`.
  TimePoint local_at(TimePoint t) const noexcept {
    return t + offset_ + drift_since_anchor(t);
  }

  // The true instant at which this clock will read `local` (inverse of
  // local_at, exact to within one nanosecond of rounding).
  TimePoint true_at(TimePoint local) const noexcept { return true_at(local, offset_); }

  // The monotonic clock: drifts as the local clock does, ignores jumps.
  TimePoint monotonic_now() const noexcept { return sim_->now() + monotonic_offset_ + drift_since_anchor(sim_->now()); }
  // The true instant at which the monotonic clock will read `monotonic`.
  TimePoint monotonic_true_at(TimePoint monotonic) const noexcept { return true_at(monotonic, monotonic_offset_); }

  // Sleeps the calling fiber until this clock reads `local` (or at least
  // until now, if that is past).
  void sleep_until(TimePoint local) const;

  // Steps the clock: positive jumps forward, negative back.
  void jump(Duration delta) noexcept { offset_ += delta; }
  // Changes the rate from now on, keeping the current reading continuous.
  void set_drift_ppb(std::int64_t drift_ppb) noexcept;

  Duration offset() const noexcept { return offset_; }
  std::int64_t drift_ppb() const noexcept { return drift_ppb_; }

 private:
  TimePoint true_at(TimePoint reading, Duration offset) const noexcept;
  Duration drift_since_anchor(TimePoint t) const noexcept {
    // 128-bit product: a year of nanoseconds times 10^7 ppb overflows 64.
    __extension__ using Int128 = __int128;
    const Int128 elapsed_ns = (t - anchor_).count();
    return Duration{static_cast<std::int64_t>(elapsed_ns * drift_ppb_ / 1'000'000'000)};
  }

  Simulator* sim_;
  TimePoint anchor_;
  Duration offset_;
  Duration monotonic_offset_;  // offset_ without the jumps.
  std::int64_t drift_ppb_;
};

}  // namespace duro::sim
