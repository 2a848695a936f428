#include "engine/testing/sequential_decider.h"

#include <utility>

#include "sim/assert.h"

namespace duro::engine::testing {

Decider sequential_activities(int count, std::string activity_type, sim::Duration start_to_close,
                              std::optional<RetryPolicy> retry) {
  DURO_ASSERT(count > 0);
  return [count, activity_type = std::move(activity_type), start_to_close,
          retry = std::move(retry)](const std::vector<HistoryEvent>& history) {
    int scheduled = 0;
    int completed = 0;
    std::string results;
    for (const HistoryEvent& event : history) {
      if (event.is<ActivityTaskScheduled>()) scheduled++;
      if (const auto* done = event.as<ActivityTaskCompleted>()) {
        completed++;
        results += done->result;
      }
      if (event.is<ActivityTaskFailed>() || event.is<ActivityTaskTimedOut>()) {
        return std::vector<Command>{
            FailWorkflowExecution{Failure{"StepFailed", "a step failed", {}, false, TimeoutType::kNone, "workflow"}}};
      }
    }
    if (completed == count) return std::vector<Command>{CompleteWorkflowExecution{results}};
    if (scheduled > completed) return std::vector<Command>{};
    ScheduleActivityTask step;
    step.activity_id = "step-" + std::to_string(scheduled);
    step.activity_type = activity_type;
    step.input = std::to_string(scheduled);
    step.start_to_close_timeout = start_to_close;
    step.retry_policy = retry;
    return std::vector<Command>{step};
  };
}

}  // namespace duro::engine::testing
