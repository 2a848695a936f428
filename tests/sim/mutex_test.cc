#include "sim/mutex.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace duro::sim {
namespace {

using namespace std::chrono_literals;

TEST(Mutex, WaitersGetItInArrivalOrderAndSectionsDoNotInterleave) {
  Simulator sim({.seed = 1});
  const NodeId node = sim.add_node("n");
  Mutex mutex;
  std::vector<std::string> log;
  for (int i = 0; i < 4; i++) {
    sim.spawn(node, "f" + std::to_string(i), [&, i] {
      this_fiber::sleep_for(std::chrono::milliseconds{i});  // Arrive in order 0, 1, 2, 3.
      ASSERT_TRUE(mutex.lock().ok());
      Mutex::Unlocker unlocker(mutex);
      log.push_back("in" + std::to_string(i));
      this_fiber::sleep_for(10ms);  // Suspends inside the section.
      log.push_back("out" + std::to_string(i));
    });
  }
  sim.run();
  EXPECT_EQ(log, (std::vector<std::string>{"in0", "out0", "in1", "out1", "in2", "out2", "in3", "out3"}));
  EXPECT_FALSE(mutex.locked());
  EXPECT_EQ(mutex.waiting(), 0u);
}

TEST(Mutex, LockTimesOutAtTheDeadline) {
  Simulator sim({.seed = 1});
  const NodeId node = sim.add_node("n");
  Mutex mutex;
  sim.spawn(node, "holder", [&] {
    ASSERT_TRUE(mutex.lock().ok());
    this_fiber::sleep_for(1s);
    mutex.unlock();
  });
  sim.spawn(node, "impatient", [&] {
    const TimePoint start = sim.now();
    Result<void> locked = mutex.lock(sim.now() + 100ms);
    ASSERT_FALSE(locked.ok());
    EXPECT_EQ(locked.error().code, ErrorCode::kTimeout);
    EXPECT_EQ(sim.now() - start, 100ms);
  });
  sim.run();
  EXPECT_FALSE(mutex.locked());
}

TEST(Mutex, AKilledWaiterLeavesTheQueueAndPassesOnAnOwnershipItWasHanded) {
  Simulator sim({.seed = 1});
  const NodeId node = sim.add_node("n");
  const NodeId doomed = sim.add_node("doomed");
  Mutex mutex;
  bool last_got_it = false;
  sim.spawn(node, "holder", [&] {
    ASSERT_TRUE(mutex.lock().ok());
    this_fiber::sleep_for(1s);
    mutex.unlock();  // Hands it to the doomed waiter, which is dying at this instant.
  });
  sim.spawn(doomed, "waiter", [&] {
    this_fiber::sleep_for(1ms);
    (void)mutex.lock();
    ADD_FAILURE() << "a killed waiter must not get past lock()";
  });
  sim.spawn(node, "last", [&] {
    this_fiber::sleep_for(2ms);
    ASSERT_TRUE(mutex.lock().ok());
    last_got_it = true;
    mutex.unlock();
  });
  sim.schedule_at(kDefaultStartTime + 1s, [&] { sim.crash(doomed); });
  sim.run();
  EXPECT_TRUE(last_got_it);
  EXPECT_FALSE(mutex.locked());
  EXPECT_EQ(mutex.waiting(), 0u);
}

}  // namespace
}  // namespace duro::sim
