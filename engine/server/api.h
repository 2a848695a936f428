// The engine's service API: what clients and workers send to the frontend.
//
// Every server node runs the frontend, history and matching services in
// one process (Temporal's roles, one binary) and answers these RPCs on
// kFrontendPort. Clients and workers may call any server node; the
// frontend forwards to the node that owns the workflow's shard or the task
// queue. The names follow Temporal's WorkflowService.
//
// Errors are sim::Error codes with a message that starts with Temporal's
// error name where there is one:
//   kAlreadyExists    "WorkflowExecutionAlreadyStarted: ..." (a start of a running id,
//                     or one the reuse policy refuses)
//   kNotFound         "NotFound: ..." (no such workflow/run; a task token that is stale —
//                     the task timed out, was retried, or was completed already)
//   kInvalidArgument  "BadRequest: ..." (malformed request; refused commands go to history
//                     as WorkflowTaskFailed instead)
//   kUnavailable      the owner of the shard or task queue is not reachable right now; retry
//   kOverloaded       a bound was hit; retry later
//   kTimeout          from the RPC layer: outcome unknown; retry with the same request id
// Requests that change state carry a request id: a retry with the same id
// is applied once.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "engine/history/command.h"
#include "engine/history/encoded_events.h"
#include "engine/history/event.h"
#include "sim/codec.h"

namespace duro::engine {

inline constexpr std::uint16_t kFrontendPort = 7200;

// RPC method names (frontend).
namespace method {
inline constexpr const char* kStartWorkflowExecution = "StartWorkflowExecution";
inline constexpr const char* kSignalWorkflowExecution = "SignalWorkflowExecution";
inline constexpr const char* kSignalWithStartWorkflowExecution = "SignalWithStartWorkflowExecution";
inline constexpr const char* kQueryWorkflow = "QueryWorkflow";
inline constexpr const char* kRequestCancelWorkflowExecution = "RequestCancelWorkflowExecution";
inline constexpr const char* kTerminateWorkflowExecution = "TerminateWorkflowExecution";
inline constexpr const char* kDescribeWorkflowExecution = "DescribeWorkflowExecution";
inline constexpr const char* kGetWorkflowExecutionHistory = "GetWorkflowExecutionHistory";
inline constexpr const char* kGetWorkflowExecutionResult = "GetWorkflowExecutionResult";
inline constexpr const char* kPollWorkflowTaskQueue = "PollWorkflowTaskQueue";
inline constexpr const char* kRespondWorkflowTaskCompleted = "RespondWorkflowTaskCompleted";
inline constexpr const char* kRespondWorkflowTaskFailed = "RespondWorkflowTaskFailed";
inline constexpr const char* kRespondQueryTaskCompleted = "RespondQueryTaskCompleted";
inline constexpr const char* kPollActivityTaskQueue = "PollActivityTaskQueue";
inline constexpr const char* kRecordActivityTaskHeartbeat = "RecordActivityTaskHeartbeat";
inline constexpr const char* kRespondActivityTaskCompleted = "RespondActivityTaskCompleted";
inline constexpr const char* kRespondActivityTaskFailed = "RespondActivityTaskFailed";
inline constexpr const char* kRespondActivityTaskCanceled = "RespondActivityTaskCanceled";
}  // namespace method

enum class WorkflowStatus : std::uint8_t {
  kRunning,
  kCompleted,
  kFailed,
  kCanceled,
  kTerminated,
  kContinuedAsNew,
  kTimedOut,
};
const char* workflow_status_name(WorkflowStatus status) noexcept;

// Identifies one task handed to a worker, and which attempt of it: a
// response with a stale token (an older attempt, a task that timed out and
// was handed out again) is refused with kNotFound.
struct TaskToken {
  enum class Kind : std::uint8_t { kWorkflow, kActivity, kQuery };
  Kind kind = Kind::kWorkflow;
  WorkflowExecution execution;
  EventId scheduled_event_id = 0;  // Workflow/activity tasks.
  EventId started_event_id = 0;    // Workflow tasks.
  std::int32_t attempt = 1;
  std::string query_id;            // Query tasks.
  std::string owner;               // Query tasks: the matching node waiting for the answer.

