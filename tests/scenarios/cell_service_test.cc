// CellService: what a cell promises the control plane — writes only where
// the namespace is active, replication that re-maps workflows to the
// cell's shards, drains that lapse, hand-overs the target completes by
// itself, forced promotion and demotion with the newer epoch winning.
#include "scenarios/fakes/cell_service.h"

#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <string>

#include "scenarios/fakes/service_call.h"
#include "sim/world.h"

// A namespace of its own: the scenario tests build as unity units.
namespace duro::scenarios::cell_service_test {
namespace {

using namespace std::chrono_literals;

class NoProcess final : public sim::Process {};

// Cells a (4 shards) and b (16 shards), peers of each other, and a caller;
// the namespace "ns" is active in a. `body` runs in a fiber of the caller.
struct TwoCells {
  CellService a{"cell-a", FailureModel{}, CellOptions{.shard_count = 4}};
  CellService b{"cell-b", FailureModel{}, CellOptions{.shard_count = 16}};

  void run(const std::function<void(sim::Env& env, sim::Address a_address, sim::Address b_address)>& body) {
    sim::World world({.seed = 11});
    const sim::NodeId a_node = world.add_node(a.name(), [this](sim::Env& env) { return a.boot(env); });
    const sim::NodeId b_node = world.add_node(b.name(), [this](sim::Env& env) { return b.boot(env); });
    const sim::NodeId caller = world.add_node("caller", [](sim::Env&) -> std::unique_ptr<sim::Process> {
      return std::make_unique<NoProcess>();
    });
    a.add_peer(b.name(), world.env(b_node).address());
    b.add_peer(a.name(), world.env(a_node).address());
    a.place("ns");
    bool done = false;
    world.env(caller).spawn("test", [&] {
      body(world.env(caller), world.env(a_node).address(), world.env(b_node).address());
      done = true;
      world.sim().stop();
    });
    world.run_for(24h);
    ASSERT_TRUE(done) << "the test body did not finish";
  }
};

CellWriteReply write(sim::Env& env, sim::Address cell, const std::string& workflow_id, const std::string& write_id) {
  auto reply = call_service<CellWriteReply>(env, cell, "write", CellWrite{"ns", workflow_id, write_id});
  EXPECT_TRUE(reply.ok());
  return reply.ok() ? reply.value() : CellWriteReply{};
}

template <typename Request>
sim::Result<CellReplicaStatus> call(sim::Env& env, sim::Address cell, const char* method, const Request& request) {
  return call_service<CellReplicaStatus>(env, cell, method, request);
}

TEST(CellService, AHandOverMovesEveryWorkflowIntoTheTargetsShardsAndRedirectsWriters) {
  TwoCells cells;
  cells.run([&](sim::Env& env, sim::Address a, sim::Address b) {
    for (int i = 0; i < 40; i++) write(env, a, "wf-" + std::to_string(i % 13), "w" + std::to_string(i));
    ASSERT_TRUE(call(env, b, "add", CellAdd{"ns", "cell-a"}).ok());
    // A passive replica takes no writes and points at its upstream.
    const CellWriteReply refused = write(env, b, "wf-1", "w-refused");
    EXPECT_FALSE(refused.accepted);
    EXPECT_EQ(refused.redirect, "cell-a");
    ASSERT_TRUE(call(env, a, "drain", CellDrain{"ns", 1min}).ok());
    EXPECT_FALSE(write(env, a, "wf-1", "w-draining").accepted);
    ASSERT_TRUE(call(env, a, "hand_over", CellHandOver{"ns", "cell-b", 2}).ok());
    // The same hand-over again (a retry) is success.
    EXPECT_TRUE(call(env, a, "hand_over", CellHandOver{"ns", "cell-b", 2}).ok());
    env.sleep_for(3s);  // b pulls the hand-over and takes over.
    const CellWriteReply moved = write(env, a, "wf-1", "w-late");
    EXPECT_FALSE(moved.accepted);
    EXPECT_EQ(moved.redirect, "cell-b");
    EXPECT_TRUE(write(env, b, "wf-1", "w-late").accepted);
  });
  const Replica* source = cells.a.replica("ns");
  const Replica* target = cells.b.replica("ns");
  ASSERT_NE(source, nullptr);
  ASSERT_NE(target, nullptr);
  EXPECT_EQ(source->role, ReplicaRole::kRetired);
  EXPECT_EQ(target->role, ReplicaRole::kActive);
  EXPECT_EQ(target->epoch, 2);
  EXPECT_EQ(target->version, source->version + 1);
  auto before = CellService::workflows_of(*source);
  auto after = CellService::workflows_of(*target);
  EXPECT_EQ(before.size(), 13u);
  after["wf-1"].pop_back();  // The write taken after the hand-over.
  EXPECT_EQ(before, after);
  for (std::uint32_t shard = 0; shard < target->shards.size(); shard++) {
    for (const auto& [workflow_id, writes] : target->shards[shard]) {
      EXPECT_EQ(CellService::shard_of(workflow_id, 16), shard) << workflow_id;
    }
  }
}

TEST(CellService, ADrainThatNobodyHandsOverLapsesAndThenRefusesTheHandOver) {
  TwoCells cells;
  cells.run([&](sim::Env& env, sim::Address a, sim::Address b) {
    ASSERT_TRUE(call(env, b, "add", CellAdd{"ns", "cell-a"}).ok());
    ASSERT_TRUE(call(env, a, "drain", CellDrain{"ns", 30s}).ok());
    EXPECT_FALSE(write(env, a, "wf", "w1").accepted);
    env.sleep_for(31s);
    EXPECT_TRUE(write(env, a, "wf", "w1").accepted);
    auto late = call(env, a, "hand_over", CellHandOver{"ns", "cell-b", 2});
    ASSERT_FALSE(late.ok());
    EXPECT_EQ(late.error().code, sim::ErrorCode::kInvalidArgument);
  });
  EXPECT_EQ(cells.a.replica("ns")->role, ReplicaRole::kActive);
  EXPECT_EQ(cells.b.replica("ns")->role, ReplicaRole::kPassive);
}

TEST(CellService, AResumedDrainTakesWritesAtOnceAndItsLeaseDoesNothingLater) {
  TwoCells cells;
  cells.run([&](sim::Env& env, sim::Address a, sim::Address) {
    ASSERT_TRUE(call(env, a, "drain", CellDrain{"ns", 30s}).ok());
    ASSERT_TRUE(call(env, a, "resume", CellNamespace{"ns"}).ok());
    EXPECT_TRUE(write(env, a, "wf", "w1").accepted);
    // A second drain, then the first lease's end: the second still holds.
    env.sleep_for(10s);
    ASSERT_TRUE(call(env, a, "drain", CellDrain{"ns", 1min}).ok());
    env.sleep_for(25s);
    EXPECT_FALSE(write(env, a, "wf", "w2").accepted);
  });
  EXPECT_EQ(cells.a.replica("ns")->role, ReplicaRole::kDraining);
}

TEST(CellService, APromotionNeedsANewerEpochAndAlsoRevivesARetiredReplica) {
  TwoCells cells;
  cells.run([&](sim::Env& env, sim::Address a, sim::Address b) {
    ASSERT_TRUE(call(env, b, "add", CellAdd{"ns", "cell-a"}).ok());
    EXPECT_FALSE(call(env, b, "promote", CellPromote{"ns", 0}).ok());
    ASSERT_TRUE(call(env, a, "drain", CellDrain{"ns", 1min}).ok());
    ASSERT_TRUE(call(env, a, "hand_over", CellHandOver{"ns", "cell-b", 2}).ok());
    env.sleep_for(3s);
    // a is retired at epoch 2; a forced failover back takes epoch 3.
    EXPECT_FALSE(call(env, a, "promote", CellPromote{"ns", 2}).ok());
    ASSERT_TRUE(call(env, a, "promote", CellPromote{"ns", 3}).ok());
    EXPECT_TRUE(write(env, a, "wf", "w1").accepted);
  });
  EXPECT_EQ(cells.a.replica("ns")->role, ReplicaRole::kActive);
  EXPECT_EQ(cells.a.replica("ns")->epoch, 3);
  EXPECT_EQ(cells.b.replica("ns")->role, ReplicaRole::kActive);  // Split brain until b is demoted.
}

TEST(CellService, ARepeatedWriteIdIsAppliedOnce) {
  TwoCells cells;
  cells.run([&](sim::Env& env, sim::Address a, sim::Address) {
    EXPECT_FALSE(write(env, a, "wf", "w1").duplicate);
    EXPECT_TRUE(write(env, a, "wf", "w1").duplicate);
  });
  EXPECT_EQ(cells.a.replica("ns")->version, 1);
}

TEST(CellService, AForcedPromotionSplitsTheBrainUntilTheOldActiveIsDemotedAndLosesItsOwnWrites) {
  TwoCells cells;
  cells.run([&](sim::Env& env, sim::Address a, sim::Address b) {
    write(env, a, "wf", "w1");
    ASSERT_TRUE(call(env, b, "add", CellAdd{"ns", "cell-a"}).ok());
    env.sleep_for(3s);
    ASSERT_TRUE(call(env, b, "promote", CellPromote{"ns", 2}).ok());
    // Split brain: both take writes.
    EXPECT_TRUE(write(env, a, "wf", "w-only-a").accepted);
    EXPECT_TRUE(write(env, b, "wf", "w-only-b").accepted);
    // An older epoch cannot demote; the newer one can, and wins.
    EXPECT_FALSE(call(env, a, "demote", CellDemote{"ns", "cell-b", 1}).ok());
    ASSERT_TRUE(call(env, a, "demote", CellDemote{"ns", "cell-b", 2}).ok());
    env.sleep_for(3s);
  });
  const Replica* a = cells.a.replica("ns");
  const Replica* b = cells.b.replica("ns");
  EXPECT_EQ(a->role, ReplicaRole::kPassive);
  EXPECT_EQ(b->role, ReplicaRole::kActive);
  EXPECT_EQ(CellService::workflows_of(*a), CellService::workflows_of(*b));
  EXPECT_FALSE(a->write_ids.contains("w-only-a"));
  EXPECT_TRUE(a->write_ids.contains("w-only-b"));
}

}  // namespace
}  // namespace duro::scenarios::cell_service_test
