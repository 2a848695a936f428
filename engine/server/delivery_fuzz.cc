#include "engine/server/delivery_fuzz.h"

#include <algorithm>
#include <chrono>
#include <cmath>

#include "sim/assert.h"

namespace duro::engine {

void hold_delivery_for_fuzz(sim::Env& env, sim::Duration hold_max) {
  DURO_ASSERT(hold_max.count() >= 0);
  if (hold_max.count() == 0) return;
  sim::Random& random = env.random();
  if (random.uniform(4) == 0) return;  // Some arrivals as they come.
  constexpr double kShortestNs = 100'000;  // 100 µs: below one network hop.
  const double longest_ns = std::max(kShortestNs, static_cast<double>(hold_max.count()));
  // Log-uniform: each decade of delay equally likely, so the hold is as
  // likely to reorder two events microseconds apart as to move one past
  // several workflow tasks.
  const double hold_ns = kShortestNs * std::pow(longest_ns / kShortestNs, random.uniform_double());
  env.sleep_for(sim::Duration{static_cast<std::int64_t>(hold_ns)});
}

}  // namespace duro::engine
