#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <algorithm>
#include <functional>
#include <memory>
#include <stdexcept>
#include <utility>
#include <vector>

#include "sim/channel.h"
#include "sim/future.h"
#include "sim/simulator.h"

namespace duro::sim {
namespace {

using namespace std::chrono_literals;

struct Ran {
  int id;
  TimePoint scheduled_for;
  TimePoint ran_at;
};

RC_GTEST_PROP(SchedulerProperty, EventsRunAtTheirTimeInTimeThenSequenceOrder,
              (std::uint64_t seed, std::vector<std::uint8_t> delays_ms)) {
  Simulator sim({.seed = seed});
  Simulator::Scope scope(sim);
  std::vector<Ran> ran;
  int next_id = 0;
  // Each callback may schedule a follow-up, so events are also pushed while
  // the queue is being drained.
  std::function<void(int, std::uint8_t)> schedule = [&](int depth, std::uint8_t delay) {
    const int id = next_id++;
    const TimePoint when = sim.now() + std::chrono::milliseconds{delay % 8};  // Small: many ties.
    sim.schedule_at(when, [&, id, when, depth, delay] {
      ran.push_back(Ran{id, when, sim.now()});
      if (depth < 2 && delay % 3 == 0) schedule(depth + 1, static_cast<std::uint8_t>(delay / 3));
    });
  };
  for (const std::uint8_t delay : delays_ms) schedule(0, delay);
  const RunResult result = sim.run();
  RC_ASSERT(result.reason == StopReason::kQuiescent);
  RC_ASSERT(static_cast<int>(ran.size()) == next_id);
  for (std::size_t i = 0; i < ran.size(); i++) {
    RC_ASSERT(ran[i].ran_at == ran[i].scheduled_for);  // Never early, never late.
    if (i > 0) {
      RC_ASSERT(ran[i - 1].ran_at <= ran[i].ran_at);
      // Equal times run in the order they were scheduled (ids rise with it).
      if (ran[i - 1].ran_at == ran[i].ran_at) RC_ASSERT(ran[i - 1].id < ran[i].id);
    }
  }
}

std::vector<int> tie_order(std::uint64_t seed) {
  Simulator sim({.seed = seed, .shuffle_ties = true});
  std::vector<int> order;
  for (int i = 0; i < 20; i++) sim.schedule_at(sim.now() + 1s, [&order, i] { order.push_back(i); });
  EXPECT_EQ(sim.run().reason, StopReason::kQuiescent);
  return order;
}

TEST(Scheduler, ShuffledTiesArePermutedByTheSeed) {
  const std::vector<int> first = tie_order(1);
  ASSERT_EQ(first.size(), 20u);
  std::vector<int> sorted = first;
  std::sort(sorted.begin(), sorted.end());
  for (int i = 0; i < 20; i++) ASSERT_EQ(sorted[i], i) << "an event ran twice or never";
  EXPECT_EQ(tie_order(1), first) << "same seed, different order";
  EXPECT_FALSE(std::is_sorted(first.begin(), first.end())) << "ties were not shuffled";
  EXPECT_NE(tie_order(2), first) << "different seeds, same order";
}

TEST(Scheduler, TimeLimitLeavesLaterEventsQueued) {
  Simulator sim({.seed = 1});
  int ran = 0;
  sim.schedule_after(1h, [&] { ran++; });
  sim.schedule_after(3h, [&] { ran++; });
  RunResult result = sim.run_for(2h);
  EXPECT_EQ(result.reason, StopReason::kTimeLimit);
  EXPECT_EQ(result.time, kDefaultStartTime + 2h);
  EXPECT_EQ(ran, 1);
  EXPECT_EQ(sim.events_pending(), 1u);
  result = sim.run();
  EXPECT_EQ(result.reason, StopReason::kQuiescent);
  EXPECT_EQ(ran, 2);
  EXPECT_EQ(result.time, kDefaultStartTime + 3h);
}

TEST(Scheduler, EventBudgetStopsTheRun) {
  Simulator sim({.seed = 1});
  const NodeId node = sim.add_node("n");
  int ticks = 0;
  sim.spawn(node, "ticker", [&] {
    for (;;) {
      this_fiber::sleep_for(1s);
      ticks++;
    }
  }, {.daemon = true});
  const RunResult result = sim.run({.events_max = 10});
  EXPECT_EQ(result.reason, StopReason::kEventBudget);
  EXPECT_EQ(ticks, 9);  // The first event starts the fiber.
  EXPECT_EQ(result.time, kDefaultStartTime + 9s);
}

TEST(Scheduler, StopEndsTheRunAfterTheCurrentEvent) {
  Simulator sim({.seed = 1});
  int ran = 0;
  sim.schedule_after(1s, [&] {
    ran++;
    sim.stop();
  });
  sim.schedule_after(2s, [&] { ran++; });
  EXPECT_EQ(sim.run().reason, StopReason::kStopped);
  EXPECT_EQ(ran, 1);
}

TEST(Scheduler, DeadlockReportNamesEveryBlockedFiber) {
  Simulator sim({.seed = 1});
  const NodeId a = sim.add_node("alpha");
  const NodeId b = sim.add_node("beta");
  // Each waits for a promise the other holds and never fulfils.
  auto promise_a = std::make_shared<Promise<int>>();
  auto promise_b = std::make_shared<Promise<int>>();
  sim.spawn(a, "waits-for-beta", [future = promise_b->future(), promise_a]() mutable { (void)future.get(); });
  sim.spawn(b, "waits-for-alpha", [future = promise_a->future(), promise_b]() mutable { (void)future.get(); });
  promise_a.reset();
  promise_b.reset();
  sim.spawn(a, "sleeper", [] { this_fiber::sleep_for(1min); });
  const RunResult result = sim.run();
  ASSERT_EQ(result.reason, StopReason::kDeadlock);
  EXPECT_EQ(result.time, kDefaultStartTime + 1min);
  EXPECT_NE(result.deadlock_report.find("2 fibers wait forever"), std::string::npos) << result.deadlock_report;
  EXPECT_NE(result.deadlock_report.find("'waits-for-beta' on node 'alpha'"), std::string::npos) << result.deadlock_report;
  EXPECT_NE(result.deadlock_report.find("'waits-for-alpha' on node 'beta'"), std::string::npos) << result.deadlock_report;
  EXPECT_NE(result.deadlock_report.find("waits on future"), std::string::npos) << result.deadlock_report;
  EXPECT_EQ(result.deadlock_report.find("sleeper"), std::string::npos) << result.deadlock_report;
}

TEST(Scheduler, BlockedDaemonsAreNotADeadlock) {
  Simulator sim({.seed = 1});
  const NodeId node = sim.add_node("server");
  auto inbox = std::make_shared<Channel<int>>(4);
  sim.spawn(node, "loop", [inbox] { (void)inbox->receive(); }, {.daemon = true});
  EXPECT_EQ(sim.run().reason, StopReason::kQuiescent);
  EXPECT_EQ(sim.fibers_live(), 1u);
}

TEST(Scheduler, ExceptionEscapingAFiberIsRethrownFromRun) {
  Simulator sim({.seed = 1});
  const NodeId node = sim.add_node("n");
  sim.spawn(node, "thrower", [] {
    this_fiber::sleep_for(5s);
    throw std::runtime_error("invariant broken in fiber");
  });
  EXPECT_THROW(
      {
        try {
          (void)sim.run();
        } catch (const std::runtime_error& error) {
          EXPECT_STREQ(error.what(), "invariant broken in fiber");
          throw;
        }
      },
      std::runtime_error);
  EXPECT_EQ(sim.now(), kDefaultStartTime + 5s);
}

TEST(Scheduler, TraceLogRecordsWhatHappened) {
  class Collect final : public TraceLog {
   public:
    void record(const TraceRecord& record) override {
      lines.push_back(std::string(record.node) + " " + std::string(record.kind) + " " + std::string(record.detail));
    }
    std::vector<std::string> lines;
  } log;
  Simulator sim({.seed = 1});
  sim.set_trace_log(&log);
  const NodeId node = sim.add_node("web");
  sim.spawn(node, "handler", [&] {
    this_fiber::sleep_for(1s);
    sim.trace("note", "custom detail");
  });
  (void)sim.run();
  const auto has = [&](const std::string& text) {
    return std::any_of(log.lines.begin(), log.lines.end(), [&](const std::string& line) { return line.find(text) != std::string::npos; });
  };
  EXPECT_TRUE(has("web timeout handler"));
  EXPECT_TRUE(has("web note custom detail"));
  EXPECT_TRUE(has("web exit handler"));
  EXPECT_TRUE(has("web spawn handler"));
  // Tracing changes nothing about the run itself.
  Simulator untraced({.seed = 1});
  const NodeId node2 = untraced.add_node("web");
  untraced.spawn(node2, "handler", [] { this_fiber::sleep_for(1s); });
  EXPECT_EQ(untraced.run().trace_hash, sim.trace_hash());
}


TEST(Scheduler, TimersOfWaitsAnsweredEarlyArePurged) {
  // Each receive waits up to an hour but is answered at once: without a
  // purge, an hour's worth of dead timeout events would pile up.
  Simulator sim({.seed = 1});
  const NodeId node = sim.add_node("n");
  auto channel = std::make_shared<Channel<int>>(4);
  constexpr int kRounds = 50'000;
  int received = 0;
  std::size_t pending_max = 0;
  sim.spawn(node, "receiver", [&, channel] {
    for (int i = 0; i < kRounds; i++) {
      if (channel->receive_for(1h).ok()) received++;
    }
  });
  sim.spawn(node, "sender", [&, channel] {
    for (int i = 0; i < kRounds; i++) {
      this_fiber::sleep_for(1ms);
      (void)channel->try_send(int{i});
      pending_max = std::max(pending_max, sim.events_pending());
    }
  });
  EXPECT_EQ(sim.run().reason, StopReason::kQuiescent);
  EXPECT_EQ(received, kRounds);
  EXPECT_LT(pending_max, 20'000u) << "dead timers were not purged";
  EXPECT_EQ(sim.now(), kDefaultStartTime + std::chrono::milliseconds{kRounds})
      << "purged timers must not move the clock";
}

TEST(Scheduler, HugeTimeoutsMeanNever) {
  Simulator sim({.seed = 1});
  const NodeId node = sim.add_node("n");
  Result<int> outcome = 0;
  FiberHandle waiter = sim.spawn(node, "waiter", [&] {
    Promise<int> never;
    Future<int> future = never.future();
    auto keep = std::make_shared<Promise<int>>(std::move(never));
    outcome = future.get_for(Duration::max());
  });
  (void)sim.run();
  EXPECT_FALSE(waiter.done()) << "an overflowing deadline ended the wait at once";
  waiter.cancel();
}

TEST(Scheduler, EventsScheduledBehindASkippedTimerRunInOrder) {
  // A wait answered at +1s leaves its timeout (+10s) queued; popping that
  // dead timer does not move the clock, so the run can stop at +1s with
  // +10s already popped, and what is scheduled next (+3s) lands before the
  // last event popped. It must still run first, at its own time.
  Simulator sim({.seed = 1});
  Simulator::Scope scope(sim);
  const NodeId node = sim.add_node("n");
  auto promise = std::make_shared<Promise<int>>();
  sim.spawn(node, "waiter", [future = promise->future()]() mutable { (void)future.get_for(10s); });
  sim.schedule_after(1s, [promise] { promise->set_value(1); });
  std::vector<std::pair<int, TimePoint>> ran;
  sim.schedule_after(20s, [&] { ran.emplace_back(20, sim.now()); });
  // Start the waiter, answer it, resume it, skip its dead timer.
  RunResult result = sim.run({.events_max = 4});
  ASSERT_EQ(result.reason, StopReason::kEventBudget);
  ASSERT_EQ(sim.now(), kDefaultStartTime + 1s);
  ASSERT_EQ(sim.events_pending(), 1u) << "only the +20s callback should be left";
  sim.schedule_after(2s, [&] {
    ran.emplace_back(3, sim.now());
    sim.schedule_after(1s, [&] { ran.emplace_back(4, sim.now()); });
  });
  result = sim.run();
  EXPECT_EQ(result.reason, StopReason::kQuiescent);
  const std::vector<std::pair<int, TimePoint>> expected = {
      {3, kDefaultStartTime + 3s}, {4, kDefaultStartTime + 4s}, {20, kDefaultStartTime + 20s}};
  EXPECT_EQ(ran, expected);
}

RC_GTEST_PROP(SchedulerProperty, ShuffledTiesStillRunInTimeOrder,
              (std::uint64_t seed, std::vector<std::uint8_t> delays_ms)) {
  // Shuffled sequences reorder ties only: times never run out of order,
  // including events scheduled at the current time from inside a callback.
  Simulator sim({.seed = seed, .shuffle_ties = true});
  Simulator::Scope scope(sim);
  std::vector<Ran> ran;
  int next_id = 0;
  std::function<void(int, std::uint8_t)> schedule = [&](int depth, std::uint8_t delay) {
    const int id = next_id++;
    const TimePoint when = sim.now() + std::chrono::milliseconds{delay % 4};
    sim.schedule_at(when, [&, id, when, depth, delay] {
      ran.push_back(Ran{id, when, sim.now()});
      if (depth < 3 && delay % 2 == 0) schedule(depth + 1, static_cast<std::uint8_t>(delay / 2));
    });
  };
  for (const std::uint8_t delay : delays_ms) schedule(0, delay);
  RC_ASSERT(sim.run().reason == StopReason::kQuiescent);
  RC_ASSERT(static_cast<int>(ran.size()) == next_id);
  for (std::size_t i = 0; i < ran.size(); i++) {
    RC_ASSERT(ran[i].ran_at == ran[i].scheduled_for);
    if (i > 0) RC_ASSERT(ran[i - 1].ran_at <= ran[i].ran_at);
  }
}

}  // namespace
}  // namespace duro::sim
