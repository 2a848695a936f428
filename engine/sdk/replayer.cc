#include "engine/sdk/replayer.h"

#include <fmt/format.h>

#include "engine/sdk/workflow_run.h"
#include "sim/simulator.h"

namespace duro::sdk {
namespace {

// One run at a time, each with at most a few coroutines.
constexpr std::size_t kReplayStacksMax = 1024;

}  // namespace

Replayer::Replayer(const Registry& registry)
    : registry_(registry), stacks_(sim::kDefaultStackSizeBytes, kReplayStacksMax) {}

ReplayResult Replayer::replay(std::span<const engine::HistoryEvent> history, std::string workflow_id,
                              std::string run_id) {
  ReplayResult result;
  result.events = history.size();
  const engine::WorkflowExecutionStarted* started =
      history.empty() ? nullptr : history.front().as<engine::WorkflowExecutionStarted>();
  if (started == nullptr) {
    result.failure = Failure{"BadHistory", "a history starts with WorkflowExecutionStarted", {}, true,
                             engine::TimeoutType::kNone, "replayer"};
    result.message = result.failure->message;
    return result;
  }
  const WorkflowDefinition* definition = registry_.find_workflow(started->workflow_type);
  if (definition == nullptr) {
    result.failure = Failure{"UnknownWorkflowType",
                             fmt::format("no workflow type \"{}\" is registered", started->workflow_type), {}, true,
                             engine::TimeoutType::kNone, "replayer"};
    result.message = result.failure->message;
    return result;
  }
  if (run_id.empty()) run_id = started->original_execution_run_id;
  WorkflowRun run(definition, engine::WorkflowExecution{std::move(workflow_id), std::move(run_id)},
                  started->workflow_type, stacks_, WorkflowRunOptions{.record_commands = true});
  std::optional<TaskAnswer> answer = run.apply(history);
  result.commands_by_task = run.take_commands_by_task();
  // Whatever the type's option says about live runs (fail the workflow),
  // offline replay reports the divergence.
  if (run.poisoned() && answer) {
    result.divergence = answer->divergence;
    result.failure = answer->failure;
    result.message = answer->failure.message;
    return result;
  }
  result.ok = true;
  result.message = "ok";
  return result;
}

}  // namespace duro::sdk
