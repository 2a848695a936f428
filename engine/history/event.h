// History events: what happened to one workflow run, in order.
//
// The events, their names and their meaning follow Temporal's event model
// (../shared/TEMPORAL_MODEL.md), trimmed to what Duro supports, so a Temporal
// user recognises every one. A run's history is the sequence of its events:
// ids are dense from 1 and increasing, every event carries the time the
// server wrote it (from the server's clock, never going backwards within a
// run), and exactly one closing event ends it.
//
// Representation: a HistoryEvent is (id, time, attributes), where the
// attributes are a std::variant whose alternative IS the event type
// (EventType's value is the variant index + 1). The binary encoding
// (sim/codec.h: the variant index, then the alternative's fields) and the
// JSON form (engine/history/history_json.h) both follow from this.
//
// Compatibility: histories are recorded and replayed across versions
// (replays/), so the encoding is a contract. Never reorder or remove an
// alternative or a field; add new event types at the end of the variant,
// and new fields at the end of a struct's field list. The codec is
// untagged, so even an appended field changes how old bytes decode: a new
// field in a recorded struct needs a bump of the history format version
// and a decoder for the old layout (docs/history.md).
//
// "Command events" — those that map one-to-one to a command the workflow
// code produced (is_command_event) — are what replay matches commands
// against; every other event is written by the server.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "engine/history/failure.h"
#include "engine/history/retry_policy.h"
#include "sim/clock.h"
#include "sim/codec.h"

namespace duro::engine {

// The id of an event within its run's history; 0 means none.
using EventId = std::int64_t;

struct WorkflowExecution {
  std::string workflow_id;
  std::string run_id;  // Empty: the current run of workflow_id.

  auto operator<=>(const WorkflowExecution&) const = default;
};
DURO_CODEC_FIELDS(WorkflowExecution, workflow_id, run_id);

enum class TaskQueueKind : std::uint8_t { kNormal, kSticky };

struct TaskQueue {
  std::string name;
  TaskQueueKind kind = TaskQueueKind::kNormal;

  bool operator==(const TaskQueue&) const = default;
};
DURO_CODEC_FIELDS(TaskQueue, name, kind);

// What happens to a child when its parent closes.
enum class ParentClosePolicy : std::uint8_t { kTerminate, kAbandon, kRequestCancel };

// May a new run start under a workflow id whose last run is closed?
// (A running workflow id always rejects a second start.)
enum class WorkflowIdReusePolicy : std::uint8_t {
  kAllowDuplicate,            // Yes, whatever the last run's outcome.
  kAllowDuplicateFailedOnly,  // Only if it did not complete successfully.
  kRejectDuplicate,           // Never.
};

enum class ContinueAsNewInitiator : std::uint8_t { kWorkflow, kRetry, kCronSchedule };

enum class WorkflowTaskFailedCause : std::uint8_t {
  kUnspecified,
  kUnhandledCommand,       // Completed the workflow while new events were buffered.
  kBadCommandAttributes,   // A command the server refused (ids reused, limits, bad timeouts).
  kNondeterminism,         // Replay diverged from history (reported by the worker).
  kWorkflowWorkerUnhandledFailure,  // Workflow code threw something that is not a workflow failure.
  kResetStickyTaskQueue,   // The sticky worker is gone; replay elsewhere.
  kPendingLimitExceeded,   // Too many pending activities, children, signals, cancels.
  kPayloadTooLarge,
};

enum class StartChildFailedCause : std::uint8_t { kWorkflowAlreadyExists, kNamespaceNotFound };
enum class ExternalFailedCause : std::uint8_t { kExternalWorkflowNotFound };

// --- Workflow execution -----------------------------------------------------

struct ParentInfo {
  WorkflowExecution execution;
  EventId initiated_event_id = 0;

