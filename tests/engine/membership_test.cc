#include "engine/server/membership.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "sim/world.h"

namespace duro::engine {
namespace {

using namespace std::chrono_literals;

std::vector<store::Member> members_named(int count) {
  std::vector<store::Member> members;
  for (int i = 0; i < count; i++) {
    members.push_back(store::Member{"server-" + std::to_string(i), "10.0.0." + std::to_string(i + 1), 1, 0s});
  }
  return members;
}

std::vector<std::string> keys(int count) {
  std::vector<std::string> out;
  for (int i = 0; i < count; i++) out.push_back("workflow-" + std::to_string(i));
  return out;
}

TEST(MembershipRendezvous, WeightsArePinned) {
  // Every node must compute the same owners, in every build: the weight is
  // our own hash, never std::hash. A change here moves every key.
  EXPECT_EQ(rendezvous_weight("server-0", "workflow-0"), rendezvous_weight("server-0", "workflow-0"));
  EXPECT_NE(rendezvous_weight("server-0", "workflow-0"), rendezvous_weight("server-1", "workflow-0"));
  EXPECT_NE(rendezvous_weight("server-0", "workflow-0"), rendezvous_weight("server-0", "workflow-1"));
  EXPECT_EQ(rendezvous_weight("server-0", "workflow-0"), 0x49fe508395aef07aULL);
}

TEST(MembershipRendezvous, SharesKeysFairly) {
  for (int count = 3; count <= 5; count++) {
    const std::vector<store::Member> members = members_named(count);
    std::map<std::string, int> owned;
    for (const std::string& key : keys(1000)) owned[rendezvous_owner(members, key)]++;
    ASSERT_EQ(owned.size(), static_cast<std::size_t>(count));
    const double fair = 1000.0 / count;
    for (const auto& [node, n] : owned) {
      EXPECT_GT(n, fair * 0.8) << count << " members: " << node;
      EXPECT_LT(n, fair * 1.2) << count << " members: " << node;
    }
  }
  EXPECT_EQ(rendezvous_owner({}, "workflow-0"), "");
}

TEST(MembershipRendezvous, OnlyTheKeysOfALeavingMemberMove) {
  const std::vector<store::Member> five = members_named(5);
  for (int leaving = 0; leaving < 5; leaving++) {
    std::vector<store::Member> four = five;
    four.erase(four.begin() + leaving);
    int moved = 0;
    for (const std::string& key : keys(1000)) {
      const std::string before = rendezvous_owner(five, key);
      const std::string after = rendezvous_owner(four, key);
      if (before == five[static_cast<std::size_t>(leaving)].node) {
        moved++;
        EXPECT_NE(after, before);
      } else {
        EXPECT_EQ(after, before) << key << " moved though its owner stayed";
      }
    }
    EXPECT_GT(moved, 150);
    EXPECT_LT(moved, 250);
  }
  // And a joining member takes keys only for itself.
  const std::vector<store::Member> four(five.begin(), five.end() - 1);
  for (const std::string& key : keys(1000)) {
    const std::string after = rendezvous_owner(five, key);
    if (after != "server-4") {
      EXPECT_EQ(after, rendezvous_owner(four, key));
    }
  }
}

// The store's membership rule, for real: a member is alive while its last
// heartbeat is within its ttl, by the store's clock (here, true time). It
// can be cut off from some nodes, who then get errors after a delay.
class FakeStore {
 public:
  sim::Result<store::HeartbeatReply> heartbeat(const store::HeartbeatRequest& request) {
    sim::this_fiber::sleep_for(2ms);
    if (unreachable.contains(request.node)) {
      sim::this_fiber::sleep_for(200ms);
      return sim::Error{sim::ErrorCode::kTimeout, "store unreachable"};
    }
    const sim::TimePoint now = sim::Simulator::current().now();
    heard_[request.node] = Heard{request, now};
    store::HeartbeatReply reply;
    for (const auto& [node, heard] : heard_) {  // std::map: sorted by node name.
      const sim::Duration age = now - heard.at;
      if (age > heard.request.ttl) continue;
      reply.members.push_back(store::Member{node, heard.request.address, heard.request.incarnation, age});
    }
    reply.listening = now - started_at_;
    sim::this_fiber::sleep_for(2ms);
    return reply;
  }

