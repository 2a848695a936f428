#include "sim/future.h"

#include <gtest/gtest.h>

#include <array>
#include <string>
#include <vector>

#include "sim/channel.h"

namespace duro::sim {
namespace {

using namespace std::chrono_literals;

class FutureTest : public ::testing::Test {
 protected:
  // Runs `fn` in a fiber on a fresh node and the simulation to its end.
  template <typename Fn>
  RunResult run_in_fiber(Fn&& fn) {
    sim.spawn(node, "test", std::forward<Fn>(fn));
    return sim.run();
  }

  Simulator sim{{.seed = 9}};
  NodeId node = sim.add_node("n");
};

TEST_F(FutureTest, ValueArrivesAfterTheProducerDelay) {
  const RunResult result = run_in_fiber([&] {
    Promise<std::string> promise;
    Future<std::string> future = promise.future();
    sim.spawn(node, "producer", [p = std::move(promise)]() mutable {
      this_fiber::sleep_for(250ms);
      p.set_value("hello");
    });
    Result<std::string> value = future.get();
    ASSERT_TRUE(value.ok());
    EXPECT_EQ(value.value(), "hello");
    EXPECT_EQ(sim.now(), kDefaultStartTime + 250ms);
    EXPECT_FALSE(future.valid());
  });
  EXPECT_EQ(result.reason, StopReason::kQuiescent);
}

TEST_F(FutureTest, TimeoutLeavesTheFutureUsable) {
  (void)run_in_fiber([&] {
    Promise<int> promise;
    Future<int> future = promise.future();
    sim.spawn(node, "slow", [p = std::move(promise)]() mutable {
      this_fiber::sleep_for(5s);
      p.set_value(7);
    });
    Result<int> first = future.get_for(1s);
    ASSERT_FALSE(first.ok());
    EXPECT_EQ(first.error().code, ErrorCode::kTimeout);
    EXPECT_EQ(sim.now(), kDefaultStartTime + 1s);
    ASSERT_TRUE(future.valid());
    Result<int> second = future.get_for(10s);
    ASSERT_TRUE(second.ok());
    EXPECT_EQ(second.value(), 7);
    EXPECT_EQ(sim.now(), kDefaultStartTime + 5s);
  });
}

TEST_F(FutureTest, DestroyedPromiseBreaksTheWait) {
  (void)run_in_fiber([&] {
    auto promise = std::make_unique<Promise<int>>();
    Future<int> future = promise->future();
    sim.spawn(node, "owner", [p = std::move(promise)]() mutable {
      this_fiber::sleep_for(2s);
      p.reset();  // The owner gives up without answering.
    });
    Result<int> result = future.get();
    ASSERT_FALSE(result.ok());
    EXPECT_EQ(result.error().code, ErrorCode::kBrokenPromise);
    EXPECT_EQ(sim.now(), kDefaultStartTime + 2s);
  });
}

TEST_F(FutureTest, ErrorsPassThrough) {
  (void)run_in_fiber([&] {
    Promise<int> promise;
    Future<int> future = promise.future();
    promise.set_error(Error{ErrorCode::kApplication, "quota exceeded"});
    Result<int> result = future.get();
    ASSERT_FALSE(result.ok());
    EXPECT_EQ(to_string(result.error()), "application: quota exceeded");
  });
}

TEST_F(FutureTest, VoidPromises) {
  (void)run_in_fiber([&] {
    Promise<void> promise;
    Future<void> future = promise.future();
    sim.spawn(node, "signaller", [p = std::move(promise)]() mutable { p.set_value(); });
    EXPECT_TRUE(future.get().ok());
  });
}

TEST_F(FutureTest, CancelWakesTheWaiterAndTellsThePromise) {
  (void)run_in_fiber([&] {
    Promise<int> promise;
    auto future = std::make_shared<Future<int>>(promise.future());
    sim.spawn(node, "canceller", [future] {
      this_fiber::sleep_for(3s);
      future->cancel();
    });
    Result<int> result = future->get();
    ASSERT_FALSE(result.ok());
    EXPECT_EQ(result.error().code, ErrorCode::kCancelled);
    EXPECT_TRUE(promise.cancelled());
    promise.set_value(1);  // Too late: ignored, not an error.
  });
}

TEST_F(FutureTest, DroppingTheFutureCancelsThePromise) {
  Promise<int> promise;
  {
    Future<int> future = promise.future();
    EXPECT_FALSE(promise.cancelled());
  }
  EXPECT_TRUE(promise.cancelled());
}

TEST_F(FutureTest, WhenAllWaitsForTheLast) {
  (void)run_in_fiber([&] {
    std::vector<Future<int>> futures;
    for (int i = 0; i < 4; i++) {
      Promise<int> promise;
      futures.push_back(promise.future());
      sim.spawn(node, "worker", [p = std::move(promise), i]() mutable {
        this_fiber::sleep_for(std::chrono::seconds{4 - i});
        p.set_value(i * 10);
      });
    }
    EXPECT_TRUE(when_all(std::span<Future<int>>(futures)).ok());
    EXPECT_EQ(sim.now(), kDefaultStartTime + 4s);
    for (int i = 0; i < 4; i++) EXPECT_EQ(futures[i].get().value(), i * 10);
  });
}

TEST_F(FutureTest, WhenAllTimesOut) {
  (void)run_in_fiber([&] {
    Promise<int> never;
    std::array<Future<int>, 1> futures{never.future()};
    Result<void> result = when_all(std::span<Future<int>>(futures), sim.now() + 2s);
    ASSERT_FALSE(result.ok());
    EXPECT_EQ(result.error().code, ErrorCode::kTimeout);
    EXPECT_EQ(sim.now(), kDefaultStartTime + 2s);
  });
}

TEST_F(FutureTest, WhenAnyReturnsTheFirstReady) {
  (void)run_in_fiber([&] {
    std::vector<Future<int>> futures;
    for (int i = 0; i < 3; i++) {
      Promise<int> promise;
      futures.push_back(promise.future());
      const auto delay = std::chrono::seconds{i == 1 ? 1 : 10};
      sim.spawn(node, "worker", [p = std::move(promise), delay, i]() mutable {
        this_fiber::sleep_for(delay);
        p.set_value(i);
      });
    }
    Result<std::size_t> first = when_any(std::span<Future<int>>(futures));
    ASSERT_TRUE(first.ok());
    EXPECT_EQ(first.value(), 1u);
    EXPECT_EQ(sim.now(), kDefaultStartTime + 1s);
    // The others' later answers must not wake this fiber out of an
    // unrelated sleep (their registrations are stale).
    this_fiber::sleep_for(20s);
    EXPECT_EQ(sim.now(), kDefaultStartTime + 21s);
    // Now two are ready at once: the lowest index wins.
    EXPECT_EQ(futures[0].ready(), true);
    EXPECT_EQ(when_any(std::span<Future<int>>(futures)).value(), 0u);
  });
}

TEST_F(FutureTest, WhenAnyTimesOut) {
  (void)run_in_fiber([&] {
    Promise<int> a;
    Promise<int> b;
    std::array<Future<int>, 2> futures{a.future(), b.future()};
    Result<std::size_t> result = when_any(std::span<Future<int>>(futures), sim.now() + 500ms);
    ASSERT_FALSE(result.ok());
    EXPECT_EQ(result.error().code, ErrorCode::kTimeout);
  });
}

TEST_F(FutureTest, ChannelIsFifoAndBounded) {
  (void)run_in_fiber([&] {
    Channel<int> channel(2);
    EXPECT_TRUE(channel.try_send(1));
    EXPECT_TRUE(channel.try_send(2));
    EXPECT_FALSE(channel.try_send(3)) << "a full channel must refuse";
    EXPECT_EQ(channel.receive().value(), 1);
    EXPECT_EQ(channel.receive().value(), 2);
    Result<int> empty = channel.receive_for(1s);
    ASSERT_FALSE(empty.ok());
    EXPECT_EQ(empty.error().code, ErrorCode::kTimeout);
  });
}

// try_receive never waits, and never takes an item from a receiver that
// was waiting for one first.
TEST_F(FutureTest, ChannelTryReceiveTakesOnlyWhatNobodyWaitsFor) {
  auto channel = std::make_shared<Channel<int>>(4);
  std::vector<std::string> got;
  sim.spawn(node, "taker", [channel, &got] {
    EXPECT_FALSE(channel->try_receive().has_value()) << "an empty channel gave an item";
    EXPECT_TRUE(channel->try_send(1));
    std::optional<int> item = channel->try_receive();
    ASSERT_TRUE(item.has_value());
    got.push_back("taker=" + std::to_string(*item));
    this_fiber::sleep_for(2s);  // A receiver waits now.
    EXPECT_TRUE(channel->try_send(2));
    EXPECT_FALSE(channel->try_receive().has_value()) << "took the item a waiting receiver was woken for";
  });
  sim.spawn(node, "receiver", [channel, &got] {
    this_fiber::sleep_for(1s);
    Result<int> item = channel->receive();
    got.push_back(item.ok() ? "receiver=" + std::to_string(item.value()) : "receiver failed");
  });
  EXPECT_EQ(sim.run().reason, StopReason::kQuiescent);
  EXPECT_EQ(got, (std::vector<std::string>{"taker=1", "receiver=2"}));
}

TEST_F(FutureTest, ChannelWakesReceiversInArrivalOrder) {
  auto channel = std::make_shared<Channel<int>>(8);
  std::vector<std::string> got;
  for (const char* name : {"r1", "r2", "r3"}) {
    sim.spawn(node, name, [channel, &got, name] {
      Result<int> item = channel->receive();
      std::string entry = name;
      if (item.ok()) {
        entry += '=';
        entry += std::to_string(item.value());
      } else {
        entry += " closed";
      }
      got.push_back(entry);
    });
  }
  sim.spawn(node, "sender", [channel] {
    this_fiber::sleep_for(1s);
    (void)channel->try_send(10);
    (void)channel->try_send(20);
    this_fiber::sleep_for(1s);
    channel->close();
  });
  EXPECT_EQ(sim.run().reason, StopReason::kQuiescent);
  EXPECT_EQ(got, (std::vector<std::string>{"r1=10", "r2=20", "r3 closed"}));
}

TEST_F(FutureTest, KilledReceiverPassesItsTurnOn) {
  auto channel = std::make_shared<Channel<int>>(8);
  int received = 0;
  FiberHandle first = sim.spawn(node, "first", [channel, &received] {
    if (channel->receive().ok()) received++;
  });
  sim.spawn(node, "second", [channel, &received] {
    if (channel->receive().ok()) received++;
  });
  sim.spawn(node, "sender-and-killer", [channel, first] {
    this_fiber::sleep_for(1s);
    (void)channel->try_send(1);  // Chooses `first`...
    first.cancel();              // ...which dies before taking it.
  });
  EXPECT_EQ(sim.run().reason, StopReason::kQuiescent);
  EXPECT_EQ(received, 1);
  EXPECT_EQ(channel->size(), 0u);
}


TEST(FutureOutsideRun, PromiseDestroyedBetweenRunsWakesTheWaiter) {
  Simulator sim({.seed = 1});
  const NodeId node = sim.add_node("n");
  auto promise = std::make_unique<Promise<int>>();
  Result<int> outcome = Error{ErrorCode::kApplication, "not set"};
  sim.spawn(node, "waiter", [&, future = promise->future()]() mutable { outcome = future.get(); });
  EXPECT_EQ(sim.run().reason, StopReason::kDeadlock);
  promise.reset();  // Outside any run: no simulator is current here.
  EXPECT_EQ(sim.run().reason, StopReason::kQuiescent);
  ASSERT_FALSE(outcome.ok());
  EXPECT_EQ(outcome.error().code, ErrorCode::kBrokenPromise);
}

}  // namespace
}  // namespace duro::sim
