// A world with one store node and one client node, for the store's tests.
//
//   StoreTestWorld w(seed, options);
//   w.on_client([](StoreClient& store) { ... store.write(request) ... });
//   w.crash_store(); w.restart_store(); w.wait_serving();
//   w.on_store_disk([](sim::Disk& disk) { ... });   // tamper, with the store down
//
// Everything runs in virtual time: on_client() spawns a fiber on the client
// node and runs the world until that fiber ends.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "engine/store/store_client.h"
#include "engine/store/store_service.h"
#include "sim/world.h"

namespace duro::engine::store::testing {

inline constexpr std::uint16_t kTestClientPort = 7200;

inline sim::WorldOptions quiet_world(std::uint64_t seed) {
  sim::WorldOptions options;
  options.seed = seed;
  options.network.spike_probability = 0;
  return options;
}

class StoreTestWorld {
 public:
  StoreTestWorld(std::uint64_t seed, StoreOptions options = {}, sim::WorldOptions world_options = {})
      : world_(with_seed(world_options, seed)), options_(std::move(options)) {
    store_ = world_.add_node("store-0", [this](sim::Env& env) -> std::unique_ptr<sim::Process> {
      boots_++;
      if (!store_enabled_) return std::make_unique<sim::Process>();
      return boot_store(env, options_);
    });
    client_ = world_.add_node("client-0", [this](sim::Env& env) -> std::unique_ptr<sim::Process> {
      auto process = std::make_unique<ClientProcess>();
      process->rpc = std::make_unique<sim::RpcClient>(env.network(), env.node(), kTestClientPort);
      process->store = std::make_unique<StoreClient>(*process->rpc, world_.network().endpoint(store_, kStorePort));
      return process;
    });
  }

  sim::World& world() noexcept { return world_; }
  sim::Simulator& sim() noexcept { return world_.sim(); }
  sim::Disk& store_disk() { return world_.disk(store_); }
  sim::NodeId store_node() const noexcept { return store_; }
  StoreOptions& options() noexcept { return options_; }
  int boots() const noexcept { return boots_; }

  // The store's process, or null if it is down (or disabled).
  StoreService* service() {
    if (!sim().is_up(store_)) return nullptr;
    return dynamic_cast<StoreService*>(sim().process(store_));
  }

  // Runs `fn(StoreClient&)` in a fiber on the client node; returns once it
  // ended (false if it did not within `limit` of virtual time).
  bool on_client(std::function<void(StoreClient&)> fn, sim::Duration limit = std::chrono::minutes{10}) {
    auto* process = dynamic_cast<ClientProcess*>(sim().process(client_));
    EXPECT_NE(process, nullptr);
    // Shared with the fiber: it may outlive this call if it overruns `limit`.
    auto done = std::make_shared<bool>(false);
    sim().spawn(client_, "test", [this, process, done, fn = std::move(fn)] {
      fn(*process->store);
      *done = true;
      sim().stop();
    });
    return run_until([&] { return *done; }, limit);
  }

  // Runs `fn(Disk&)` in a fiber on the store node with the store's own
  // process disabled (the node is crashed and rebooted empty first, then
  // crashed again after: the next restart_store() recovers from the disk).
  void on_store_disk(std::function<void(sim::Disk&)> fn) {
    if (sim().is_up(store_)) sim().crash(store_);
    store_enabled_ = false;
    sim().restart(store_);
    auto done = std::make_shared<bool>(false);
    sim().spawn(store_, "tamper", [this, done, fn = std::move(fn)] {
      fn(store_disk());
      *done = true;
      sim().stop();
    });
    EXPECT_TRUE(run_until([&] { return *done; }, std::chrono::minutes{1}));
    sim().crash(store_);
    store_enabled_ = true;
  }

  void crash_store() {
    if (sim().is_up(store_)) sim().crash(store_);
  }
  void restart_store() {
    if (!sim().is_up(store_)) sim().restart(store_);
  }

  // Runs until the store serves (true), refuses to start, or `limit` passes.
  bool wait_serving(sim::Duration limit = std::chrono::minutes{1}) {
    run_until([&] {
      StoreService* s = service();
      return s != nullptr && (s->status() == StoreStatus::kServing || s->status() == StoreStatus::kFailed);
    }, limit);
    return service() != nullptr && service()->status() == StoreStatus::kServing;
  }

