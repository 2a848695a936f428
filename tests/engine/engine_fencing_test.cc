// Shard fencing and leases. An owner that is cut off keeps believing in its
// lease (its clock is set back, so the lease looks fresh), while another
// server takes the shard. Everything the old owner sent meanwhile reaches
// the store after the takeover, and is refused; no history forks, and every
// workflow still completes. And a shard taken behind its owner's back fails
// the owner's joint renewal (RenewShards): it loses that shard alone. A
// store restart, which forgets who is alive, moves no shard.
#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "engine/history/history_validator.h"
#include "engine/server/server_node.h"
#include "engine/store/store_client.h"
#include "engine/store/store_service.h"
#include "engine/testing/raw_worker.h"
#include "engine/testing/sequential_decider.h"
#include "engine/testing/test_client.h"
#include "sim/world.h"

namespace duro::engine {
namespace {

using namespace std::chrono_literals;

TEST(EngineFencing, ACutOffOwnerWithASkewedClockCannotWriteAfterTheShardMoves) {
  sim::World world({.seed = 11});
  const sim::NodeId store_node = world.add_node("store", [](sim::Env& env) { return store::boot_store(env); });
  ServerOptions options;
  options.store_address = world.env(store_node).address();
  options.shard_count = 1;  // One shard: every workflow on the same owner.
  std::vector<sim::NodeId> servers;
  std::vector<sim::Address> addresses;
  for (int i = 1; i <= 2; i++) {
    servers.push_back(world.add_node("server-" + std::to_string(i), server_boot(options)));
    addresses.push_back(world.env(servers.back()).address());
  }
  // Ten activities in sequence: a steady stream of writes to the shard.
  testing::RawWorkerOptions worker;
  worker.servers = addresses;
  worker.activity_pollers = 8;
  world.add_node("worker", [worker](sim::Env& env) -> std::unique_ptr<sim::Process> {
    return std::make_unique<testing::RawWorker>(
        env, worker, std::map<std::string, testing::Decider>{{"ten_steps", testing::sequential_activities(10, "slow", 30s)}},
        std::map<std::string, testing::ActivityFn>{{"slow", [](const PollActivityTaskQueueReply&, sim::Env& env) {
                                                      env.sleep_for(500ms);
                                                      return testing::ActivityOutcome{"ok", {}};
                                                    }}});
  });
  const sim::NodeId client_node =
      world.add_node("client", [](sim::Env&) -> std::unique_ptr<sim::Process> { return nullptr; });
  auto server_process = [&](sim::NodeId node) { return dynamic_cast<ServerNode*>(world.sim().process(node)); };
  auto store_process = [&] { return dynamic_cast<store::StoreService*>(world.sim().process(store_node)); };

  // Let a server take the shard, then start a workload that keeps it busy.
  world.run_for(5s);
  sim::NodeId owner = sim::kNoNode;
  for (sim::NodeId server : servers) {
    if (server_process(server)->shards().owned() == 1) owner = server;
  }
  ASSERT_NE(owner, sim::kNoNode) << "no server took the shard";
  const sim::NodeId other = owner == servers[0] ? servers[1] : servers[0];

  constexpr int kWorkflows = 8;
  int completed = 0;
  std::vector<std::string> problems;
  sim::Env& env = world.env(client_node);
  auto client = std::make_shared<testing::TestClient>(env, addresses, 7500);
  for (int i = 0; i < kWorkflows; i++) {
    env.spawn("workload", [&, i, client] {
      StartWorkflowExecutionRequest start;
      start.request_id = "start-" + std::to_string(i);
      start.workflow_id = "wf-" + std::to_string(i);
      start.workflow_type = "ten_steps";
      start.task_queue = worker.task_queue;
      sim::Result<StartWorkflowExecutionReply> started = client->start(start, env.sim().deadline_after(5min));
      if (!started.ok()) {
        problems.push_back(start.workflow_id + ": start: " + sim::to_string(started.error()));
        return;
      }
      const WorkflowExecution execution{start.workflow_id, started.value().run_id};
      sim::Result<GetWorkflowExecutionResultReply> result = client->wait_result(execution, env.sim().deadline_after(30min));
      if (!result.ok() || result.value().status != WorkflowStatus::kCompleted) {
        problems.push_back(start.workflow_id + ": did not complete");
        return;
      }
      sim::Result<History> history = client->history(execution, env.sim().deadline_after(5min));
      if (!history.ok()) {
        problems.push_back(start.workflow_id + ": history: " + sim::to_string(history.error()));
        return;
      }
      for (const std::string& violation : validate_history(history.value())) problems.push_back(violation);
      completed++;
    });
  }
  world.run_for(3s);  // Writes are flowing through the owner.
  const std::uint64_t refused_before = store_process()->stats().write_failures;

  // Cut the owner off: its traffic is held (not dropped) for 30 s, and its
  // clock goes back 20 s, so by its own reckoning its lease is still good
  // long after the other server has taken the shard.
  world.clock(owner).jump(-20s);
  world.network().clog(owner, world.sim().now() + 30s);
  world.run_for(30s);
  EXPECT_EQ(server_process(other)->shards().owned(), 1u) << "the other server did not take the shard";
  EXPECT_EQ(server_process(owner)->shards().stats().acquired, 1u) << "a cut-off server cannot take a shard";
  // Its writes timed out (outcome unknown), so it stopped serving the shard
  // rather than trust a lease its skewed clock still calls fresh.
  EXPECT_EQ(server_process(owner)->shards().owned(), 0u) << "the cut-off owner still serves the shard";
  world.run_for(30min);

  for (const std::string& problem : problems) ADD_FAILURE() << problem;
  EXPECT_EQ(completed, kWorkflows);
  // The old owner's held writes (and its shard renewals) reached the store
  // after the takeover, and were refused.
  EXPECT_GT(store_process()->stats().write_failures, refused_before);
}

// A store and `server_count` servers sharing `shard_count` shards (and no
// workers: these tests watch the shards themselves).
struct ShardCluster {
  ShardCluster(std::uint64_t seed, std::uint32_t shard_count, int server_count) : world({.seed = seed}) {
    store_node = world.add_node("store", [](sim::Env& env) { return store::boot_store(env); });
    options.store_address = world.env(store_node).address();
    options.shard_count = shard_count;
    for (int i = 1; i <= server_count; i++) {
      servers.push_back(world.add_node("server-" + std::to_string(i), server_boot(options)));
    }
  }
  ShardController& controller(sim::NodeId node) {
    return dynamic_cast<ServerNode*>(world.sim().process(node))->shards();
  }