  bool operator==(const TaskToken&) const = default;
};
DURO_CODEC_FIELDS(TaskToken, kind, execution, scheduled_event_id, started_event_id, attempt, query_id, owner);

// --- Clients ----------------------------------------------------------------------

struct StartWorkflowExecutionRequest {
  std::string request_id;
  std::string workflow_id;
  std::string workflow_type;
  TaskQueue task_queue;
  Payload input;
  sim::Duration workflow_execution_timeout{0};
  sim::Duration workflow_run_timeout{0};
  sim::Duration workflow_task_timeout{0};  // 0: the default, 10 s.
  std::optional<RetryPolicy> retry_policy;
  WorkflowIdReusePolicy workflow_id_reuse_policy = WorkflowIdReusePolicy::kAllowDuplicate;
  std::string identity;
  // Signal-with-start: the signal delivered with the start, or to the
  // running workflow if there is one.
  std::optional<std::string> signal_name;
  Payload signal_input;
};
DURO_CODEC_FIELDS(StartWorkflowExecutionRequest, request_id, workflow_id, workflow_type, task_queue, input,
                  workflow_execution_timeout, workflow_run_timeout, workflow_task_timeout, retry_policy,
                  workflow_id_reuse_policy, identity, signal_name, signal_input);

struct StartWorkflowExecutionReply {
  std::string run_id;
  bool started = true;  // False when signal-with-start found the workflow running.
};
DURO_CODEC_FIELDS(StartWorkflowExecutionReply, run_id, started);

struct SignalWorkflowExecutionRequest {
  std::string request_id;
  WorkflowExecution execution;  // Empty run id: the current run.
  std::string signal_name;
  Payload input;
  std::string identity;
};
DURO_CODEC_FIELDS(SignalWorkflowExecutionRequest, request_id, execution, signal_name, input, identity);

// The reply of calls that return nothing but success.
struct Ack {
  bool ok = true;
};
DURO_CODEC_FIELDS(Ack, ok);

struct QueryWorkflowRequest {
  WorkflowExecution execution;
  std::string query_type;
  Payload args;
};
DURO_CODEC_FIELDS(QueryWorkflowRequest, execution, query_type, args);

struct QueryWorkflowReply {
  Payload result;
  std::optional<Failure> failure;  // The query handler failed (or there is none by that name).
};
DURO_CODEC_FIELDS(QueryWorkflowReply, result, failure);

struct RequestCancelWorkflowExecutionRequest {
  std::string request_id;
  WorkflowExecution execution;
  std::string reason;
  std::string identity;
};
DURO_CODEC_FIELDS(RequestCancelWorkflowExecutionRequest, request_id, execution, reason, identity);

struct TerminateWorkflowExecutionRequest {
  std::string request_id;
  WorkflowExecution execution;
  std::string reason;
  Payload details;
  std::string identity;
};
DURO_CODEC_FIELDS(TerminateWorkflowExecutionRequest, request_id, execution, reason, details, identity);

struct DescribeWorkflowExecutionRequest {
  WorkflowExecution execution;
};
DURO_CODEC_FIELDS(DescribeWorkflowExecutionRequest, execution);

struct PendingActivityInfo {
  EventId scheduled_event_id = 0;
  std::string activity_id;
  std::string activity_type;
  std::int32_t attempt = 1;
  bool started = false;
  bool cancel_requested = false;
  std::optional<Failure> last_failure;
};
DURO_CODEC_FIELDS(PendingActivityInfo, scheduled_event_id, activity_id, activity_type, attempt, started,
                  cancel_requested, last_failure);

struct PendingChildInfo {
  EventId initiated_event_id = 0;
  std::string workflow_id;
  std::string run_id;  // Empty until started.
  std::string workflow_type;
};
DURO_CODEC_FIELDS(PendingChildInfo, initiated_event_id, workflow_id, run_id, workflow_type);

struct DescribeWorkflowExecutionReply {
  WorkflowExecution execution;
  std::string workflow_type;
  TaskQueue task_queue;
  WorkflowStatus status = WorkflowStatus::kRunning;
  sim::TimePoint start_time{};
  sim::TimePoint close_time{};  // Epoch while running.
  std::int64_t history_length = 0;
  std::vector<PendingActivityInfo> pending_activities;
  std::vector<PendingChildInfo> pending_children;
  std::vector<std::string> pending_timers;
  bool workflow_task_pending = false;
  std::optional<ParentInfo> parent;
};
DURO_CODEC_FIELDS(DescribeWorkflowExecutionReply, execution, workflow_type, task_queue, status, start_time,
                  close_time, history_length, pending_activities, pending_children, pending_timers,
                  workflow_task_pending, parent);

struct GetWorkflowExecutionHistoryRequest {
  WorkflowExecution execution;
  EventId from_event_id = 1;
  std::uint32_t max_events = 1000;
};
DURO_CODEC_FIELDS(GetWorkflowExecutionHistoryRequest, execution, from_event_id, max_events);

struct GetWorkflowExecutionHistoryReply {
  std::string run_id;  // The run read (resolves an empty run id).
  std::vector<HistoryEvent> events;
  EventId next_event_id = 0;  // Read on from here; 0: that was the end (of the history so far).
};
DURO_CODEC_FIELDS(GetWorkflowExecutionHistoryReply, run_id, events, next_event_id);

// Waits (up to `wait`) for the run to close.
struct GetWorkflowExecutionResultRequest {
  WorkflowExecution execution;
  sim::Duration wait{0};
  bool follow_runs = true;  // Follow continue-as-new and retries to the chain's last run.
};
DURO_CODEC_FIELDS(GetWorkflowExecutionResultRequest, execution, wait, follow_runs);

struct GetWorkflowExecutionResultReply {
  bool closed = false;  // False: still running when the wait ended.
  std::string run_id;   // The run that closed (the last one followed).
  WorkflowStatus status = WorkflowStatus::kRunning;
  std::optional<HistoryEvent> close_event;
};
DURO_CODEC_FIELDS(GetWorkflowExecutionResultReply, closed, run_id, status, close_event);

// --- Workers: workflow tasks ------------------------------------------------------

struct PollWorkflowTaskQueueRequest {
  TaskQueue task_queue;
  std::string identity;
  std::string poll_request_id;  // Makes the handing out of a task idempotent.
};
DURO_CODEC_FIELDS(PollWorkflowTaskQueueRequest, task_queue, identity, poll_request_id);

struct QueryTask {
  std::string query_type;
  Payload args;
};
DURO_CODEC_FIELDS(QueryTask, query_type, args);

struct PollWorkflowTaskQueueReply {
  bool has_task = false;  // False: the long poll ended empty; poll again.
  std::string task_token;  // Encoded TaskToken.
  WorkflowExecution execution;
  std::string workflow_type;
  std::int32_t attempt = 1;
  EventId previous_started_event_id = 0;  // The last workflow task this worker may have seen (sticky).
  EventId started_event_id = 0;
  // The events to replay: the whole history from 1 on the normal queue; on
  // a sticky queue, what came after the previous task. In binary form:
  // servers forward them, only the worker decodes them.
  EncodedEvents history;
  EventId next_page_event_id = 0;  // Non-zero: fetch more with GetWorkflowExecutionHistory first.
  std::optional<QueryTask> query;  // A query to answer instead of a workflow task.
};
DURO_CODEC_FIELDS(PollWorkflowTaskQueueReply, has_task, task_token, execution, workflow_type, attempt,
                  previous_started_event_id, started_event_id, history, next_page_event_id, query);

struct RespondWorkflowTaskCompletedRequest {
  std::string task_token;
  std::vector<Command> commands;
  std::string identity;
  std::string build_id;
  std::vector<std::uint32_t> sdk_flags;
  TaskQueue sticky_task_queue;  // Empty name: no sticky execution.
  sim::Duration sticky_schedule_to_start_timeout{0};
  // Eager activity execution (Temporal's): activities these commands
  // schedule that the worker has a free slot for and will run itself. The
  // server starts those on the run's own task queue at once, in the same
  // write, and hands them back in the reply instead of through matching.
  std::vector<std::string> eager_activity_ids;
};
DURO_CODEC_FIELDS(RespondWorkflowTaskCompletedRequest, task_token, commands, identity, build_id, sdk_flags,
                  sticky_task_queue, sticky_schedule_to_start_timeout, eager_activity_ids);

struct RespondWorkflowTaskFailedRequest {
  std::string task_token;
  WorkflowTaskFailedCause cause = WorkflowTaskFailedCause::kWorkflowWorkerUnhandledFailure;
  Failure failure;
  std::string identity;
};
DURO_CODEC_FIELDS(RespondWorkflowTaskFailedRequest, task_token, cause, failure, identity);

struct RespondQueryTaskCompletedRequest {
  std::string task_token;
  Payload result;
  std::optional<Failure> failure;
};
DURO_CODEC_FIELDS(RespondQueryTaskCompletedRequest, task_token, result, failure);

// --- Workers: activity tasks ------------------------------------------------------

struct PollActivityTaskQueueRequest {
  TaskQueue task_queue;
  std::string identity;
  std::string poll_request_id;
};
DURO_CODEC_FIELDS(PollActivityTaskQueueRequest, task_queue, identity, poll_request_id);

struct PollActivityTaskQueueReply {
  bool has_task = false;
  std::string task_token;
  WorkflowExecution execution;
  std::string workflow_type;
  std::string activity_id;
  std::string activity_type;
  Payload input;
  std::int32_t attempt = 1;
  sim::TimePoint scheduled_time{};                 // Of the first attempt.
  sim::TimePoint current_attempt_scheduled_time{};
  sim::TimePoint started_time{};
  sim::Duration schedule_to_close_timeout{0};
  sim::Duration start_to_close_timeout{0};
  sim::Duration heartbeat_timeout{0};
  Payload heartbeat_details;  // The last attempt's last heartbeat.
};
DURO_CODEC_FIELDS(PollActivityTaskQueueReply, has_task, task_token, execution, workflow_type, activity_id,
                  activity_type, input, attempt, scheduled_time, current_attempt_scheduled_time, started_time,
                  schedule_to_close_timeout, start_to_close_timeout, heartbeat_timeout, heartbeat_details);

struct RespondWorkflowTaskCompletedReply {
  // The eager activities the server started, for the worker to run (each
  // as if polled). Any it asked for and does not find here go through
  // matching as usual.
  std::vector<PollActivityTaskQueueReply> activity_tasks;
};
DURO_CODEC_FIELDS(RespondWorkflowTaskCompletedReply, activity_tasks);

struct RecordActivityTaskHeartbeatRequest {
  std::string task_token;
  Payload details;
  std::string identity;
};
DURO_CODEC_FIELDS(RecordActivityTaskHeartbeatRequest, task_token, details, identity);

struct RecordActivityTaskHeartbeatReply {
  bool cancel_requested = false;
};
DURO_CODEC_FIELDS(RecordActivityTaskHeartbeatReply, cancel_requested);

struct RespondActivityTaskCompletedRequest {
  std::string task_token;
  Payload result;
  std::string identity;
  // Eager workflow task (Duro's, the mirror of eager activities): the
  // worker's sticky queue, named when it has a free workflow-task slot. If
  // this completion schedules the run's next workflow task on exactly that
  // queue, the server starts it in the same write, as if `eager_poll_request_id`
  // had polled it, and hands it back in the reply instead of through
  // matching: no transfer task, no poll, one write fewer. Empty name: none.
  TaskQueue eager_sticky_queue;
  std::string eager_poll_request_id;
};
DURO_CODEC_FIELDS(RespondActivityTaskCompletedRequest, task_token, result, identity, eager_sticky_queue,
                  eager_poll_request_id);

struct RespondActivityTaskCompletedReply {
  // The workflow task the server started eagerly (has_task), for the worker
  // to run as if polled; has_task false: none, it goes through matching.
  PollWorkflowTaskQueueReply workflow_task;
};
DURO_CODEC_FIELDS(RespondActivityTaskCompletedReply, workflow_task);

struct RespondActivityTaskFailedRequest {
  std::string task_token;
  Failure failure;
  std::string identity;
  Payload last_heartbeat_details;
};
DURO_CODEC_FIELDS(RespondActivityTaskFailedRequest, task_token, failure, identity, last_heartbeat_details);

struct RespondActivityTaskCanceledRequest {
  std::string task_token;
  Payload details;
  std::string identity;
};
DURO_CODEC_FIELDS(RespondActivityTaskCanceledRequest, task_token, details, identity);

}  // namespace duro::engine