  bool operator==(const ParentInfo&) const = default;
};
DURO_CODEC_FIELDS(ParentInfo, execution, initiated_event_id);

struct WorkflowExecutionStarted {
  std::string workflow_type;
  TaskQueue task_queue;
  Payload input;
  sim::Duration workflow_execution_timeout{0};  // 0: none. Spans retries and continue-as-new.
  sim::Duration workflow_run_timeout{0};        // 0: none.
  sim::Duration workflow_task_timeout{0};       // The start-to-close of each workflow task.
  std::optional<RetryPolicy> retry_policy;      // Of the workflow itself; none: no retries.
  std::int32_t attempt = 1;
  std::string original_execution_run_id;        // The run id this run was first started with.
  std::string first_execution_run_id;           // The first run of the continue-as-new/retry chain.
  std::string continued_execution_run_id;       // The run this one continues, if any.
  ContinueAsNewInitiator initiator = ContinueAsNewInitiator::kWorkflow;
  std::optional<Failure> continued_failure;     // Why the previous run of a retry chain failed.
  Payload last_completion_result;
  std::optional<ParentInfo> parent;
  ParentClosePolicy parent_close_policy = ParentClosePolicy::kTerminate;
  sim::TimePoint workflow_execution_expiration_time{};  // Epoch: none.
  sim::Duration first_workflow_task_backoff{0};  // Continue-as-new / retry backoff before the first task.
  std::string identity;
  std::string request_id;

  bool operator==(const WorkflowExecutionStarted&) const = default;
};
DURO_CODEC_FIELDS(WorkflowExecutionStarted, workflow_type, task_queue, input, workflow_execution_timeout,
                  workflow_run_timeout, workflow_task_timeout, retry_policy, attempt, original_execution_run_id,
                  first_execution_run_id, continued_execution_run_id, initiator, continued_failure,
                  last_completion_result, parent, parent_close_policy, workflow_execution_expiration_time,
                  first_workflow_task_backoff, identity, request_id);

struct WorkflowExecutionCompleted {
  Payload result;
  EventId workflow_task_completed_event_id = 0;

  bool operator==(const WorkflowExecutionCompleted&) const = default;
};
DURO_CODEC_FIELDS(WorkflowExecutionCompleted, result, workflow_task_completed_event_id);

struct WorkflowExecutionFailed {
  Failure failure;
  RetryState retry_state = RetryState::kRetryPolicyNotSet;
  EventId workflow_task_completed_event_id = 0;
  std::string new_execution_run_id;  // Set when the workflow's retry policy starts a new run.

  bool operator==(const WorkflowExecutionFailed&) const = default;
};
DURO_CODEC_FIELDS(WorkflowExecutionFailed, failure, retry_state, workflow_task_completed_event_id,
                  new_execution_run_id);

struct WorkflowExecutionTimedOut {
  RetryState retry_state = RetryState::kTimeout;
  std::string new_execution_run_id;

  bool operator==(const WorkflowExecutionTimedOut&) const = default;
};
DURO_CODEC_FIELDS(WorkflowExecutionTimedOut, retry_state, new_execution_run_id);

struct WorkflowExecutionCanceled {
  EventId workflow_task_completed_event_id = 0;
  Payload details;

  bool operator==(const WorkflowExecutionCanceled&) const = default;
};
DURO_CODEC_FIELDS(WorkflowExecutionCanceled, workflow_task_completed_event_id, details);

struct WorkflowExecutionTerminated {
  std::string reason;
  Payload details;
  std::string identity;

  bool operator==(const WorkflowExecutionTerminated&) const = default;
};
DURO_CODEC_FIELDS(WorkflowExecutionTerminated, reason, details, identity);

struct WorkflowExecutionContinuedAsNew {
  std::string new_execution_run_id;
  std::string workflow_type;
  TaskQueue task_queue;
  Payload input;
  sim::Duration workflow_run_timeout{0};
  sim::Duration workflow_task_timeout{0};
  EventId workflow_task_completed_event_id = 0;
  sim::Duration backoff_start_interval{0};
  ContinueAsNewInitiator initiator = ContinueAsNewInitiator::kWorkflow;
  std::optional<Failure> failure;
  Payload last_completion_result;

