// SdkCluster: a simulated cluster running SDK workers, for tests and
// benchmarks — a store, servers, workers serving one Registry, and a client
// node, in one sim::World.
//
//   sdk::Registry registry;  registry.workflow("greet", greet).activity(...);
//   testing::SdkCluster cluster(registry, {.seed = 7});
//   cluster.on_client([&](sim::Env& env, testing::TestClient& client) { ... });
//   cluster.world.run_for(std::chrono::hours{1});
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "engine/sdk/registry.h"
#include "engine/server/server_options.h"
#include "engine/testing/test_client.h"
#include "engine/worker/worker.h"
#include "sim/world.h"

namespace duro::engine::testing {

struct SdkClusterOptions {
  std::uint64_t seed = 1;
  int servers = 3;
  int workers = 1;
  std::uint32_t shard_count = 8;
  ServerOptions server{};  // `store_address` and `shard_count` are filled in.
  worker::WorkerOptions worker{};  // `servers` is filled in.
  worker::TaskObserver observer{};  // Given to every worker.
};

class SdkCluster {
 public:
  SdkCluster(const sdk::Registry& registry, SdkClusterOptions options);

  // Runs `body` in a fiber on the client node, with a client of the
  // frontend; after the servers had 3 s to take their shards.
  void on_client(std::function<void(sim::Env& env, TestClient& client)> body);
  // The worker process on worker node `index`, or nullptr while it is down.
  worker::Worker* worker(std::size_t index);

  // Starts `workflow_type` with `input` and returns its run id, or an error.
  static sim::Result<std::string> start(TestClient& client, sim::Env& env, const std::string& workflow_id,
                                        const std::string& workflow_type, Payload input,
                                        sim::Duration wait = std::chrono::minutes{1});

  sim::World world;
  sim::NodeId store;
  std::vector<sim::NodeId> servers;
  std::vector<sim::Address> addresses;
  std::vector<sim::NodeId> workers;
  sim::NodeId client;

 private:
  std::uint16_t next_client_port_ = 7500;
};

}  // namespace duro::engine::testing
