// The engine end to end, without the SDK: a store, three servers, a raw
// worker and a client, in one simulated world.
#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "engine/history/history_validator.h"
#include "engine/server/server_node.h"
#include "engine/store/store_service.h"
#include "engine/testing/raw_worker.h"
#include "engine/testing/sequential_decider.h"
#include "engine/testing/test_client.h"
#include "sim/world.h"

namespace duro::engine {
namespace {

using namespace std::chrono_literals;
using testing::ActivityOutcome;
using testing::Decider;
using testing::RawWorker;
using testing::RawWorkerOptions;
using testing::TestClient;

struct Cluster {
  explicit Cluster(std::uint64_t seed) : world({.seed = seed}) {
    store = world.add_node("store", [](sim::Env& env) { return store::boot_store(env); });
    ServerOptions options;
    options.store_address = world.env(store).address();
    options.shard_count = 8;
    for (int i = 1; i <= 3; i++) {
      servers.push_back(world.add_node("server-" + std::to_string(i), server_boot(options)));
      addresses.push_back(world.env(servers.back()).address());
    }
    RawWorkerOptions worker_options;
    worker_options.servers = addresses;
    worker = world.add_node("worker", [worker_options](sim::Env& env) -> std::unique_ptr<sim::Process> {
      std::map<std::string, Decider> deciders{{"three_steps", testing::sequential_activities(3, "echo", 10s)}};
      std::map<std::string, testing::ActivityFn> activities{
          {"echo", [](const PollActivityTaskQueueReply& task, sim::Env&) { return ActivityOutcome{"<" + task.input + ">", {}}; }}};
      return std::make_unique<RawWorker>(env, worker_options, deciders, activities);
    });
    client = world.add_node("client", [](sim::Env&) -> std::unique_ptr<sim::Process> { return nullptr; });
  }

  sim::World world;
  sim::NodeId store;
  std::vector<sim::NodeId> servers;
  std::vector<sim::Address> addresses;
  sim::NodeId worker;
  sim::NodeId client;
};

TEST(EngineEndToEnd, ThreeActivityWorkflowsCompleteWithWellFormedHistories) {
  Cluster cluster(7);
  constexpr int kWorkflows = 20;
  int completed = 0;
  std::vector<std::string> problems;
  cluster.world.env(cluster.client).spawn("client", [&] {
    sim::Env& env = cluster.world.env(cluster.client);
    TestClient client(env, cluster.addresses, 7500);
    env.sleep_for(3s);  // Let the servers take their shards.
    for (int i = 0; i < kWorkflows; i++) {
      StartWorkflowExecutionRequest start;
      start.request_id = "start-" + std::to_string(i);
      start.workflow_id = "wf-" + std::to_string(i);
      start.workflow_type = "three_steps";
      start.task_queue = TaskQueue{"default", TaskQueueKind::kNormal};
      sim::Result<StartWorkflowExecutionReply> started = client.start(start, env.sim().deadline_after(60s));
      if (!started.ok()) {
        problems.push_back("start " + start.workflow_id + ": " + sim::to_string(started.error()));
        continue;
      }
      const WorkflowExecution execution{start.workflow_id, started.value().run_id};
      sim::Result<GetWorkflowExecutionResultReply> result = client.wait_result(execution, env.sim().deadline_after(120s));
      if (!result.ok()) {
        problems.push_back("result " + start.workflow_id + ": " + sim::to_string(result.error()));
        continue;
      }
      const auto* done = result.value().close_event->as<WorkflowExecutionCompleted>();
      if (done == nullptr || done->result != "<0><1><2>") {
        problems.push_back(start.workflow_id + " closed as " + std::string(workflow_status_name(result.value().status)));
        continue;
      }
      sim::Result<History> history = client.history(execution, env.sim().deadline_after(60s));
      if (!history.ok()) {
        problems.push_back("history " + start.workflow_id + ": " + sim::to_string(history.error()));
        continue;
      }
      for (const std::string& violation : validate_history(history.value())) {
        problems.push_back(start.workflow_id + ": " + violation);
      }
      completed++;
    }
  });
  cluster.world.run_for(std::chrono::minutes{30});
  for (const std::string& problem : problems) ADD_FAILURE() << problem;
  EXPECT_EQ(completed, kWorkflows);
}

}  // namespace
}  // namespace duro::engine
