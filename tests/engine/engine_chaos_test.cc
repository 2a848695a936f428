// The engine under the nemesis, without the SDK: a store, three servers and
// two raw workers, while the chaos profile crashes and partitions them, fails
// the store's disk and jumps clocks. Checks, with ground truth held outside
// the system: every start the client saw acknowledged closes, with the
// expected outcome, within a bound after the quiet phase begins; every
// history is well-formed (engine/history/history_validator.h).
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
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
#include "sim/nemesis.h"
#include "sim/world.h"

namespace duro::engine {
namespace {

using namespace std::chrono_literals;
using testing::ActivityOutcome;
using testing::Decider;
using testing::RawWorker;
using testing::RawWorkerOptions;
using testing::TestClient;

const TaskQueue kQueue{"default", TaskQueueKind::kNormal};

Failure workflow_failure(std::string message) {
  return Failure{"Unexpected", std::move(message), {}, true, TimeoutType::kNone, "workflow"};
}

// A durable timer, then a signal: completes with the signal's input.
std::vector<Command> timer_then_signal(const std::vector<HistoryEvent>& history) {
  bool timer_started = false;
  bool fired = false;
  std::optional<std::string> go;
  for (const HistoryEvent& event : history) {
    if (event.is<TimerStarted>()) timer_started = true;
    if (event.is<TimerFired>()) fired = true;
    if (const auto* signal = event.as<WorkflowExecutionSignaled>(); signal && signal->signal_name == "go" && !go) {
      go = signal->input;
    }
  }
  if (!timer_started) return {StartTimer{"nap", 30s}};
  if (fired && go) return {CompleteWorkflowExecution{"go:" + *go}};
  return {};
}

// Starts a three_steps child and completes with its result.
std::vector<Command> parent(const std::vector<HistoryEvent>& history) {
  const auto* started = history.front().as<WorkflowExecutionStarted>();
  bool initiated = false;
  for (const HistoryEvent& event : history) {
    if (event.is<StartChildWorkflowExecutionInitiated>()) initiated = true;
    if (const auto* done = event.as<ChildWorkflowExecutionCompleted>()) {
      return {CompleteWorkflowExecution{"child:" + done->result}};
    }
    if (event.is<StartChildWorkflowExecutionFailed>() || event.is<ChildWorkflowExecutionFailed>() ||
        event.is<ChildWorkflowExecutionTimedOut>() || event.is<ChildWorkflowExecutionTerminated>() ||
        event.is<ChildWorkflowExecutionCanceled>()) {
      return {FailWorkflowExecution{workflow_failure("the child did not complete")}};
    }
  }
  if (initiated) return {};
  StartChildWorkflowExecution child;
  child.workflow_id = started->input + "-child";  // The input is the parent's workflow id.
  child.workflow_type = "three_steps";
  return {child};
}

// Continues as new `input` times, then completes.
std::vector<Command> countdown(const std::vector<HistoryEvent>& history) {
  const auto* started = history.front().as<WorkflowExecutionStarted>();
  const int left = std::atoi(started->input.c_str());
  if (left <= 0) return {CompleteWorkflowExecution{"done"}};
  ContinueAsNewWorkflowExecution next;
  next.input = std::to_string(left - 1);
  return {next};
}

std::map<std::string, Decider> deciders() {
  // Three activities in sequence (which fail now and then, and are
  // retried), then complete with their results joined.
  RetryPolicy retry;
  retry.maximum_interval = 10s;
  return {{"three_steps", testing::sequential_activities(3, "flaky_echo", 10s, retry)},
          {"timer_then_signal", timer_then_signal}, {"parent", parent},
          {"countdown", countdown}};
}

std::map<std::string, testing::ActivityFn> activities() {
  return {{"flaky_echo", [](const PollActivityTaskQueueReply& task, sim::Env& env) {
             if (env.random().chance(1, 5)) {
               return ActivityOutcome{{}, Failure{"Flaky", "try again", {}, false, TimeoutType::kNone, "activity"}};
             }
             return ActivityOutcome{"<" + task.input + ">", {}};
           }}};
}

struct Expected {
  std::string workflow_type;
  std::string input;
  std::string result;
};

Expected expected_for(int i, const std::string& workflow_id) {
  switch (i % 4) {
    case 0: return {"three_steps", "", "<0><1><2>"};
    case 1: return {"timer_then_signal", "", "go:" + workflow_id};
    case 2: return {"parent", workflow_id, "child:<0><1><2>"};
    default: return {"countdown", "3", "done"};
  }
}

// "1 WorkflowExecutionStarted, 2 WorkflowTaskScheduled, ...": for failure reports.
std::string summary(const History& history) {
  std::string text;
  for (const HistoryEvent& event : history.events) {
    if (!text.empty()) text += ", ";
    text += std::to_string(event.event_id) + " " + std::string(event_type_name(event.type()));
  }
  return text;
}

struct SeedOutcome {
  int crashes = 0;     // Applied during the run.
  int partitions = 0;
  int acknowledged = 0;
  int completed = 0;
  std::vector<std::string> problems;
};

// One seed: a cluster, a fault plan, a workload, and the checks.
SeedOutcome run_seed(std::uint64_t seed, const std::string& profile_name, int workflows) {
  constexpr sim::Duration kChaos = 10min;
  constexpr sim::Duration kLivenessBound = 15min;  // After the quiet phase begins.
  sim::World world({.seed = seed});
  const sim::NodeId store = world.add_node("store", [](sim::Env& env) { return store::boot_store(env); });
  ServerOptions options;
  options.store_address = world.env(store).address();
  options.shard_count = 8;
  std::vector<sim::Address> servers;
  std::vector<std::string> crashable{"store"};
  for (int i = 1; i <= 3; i++) {
    const std::string name = "server-" + std::to_string(i);
    servers.push_back(world.env(world.add_node(name, server_boot(options))).address());
    crashable.push_back(name);
  }
  RawWorkerOptions worker_options;
  worker_options.servers = servers;
  worker_options.task_queue = kQueue;
  for (int i = 1; i <= 2; i++) {
    worker_options.port = static_cast<std::uint16_t>(7400 + i);
    world.add_node("worker-" + std::to_string(i), [worker_options](sim::Env& env) -> std::unique_ptr<sim::Process> {
      return std::make_unique<RawWorker>(env, worker_options, deciders(), activities());
    });
  }
  crashable.push_back("worker-1");
  const sim::NodeId client_node =
      world.add_node("client", [](sim::Env&) -> std::unique_ptr<sim::Process> { return nullptr; });

  sim::Result<sim::FaultProfile> profile = sim::fault_profile(profile_name);
  DURO_ASSERT(profile.ok());
  // A corrupted store refuses to serve (by design: it never serves wrong
  // data), which no workflow can outlive; corruption has its own tests.
  profile.value().disk_corruption.enabled = false;
  const sim::FaultPlan plan =
      sim::draw_fault_plan(seed, profile.value(), sim::FaultTopology{crashable, {"store"}, {}, kChaos});
  DURO_ASSERT(world.apply(plan).ok());

  SeedOutcome outcome;
  sim::Env& env = world.env(client_node);
  auto client = std::make_shared<TestClient>(env, servers, 7500);
  const sim::TimePoint quiet_at = env.sim().now() + kChaos;
  const sim::TimePoint live_by = quiet_at + kLivenessBound;
  for (int i = 0; i < workflows; i++) {
    env.spawn("workload-" + std::to_string(i), [&, i, client] {
      const std::string workflow_id = "wf-" + std::to_string(seed) + "-" + std::to_string(i);
      const Expected expected = expected_for(i, workflow_id);
      env.sleep_for(sim::Duration{static_cast<std::int64_t>(env.random().uniform(
          static_cast<std::uint64_t>(std::chrono::nanoseconds(kChaos / 2).count())))});
      StartWorkflowExecutionRequest start;
      start.request_id = "start/" + workflow_id;
      start.workflow_id = workflow_id;
      start.workflow_type = expected.workflow_type;
      start.task_queue = kQueue;
      start.input = expected.input;
      // A start not acknowledged by the quiet phase is not owed a result.
      sim::Result<StartWorkflowExecutionReply> started = client->start(start, quiet_at);
      if (!started.ok()) return;
      outcome.acknowledged++;
      const WorkflowExecution execution{workflow_id, started.value().run_id};
      if (expected.workflow_type == "timer_then_signal") {
        SignalWorkflowExecutionRequest signal{"signal/" + workflow_id, {workflow_id, {}}, "go", workflow_id, "client"};
        sim::Result<Ack> signalled = client->signal(signal, live_by);
        if (!signalled.ok()) {
          outcome.problems.push_back(workflow_id + ": signal never acknowledged: " + sim::to_string(signalled.error()));
          return;
        }
      }
      sim::Result<GetWorkflowExecutionResultReply> result = client->wait_result(execution, live_by);
      if (!result.ok()) {
        std::string events;
        if (sim::Result<History> history = client->history({workflow_id, {}}, live_by + 10min); history.ok()) {
          events = summary(history.value());
        }
        if (expected.workflow_type == "parent") {
          if (sim::Result<History> child = client->history({workflow_id + "-child", {}}, live_by + 10min); child.ok()) {
            events += "; the child's history: " + summary(child.value());
          }
        }
        outcome.problems.push_back(workflow_id + " (" + expected.workflow_type + "): not closed within " +
                                   sim::format_duration(kLivenessBound) + " of the quiet phase: " +
                                   sim::to_string(result.error()) + "; history: " + events);
        return;
      }
      const auto* completed =
          result.value().close_event ? result.value().close_event->as<WorkflowExecutionCompleted>() : nullptr;
      if (completed == nullptr || completed->result != expected.result) {
        outcome.problems.push_back(workflow_id + " (" + expected.workflow_type + ") closed as " +
                                   workflow_status_name(result.value().status) +
                                   (completed ? " with " + completed->result : std::string{}));
        return;
      }
      // The histories of the first run and of the run that closed.
      for (const std::string& run : {execution.run_id, result.value().run_id}) {
        sim::Result<History> history = client->history({workflow_id, run}, live_by + 10min);
        if (!history.ok()) {
          outcome.problems.push_back(workflow_id + ": history unreadable: " + sim::to_string(history.error()));
          return;
        }
        for (const std::string& violation : validate_history(history.value())) {
          outcome.problems.push_back(workflow_id + " run " + run + ": " + violation);
        }
      }
      outcome.completed++;
    });
  }
  world.run({.until = live_by + 15min});
  for (const sim::AppliedFault& fault : world.fault_log()) {
    if (fault.outcome != "applied") continue;
    if (fault.action.kind == sim::FaultKind::kCrash) outcome.crashes++;
    if (fault.action.kind == sim::FaultKind::kPartition) outcome.partitions++;
  }
  return outcome;
}

TEST(EngineChaos, EveryAcknowledgedStartClosesCorrectlyWithoutFaults) {
  const SeedOutcome outcome = run_seed(1, "none", 24);
  for (const std::string& problem : outcome.problems) ADD_FAILURE() << problem;
  EXPECT_EQ(outcome.acknowledged, 24);
  EXPECT_EQ(outcome.completed, outcome.acknowledged);
}

// DURO_ENGINE_SEEDS (default 20) seeds of the chaos profile, from
// DURO_ENGINE_SEED_BASE: CI runs many more in parallel slices.
TEST(EngineChaos, EveryAcknowledgedStartClosesCorrectlyUnderChaos) {
  const char* seeds_env = std::getenv("DURO_ENGINE_SEEDS");
  const char* base_env = std::getenv("DURO_ENGINE_SEED_BASE");
  const std::uint64_t seeds = seeds_env ? std::strtoull(seeds_env, nullptr, 10) : 20;
  const std::uint64_t base = base_env ? std::strtoull(base_env, nullptr, 10) : 1000;
  int acknowledged = 0;
  int crashes = 0;
  int partitions = 0;
  for (std::uint64_t seed = base; seed < base + seeds; seed++) {
    const SeedOutcome outcome = run_seed(seed, "chaos", 12);
    for (const std::string& problem : outcome.problems) ADD_FAILURE() << "seed " << seed << ": " << problem;
    EXPECT_EQ(outcome.completed, outcome.acknowledged) << "seed " << seed;
    acknowledged += outcome.acknowledged;
    crashes += outcome.crashes;
    partitions += outcome.partitions;
  }
  // The run was not vacuous: work was acknowledged, and the nemesis hit it.
  EXPECT_GT(acknowledged, 0);
  EXPECT_GT(crashes, 0);
  EXPECT_GT(partitions, 0);
  std::printf("%llu seeds: %d starts acknowledged and checked, %d crashes, %d partitions\n",
              static_cast<unsigned long long>(seeds), acknowledged, crashes, partitions);
}

}  // namespace
}  // namespace duro::engine