  bool operator==(const WorkflowExecutionContinuedAsNew&) const = default;
};
DURO_CODEC_FIELDS(WorkflowExecutionContinuedAsNew, new_execution_run_id, workflow_type, task_queue, input,
                  workflow_run_timeout, workflow_task_timeout, workflow_task_completed_event_id,
                  backoff_start_interval, initiator, failure, last_completion_result);

struct WorkflowExecutionSignaled {
  std::string signal_name;
  Payload input;
  std::string identity;
  std::string request_id;  // Deduplicates a retried signal.

  bool operator==(const WorkflowExecutionSignaled&) const = default;
};
DURO_CODEC_FIELDS(WorkflowExecutionSignaled, signal_name, input, identity, request_id);

struct WorkflowExecutionCancelRequested {
  std::string cause;
  EventId external_initiated_event_id = 0;
  std::optional<WorkflowExecution> external_workflow_execution;
  std::string identity;

  bool operator==(const WorkflowExecutionCancelRequested&) const = default;
};
DURO_CODEC_FIELDS(WorkflowExecutionCancelRequested, cause, external_initiated_event_id,
                  external_workflow_execution, identity);

// --- Workflow tasks -----------------------------------------------------------

struct WorkflowTaskScheduled {
  TaskQueue task_queue;
  sim::Duration start_to_close_timeout{0};
  std::int32_t attempt = 1;

  bool operator==(const WorkflowTaskScheduled&) const = default;
};
DURO_CODEC_FIELDS(WorkflowTaskScheduled, task_queue, start_to_close_timeout, attempt);

struct WorkflowTaskStarted {
  EventId scheduled_event_id = 0;
  std::string identity;
  std::string request_id;

  bool operator==(const WorkflowTaskStarted&) const = default;
};
DURO_CODEC_FIELDS(WorkflowTaskStarted, scheduled_event_id, identity, request_id);

struct WorkflowTaskCompleted {
  EventId scheduled_event_id = 0;
  EventId started_event_id = 0;
  std::string identity;
  std::string build_id;
  // SDK behaviour flags this task's code ran with (sdk-core's pattern): a
  // new replay check is gated on a flag recorded in history, so histories
  // written before it existed keep replaying.
  std::vector<std::uint32_t> sdk_flags;

  bool operator==(const WorkflowTaskCompleted&) const = default;
};
DURO_CODEC_FIELDS(WorkflowTaskCompleted, scheduled_event_id, started_event_id, identity, build_id, sdk_flags);

struct WorkflowTaskTimedOut {
  EventId scheduled_event_id = 0;
  EventId started_event_id = 0;
  TimeoutType timeout_type = TimeoutType::kStartToClose;

  bool operator==(const WorkflowTaskTimedOut&) const = default;
};
DURO_CODEC_FIELDS(WorkflowTaskTimedOut, scheduled_event_id, started_event_id, timeout_type);

struct WorkflowTaskFailed {
  EventId scheduled_event_id = 0;
  EventId started_event_id = 0;
  WorkflowTaskFailedCause cause = WorkflowTaskFailedCause::kUnspecified;
  Failure failure;
  std::string identity;

  bool operator==(const WorkflowTaskFailed&) const = default;
};
DURO_CODEC_FIELDS(WorkflowTaskFailed, scheduled_event_id, started_event_id, cause, failure, identity);

// --- Activities ---------------------------------------------------------------

struct ActivityTaskScheduled {
  std::string activity_id;
  std::string activity_type;
  TaskQueue task_queue;
  Payload input;
  sim::Duration schedule_to_close_timeout{0};  // 0: none (then start_to_close is required).
  sim::Duration schedule_to_start_timeout{0};  // 0: none.
  sim::Duration start_to_close_timeout{0};     // 0: none (then schedule_to_close is required).
  sim::Duration heartbeat_timeout{0};          // 0: none.
  EventId workflow_task_completed_event_id = 0;
  RetryPolicy retry_policy;  // Normalized: what the server applies.