  // Forgets every member, as a store process that (re)starts does.
  void restart(sim::TimePoint now) {
    heard_.clear();
    started_at_ = now;
  }

  std::set<std::string> unreachable;

 private:
  struct Heard {
    store::HeartbeatRequest request;
    sim::TimePoint at;
  };
  std::map<std::string, Heard> heard_;
  sim::TimePoint started_at_{};
};

struct ServerProcess final : sim::Process {
  std::unique_ptr<Membership> membership;
};

// Three server nodes heartbeating one fake store. The store is declared
// first so that it outlives the world's fibers.
class MembershipTest : public ::testing::Test {
 protected:
  MembershipTest() {
    store.restart(world.sim().now());
    for (int i = 0; i < 3; i++) {
      nodes.push_back(world.add_node("server-" + std::to_string(i), [this](sim::Env& env) {
        auto process = std::make_unique<ServerProcess>();
        process->membership = std::make_unique<Membership>(
            env, env.name(), [this](const store::HeartbeatRequest& request) { return store.heartbeat(request); });
        process->membership->start();
        return process;
      }));
    }
  }

  Membership& membership(int i) {
    auto* process = dynamic_cast<ServerProcess*>(world.sim().process(nodes[static_cast<std::size_t>(i)]));
    DURO_ASSERT(process != nullptr);
    return *process->membership;
  }

  std::vector<std::string> names(int i) {
    std::vector<std::string> out;
    for (const store::Member& member : membership(i).members()) out.push_back(member.node);
    return out;
  }