  // Runs in small steps until `done()` or `limit` of virtual time.
  bool run_until(const std::function<bool()>& done, sim::Duration limit) {
    const sim::TimePoint deadline = sim().now() + limit;
    // Each pass runs at least one event or advances to the deadline.
    while (!done() && sim().now() < deadline) {
      const sim::RunResult result = world_.run({.until = std::min(deadline, sim().now() + kStep), .events_max = UINT64_MAX});
      if (result.reason == sim::StopReason::kDeadlock) {
        ADD_FAILURE() << result.deadlock_report;
        return false;
      }
      if (result.reason == sim::StopReason::kQuiescent && !done()) {
        // Nothing left to happen: jump ahead (a sleeping test fiber would have an event).
        return done();
      }
    }
    return done();
  }

 private:
  static constexpr sim::Duration kStep = std::chrono::milliseconds{50};

  struct ClientProcess final : sim::Process {
    std::unique_ptr<sim::RpcClient> rpc;
    std::unique_ptr<StoreClient> store;
  };

  static sim::WorldOptions with_seed(sim::WorldOptions options, std::uint64_t seed) {
    options.seed = seed;
    return options;
  }

  sim::World world_;
  StoreOptions options_;
  sim::NodeId store_ = sim::kNoNode;
  sim::NodeId client_ = sim::kNoNode;
  bool store_enabled_ = true;
  int boots_ = 0;
};

// Requests the tests use: shard 1 taken once, then one new run per write.
inline UpdateShardRequest take_shard_request(std::uint32_t shard, std::int64_t from, std::string request_id) {
  UpdateShardRequest request;
  request.request_id = std::move(request_id);
  request.expected_range_id = from;
  request.record.shard_id = shard;
  request.record.range_id = from + 1;
  request.record.owner = "client-0";
  return request;
}

// Run "wf-<i>" with one history batch of three events, its mutable state,
// its current record and one transfer task (id i): all in one atomic write.
inline WriteRequest create_run_request(int i, std::int64_t range_id = 1, std::size_t payload_bytes = 64) {
  WriteRequest request;
  request.request_id = "create-" + std::to_string(i);
  request.shard_id = 1;
  request.range_id = range_id;
  ExecutionWrite run;
  run.workflow_id = "wf-" + std::to_string(i);
  run.run_id = "run";
  run.append = HistoryBatch{1, 3, "events of " + std::to_string(i) + std::string(payload_bytes, '.')};
  run.mutable_state = "state of " + std::to_string(i);
  request.executions.push_back(run);
  request.currents.push_back(CurrentWrite{std::nullopt, CurrentRecord{run.workflow_id, "run", true, "", 0}});
  request.transfer_tasks.push_back(TransferTask{i + 1, "task of " + std::to_string(i)});
  return request;
}

// Whether run i is fully there (true), fully absent (false); fails the
// test on anything in between. From a client fiber.
inline std::optional<bool> run_visible(StoreClient& store, int i) {
  const std::string workflow = "wf-" + std::to_string(i);
  sim::Result<GetExecutionReply> run = store.get_execution(ExecutionKey{workflow, "run"});
  sim::Result<GetCurrentReply> current = store.get_current(workflow);
  sim::Result<ReadTransferTasksReply> task = store.read_transfer_tasks(ReadTransferTasksRequest{1, i, 1});
  sim::Result<ReadHistoryReply> history = store.read_history(ReadHistoryRequest{ExecutionKey{workflow, "run"}, 1, 10});
  if (!run.ok() || !current.ok() || !task.ok() || !history.ok()) {
    ADD_FAILURE() << "reads of run " << i << " failed";
    return std::nullopt;
  }
  const bool has_task = !task.value().tasks.empty() && task.value().tasks[0].task_id == i + 1;
  const bool whole = run.value().found && run.value().mutable_state == "state of " + std::to_string(i) &&
                     current.value().found && has_task && history.value().batches.size() == 1 &&
                     history.value().batches[0].events.starts_with("events of " + std::to_string(i));
  const bool none = !run.value().found && !current.value().found && !has_task && !history.value().found;
  if (!whole && !none) {
    ADD_FAILURE() << "run " << i << " is partly written: found=" << run.value().found
                  << " current=" << current.value().found << " task=" << has_task;
    return std::nullopt;
  }
  return whole;
}

}  // namespace duro::engine::store::testing
