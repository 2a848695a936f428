#include "sim/clock.h"

#include <gtest/gtest.h>

#include <type_traits>

#include "sim/simulator.h"

namespace duro::sim {
namespace {

using namespace std::chrono_literals;

static_assert(std::chrono::is_clock_v<Clock>, "sim::Clock must meet the Clock requirements");
static_assert(std::is_same_v<Clock::duration, std::chrono::nanoseconds>);

TEST(Clock, NowIsTheSimulatorsVirtualTime) {
  Simulator sim({.seed = 1});
  Simulator::Scope scope(sim);
  EXPECT_EQ(Clock::now(), kDefaultStartTime);
  EXPECT_EQ(Clock::now(), sim.now());
}

TEST(Clock, StartInstantIsConfigurable) {
  const TimePoint start{std::chrono::sys_days{std::chrono::year{2030} / 6 / 1}.time_since_epoch()};
  Simulator sim({.seed = 1, .start_time = start});
  Simulator::Scope scope(sim);
  EXPECT_EQ(Clock::now(), start);
  EXPECT_EQ(format_time(Clock::now()), "2030-06-01T00:00:00.000000000Z");
}

TEST(Clock, DaysOfSimulatedTimeCostOnlyTheirEvents) {
  Simulator sim({.seed = 1});
  const NodeId node = sim.add_node("n");
  TimePoint woke{};
  sim.spawn(node, "sleeper", [&] {
    this_fiber::sleep_for(std::chrono::days{3});
    woke = Clock::now();
  });
  const RunResult result = sim.run();
  EXPECT_EQ(result.reason, StopReason::kQuiescent);
  EXPECT_EQ(woke, kDefaultStartTime + std::chrono::days{3});
  EXPECT_EQ(result.time, woke);
  EXPECT_LE(result.events_executed, 3u);
}

TEST(Clock, FormatDurationIsExact) {
  EXPECT_EQ(format_duration(0s), "0s");
  EXPECT_EQ(format_duration(1500ms), "1.5s");
  EXPECT_EQ(format_duration(1ns), "0.000000001s");
  EXPECT_EQ(format_duration(std::chrono::days{2} + 3h + 4min + 5s + 6ms), "2d03h04m5.006s");
  EXPECT_EQ(format_duration(-90s), "-01m30s");
  EXPECT_EQ(format_duration(61min), "01h01m0s");
}

TEST(Clock, FormatTimeIsUtc) {
  EXPECT_EQ(format_time(kDefaultStartTime), "2026-01-01T00:00:00.000000000Z");
  EXPECT_EQ(format_time(kDefaultStartTime + 1500ms), "2026-01-01T00:00:01.500000000Z");
  EXPECT_EQ(format_time(TimePoint{std::chrono::sys_days{std::chrono::year{2024} / 2 / 29}.time_since_epoch()} + 23h + 59min),
            "2024-02-29T23:59:00.000000000Z");
  EXPECT_EQ(format_time(TimePoint{} - 1s), "1969-12-31T23:59:59.000000000Z");
}

}  // namespace
}  // namespace duro::sim