  sim::World world;
  sim::NodeId store_node = sim::kNoNode;
  ServerOptions options;
  std::vector<sim::NodeId> servers;
};

// A node that writes to the store directly, behind the servers' backs.
struct StoreThief : sim::Process {
  std::unique_ptr<sim::RpcClient> rpc;
  std::unique_ptr<store::StoreClient> store;
};

TEST(EngineFencing, AShardTakenBehindItsOwnersBackIsLostAloneAtTheNextJointRenewal) {
  ShardCluster cluster(12, 6, 2);
  sim::World& world = cluster.world;
  const sim::NodeId store_node = cluster.store_node;
  const ServerOptions& options = cluster.options;
  const std::vector<sim::NodeId>& servers = cluster.servers;
  const sim::NodeId thief_node = world.add_node("thief", [&](sim::Env& env) -> std::unique_ptr<sim::Process> {
    auto process = std::make_unique<StoreThief>();
    process->rpc = std::make_unique<sim::RpcClient>(env.network(), env.node(), 7600);
    process->store = std::make_unique<store::StoreClient>(*process->rpc,
                                                          env.network().endpoint(store_node, store::kStorePort));
    return process;
  });
  auto controller = [&](sim::NodeId node) -> ShardController& { return cluster.controller(node); };
  world.run_for(10s);
  // The server holding more shards; each of its shards' range now.
  const sim::NodeId owner = controller(servers[0]).owned() >= controller(servers[1]).owned() ? servers[0] : servers[1];
  std::map<std::uint32_t, std::int64_t> ranges;
  for (std::uint32_t id = 0; id < options.shard_count; id++) {
    if (const auto shard = controller(owner).shard(id)) ranges[id] = shard->range_id();
  }
  ASSERT_GE(ranges.size(), 2U) << "the owner must renew several shards at once";
  const std::uint32_t stolen = ranges.begin()->first;
  const ShardControllerStats before = controller(owner).stats();
  ASSERT_EQ(before.lost, 0U);

  // Take one of them at the store: the next joint renewal must fail, and
  // only that shard be lost.
  bool taken = false;
  world.sim().spawn(thief_node, "steal", [&] {
    auto* thief = dynamic_cast<StoreThief*>(world.sim().process(thief_node));
    store::UpdateShardRequest take{"steal-1", ranges.at(stolen),
                                   store::ShardRecord{stolen, ranges.at(stolen) + 1, "thief", 0, ""}};
    sim::Result<store::UpdateShardReply> reply = thief->store->update_shard(take, 2s);
    taken = reply.ok() && reply.value().status == store::WriteStatus::kOk;
  });
  world.run_for(options.renew_interval + 1s);
  ASSERT_TRUE(taken);
  const ShardControllerStats after = controller(owner).stats();
  EXPECT_EQ(after.lost, 1U) << "exactly the stolen shard is lost";
  EXPECT_GE(after.renewals, before.renewals + ranges.size() - 1) << "the others were renewed one by one";
  for (const auto& [id, range] : ranges) {
    if (id == stolen) continue;
    const auto shard = controller(owner).shard(id);
    ASSERT_NE(shard, nullptr) << "shard " << id << " was dropped with the stolen one";
    EXPECT_EQ(shard->range_id(), range) << "shard " << id << " was kept, not taken again";
  }
  // The thief is no member: the shard's rightful owner takes it back.
  world.run_for(10s);
  const auto back = controller(owner).shard(stolen);
  ASSERT_NE(back, nullptr);
  EXPECT_EQ(back->range_id(), ranges.at(stolen) + 2);
}

// The store keeps membership in memory only. After it restarts, the first
// server to reach it sees itself alone; the shards of the others must stay
// where they are (their owners are unknown, not gone), and no shard moves.
TEST(EngineFencing, AStoreRestartMovesNoShard) {
  ShardCluster cluster(13, 12, 3);
  sim::World& world = cluster.world;
  const sim::NodeId store_node = cluster.store_node;
  const ServerOptions& options = cluster.options;
  const std::vector<sim::NodeId>& servers = cluster.servers;
  auto controller = [&](sim::NodeId node) -> ShardController& { return cluster.controller(node); };
  auto held = [&] {
    std::map<std::uint32_t, std::pair<sim::NodeId, std::int64_t>> out;  // Shard: owner, range id.
    for (const sim::NodeId server : servers) {
      for (std::uint32_t id = 0; id < options.shard_count; id++) {
        if (const auto shard = controller(server).shard(id)) out[id] = {server, shard->range_id()};
      }
    }
    return out;
  };
  world.run_for(15s);
  const auto before = held();
  ASSERT_EQ(before.size(), options.shard_count);
  for (const sim::NodeId server : servers) ASSERT_GT(controller(server).owned(), 0U);

  // The store restarts; servers 2 and 3 reach it only 3 s later, so
  // server 1 heartbeats a table holding nobody else.
  world.sim().crash(store_node);
  world.run_for(500ms);
  world.sim().restart(store_node);
  world.network().clog(servers[1], world.sim().now() + 3s);
  world.network().clog(servers[2], world.sim().now() + 3s);
  world.run_for(30s);
  EXPECT_EQ(held(), before) << "a shard moved (or was taken again) across the store's restart";
  for (const sim::NodeId server : servers) EXPECT_EQ(controller(server).stats().lost, 0U);
}

// The store's clock goes back an hour as it restarts, and a server is
// dead: how long the store has listened is monotonic time, so the view is
// complete a ttl later and the dead server's shards are taken then, not an
// hour later.
TEST(EngineFencing, AStoreClockJumpDoesNotHoldADeadServersShards) {
  ShardCluster cluster(14, 12, 3);
  sim::World& world = cluster.world;
  const sim::NodeId store_node = cluster.store_node;
  const std::vector<sim::NodeId>& servers = cluster.servers;
  auto owned = [&](sim::NodeId node) { return cluster.controller(node).owned(); };
  world.run_for(15s);
  ASSERT_GT(owned(servers[2]), 0U);

  world.sim().crash(servers[2]);
  world.sim().crash(store_node);
  world.run_for(500ms);
  world.sim().restart(store_node);
  world.clock(store_node).jump(-1h);
  world.run_for(30s);
  EXPECT_EQ(owned(servers[0]) + owned(servers[1]), cluster.options.shard_count)
      << "the dead server's shards were not taken";
}

}  // namespace
}  // namespace duro::engine