  bool operator==(const ActivityTaskScheduled&) const = default;
};
DURO_CODEC_FIELDS(ActivityTaskScheduled, activity_id, activity_type, task_queue, input, schedule_to_close_timeout,
                  schedule_to_start_timeout, start_to_close_timeout, heartbeat_timeout,
                  workflow_task_completed_event_id, retry_policy);

// Written when the activity closes (Temporal's rule under a retry policy):
// the attempts before the last leave no events, only their count here.
struct ActivityTaskStarted {
  EventId scheduled_event_id = 0;
  std::string identity;
  std::string request_id;
  std::int32_t attempt = 1;
  std::optional<Failure> last_failure;  // Of the previous attempt.

  bool operator==(const ActivityTaskStarted&) const = default;
};
DURO_CODEC_FIELDS(ActivityTaskStarted, scheduled_event_id, identity, request_id, attempt, last_failure);

struct ActivityTaskCompleted {
  Payload result;
  EventId scheduled_event_id = 0;
  EventId started_event_id = 0;
  std::string identity;

  bool operator==(const ActivityTaskCompleted&) const = default;
};
DURO_CODEC_FIELDS(ActivityTaskCompleted, result, scheduled_event_id, started_event_id, identity);

struct ActivityTaskFailed {
  Failure failure;
  EventId scheduled_event_id = 0;
  EventId started_event_id = 0;
  std::string identity;
  RetryState retry_state = RetryState::kUnspecified;

  bool operator==(const ActivityTaskFailed&) const = default;
};
DURO_CODEC_FIELDS(ActivityTaskFailed, failure, scheduled_event_id, started_event_id, identity, retry_state);

struct ActivityTaskTimedOut {
  Failure failure;  // type kTimeoutFailureType, timeout_type set; details: last heartbeat.
  EventId scheduled_event_id = 0;
  EventId started_event_id = 0;  // 0 when it timed out before any attempt started.
  RetryState retry_state = RetryState::kTimeout;

  bool operator==(const ActivityTaskTimedOut&) const = default;
};
DURO_CODEC_FIELDS(ActivityTaskTimedOut, failure, scheduled_event_id, started_event_id, retry_state);

struct ActivityTaskCancelRequested {
  EventId scheduled_event_id = 0;
  EventId workflow_task_completed_event_id = 0;

  bool operator==(const ActivityTaskCancelRequested&) const = default;
};
DURO_CODEC_FIELDS(ActivityTaskCancelRequested, scheduled_event_id, workflow_task_completed_event_id);

struct ActivityTaskCanceled {
  Payload details;
  EventId latest_cancel_requested_event_id = 0;
  EventId scheduled_event_id = 0;
  EventId started_event_id = 0;
  std::string identity;

  bool operator==(const ActivityTaskCanceled&) const = default;
};
DURO_CODEC_FIELDS(ActivityTaskCanceled, details, latest_cancel_requested_event_id, scheduled_event_id,
                  started_event_id, identity);

// --- Timers -------------------------------------------------------------------

struct TimerStarted {
  std::string timer_id;
  sim::Duration start_to_fire_timeout{0};
  EventId workflow_task_completed_event_id = 0;

  bool operator==(const TimerStarted&) const = default;
};
DURO_CODEC_FIELDS(TimerStarted, timer_id, start_to_fire_timeout, workflow_task_completed_event_id);

struct TimerFired {
  std::string timer_id;
  EventId started_event_id = 0;

  bool operator==(const TimerFired&) const = default;
};
DURO_CODEC_FIELDS(TimerFired, timer_id, started_event_id);

struct TimerCanceled {
  std::string timer_id;
  EventId started_event_id = 0;
  EventId workflow_task_completed_event_id = 0;
  std::string identity;

  bool operator==(const TimerCanceled&) const = default;
};
DURO_CODEC_FIELDS(TimerCanceled, timer_id, started_event_id, workflow_task_completed_event_id, identity);

// --- Markers (side effects, versioning, local results) -------------------------

struct MarkerRecorded {
  std::string marker_name;
  std::map<std::string, Payload> details;
  EventId workflow_task_completed_event_id = 0;
  std::optional<Failure> failure;

