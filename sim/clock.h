// Virtual time.
//
// sim::Clock meets the std::chrono Clock requirements, so simulated code
// writes `std::chrono::days{3}` and `Clock::now() + 30s` as it would with a
// real clock. Its time_point counts nanoseconds since the Unix epoch; a
// simulation starts at a configurable instant (SimulatorOptions::start_time)
// and nothing but the scheduler moves it forward, by jumping to the next
// event. A simulated day costs only the events that happen in it.
//
// Clock::now() reads the simulator that is current on this thread (one
// thread runs one simulation; see DESIGN.md §2). Calling it with no
// simulation current is a bug and asserts.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace duro::sim {

struct Clock {
  using rep = std::int64_t;
  using period = std::nano;
  using duration = std::chrono::duration<rep, period>;
  using time_point = std::chrono::time_point<Clock, duration>;
  static constexpr bool is_steady = true;  // Virtual time never goes back.

  static time_point now() noexcept;
};

using Duration = Clock::duration;
using TimePoint = Clock::time_point;

// 2026-01-01T00:00:00Z: the default instant a simulation starts at.
inline constexpr TimePoint kDefaultStartTime{std::chrono::seconds{1767225600}};

// "2d03h04m05.006007008s"-style rendering of a duration, exact to the
// nanosecond, for reports and traces. Negative durations get a leading '-'.
std::string format_duration(Duration d);

// "2026-01-01T00:00:01.500000000Z": a time point as a UTC calendar instant.
std::string format_time(TimePoint t);

namespace detail {
// The time of the simulation current on this thread, or nullptr when none
// is. Set only by Simulator's scope guard. Inline so that reading the
// clock on the hot path is a thread-local load, not a call.
inline thread_local const std::int64_t* current_time_ns = nullptr;
[[noreturn]] void no_current_simulation() noexcept;
}  // namespace detail

inline Clock::time_point Clock::now() noexcept {
  const std::int64_t* time_ns = detail::current_time_ns;
  if (time_ns == nullptr) [[unlikely]] detail::no_current_simulation();
  return time_point{duration{*time_ns}};
}

}  // namespace duro::sim
