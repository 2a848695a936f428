#include "engine/testing/sdk_cluster.h"

#include <utility>

#include "engine/server/server_node.h"
#include "engine/store/store_service.h"

namespace duro::engine::testing {

using namespace std::chrono_literals;

SdkCluster::SdkCluster(const sdk::Registry& registry, SdkClusterOptions options) : world({.seed = options.seed}) {
  store = world.add_node("store", [](sim::Env& env) { return store::boot_store(env); });
  ServerOptions server_options = options.server;
  server_options.store_address = world.env(store).address();
  server_options.shard_count = options.shard_count;
  for (int i = 1; i <= options.servers; i++) {
    servers.push_back(world.add_node("server-" + std::to_string(i), server_boot(server_options)));
    addresses.push_back(world.env(servers.back()).address());
  }
  worker::WorkerOptions worker_options = options.worker;
  worker_options.servers = addresses;
  for (int i = 1; i <= options.workers; i++) {
    workers.push_back(world.add_node(
        "worker-" + std::to_string(i),
        [&registry, worker_options, observer = options.observer](sim::Env& env) -> std::unique_ptr<sim::Process> {
          return std::make_unique<worker::Worker>(env, worker_options, registry, observer);
        }));
  }
  client = world.add_node("client", [](sim::Env&) -> std::unique_ptr<sim::Process> { return nullptr; });
}

void SdkCluster::on_client(std::function<void(sim::Env& env, TestClient& client)> body) {
  const std::uint16_t port = next_client_port_++;
  world.env(client).spawn("client", [this, port, body = std::move(body)] {
    sim::Env& env = world.env(client);
    TestClient test_client(env, addresses, port);
    env.sleep_for(3s);
    body(env, test_client);
  });
}

worker::Worker* SdkCluster::worker(std::size_t index) {
  if (index >= workers.size() || !world.sim().is_up(workers[index])) return nullptr;
  return dynamic_cast<worker::Worker*>(world.sim().process(workers[index]));
}

sim::Result<std::string> SdkCluster::start(TestClient& client, sim::Env& env, const std::string& workflow_id,
                                           const std::string& workflow_type, Payload input, sim::Duration wait) {
  StartWorkflowExecutionRequest request;
  request.request_id = "start/" + workflow_id;
  request.workflow_id = workflow_id;
  request.workflow_type = workflow_type;
  request.task_queue = TaskQueue{"default", TaskQueueKind::kNormal};
  request.input = std::move(input);
  sim::Result<StartWorkflowExecutionReply> reply = client.start(request, env.sim().deadline_after(wait));
  if (!reply.ok()) return reply.error();
  return reply.value().run_id;
}

}  // namespace duro::engine::testing