  bool operator==(const MarkerRecorded&) const = default;
};
DURO_CODEC_FIELDS(MarkerRecorded, marker_name, details, workflow_task_completed_event_id, failure);

// --- Child workflows ----------------------------------------------------------

struct StartChildWorkflowExecutionInitiated {
  std::string workflow_id;
  std::string workflow_type;
  TaskQueue task_queue;
  Payload input;
  sim::Duration workflow_execution_timeout{0};
  sim::Duration workflow_run_timeout{0};
  sim::Duration workflow_task_timeout{0};
  ParentClosePolicy parent_close_policy = ParentClosePolicy::kTerminate;
  EventId workflow_task_completed_event_id = 0;
  WorkflowIdReusePolicy workflow_id_reuse_policy = WorkflowIdReusePolicy::kAllowDuplicate;
  std::optional<RetryPolicy> retry_policy;

  bool operator==(const StartChildWorkflowExecutionInitiated&) const = default;
};
DURO_CODEC_FIELDS(StartChildWorkflowExecutionInitiated, workflow_id, workflow_type, task_queue, input,
                  workflow_execution_timeout, workflow_run_timeout, workflow_task_timeout, parent_close_policy,
                  workflow_task_completed_event_id, workflow_id_reuse_policy, retry_policy);

struct StartChildWorkflowExecutionFailed {
  std::string workflow_id;
  std::string workflow_type;
  StartChildFailedCause cause = StartChildFailedCause::kWorkflowAlreadyExists;
  EventId initiated_event_id = 0;
  EventId workflow_task_completed_event_id = 0;

  bool operator==(const StartChildWorkflowExecutionFailed&) const = default;
};
DURO_CODEC_FIELDS(StartChildWorkflowExecutionFailed, workflow_id, workflow_type, cause, initiated_event_id,
                  workflow_task_completed_event_id);

struct ChildWorkflowExecutionStarted {
  WorkflowExecution workflow_execution;
  std::string workflow_type;
  EventId initiated_event_id = 0;

  bool operator==(const ChildWorkflowExecutionStarted&) const = default;
};
DURO_CODEC_FIELDS(ChildWorkflowExecutionStarted, workflow_execution, workflow_type, initiated_event_id);

struct ChildWorkflowExecutionCompleted {
  Payload result;
  WorkflowExecution workflow_execution;
  std::string workflow_type;
  EventId initiated_event_id = 0;
  EventId started_event_id = 0;

  bool operator==(const ChildWorkflowExecutionCompleted&) const = default;
};
DURO_CODEC_FIELDS(ChildWorkflowExecutionCompleted, result, workflow_execution, workflow_type, initiated_event_id,
                  started_event_id);

struct ChildWorkflowExecutionFailed {
  Failure failure;
  WorkflowExecution workflow_execution;
  std::string workflow_type;
  EventId initiated_event_id = 0;
  EventId started_event_id = 0;
  RetryState retry_state = RetryState::kUnspecified;

  bool operator==(const ChildWorkflowExecutionFailed&) const = default;
};
DURO_CODEC_FIELDS(ChildWorkflowExecutionFailed, failure, workflow_execution, workflow_type, initiated_event_id,
                  started_event_id, retry_state);

struct ChildWorkflowExecutionCanceled {
  Payload details;
  WorkflowExecution workflow_execution;
  std::string workflow_type;
  EventId initiated_event_id = 0;
  EventId started_event_id = 0;

  bool operator==(const ChildWorkflowExecutionCanceled&) const = default;
};
DURO_CODEC_FIELDS(ChildWorkflowExecutionCanceled, details, workflow_execution, workflow_type, initiated_event_id,
                  started_event_id);

struct ChildWorkflowExecutionTimedOut {
  WorkflowExecution workflow_execution;
  std::string workflow_type;
  EventId initiated_event_id = 0;
  EventId started_event_id = 0;
  RetryState retry_state = RetryState::kTimeout;

  bool operator==(const ChildWorkflowExecutionTimedOut&) const = default;
};
DURO_CODEC_FIELDS(ChildWorkflowExecutionTimedOut, workflow_execution, workflow_type, initiated_event_id,
                  started_event_id, retry_state);

struct ChildWorkflowExecutionTerminated {
  WorkflowExecution workflow_execution;
  std::string workflow_type;
  EventId initiated_event_id = 0;
  EventId started_event_id = 0;

