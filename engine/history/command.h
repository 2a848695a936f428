// Commands: what workflow code asks the server to do, one workflow task's
// worth at a time.
//
// A worker runs workflow code until it blocks, then completes the workflow
// task with the commands the code produced, in order. The server turns each
// into its command event (ScheduleActivityTask -> ActivityTaskScheduled, ...)
// or refuses the task (WorkflowTaskFailed, kBadCommandAttributes). The
// names and meaning are Temporal's (../shared/TEMPORAL_MODEL.md).
//
// As with events, the variant's alternative is the command type, and the
// encoding is a contract: append only.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "engine/history/event.h"

namespace duro::engine {

struct ScheduleActivityTask {
  std::string activity_id;  // Unique among the run's pending activities.
  std::string activity_type;
  TaskQueue task_queue;     // Empty name: the workflow's own task queue.
  Payload input;
  sim::Duration schedule_to_close_timeout{0};
  sim::Duration schedule_to_start_timeout{0};
  sim::Duration start_to_close_timeout{0};
  sim::Duration heartbeat_timeout{0};
  std::optional<RetryPolicy> retry_policy;  // None: the server's defaults.

  bool operator==(const ScheduleActivityTask&) const = default;
};
DURO_CODEC_FIELDS(ScheduleActivityTask, activity_id, activity_type, task_queue, input, schedule_to_close_timeout,
                  schedule_to_start_timeout, start_to_close_timeout, heartbeat_timeout, retry_policy);

struct RequestCancelActivityTask {
  EventId scheduled_event_id = 0;

  bool operator==(const RequestCancelActivityTask&) const = default;
};
DURO_CODEC_FIELDS(RequestCancelActivityTask, scheduled_event_id);

struct StartTimer {
  std::string timer_id;  // Unique among the run's pending timers.
  sim::Duration start_to_fire_timeout{0};

  bool operator==(const StartTimer&) const = default;
};
DURO_CODEC_FIELDS(StartTimer, timer_id, start_to_fire_timeout);

struct CancelTimer {
  std::string timer_id;

  bool operator==(const CancelTimer&) const = default;
};
DURO_CODEC_FIELDS(CancelTimer, timer_id);

struct RecordMarker {
  std::string marker_name;
  std::map<std::string, Payload> details;
  std::optional<Failure> failure;

  bool operator==(const RecordMarker&) const = default;
};
DURO_CODEC_FIELDS(RecordMarker, marker_name, details, failure);

struct StartChildWorkflowExecution {
  std::string workflow_id;
  std::string workflow_type;
  TaskQueue task_queue;  // Empty name: the parent's task queue.
  Payload input;
  sim::Duration workflow_execution_timeout{0};
  sim::Duration workflow_run_timeout{0};
  sim::Duration workflow_task_timeout{0};
  ParentClosePolicy parent_close_policy = ParentClosePolicy::kTerminate;
  WorkflowIdReusePolicy workflow_id_reuse_policy = WorkflowIdReusePolicy::kAllowDuplicate;
  std::optional<RetryPolicy> retry_policy;

  bool operator==(const StartChildWorkflowExecution&) const = default;
};
DURO_CODEC_FIELDS(StartChildWorkflowExecution, workflow_id, workflow_type, task_queue, input,
                  workflow_execution_timeout, workflow_run_timeout, workflow_task_timeout, parent_close_policy,
                  workflow_id_reuse_policy, retry_policy);

struct SignalExternalWorkflowExecution {
  WorkflowExecution execution;  // Empty run id: the current run.
  std::string signal_name;
  Payload input;
  bool child_workflow_only = false;

  bool operator==(const SignalExternalWorkflowExecution&) const = default;
};
DURO_CODEC_FIELDS(SignalExternalWorkflowExecution, execution, signal_name, input, child_workflow_only);

struct RequestCancelExternalWorkflowExecution {
  WorkflowExecution execution;
  bool child_workflow_only = false;
  std::string reason;

  bool operator==(const RequestCancelExternalWorkflowExecution&) const = default;
};
DURO_CODEC_FIELDS(RequestCancelExternalWorkflowExecution, execution, child_workflow_only, reason);

struct CompleteWorkflowExecution {
  Payload result;

  bool operator==(const CompleteWorkflowExecution&) const = default;
};
DURO_CODEC_FIELDS(CompleteWorkflowExecution, result);

struct FailWorkflowExecution {
  Failure failure;

  bool operator==(const FailWorkflowExecution&) const = default;
};
DURO_CODEC_FIELDS(FailWorkflowExecution, failure);

struct CancelWorkflowExecution {
  Payload details;

  bool operator==(const CancelWorkflowExecution&) const = default;
};
DURO_CODEC_FIELDS(CancelWorkflowExecution, details);

struct ContinueAsNewWorkflowExecution {
  std::string workflow_type;  // Empty: the same type.
  TaskQueue task_queue;       // Empty name: the same queue.
  Payload input;
  sim::Duration workflow_run_timeout{0};
  sim::Duration workflow_task_timeout{0};
  sim::Duration backoff_start_interval{0};

  bool operator==(const ContinueAsNewWorkflowExecution&) const = default;
};
DURO_CODEC_FIELDS(ContinueAsNewWorkflowExecution, workflow_type, task_queue, input, workflow_run_timeout,
                  workflow_task_timeout, backoff_start_interval);

// The order is the encoding: append only.
using Command = std::variant<ScheduleActivityTask, RequestCancelActivityTask, StartTimer, CancelTimer,
                             RecordMarker, StartChildWorkflowExecution, SignalExternalWorkflowExecution,
                             RequestCancelExternalWorkflowExecution, CompleteWorkflowExecution,
                             FailWorkflowExecution, CancelWorkflowExecution, ContinueAsNewWorkflowExecution>;

enum class CommandType : std::uint8_t {
  kScheduleActivityTask = 1,
  kRequestCancelActivityTask,
  kStartTimer,
  kCancelTimer,
  kRecordMarker,
  kStartChildWorkflowExecution,
  kSignalExternalWorkflowExecution,
  kRequestCancelExternalWorkflowExecution,
  kCompleteWorkflowExecution,
  kFailWorkflowExecution,
  kCancelWorkflowExecution,
  kContinueAsNewWorkflowExecution,
};
inline constexpr std::size_t kCommandTypeCount = std::variant_size_v<Command>;
static_assert(static_cast<std::size_t>(CommandType::kContinueAsNewWorkflowExecution) == kCommandTypeCount);

inline CommandType command_type(const Command& command) noexcept {
  return static_cast<CommandType>(command.index() + 1);
}

// Temporal's name, e.g. "ScheduleActivityTask"; "Unknown" out of range.
std::string_view command_type_name(CommandType type) noexcept;

// The event type a command produces when the server accepts it.
EventType command_event_type(CommandType type) noexcept;

// True for the commands that close the run (Complete, Fail, Cancel,
// ContinueAsNew): at most one per task, and it must be the last.
bool is_close_command(CommandType type) noexcept;

}  // namespace duro::engine
