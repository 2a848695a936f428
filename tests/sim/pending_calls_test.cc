// PendingCalls against a std::map: ids added, found, erased and drained in
// random orders, with gaps between them so that they share home slots and
// are erased from the middle of probe runs.
#include "sim/pending_calls.h"

#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>

#include <map>
#include <memory>
#include <set>
#include <vector>

namespace duro::sim {
namespace {

TEST(PendingCalls, FindsWhatWasAddedUntilItIsErased) {
  PendingCalls calls;
  PendingCalls::Call a;
  PendingCalls::Call b;
  calls.add(7, &a);
  calls.add(7 + 16, &b);  // The same home slot in the first table.
  EXPECT_EQ(calls.find(7), &a);
  EXPECT_EQ(calls.find(23), &b);
  EXPECT_EQ(calls.find(8), nullptr);
  EXPECT_TRUE(calls.erase(7));
  EXPECT_FALSE(calls.erase(7));
  EXPECT_EQ(calls.find(23), &b) << "moved back into the hole, still found";
  EXPECT_EQ(calls.size(), 1u);
}

TEST(PendingCalls, DrainVisitsEveryCallOnceAndEmptiesTheTable) {
  PendingCalls calls;
  std::vector<std::unique_ptr<PendingCalls::Call>> states;
  for (std::uint64_t id = 100; id < 200; id++) {  // Grows the table three times.
    states.push_back(std::make_unique<PendingCalls::Call>());
    calls.add(id, states.back().get());
  }
  std::set<PendingCalls::Call*> visited;
  calls.drain([&](PendingCalls::Call& call) { EXPECT_TRUE(visited.insert(&call).second); });
  EXPECT_EQ(visited.size(), 100u);
  EXPECT_EQ(calls.size(), 0u);
  EXPECT_EQ(calls.find(150), nullptr);
}

RC_GTEST_PROP(PendingCallsProperty, AgreesWithAMap, ()) {
  const auto steps = *rc::gen::container<std::vector<std::pair<int, int>>>(
      rc::gen::pair(rc::gen::inRange(0, 3), rc::gen::inRange(0, 200)));
  PendingCalls calls;
  std::map<std::uint64_t, PendingCalls::Call*> model;
  std::vector<std::unique_ptr<PendingCalls::Call>> states;
  std::uint64_t next_id = 1;
  for (const auto& [kind, value] : steps) {
    if (kind == 0) {
      // New ids keep growing, with gaps (other clients' calls, given-up ones).
      next_id += static_cast<std::uint64_t>(value % 40) + 1;
      states.push_back(std::make_unique<PendingCalls::Call>());
      calls.add(next_id, states.back().get());
      model[next_id] = states.back().get();
    } else if (kind == 1) {
      // Erase a pending id if there is one, else an unknown one.
      std::uint64_t id = next_id + 1;
      if (!model.empty()) id = std::next(model.begin(), value % static_cast<int>(model.size()))->first;
      RC_ASSERT(calls.erase(id) == (model.erase(id) == 1));
    } else {
      const std::uint64_t id = static_cast<std::uint64_t>(value) % (next_id + 1);
      const auto expected = model.find(id);
      RC_ASSERT(calls.find(id) == (expected == model.end() ? nullptr : expected->second));
    }
    RC_ASSERT(calls.size() == model.size());
  }
  for (const auto& [id, call] : model) RC_ASSERT(calls.find(id) == call);
}

}  // namespace
}  // namespace duro::sim
