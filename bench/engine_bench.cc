// The engine's cost per workflow, in the simulator.
//
//   BM_engine_workflow_roundtrip   one store, one server and a raw-command
//                                  worker, no faults: a client starts a
//                                  workflow of three sequential activities and
//                                  waits for its result. Time per workflow,
//                                  and simulated messages per workflow.
#include <benchmark/benchmark.h>

#include <map>
#include <memory>
#include <string>

#include "engine/server/server_node.h"
#include "engine/store/store_service.h"
#include "engine/testing/raw_worker.h"
#include "engine/testing/sequential_decider.h"
#include "engine/testing/test_client.h"
#include "sim/world.h"

namespace duro::engine {
namespace {

using namespace std::chrono_literals;

void BM_engine_workflow_roundtrip(benchmark::State& state) {
  sim::World world({.seed = 1});
  const sim::NodeId store = world.add_node("store", [](sim::Env& env) { return store::boot_store(env); });
  ServerOptions options;
  options.store_address = world.env(store).address();
  const sim::Address server = world.env(world.add_node("server", server_boot(options))).address();
  testing::RawWorkerOptions worker;
  worker.servers = {server};
  world.add_node("worker", [worker](sim::Env& env) -> std::unique_ptr<sim::Process> {
    return std::make_unique<testing::RawWorker>(
        env, worker, std::map<std::string, testing::Decider>{{"three_steps", testing::sequential_activities(3, "echo", 10s)}},
        std::map<std::string, testing::ActivityFn>{
            {"echo", [](const PollActivityTaskQueueReply&, sim::Env&) { return testing::ActivityOutcome{"ok", {}}; }}});
  });
  const sim::NodeId client_node =
      world.add_node("client", [](sim::Env&) -> std::unique_ptr<sim::Process> { return nullptr; });
  sim::Env& env = world.env(client_node);
  std::shared_ptr<testing::TestClient> client;
  env.spawn("client", [&] { client = std::make_shared<testing::TestClient>(env, std::vector<sim::Address>{server}, 7500); });
  world.run_for(5s);  // The server takes its shards.

  std::uint64_t workflows = 0;
  bool failed = false;
  const std::uint64_t messages_before = world.network().stats().delivered;
  for (auto _ : state) {
    env.spawn("workflow", [&] {
      StartWorkflowExecutionRequest start;
      start.request_id = "start-" + std::to_string(workflows);
      start.workflow_id = "wf-" + std::to_string(workflows);
      start.workflow_type = "three_steps";
      start.task_queue = worker.task_queue;
      sim::Result<StartWorkflowExecutionReply> started = client->start(start, env.sim().deadline_after(60s));
      sim::Result<GetWorkflowExecutionResultReply> result =
          started.ok() ? client->wait_result({start.workflow_id, started.value().run_id}, env.sim().deadline_after(60s))
                       : sim::Result<GetWorkflowExecutionResultReply>{started.error()};
      if (!result.ok() || result.value().status != WorkflowStatus::kCompleted) failed = true;
      workflows++;
      env.sim().stop();
    });
    const std::uint64_t before = workflows;
    world.run({.until = world.sim().now() + 10min});
    if (failed || workflows == before) {
      state.SkipWithError("a workflow did not complete");
      break;
    }
  }
  const double delivered = static_cast<double>(world.network().stats().delivered - messages_before);
  state.counters["messages_per_workflow"] = workflows > 0 ? delivered / static_cast<double>(workflows) : 0;
  state.counters["workflows_per_second"] = benchmark::Counter(static_cast<double>(workflows), benchmark::Counter::kIsRate);
  state.SetItemsProcessed(static_cast<std::int64_t>(workflows));
}
BENCHMARK(BM_engine_workflow_roundtrip)->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace duro::engine
