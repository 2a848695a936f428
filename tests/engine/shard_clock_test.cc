#include "engine/server/shard_clock.h"

#include <gtest/gtest.h>

#include "sim/simulator.h"

namespace duro::engine {
namespace {

using namespace std::chrono_literals;

TEST(ShardClock, StartsAtThePreviousOwnersTimeWhenTheLocalClockIsBehind) {
  sim::Simulator sim({.seed = 1});
  sim::Simulator::Scope scope(sim);
  sim::LocalClock behind(sim, -18min);
  const sim::TimePoint floor = sim.now() + 2min;  // What a fast previous owner recorded.
  const ShardClock clock(behind, floor);
  EXPECT_EQ(clock.now(), floor);
  sim.schedule_after(30s, [] {});
  (void)sim.run();
  EXPECT_EQ(clock.now(), floor + 30s);
  // A timer due at floor + 1 min is armed 30 s from now, not 19 min.
  EXPECT_EQ(clock.true_at(floor + 1min), sim.now() + 30s);
}

TEST(ShardClock, StartsAtTheLocalClockWhenItIsAheadAndIgnoresItsSteps) {
  sim::Simulator sim({.seed = 1});
  sim::Simulator::Scope scope(sim);
  sim::LocalClock local(sim, 5s);
  const ShardClock clock(local, sim.now() - 1h);
  const sim::TimePoint start = clock.now();
  EXPECT_EQ(start, local.now());
  local.jump(-10min);  // NTP steps the clock back: shard time does not go back.
  sim.schedule_after(1s, [] {});
  (void)sim.run();
  EXPECT_EQ(clock.now(), start + 1s);
  local.jump(+20min);  // ...nor leap forward.
  EXPECT_EQ(clock.now(), start + 1s);
}

// A run stamped by an owner whose clock ran ahead (and which lost the shard
// before recording its time) moves the new owner's shard time up to it, so
// the run's timers are armed on the same time as its events; never back.
TEST(ShardClock, AdvancesToALaterRunsTimeAndNeverBack) {
  sim::Simulator sim({.seed = 1});
  sim::Simulator::Scope scope(sim);
  sim::LocalClock local(sim, 0s);
  ShardClock clock(local, sim.now());
  const sim::TimePoint run_time = sim.now() + 28h;
  clock.advance_to(run_time);
  EXPECT_EQ(clock.now(), run_time);
  clock.advance_to(run_time - 1h);  // Earlier: nothing moves.
  EXPECT_EQ(clock.now(), run_time);
  sim.schedule_after(30s, [] {});
  (void)sim.run();
  EXPECT_EQ(clock.now(), run_time + 30s);
  // A timer due a minute after the run's time is armed 30 s from now, not 28 hours.
  EXPECT_EQ(clock.true_at(run_time + 1min), sim.now() + 30s);
}

TEST(ShardClock, RecordDataRoundTripsAndRefusesGarbage) {
  ASSERT_TRUE(decode_shard_record_data("").ok());
  EXPECT_EQ(decode_shard_record_data("").value().shard_time_ns, 0);
  const std::string bytes = sim::encode(ShardRecordData{123456789});
  ASSERT_TRUE(decode_shard_record_data(bytes).ok());
  EXPECT_EQ(decode_shard_record_data(bytes).value().shard_time_ns, 123456789);
  EXPECT_FALSE(decode_shard_record_data(bytes + "trailing").ok());
}

}  // namespace
}  // namespace duro::engine