  FakeStore store;
  sim::World world{{.seed = 3}};
  std::vector<sim::NodeId> nodes;
};

TEST_F(MembershipTest, TheViewFollowsHeartbeats) {
  EXPECT_FALSE(membership(0).has_view());
  EXPECT_EQ(membership(0).owner_of("workflow-1"), "");
  world.run_for(3s);
  const std::vector<std::string> all = {"server-0", "server-1", "server-2"};
  for (int i = 0; i < 3; i++) {
    EXPECT_TRUE(membership(i).has_view());
    EXPECT_EQ(names(i), all);
    EXPECT_TRUE(membership(i).alive("server-2"));
    EXPECT_FALSE(membership(i).alive("server-9"));
    EXPECT_EQ(membership(i).address_of("server-1"), sim::to_string(world.sim().node_address(nodes[1])));
    EXPECT_EQ(membership(i).address_of("server-9"), std::nullopt);
  }
  // Everyone agrees on who owns what.
  for (const std::string& key : keys(50)) {
    EXPECT_EQ(membership(0).owner_of(key), membership(1).owner_of(key));
    EXPECT_EQ(membership(0).owner_of(key), membership(2).owner_of(key));
  }

  // Steady state: ages change, the version does not.
  const std::uint64_t steady = membership(0).version();
  world.run_for(20s);
  EXPECT_EQ(membership(0).version(), steady);

  // server-2 dies: the others drop it once its ttl has run out, in one change.
  world.sim().crash(nodes[2]);
  world.run_for(3s);
  EXPECT_EQ(names(0), all) << "within its ttl, server-2 still counts";
  world.run_for(3s);
  EXPECT_EQ(names(0), (std::vector<std::string>{"server-0", "server-1"}));
  EXPECT_EQ(names(1), (std::vector<std::string>{"server-0", "server-1"}));
  EXPECT_EQ(membership(0).version(), steady + 1);

  // It comes back as a new incarnation: one more change.
  world.sim().restart(nodes[2]);
  world.run_for(3s);
  EXPECT_EQ(names(0), all);
  EXPECT_EQ(membership(0).version(), steady + 2);
  EXPECT_EQ(membership(0).members()[2].incarnation, 2U);
  EXPECT_GE(membership(0).stats().heartbeats_ok, 25U);
}

TEST_F(MembershipTest, ANodeCutOffFromTheStoreDropsItsView) {
  world.run_for(3s);
  ASSERT_TRUE(membership(0).has_view());
  const std::uint64_t before = membership(0).version();
  store.unreachable.insert("server-0");
  world.run_for(3s);
  EXPECT_TRUE(membership(0).has_view()) << "a view lasts its ttl";
  world.run_for(4s);
  EXPECT_FALSE(membership(0).has_view());
  EXPECT_TRUE(membership(0).members().empty());
  EXPECT_EQ(membership(0).owner_of("workflow-1"), "");
  EXPECT_EQ(membership(0).version(), before + 1);
  EXPECT_EQ(membership(0).stats().views_expired, 1U);
  EXPECT_EQ(names(1), (std::vector<std::string>{"server-1", "server-2"}));

  store.unreachable.clear();
  world.run_for(3s);
  EXPECT_TRUE(membership(0).has_view());
  EXPECT_EQ(names(0), (std::vector<std::string>{"server-0", "server-1", "server-2"}));
  EXPECT_EQ(membership(0).version(), before + 2);
}

// A restarted store has heard from nobody: until it has listened for a
// ttl, the view may miss members that are alive, and says so.
TEST_F(MembershipTest, AViewFromAStoreYoungerThanATtlIsIncomplete) {
  world.run_for(3s);
  EXPECT_TRUE(membership(0).has_view());
  EXPECT_FALSE(membership(0).complete()) << "the store has listened for 3 s of a 5 s ttl";
  world.run_for(3s);
  for (int i = 0; i < 3; i++) EXPECT_TRUE(membership(i).complete());

  // server-2 dies, then the store restarts, and server-1 is cut off from
  // it for 3 s: server-0 sees itself alone, in a view it knows is young.
  world.sim().crash(nodes[2]);
  store.restart(world.sim().now());
  store.unreachable.insert("server-1");
  world.run_for(2s);
  EXPECT_EQ(names(0), (std::vector<std::string>{"server-0"}));
  EXPECT_FALSE(membership(0).complete());
  store.unreachable.clear();
  world.run_for(2500ms);
  EXPECT_EQ(names(0), (std::vector<std::string>{"server-0", "server-1"}));
  EXPECT_FALSE(membership(0).complete()) << "4.5 s of listening is less than a ttl";
  world.run_for(1500ms);
  EXPECT_TRUE(membership(0).complete()) << "server-2 has been silent for a whole ttl: gone";
  EXPECT_TRUE(membership(1).complete());
  EXPECT_EQ(names(0), (std::vector<std::string>{"server-0", "server-1"}));

  // Cut off for a ttl, a node has no view, and no view is complete.
  store.unreachable.insert("server-0");
  world.run_for(6s);
  EXPECT_FALSE(membership(0).has_view());
  EXPECT_FALSE(membership(0).complete());
}

TEST_F(MembershipTest, WaitForChangeWakesOnAChangeOrAtItsDeadline) {
  world.run_for(3s);
  const sim::TimePoint crash_at = world.sim().now() + 10s;
  std::optional<bool> changed, unchanged;
  sim::TimePoint changed_at{}, unchanged_at{};
  sim::TimePoint deadline = world.sim().now() + 5s;
  world.sim().spawn(nodes[0], "quiet waiter", [&] {
    unchanged = membership(0).wait_for_change(deadline);
    unchanged_at = world.sim().now();
  });
  world.sim().spawn(nodes[1], "waiter", [&] {
    changed = membership(1).wait_for_change(world.sim().now() + 60s);
    changed_at = world.sim().now();
  });
  world.sim().schedule_at(crash_at, [&] { world.sim().crash(nodes[2]); });
  world.run_for(30s);
  ASSERT_TRUE(unchanged.has_value() && changed.has_value());
  EXPECT_FALSE(*unchanged);
  EXPECT_EQ(unchanged_at, deadline);
  EXPECT_TRUE(*changed);
  EXPECT_GE(changed_at, crash_at + 3s);
  EXPECT_LE(changed_at, crash_at + 7s);
}

}  // namespace
}  // namespace duro::engine
