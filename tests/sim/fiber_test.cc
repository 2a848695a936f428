#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <exception>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include <unistd.h>

#include "sim/sanitizer.h"
#include "sim/channel.h"
#include "sim/future.h"
#include "sim/simulator.h"
#include "sim/stack_pool.h"

namespace duro::sim {
namespace {

using namespace std::chrono_literals;

class FiberTest : public ::testing::Test {
 protected:
  Simulator sim{{.seed = 5}};
  NodeId node = sim.add_node("n");
};

TEST_F(FiberTest, SleepAdvancesVirtualTimeExactly) {
  std::vector<TimePoint> woke;
  sim.spawn(node, "a", [&] {
    this_fiber::sleep_for(1500ms);
    woke.push_back(sim.now());
    this_fiber::sleep_until(sim.now() - 1s);  // In the past: returns now.
    woke.push_back(sim.now());
    this_fiber::sleep_for(0ns);
    woke.push_back(sim.now());
  });
  EXPECT_EQ(sim.run().reason, StopReason::kQuiescent);
  ASSERT_EQ(woke.size(), 3u);
  EXPECT_EQ(woke[0], kDefaultStartTime + 1500ms);
  EXPECT_EQ(woke[1], woke[0]);
  EXPECT_EQ(woke[2], woke[0]);
}

TEST_F(FiberTest, YieldInterleavesFibersDueAtTheSameTime) {
  std::string order;
  for (const char name : {'a', 'b'}) {
    sim.spawn(node, std::string(1, name), [&order, name] {
      for (int i = 0; i < 3; i++) {
        order += name;
        this_fiber::yield();
      }
    });
  }
  (void)sim.run();
  EXPECT_EQ(order, "ababab");
  EXPECT_EQ(sim.now(), kDefaultStartTime);
}

TEST_F(FiberTest, JoinWaitsForTheFiberToFinish) {
  std::vector<std::string> log;
  sim.spawn(node, "parent", [&] {
    FiberHandle child = sim.spawn(node, "child", [&] {
      this_fiber::sleep_for(10s);
      log.push_back("child done");
    });
    EXPECT_FALSE(child.done());
    child.join();
    log.push_back("joined at " + format_duration(sim.now() - kDefaultStartTime));
    EXPECT_TRUE(child.done());
    child.join();  // Joining a finished fiber returns at once.
  });
  EXPECT_EQ(sim.run().reason, StopReason::kQuiescent);
  EXPECT_EQ(log, (std::vector<std::string>{"child done", "joined at 10s"}));
}

TEST_F(FiberTest, CancelUnwindsASleepingFiberAndRunsItsDestructors) {
  struct Guard {
    std::vector<std::string>* log;
    ~Guard() { log->push_back("guard destroyed"); }
  };
  std::vector<std::string> log;
  FiberHandle victim = sim.spawn(node, "victim", [&] {
    Guard guard{&log};
    this_fiber::sleep_for(1h);
    log.push_back("woke (must not happen)");
  });
  sim.spawn(node, "killer", [&] {
    this_fiber::sleep_for(1s);
    victim.cancel();
    victim.join();
    log.push_back("joined at " + format_duration(sim.now() - kDefaultStartTime));
  });
  EXPECT_EQ(sim.run().reason, StopReason::kQuiescent);
  EXPECT_EQ(log, (std::vector<std::string>{"guard destroyed", "joined at 1s"}));
  EXPECT_EQ(sim.fibers_live(), 0u);
}

TEST_F(FiberTest, CancelFromOutsideAnyFiberIsImmediate) {
  bool unwound = false;
  FiberHandle victim = sim.spawn(node, "victim", [&] {
    struct Flag {
      bool* flag;
      ~Flag() { *flag = true; }
    } flag{&unwound};
    this_fiber::sleep_for(1h);
  });
  (void)sim.run_for(1s);
  victim.cancel();
  EXPECT_TRUE(unwound);
  EXPECT_TRUE(victim.done());
  EXPECT_EQ(sim.run().reason, StopReason::kQuiescent);
  EXPECT_EQ(sim.now(), kDefaultStartTime + 1s) << "the cancelled sleep still ran its timer";
}

// A cancel inside CancelDeferred scopes (from a fiber or from outside any)
// waits for the outermost to end; the fiber's next wait then unwinds it.
// A crash does not wait.
TEST_F(FiberTest, CancelDeferredHoldsACancelUntilItsLastScopeEnds) {
  std::vector<std::string> log;
  FiberHandle victim = sim.spawn(node, "victim", [&] {
    {
      const Simulator::CancelDeferred outer(sim);
      {
        const Simulator::CancelDeferred inner(sim);
        this_fiber::sleep_for(1s);  // Cancelled from a fiber meanwhile.
        log.push_back("inner scope done");
      }
      this_fiber::sleep_for(1s);  // Cancelled from outside meanwhile.
      log.push_back("outer scope done");
    }
    log.push_back("past the scopes");
    this_fiber::sleep_for(1s);
    log.push_back("woke (must not happen)");
  });
  sim.spawn(node, "killer", [&] {
    this_fiber::sleep_for(500ms);
    victim.cancel();
  });
  (void)sim.run_for(1500ms);
  victim.cancel();
  EXPECT_FALSE(victim.done());
  EXPECT_EQ(sim.run().reason, StopReason::kQuiescent);
  EXPECT_EQ(log, (std::vector<std::string>{"inner scope done", "outer scope done", "past the scopes"}));
  EXPECT_TRUE(victim.done());

  bool crashed_in_scope = true;
  sim.spawn(node, "in-scope", [&] {
    const Simulator::CancelDeferred scope(sim);
    this_fiber::sleep_for(1h);
    crashed_in_scope = false;
  });
  (void)sim.run_for(1s);
  sim.crash(node);
  EXPECT_TRUE(crashed_in_scope);
  EXPECT_EQ(sim.fibers_live(), 0U);
}

TEST_F(FiberTest, CancellingAFiberBeforeItStartsSkipsItsBody) {
  bool ran = false;
  FiberHandle never = sim.spawn(node, "never", [&] { ran = true; });
  never.cancel();
  EXPECT_EQ(sim.run().reason, StopReason::kQuiescent);
  EXPECT_FALSE(ran);
}

TEST_F(FiberTest, SelfCancelUnwinds) {
  bool after = false;
  // The fiber starts after spawn() returns, so the handle is set by then.
  FiberHandle me;
  me = sim.spawn(node, "me", [&] {
    me.cancel();
    after = true;
  });
  EXPECT_EQ(sim.run().reason, StopReason::kQuiescent);
  EXPECT_FALSE(after);
  EXPECT_TRUE(me.done());
}

TEST_F(FiberTest, WaitingInADestructorDuringUnwindDoesNotTerminate) {
  std::vector<std::string> log;
  FiberHandle victim = sim.spawn(node, "victim", [&] {
    struct SleepsOnDestruction {
      std::vector<std::string>* log;
      ~SleepsOnDestruction() {
        this_fiber::sleep_for(1s);  // Returns at once: the fiber is dying.
        log->push_back("destructor finished");
      }
    } guard{&log};
    this_fiber::sleep_for(1h);
  });
  (void)sim.run_for(1s);
  victim.cancel();
  EXPECT_EQ(log, std::vector<std::string>{"destructor finished"});
}

TEST_F(FiberTest, CatchAllThatRethrowsStillDies) {
  int catches = 0;
  FiberHandle victim = sim.spawn(node, "victim", [&] {
    try {
      this_fiber::sleep_for(1h);
    } catch (...) {
      catches++;
      throw;
    }
  });
  (void)sim.run_for(1s);
  victim.cancel();
  EXPECT_EQ(catches, 1);
  EXPECT_TRUE(victim.done());
}

// The runtime keeps the exceptions being handled per thread; each fiber
// must keep its own, or a fiber that waits inside a catch block would find
// another fiber's exception there (sim/exception_state.h).
TEST_F(FiberTest, EachFiberKeepsTheExceptionsItIsHandlingAcrossSwitches) {
  std::vector<std::string> log;
  auto catcher = [&](std::string name) {
    return [&log, name] {
      try {
        throw std::runtime_error(name);
      } catch (const std::runtime_error& caught) {
        this_fiber::yield();  // The other fiber catches its own meanwhile.
        EXPECT_EQ(std::uncaught_exceptions(), 0);
        try {
          throw;
        } catch (const std::runtime_error& again) {
          log.push_back(name + " rethrew " + again.what() + ", caught " + caught.what());
        }
        this_fiber::yield();  // The other fiber ends its catch meanwhile.
        log.push_back(name + " still holds " + caught.what());
      }
    };
  };
  sim.spawn(node, "a", catcher("a"));
  sim.spawn(node, "b", catcher("b"));
  EXPECT_EQ(sim.run().reason, StopReason::kQuiescent);
  EXPECT_EQ(log, (std::vector<std::string>{"a rethrew a, caught a", "b rethrew b, caught b", "a still holds a",
                                           "b still holds b"}));
  EXPECT_EQ(std::current_exception(), nullptr);
}

TEST_F(FiberTest, StacksArePooledAndReused) {
  int finished = 0;
  sim.spawn(node, "spawner", [&] {
    for (int i = 0; i < 10'000; i++) {
      FiberHandle child = sim.spawn(node, "short", [&] { finished++; });
      child.join();
    }
  });
  EXPECT_EQ(sim.run().reason, StopReason::kQuiescent);
  EXPECT_EQ(finished, 10'000);
  EXPECT_LE(sim.stacks().mapped(), 3u) << "stacks were not reused";
  EXPECT_EQ(sim.stacks().in_use(), 0u);
}

// A stack size no other test uses, so the kept stacks counted are these.
constexpr std::size_t kOddStackBytes = 36 * 1024;

TEST(StackPool, ADestroyedPoolLeavesItsStacksToTheNextPoolGuardPagesAndAll) {
  std::set<void*> first_tops;
  std::size_t kept_before = 0;
  {
    StackPool pool(kOddStackBytes, 8);
    std::vector<boost::context::stack_context> stacks;
    for (int i = 0; i < 3; i++) stacks.push_back(pool.allocate());
    kept_before = StackPool::kept();
    for (auto& stack : stacks) {
      first_tops.insert(stack.sp);
      pool.deallocate(stack);
    }
    EXPECT_EQ(pool.mapped(), 3u);
  }
  // Other tests' pools may have filled the process's share: then the
  // stacks kept longest made room.
  const std::size_t kept_after = StackPool::kept();
  ASSERT_EQ(kept_after, std::min(kept_before + 3, kStacksKeptMax));
  StackPool next(kOddStackBytes, 8);
  std::vector<boost::context::stack_context> stacks;
  for (int i = 0; i < 3; i++) stacks.push_back(next.allocate());
  EXPECT_EQ(StackPool::kept(), kept_after - 3) << "the next pool mapped new stacks instead";
  for (auto& stack : stacks) {
    EXPECT_EQ(first_tops.count(stack.sp), 1u);
    // The whole stack is writable again.
    std::memset(static_cast<char*>(stack.sp) - stack.size, 0x5a, stack.size);
  }
  for (auto& stack : stacks) next.deallocate(stack);
}

// resident_bytes() counts the pages written, not the pages mapped: a
// fresh pool's stacks are resident only as deep as something ran on them.
TEST(StackPool, ResidentBytesCountThePagesTouched) {
  // A size of its own, new at each run of the test (--gtest_repeat): a
  // pool of a size seen before gets its kept, already resident stacks.
  static std::size_t runs = 0;
  const std::size_t stack_bytes = (300 + 4 * runs++) * 1024;  // Above any default (64 KiB; 256 under ASan).
  StackPool pool(stack_bytes, 4);
  boost::context::stack_context a = pool.allocate();
  boost::context::stack_context b = pool.allocate();
  const std::size_t page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  const std::size_t before = pool.resident_bytes();
  EXPECT_LE(before, 2 * page) << "fresh stacks are resident before anything ran on them";
  // Three pages at the top of one stack, the whole of the other.
  std::memset(static_cast<char*>(a.sp) - 3 * page, 1, 3 * page);
  std::memset(static_cast<char*>(b.sp) - b.size, 1, b.size);
  EXPECT_EQ(pool.resident_bytes() - before, 3 * page + b.size);
  pool.deallocate(a);
  pool.deallocate(b);
}

TEST(StackPoolDeathTest, TheGuardPageOfAKeptStackStillFaults) {
  {
    StackPool first(kOddStackBytes, 1);
    boost::context::stack_context stack = first.allocate();
    first.deallocate(stack);
  }
  ASSERT_GE(StackPool::kept(), 1u);
  StackPool pool(kOddStackBytes, 1);
  boost::context::stack_context stack = pool.allocate();
  char* const below = static_cast<char*>(stack.sp) - stack.size - 1;
  EXPECT_DEATH(*reinterpret_cast<volatile char*>(below) = 1, "");
  pool.deallocate(stack);
}

TEST_F(FiberTest, ThousandsOfFibersSleepConcurrently) {
  constexpr int kFibers = 5'000;
  int woke = 0;
  for (int i = 0; i < kFibers; i++) {
    sim.spawn(node, "sleeper", [&woke, i] {
      this_fiber::sleep_for(std::chrono::milliseconds{i % 100});
      woke++;
    });
  }
  EXPECT_EQ(sim.fibers_live(), static_cast<std::size_t>(kFibers));
  EXPECT_EQ(sim.run().reason, StopReason::kQuiescent);
  EXPECT_EQ(woke, kFibers);
  EXPECT_EQ(sim.now(), kDefaultStartTime + 99ms);
}

TEST_F(FiberTest, FibersCanUseMostOfTheirStack) {
  // Recursion that touches ~40 KiB of a 64 KiB stack (more under ASan,
  // whose stacks are four times larger).
  std::function<int(int)> recurse = [&](int depth) -> int {
    volatile char frame[512];
    frame[0] = static_cast<char>(depth);
    return depth == 0 ? frame[0] : recurse(depth - 1) + frame[0];
  };
  int result = -1;
  sim.spawn(node, "deep", [&] { result = recurse(70); });
  (void)sim.run();
  EXPECT_EQ(result, 70 * 71 / 2);
}

TEST_F(FiberTest, ThisFiberKnowsWhereItRuns) {
  const NodeId other = sim.add_node("other");
  NodeId seen = kNoNode;
  std::uint64_t id = 0;
  FiberHandle handle = sim.spawn(other, "f", [&] {
    seen = this_fiber::node();
    id = this_fiber::id();
  });
  (void)sim.run();
  EXPECT_EQ(seen, other);
  EXPECT_EQ(id, handle.id());
  EXPECT_FALSE(sim.in_fiber());
}

}  // namespace
}  // namespace duro::sim

#if defined(DURO_ASAN)
namespace duro::sim {
namespace {

// The fiber-switch annotations must not blind ASan: a real bug inside a
// fiber is still reported (and kills the process).
TEST(FiberAsanDeathTest, UseAfterFreeInsideAFiberIsReported) {
  EXPECT_DEATH(
      {
        Simulator sim({.seed = 1});
        const NodeId node = sim.add_node("n");
        sim.spawn(node, "buggy", [] {
          this_fiber::yield();
          auto* value = new int(7);
          delete value;
          volatile int read = *value;  // NOLINT: the bug under test.
          (void)read;
        });
        (void)sim.run();
      },
      "heap-use-after-free");
}

TEST(FiberAsanDeathTest, StackOverflowOfALocalArrayInsideAFiberIsReported) {
  EXPECT_DEATH(
      {
        Simulator sim({.seed = 1});
        const NodeId node = sim.add_node("n");
        sim.spawn(node, "buggy", [] {
          this_fiber::sleep_for(std::chrono::seconds{1});
          volatile char buffer[16];
          volatile int index = 16;
          volatile char* through_pointer = buffer;
          // Hide the pointer's origin so UBSan's bounds checks stay out and
          // the write reaches ASan's stack redzone.
          asm volatile("" : "+r"(through_pointer));
          through_pointer[index] = 1;  // NOLINT: the bug under test.
        });
        (void)sim.run();
      },
      "stack-buffer-overflow");
}

}  // namespace
}  // namespace duro::sim
#endif

namespace duro::sim {
namespace {

TEST(FiberKilled, WaitsInADyingFiberEndAtOnceWithKilled) {
  Simulator sim({.seed = 1});
  const NodeId node = sim.add_node("n");
  auto channel = std::make_shared<Channel<int>>(4);
  std::vector<std::string> seen;
  FiberHandle victim = sim.spawn(node, "victim", [&, channel] {
    struct WaitsOnDestruction {
      std::shared_ptr<Channel<int>> channel;
      std::vector<std::string>* seen;
      ~WaitsOnDestruction() {
        Result<int> item = channel->receive_for(std::chrono::hours{1});
        seen->push_back(item.ok() ? "item" : error_code_name(item.error().code));
        Promise<int> promise;
        Future<int> future = promise.future();
        auto keep = std::make_shared<Promise<int>>(std::move(promise));
        Result<int> value = future.get_for(std::chrono::hours{1});
        seen->push_back(value.ok() ? "value" : error_code_name(value.error().code));
      }
    } guard{channel, &seen};
    this_fiber::sleep_for(std::chrono::hours{2});
  });
  (void)sim.run_for(std::chrono::seconds{1});
  victim.cancel();
  EXPECT_EQ(seen, (std::vector<std::string>{"killed", "killed"}));
}

TEST(FiberKilled, AKilledJoinerGivesUpItsPlace) {
  Simulator sim({.seed = 1});
  const NodeId node = sim.add_node("n");
  FiberHandle target = sim.spawn(node, "target", [] { this_fiber::sleep_for(std::chrono::hours{1}); });
  FiberHandle first = sim.spawn(node, "first-joiner", [&] { target.join(); });
  bool second_joined = false;
  sim.spawn(node, "second-joiner", [&] {
    this_fiber::sleep_for(std::chrono::seconds{1});
    first.cancel();
    this_fiber::yield();
    target.join();
    second_joined = true;
  });
  EXPECT_EQ(sim.run().reason, StopReason::kQuiescent);
  EXPECT_TRUE(second_joined);
}

}  // namespace
}  // namespace duro::sim
