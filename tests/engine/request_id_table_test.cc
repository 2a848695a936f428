// RequestIdTable against a model of what it must hold: the ids of the last
// `capacity` places in the order applied, an id remembered again keeping
// only its newest place.
#include "engine/store/request_id_table.h"

#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>

#include <deque>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace duro::engine::store {
namespace {

RememberedRequest applied_at(std::uint64_t sequence) {
  return RememberedRequest{.kind = MutationKind::kWrite, .sequence = sequence, .shard = {}};
}

std::vector<std::pair<std::string, std::uint64_t>> listing(const RequestIdTable& table) {
  std::vector<std::pair<std::string, std::uint64_t>> entries;
  table.for_each([&](std::string_view id, const RememberedRequest& remembered) {
    entries.emplace_back(std::string(id), remembered.sequence);
  });
  return entries;
}

TEST(RequestIdTable, ForgetsTheOldestPlaceInTheOrderFirst) {
  RequestIdTable table(3);
  EXPECT_TRUE(table.remember("a", applied_at(1)));
  EXPECT_TRUE(table.remember("b", applied_at(2)));
  EXPECT_FALSE(table.remember("a", applied_at(3))) << "known: its place moves to the back";
  EXPECT_EQ(table.size(), 2U);
  // The order is full (a's old place is stale but counts): c pushes the
  // stale place out, and no id goes.
  EXPECT_TRUE(table.remember("c", applied_at(4)));
  ASSERT_NE(table.find("a"), nullptr);
  EXPECT_EQ(table.find("a")->sequence, 3U);
  EXPECT_NE(table.find("b"), nullptr);
  EXPECT_TRUE(table.remember("d", applied_at(5)));
  EXPECT_EQ(table.find("b"), nullptr) << "the oldest live id goes next";
  EXPECT_EQ(listing(table), (std::vector<std::pair<std::string, std::uint64_t>>{{"a", 3}, {"c", 4}, {"d", 5}}));
}

TEST(RequestIdTable, FindsEveryIdAmongManyAndForgetsThemInOrder) {
  // Enough ids to grow the index several times and wrap the ring twice.
  constexpr std::size_t kCapacity = 1000;
  RequestIdTable table(kCapacity);
  for (std::uint64_t i = 1; i <= 3 * kCapacity; i++) {
    ASSERT_TRUE(table.remember("7/3/" + std::to_string(i), applied_at(i)));
  }
  EXPECT_EQ(table.size(), kCapacity);
  for (std::uint64_t i = 1; i <= 3 * kCapacity; i++) {
    const RememberedRequest* found = table.find("7/3/" + std::to_string(i));
    if (i <= 2 * kCapacity) {
      EXPECT_EQ(found, nullptr) << i;
    } else {
      ASSERT_NE(found, nullptr) << i;
      EXPECT_EQ(found->sequence, i);
    }
  }
}

// The model: the order as a queue of (sequence, id), and each id's newest
// sequence; a place is live while it is its id's newest.
struct Model {
  std::size_t capacity;
  std::deque<std::pair<std::uint64_t, std::string>> order;
  std::map<std::string, std::uint64_t> newest;

  bool remember(const std::string& id, std::uint64_t sequence) {
    const bool fresh = !newest.contains(id);
    newest[id] = sequence;
    order.emplace_back(sequence, id);
    if (order.size() > capacity) {
      const auto& [oldest_sequence, oldest] = order.front();
      if (newest.at(oldest) == oldest_sequence) newest.erase(oldest);
      order.pop_front();
    }
    return fresh;
  }

  std::vector<std::pair<std::string, std::uint64_t>> listing() const {
    std::vector<std::pair<std::string, std::uint64_t>> entries;
    for (const auto& [sequence, id] : order) {
      if (newest.at(id) == sequence) entries.emplace_back(id, sequence);
    }
    return entries;
  }
};

RC_GTEST_PROP(RequestIdTableProperty, HoldsWhatTheModelHolds, ()) {
  const auto capacity = *rc::gen::inRange<std::size_t>(1, 40);
  // Few distinct ids, so that ids come back, share home slots and are
  // erased from the middle of probe runs.
  const auto ids = *rc::gen::container<std::vector<int>>(*rc::gen::inRange<std::size_t>(0, 400),
                                                         rc::gen::inRange(0, 60));
  RequestIdTable table(capacity);
  Model model{.capacity = capacity, .order = {}, .newest = {}};
  std::uint64_t sequence = 0;
  for (const int each : ids) {
    const std::string id = "req-" + std::to_string(each);
    sequence++;
    RC_ASSERT(table.remember(id, applied_at(sequence)) == model.remember(id, sequence));
    RC_ASSERT(table.size() == model.newest.size());
    for (int probe = 0; probe < 60; probe++) {
      const std::string probed = "req-" + std::to_string(probe);
      const RememberedRequest* found = table.find(probed);
      const auto expected = model.newest.find(probed);
      RC_ASSERT((found != nullptr) == (expected != model.newest.end()));
      if (found != nullptr) RC_ASSERT(found->sequence == expected->second);
    }
  }
  RC_ASSERT(listing(table) == model.listing());
}

}  // namespace
}  // namespace duro::engine::store
