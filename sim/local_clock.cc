#include "sim/local_clock.h"

#include <algorithm>

namespace duro::sim {

TimePoint LocalClock::true_at(TimePoint reading, Duration offset) const noexcept {
  // reading = t + offset + (t - anchor) * d   =>   t = anchor + (reading - offset - anchor) / (1 + d)
  __extension__ using Int128 = __int128;
  const Int128 shifted_ns =
      Int128{reading.time_since_epoch().count()} - offset.count() - anchor_.time_since_epoch().count();
  const Int128 t_ns = anchor_.time_since_epoch().count() + shifted_ns * 1'000'000'000 / (1'000'000'000 + drift_ppb_);
  // Saturate: "never" stays never, whatever the offset and drift.
  if (t_ns >= INT64_MAX) return TimePoint::max();
  if (t_ns <= INT64_MIN) return TimePoint::min();
  return TimePoint{Duration{static_cast<std::int64_t>(t_ns)}};
}

void LocalClock::sleep_until(TimePoint local) const {
  // Round the conversion up so the clock reads at least `local` on waking.
  if (local == TimePoint::max()) {
    this_fiber::sleep_until(TimePoint::max());
    return;
  }
  TimePoint wake = true_at(local);
  if (wake != TimePoint::max() && local_at(wake) < local) wake += Duration{1};
  this_fiber::sleep_until(std::max(wake, sim_->now()));
}

void LocalClock::set_drift_ppb(std::int64_t drift_ppb) noexcept {
  DURO_ASSERT(drift_ppb >= -kDriftPpbMax && drift_ppb <= kDriftPpbMax);
  // Fold the drift so far into the offset and restart the anchor now.
  const TimePoint now = sim_->now();
  offset_ += drift_since_anchor(now);
  monotonic_offset_ += drift_since_anchor(now);
  anchor_ = now;
  drift_ppb_ = drift_ppb;
}

}  // namespace duro::sim