  bool operator==(const ChildWorkflowExecutionTerminated&) const = default;
};
DURO_CODEC_FIELDS(ChildWorkflowExecutionTerminated, workflow_execution, workflow_type, initiated_event_id,
                  started_event_id);

// --- Signalling and cancelling other workflows ------------------------------

struct SignalExternalWorkflowExecutionInitiated {
  EventId workflow_task_completed_event_id = 0;
  WorkflowExecution workflow_execution;
  std::string signal_name;
  Payload input;
  bool child_workflow_only = false;

  bool operator==(const SignalExternalWorkflowExecutionInitiated&) const = default;
};
DURO_CODEC_FIELDS(SignalExternalWorkflowExecutionInitiated, workflow_task_completed_event_id, workflow_execution,
                  signal_name, input, child_workflow_only);

struct SignalExternalWorkflowExecutionFailed {
  ExternalFailedCause cause = ExternalFailedCause::kExternalWorkflowNotFound;
  EventId workflow_task_completed_event_id = 0;
  WorkflowExecution workflow_execution;
  EventId initiated_event_id = 0;

  bool operator==(const SignalExternalWorkflowExecutionFailed&) const = default;
};
DURO_CODEC_FIELDS(SignalExternalWorkflowExecutionFailed, cause, workflow_task_completed_event_id,
                  workflow_execution, initiated_event_id);

struct ExternalWorkflowExecutionSignaled {
  EventId initiated_event_id = 0;
  WorkflowExecution workflow_execution;

  bool operator==(const ExternalWorkflowExecutionSignaled&) const = default;
};
DURO_CODEC_FIELDS(ExternalWorkflowExecutionSignaled, initiated_event_id, workflow_execution);

struct RequestCancelExternalWorkflowExecutionInitiated {
  EventId workflow_task_completed_event_id = 0;
  WorkflowExecution workflow_execution;
  bool child_workflow_only = false;
  std::string reason;

  bool operator==(const RequestCancelExternalWorkflowExecutionInitiated&) const = default;
};
DURO_CODEC_FIELDS(RequestCancelExternalWorkflowExecutionInitiated, workflow_task_completed_event_id,
                  workflow_execution, child_workflow_only, reason);

struct RequestCancelExternalWorkflowExecutionFailed {
  ExternalFailedCause cause = ExternalFailedCause::kExternalWorkflowNotFound;
  EventId workflow_task_completed_event_id = 0;
  WorkflowExecution workflow_execution;
  EventId initiated_event_id = 0;

  bool operator==(const RequestCancelExternalWorkflowExecutionFailed&) const = default;
};
DURO_CODEC_FIELDS(RequestCancelExternalWorkflowExecutionFailed, cause, workflow_task_completed_event_id,
                  workflow_execution, initiated_event_id);

struct ExternalWorkflowExecutionCancelRequested {
  EventId initiated_event_id = 0;
  WorkflowExecution workflow_execution;

