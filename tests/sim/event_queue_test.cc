#include "sim/event_queue.h"

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <algorithm>
#include <set>
#include <tuple>
#include <vector>

namespace duro::sim {
namespace {

// The exact order the queue promises, as an ordered set.
using Model = std::set<std::tuple<std::int64_t, std::uint64_t, std::uint64_t>>;

std::tuple<std::int64_t, std::uint64_t, std::uint64_t> key(const Event& event) {
  return {event.time_ns, event.seq, event.target};
}

RC_GTEST_PROP(EventQueueProperty, PopsInTimeThenSequenceOrder, (std::vector<std::pair<std::uint8_t, bool>> ops)) {
  // A random interleaving of pushes (small times in any order, so ties are
  // common and many pushes land below the last pop) and pops, checked
  // against a sorted model.
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

// One step of a simulated scheduler's use of the queue.
struct Op {
  std::uint8_t kind;    // See the switch below.
  std::uint32_t delay;  // Scaled by the run's spread; often zero, for ties.
  std::uint32_t draw;   // The random high word of a shuffled sequence.
};

RC_GTEST_PROP(EventQueueProperty, MatchesAnOrderedModelAsTheSchedulerUsesIt,
              (bool shuffled, std::uint8_t spread_log2, std::int64_t start_ns)) {
  // As the simulator uses it: pushes at or after a clock that follows the
  // pops, equal times common, sequences rising or (shuffle_ties) with a
  // random high word; pops that leave the clock behind (dead timers), so
  // later pushes fall below the last pop; peeks; bulk purges. Pushes
  // outnumber pops, so hundreds are pending and buckets overflow.
  const auto ops = *rc::gen::resize(
      2000, rc::gen::container<std::vector<Op>>(rc::gen::build<Op>(
                rc::gen::set(&Op::kind, rc::gen::inRange<std::uint8_t>(0, 20)),
                rc::gen::set(&Op::delay, rc::gen::arbitrary<std::uint32_t>()),
                rc::gen::set(&Op::draw, rc::gen::arbitrary<std::uint32_t>()))));
  const std::uint32_t spread_mask = (1U << (spread_log2 % 32)) - 1;
  std::int64_t now_ns = std::clamp<std::int64_t>(start_ns, INT64_MIN / 2, INT64_MAX / 2);
  EventQueue queue(ops.size() + 1);
  Model model;
  std::uint64_t seq_next = 0;
  const auto push = [&](std::int64_t time_ns, const Op& op) {
    std::uint64_t seq = seq_next++;
    if (shuffled) seq = (static_cast<std::uint64_t>(op.draw) << 32) | (seq & 0xFFFFFFFFULL);
    const Event event{time_ns, seq, op.delay};
    queue.push(event);
    model.insert(key(event));
  };
  for (const Op& op : ops) {
    switch (op.kind) {
      case 0: case 1: case 2: case 3: case 4: case 5: case 6: case 7: case 8:
        push(now_ns + (op.delay % 3 == 0 ? 0 : op.delay & spread_mask), op);
        break;
      case 9:  // Below the clock: after a dead pop, or a caller gone wrong.
        push(now_ns - (op.delay & spread_mask), op);
        break;
      case 10: case 11: case 12: case 13: case 14: case 15: case 16: case 17: {
        if (model.empty()) break;
        // Kind 10 pops without a peek first, as step() does.
        if (op.kind != 10) RC_ASSERT(key(queue.top()) == *model.begin());
        const Event popped = queue.pop();
        RC_ASSERT(key(popped) == *model.begin());
        model.erase(model.begin());
        // Kind 17 is a dead event: popped, but the clock stays.
        if (op.kind != 17) now_ns = std::max(now_ns, popped.time_ns);
        break;
      }
      case 18: {
        if (op.draw % 8 != 0) break;  // Rare, as purges are.
        const std::uint64_t divisor = 2 + op.delay % 4;
        const auto dead = [divisor](const Event& event) { return event.target % divisor == 0; };
        queue.remove_if(dead);
        std::erase_if(model, [divisor](const auto& entry) { return std::get<2>(entry) % divisor == 0; });
        break;
      }
      default:
        if (!model.empty()) RC_ASSERT(key(queue.top()) == *model.begin());
        break;
    }
    RC_ASSERT(queue.size() == model.size());
  }
  while (!model.empty()) {
    RC_ASSERT(key(queue.pop()) == *model.begin());
    model.erase(model.begin());
  }
  RC_ASSERT(queue.empty());
}

TEST(EventQueue, EqualTimesComeOutInSequenceOrder) {
  EventQueue queue(100);
  for (std::uint64_t seq = 0; seq < 50; seq++) queue.push(Event{5, 49 - seq, seq});
  for (std::uint64_t seq = 0; seq < 50; seq++) EXPECT_EQ(queue.pop().seq, seq);
}

TEST(EventQueue, APushBelowTheLastPopComesOutFirst) {
  // A dead timer popped at 100 leaves the clock at 10; the scheduler may
  // then push at 10..99, ahead of everything else queued.
  EventQueue queue(10);
  queue.push(Event{100, 1, 0});
  queue.push(Event{200, 2, 0});
  EXPECT_EQ(queue.pop().time_ns, 100);
  queue.push(Event{50, 3, 0});
  queue.push(Event{10, 4, 0});
  queue.push(Event{150, 5, 0});
  EXPECT_EQ(queue.top().time_ns, 10);
  EXPECT_EQ(queue.pop().time_ns, 10);
  queue.push(Event{20, 6, 0});
  EXPECT_EQ(queue.pop().time_ns, 20);
  EXPECT_EQ(queue.pop().time_ns, 50);
  EXPECT_EQ(queue.pop().time_ns, 150);
  EXPECT_EQ(queue.pop().time_ns, 200);
  EXPECT_TRUE(queue.empty());
}

TEST(EventQueue, ShuffledSequencesAtTheCurrentTimeKeepTheirOrder) {
  // With shuffle_ties a push at the current time may draw a sequence below
  // the one just popped: it is then the least event, and comes out next.
  EventQueue queue(10);
  queue.push(Event{7, 500, 0});
  queue.push(Event{7, 900, 0});
  EXPECT_EQ(queue.pop().seq, 500u);
  queue.push(Event{7, 100, 0});
  queue.push(Event{7, 700, 0});
  queue.push(Event{8, 1, 0});
  EXPECT_EQ(queue.pop().seq, 100u);
  EXPECT_EQ(queue.pop().seq, 700u);
  EXPECT_EQ(queue.pop().seq, 900u);
  EXPECT_EQ(queue.pop().time_ns, 8);
}

TEST(EventQueue, ExtremeTimesAndSequences) {
  EventQueue queue(10);
  queue.push(Event{INT64_MAX, UINT64_MAX, 0});
  queue.push(Event{INT64_MIN, 0, 1});
  queue.push(Event{-1, 5, 2});
  queue.push(Event{0, 0, 3});
  EXPECT_EQ(queue.pop().target, 1u);
  EXPECT_EQ(queue.pop().target, 2u);
  EXPECT_EQ(queue.pop().target, 3u);
  queue.push(Event{INT64_MIN, 1, 4});  // Below the base: the early heap.
  EXPECT_EQ(queue.pop().target, 4u);
  EXPECT_EQ(queue.pop().target, 0u);
  EXPECT_TRUE(queue.empty());
  queue.push(Event{INT64_MIN, 0, 5});  // Empty: the base starts over.
  EXPECT_EQ(queue.pop().target, 5u);
}

TEST(EventQueue, ManyPendingGrowsPastTheReserveAndPurges) {
  // Far more events than the reserved blocks hold, in one high bucket and
  // spread out, to exercise overflow blocks, growth and remove_if.
  constexpr std::uint64_t kEvents = 60'000;
  EventQueue queue(kEvents);
  std::uint64_t state = 1;
  Model model;
  for (std::uint64_t seq = 0; seq < kEvents; seq++) {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    const auto time_ns = static_cast<std::int64_t>(seq % 2 == 0 ? (1LL << 40) + (state >> 44) : state >> 20);
    const Event event{time_ns, seq, state};
    queue.push(event);
    model.insert(key(event));
  }
  for (int i = 0; i < 1000; i++) {
    ASSERT_EQ(key(queue.pop()), *model.begin());
    model.erase(model.begin());
  }
  queue.remove_if([](const Event& event) { return event.seq % 3 == 0; });
  std::erase_if(model, [](const auto& entry) { return std::get<1>(entry) % 3 == 0; });
  ASSERT_EQ(queue.size(), model.size());
  while (!model.empty()) {
    ASSERT_EQ(key(queue.pop()), *model.begin());
    model.erase(model.begin());
  }
  EXPECT_TRUE(queue.empty());
}

TEST(EventQueueDeathTest, PushPastCapacityAsserts) {
  EventQueue queue(2);
  queue.push(Event{1, 1, 0});
  queue.push(Event{2, 2, 0});
  EXPECT_DEATH(queue.push(Event{3, 3, 0}), "event queue full");
}

}  // namespace
}  // namespace duro::sim
