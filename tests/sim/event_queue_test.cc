#include "sim/event_queue.h"

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <algorithm>
#include <vector>

namespace duro::sim {
namespace {

RC_GTEST_PROP(EventQueueProperty, PopsInTimeThenSequenceOrder, (std::vector<std::pair<std::uint8_t, bool>> ops)) {
  // A random interleaving of pushes (small times, so ties are common) and
  // pops, checked against a sorted model.
  EventQueue queue(ops.size() + 1);
  std::vector<Event> model;
  std::uint64_t seq = 0;
  for (const auto& [time, is_pop] : ops) {
    if (is_pop && !model.empty()) {
      const auto smallest = std::min_element(model.begin(), model.end());
      const Event popped = queue.pop();
      RC_ASSERT(popped.time_ns == smallest->time_ns);
      RC_ASSERT(popped.seq == smallest->seq);
      RC_ASSERT(popped.target == smallest->target);
      model.erase(smallest);
    } else {
      const Event event{time, seq++, seq * 7};
      queue.push(event);
      model.push_back(event);
    }
    RC_ASSERT(queue.size() == model.size());
  }
  while (!model.empty()) {
    const auto smallest = std::min_element(model.begin(), model.end());
    RC_ASSERT(queue.pop().seq == smallest->seq);
    model.erase(smallest);
  }
  RC_ASSERT(queue.empty());
}

TEST(EventQueue, EqualTimesComeOutInSequenceOrder) {
  EventQueue queue(100);
  for (std::uint64_t seq = 0; seq < 50; seq++) queue.push(Event{5, 49 - seq, seq});
  for (std::uint64_t seq = 0; seq < 50; seq++) EXPECT_EQ(queue.pop().seq, seq);
}

TEST(EventQueueDeathTest, PushPastCapacityAsserts) {
  EventQueue queue(2);
  queue.push(Event{1, 1, 0});
  queue.push(Event{2, 2, 0});
  EXPECT_DEATH(queue.push(Event{3, 3, 0}), "event queue full");
}

}  // namespace
}  // namespace duro::sim