  bool operator==(const ExternalWorkflowExecutionCancelRequested&) const = default;
};
DURO_CODEC_FIELDS(ExternalWorkflowExecutionCancelRequested, initiated_event_id, workflow_execution);

// --- The event ----------------------------------------------------------------

// The order is the encoding: append only (see the compatibility note above).
using EventAttributes = std::variant<
    WorkflowExecutionStarted, WorkflowExecutionCompleted, WorkflowExecutionFailed, WorkflowExecutionTimedOut,
    WorkflowExecutionCanceled, WorkflowExecutionTerminated, WorkflowExecutionContinuedAsNew,
    WorkflowExecutionSignaled, WorkflowExecutionCancelRequested, WorkflowTaskScheduled, WorkflowTaskStarted,
    WorkflowTaskCompleted, WorkflowTaskTimedOut, WorkflowTaskFailed, ActivityTaskScheduled, ActivityTaskStarted,
    ActivityTaskCompleted, ActivityTaskFailed, ActivityTaskTimedOut, ActivityTaskCancelRequested,
    ActivityTaskCanceled, TimerStarted, TimerFired, TimerCanceled, MarkerRecorded,
    StartChildWorkflowExecutionInitiated, StartChildWorkflowExecutionFailed, ChildWorkflowExecutionStarted,
    ChildWorkflowExecutionCompleted, ChildWorkflowExecutionFailed, ChildWorkflowExecutionCanceled,
    ChildWorkflowExecutionTimedOut, ChildWorkflowExecutionTerminated, SignalExternalWorkflowExecutionInitiated,
    SignalExternalWorkflowExecutionFailed, ExternalWorkflowExecutionSignaled,
    RequestCancelExternalWorkflowExecutionInitiated, RequestCancelExternalWorkflowExecutionFailed,
    ExternalWorkflowExecutionCancelRequested>;

enum class EventType : std::uint8_t {
  kWorkflowExecutionStarted = 1,
  kWorkflowExecutionCompleted,
  kWorkflowExecutionFailed,
  kWorkflowExecutionTimedOut,
  kWorkflowExecutionCanceled,
  kWorkflowExecutionTerminated,
  kWorkflowExecutionContinuedAsNew,
  kWorkflowExecutionSignaled,
  kWorkflowExecutionCancelRequested,
  kWorkflowTaskScheduled,
  kWorkflowTaskStarted,
  kWorkflowTaskCompleted,
  kWorkflowTaskTimedOut,
  kWorkflowTaskFailed,
  kActivityTaskScheduled,
  kActivityTaskStarted,
  kActivityTaskCompleted,
  kActivityTaskFailed,
  kActivityTaskTimedOut,
  kActivityTaskCancelRequested,
  kActivityTaskCanceled,
  kTimerStarted,
  kTimerFired,
  kTimerCanceled,
  kMarkerRecorded,
  kStartChildWorkflowExecutionInitiated,
  kStartChildWorkflowExecutionFailed,
  kChildWorkflowExecutionStarted,
  kChildWorkflowExecutionCompleted,
  kChildWorkflowExecutionFailed,
  kChildWorkflowExecutionCanceled,
  kChildWorkflowExecutionTimedOut,
  kChildWorkflowExecutionTerminated,
  kSignalExternalWorkflowExecutionInitiated,
  kSignalExternalWorkflowExecutionFailed,
  kExternalWorkflowExecutionSignaled,
  kRequestCancelExternalWorkflowExecutionInitiated,
  kRequestCancelExternalWorkflowExecutionFailed,
  kExternalWorkflowExecutionCancelRequested,
};
inline constexpr std::size_t kEventTypeCount = std::variant_size_v<EventAttributes>;
static_assert(static_cast<std::size_t>(EventType::kExternalWorkflowExecutionCancelRequested) == kEventTypeCount);

struct HistoryEvent {
  EventId event_id = 0;
  sim::TimePoint time{};
  EventAttributes attributes;

  EventType type() const noexcept { return static_cast<EventType>(attributes.index() + 1); }

  template <typename T>
  const T* as() const noexcept { return std::get_if<T>(&attributes); }
  template <typename T>
  bool is() const noexcept { return std::holds_alternative<T>(attributes); }

  bool operator==(const HistoryEvent&) const = default;
};
DURO_CODEC_FIELDS(HistoryEvent, event_id, time, attributes);

// Temporal's name, e.g. "ActivityTaskScheduled"; "Unknown" out of range.
std::string_view event_type_name(EventType type) noexcept;
// The inverse; nullopt for an unknown name.
std::optional<EventType> event_type_from_name(std::string_view name) noexcept;

// True for the events that map one-to-one to a command (replay matches
// commands against exactly these): ActivityTaskScheduled,
// ActivityTaskCancelRequested, TimerStarted, TimerCanceled, MarkerRecorded,
// StartChildWorkflowExecutionInitiated, SignalExternal…Initiated,
// RequestCancelExternal…Initiated, and the four closes a workflow asks for
// (Completed, Failed, Canceled, ContinuedAsNew).
bool is_command_event(EventType type) noexcept;

// True for the events that close a run: Completed, Failed, TimedOut,
// Canceled, Terminated, ContinuedAsNew.
bool is_close_event(EventType type) noexcept;

}  // namespace duro::engine
