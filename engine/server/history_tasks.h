// The shard's task queues: what history must do later, written atomically
// with the state change that made it necessary (the transactional outbox).
//
// Transfer tasks are due at once: hand a workflow or activity task to
// matching, start a child, signal or cancel another workflow, tell a parent
// its child closed. Timer tasks are due at a time: a workflow timer, an
// activity or workflow-task timeout, a retry backoff, a run timeout.
//
// Tasks are at least once: the shard runs them after a crash again if their
// completion was not recorded, and a new owner runs what the old one left.
// So every executor reloads the run's state and drops a task that no longer
// applies (the activity was retried since — its attempt moved on —, the
// timer was cancelled, the run closed). Stale tasks are normal, not errors.
#pragma once

#include <cstdint>
#include <string>
#include <variant>

#include "engine/history/event.h"
#include "sim/codec.h"

namespace duro::engine {

// --- Transfer tasks ---------------------------------------------------------------

// Hand the run's workflow task to matching.
struct WorkflowTaskTransfer {
  EventId scheduled_event_id = 0;
  std::int32_t attempt = 1;
  TaskQueue task_queue;
};
DURO_CODEC_FIELDS(WorkflowTaskTransfer, scheduled_event_id, attempt, task_queue);

// Hand an activity attempt to matching.
struct ActivityTaskTransfer {
  EventId scheduled_event_id = 0;
  std::int32_t attempt = 1;
  TaskQueue task_queue;
};
DURO_CODEC_FIELDS(ActivityTaskTransfer, scheduled_event_id, attempt, task_queue);

// Start the child of StartChildWorkflowExecutionInitiated.
struct StartChildTransfer {
  EventId initiated_event_id = 0;
};
DURO_CODEC_FIELDS(StartChildTransfer, initiated_event_id);

// Deliver SignalExternal… / RequestCancelExternal….
struct ExternalTransfer {
  EventId initiated_event_id = 0;
};
DURO_CODEC_FIELDS(ExternalTransfer, initiated_event_id);

// The run closed: tell the parent, apply the parent-close policy to children.
struct CloseTransfer {
  EventId close_event_id = 0;
};
DURO_CODEC_FIELDS(CloseTransfer, close_event_id);

using TransferKind = std::variant<WorkflowTaskTransfer, ActivityTaskTransfer, StartChildTransfer, ExternalTransfer,
                                  CloseTransfer>;

struct TransferTaskInfo {
  WorkflowExecution execution;
  TransferKind kind;
};
DURO_CODEC_FIELDS(TransferTaskInfo, execution, kind);

// --- Timer tasks --------------------------------------------------------------------

struct UserTimerTimer {
  std::string timer_id;
  EventId started_event_id = 0;
};
DURO_CODEC_FIELDS(UserTimerTimer, timer_id, started_event_id);

struct ActivityTimeoutTimer {
  EventId scheduled_event_id = 0;
  std::int32_t attempt = 1;
  TimeoutType timeout_type = TimeoutType::kStartToClose;
};
DURO_CODEC_FIELDS(ActivityTimeoutTimer, scheduled_event_id, attempt, timeout_type);

// An activity's retry backoff is over: hand the next attempt to matching.
struct ActivityRetryTimer {
  EventId scheduled_event_id = 0;
  std::int32_t attempt = 1;  // The attempt to start.
};
DURO_CODEC_FIELDS(ActivityRetryTimer, scheduled_event_id, attempt);

struct WorkflowTaskTimeoutTimer {
  EventId scheduled_event_id = 0;
  std::int32_t attempt = 1;
  TimeoutType timeout_type = TimeoutType::kStartToClose;  // Or kScheduleToStart (sticky queue).
};
DURO_CODEC_FIELDS(WorkflowTaskTimeoutTimer, scheduled_event_id, attempt, timeout_type);

// A failed workflow task's backoff is over, or a run's first task was
// delayed (continue-as-new / retry backoff): schedule the workflow task.
struct WorkflowTaskBackoffTimer {
  std::int32_t failures = 0;  // The consecutive failures it backs off from (0: a run's first task).
};
DURO_CODEC_FIELDS(WorkflowTaskBackoffTimer, failures);

struct WorkflowTimeoutTimer {
  bool execution = false;  // The whole chain's execution timeout; else the run's.
};
DURO_CODEC_FIELDS(WorkflowTimeoutTimer, execution);

// Matching may have lost a task it was given (its node crashed): if the
// task has still not started, hand it over again.
struct RedispatchTimer {
  bool activity = false;
  EventId scheduled_event_id = 0;
  std::int32_t attempt = 1;
  std::int32_t round = 1;  // Backs off: each round waits longer.
};
DURO_CODEC_FIELDS(RedispatchTimer, activity, scheduled_event_id, attempt, round);

using TimerKind = std::variant<UserTimerTimer, ActivityTimeoutTimer, ActivityRetryTimer, WorkflowTaskTimeoutTimer,
                               WorkflowTaskBackoffTimer, WorkflowTimeoutTimer, RedispatchTimer>;

struct TimerTaskInfo {
  WorkflowExecution execution;
  sim::TimePoint fire_time{};
  TimerKind kind;
};
DURO_CODEC_FIELDS(TimerTaskInfo, execution, fire_time, kind);

}  // namespace duro::engine
