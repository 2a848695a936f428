#include "sim/local_clock.h"

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

namespace duro::sim {
namespace {

using namespace std::chrono_literals;

TEST(LocalClock, OffsetAndDriftShapeTheReading) {
  Simulator sim({.seed = 1});
  Simulator::Scope scope(sim);
  LocalClock fast(sim, 2s, 1'000'000);  // +2 s, and 1 ms per second fast.
  EXPECT_EQ(fast.now(), sim.now() + 2s);
  sim.schedule_after(1000s, [] {});
  (void)sim.run();
  EXPECT_EQ(fast.now(), sim.now() + 2s + 1s);
}

TEST(LocalClock, JumpsGoForwardAndBack) {
  Simulator sim({.seed = 1});
  Simulator::Scope scope(sim);
  LocalClock clock(sim);
  clock.jump(-30s);
  EXPECT_EQ(clock.now(), sim.now() - 30s);
  clock.jump(45s);
  EXPECT_EQ(clock.now(), sim.now() + 15s);
}

TEST(LocalClock, SetDriftKeepsTheReadingContinuous) {
  Simulator sim({.seed = 1});
  Simulator::Scope scope(sim);
  LocalClock clock(sim, 0s, 500'000);
  sim.schedule_after(100s, [] {});
  (void)sim.run();
  const TimePoint before = clock.now();
  clock.set_drift_ppb(-500'000);
  EXPECT_EQ(clock.now(), before);
  sim.schedule_after(100s, [] {});
  (void)sim.run();
  EXPECT_EQ(clock.now(), before + 100s - 50ms);
}

TEST(LocalClock, TheMonotonicClockDriftsButIgnoresJumps) {
  Simulator sim({.seed = 1});
  Simulator::Scope scope(sim);
  LocalClock clock(sim, 5s, 1'000'000);  // 1 ms per second fast.
  const TimePoint start = clock.monotonic_now();
  clock.jump(-3min);
  clock.jump(40s);
  sim.schedule_after(1000s, [] {});
  (void)sim.run();
  EXPECT_EQ(clock.monotonic_now() - start, 1000s + 1s);
  EXPECT_EQ(clock.now() - clock.monotonic_now(), -3min + 40s);
  clock.set_drift_ppb(0);
  const TimePoint before = clock.monotonic_now();
  sim.schedule_after(10s, [] {});
  (void)sim.run();
  EXPECT_EQ(clock.monotonic_now(), before + 10s);
  // Its inverse, for arming a wait on it.
  EXPECT_EQ(clock.monotonic_true_at(before + 20s), sim.now() + 10s);
}

RC_GTEST_PROP(LocalClockProperty, TrueAtInvertsLocalAt,
              (std::int32_t offset_ms, std::int32_t drift_ppb, std::uint32_t ahead_ms)) {
  Simulator sim({.seed = 1});
  Simulator::Scope scope(sim);
  const std::int64_t drift = drift_ppb % LocalClock::kDriftPpbMax;
  LocalClock clock(sim, std::chrono::milliseconds{offset_ms}, drift);
  const TimePoint local = clock.now() + std::chrono::milliseconds{ahead_ms};
  const TimePoint t = clock.true_at(local);
  // Within one nanosecond either way (integer division rounds).
  RC_ASSERT(std::chrono::abs(clock.local_at(t) - local) <= 2ns);
}

TEST(LocalClock, SleepUntilALocalInstant) {
  Simulator sim({.seed = 1});
  const NodeId node = sim.add_node("n");
  LocalClock slow(sim, -10s, -10'000'000);  // 10 s behind, running 1% slow.
  TimePoint woke_local{};
  sim.spawn(node, "sleeper", [&] {
    const TimePoint target = slow.now() + 99s;
    slow.sleep_until(target);
    woke_local = slow.now();
    EXPECT_GE(woke_local, target);
    EXPECT_LE(woke_local, target + 1ns);
  });
  (void)sim.run();
  // 99 local seconds at 0.99x take 100 true seconds.
  EXPECT_EQ(sim.now(), kDefaultStartTime + 100s);
}

}  // namespace
}  // namespace duro::sim
