// MutableState: everything the history service knows about one workflow run
// besides its events — what is pending, what is in flight, what comes next.
//
// It is what Temporal keeps in its executions table. The store holds it as
// opaque bytes next to the run's history, and it is written in the same
// conditional write as the events and tasks it goes with, so it always
// agrees with history: a crash can lose a whole write, never half of one.
// A shard keeps recently used states in memory; any doubt (a failed or
// unknown write, a new owner) drops them and they are read again.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "engine/history/event.h"
#include "engine/server/api.h"
#include "sim/clock.h"
#include "sim/codec.h"

namespace duro::engine {

struct ActivityInfo {
  EventId scheduled_event_id = 0;
  std::string activity_id;
  std::string activity_type;
  TaskQueue task_queue;
  sim::TimePoint scheduled_time{};          // Of the first attempt.
  sim::TimePoint attempt_scheduled_time{};  // Of the current attempt (after its backoff).
  sim::TimePoint started_time{};            // Epoch: the current attempt has not started.
  std::int32_t attempt = 1;
  std::string started_identity;
  std::string started_request_id;  // Of the poll that started it: a retried poll gets the same answer.
  sim::Duration schedule_to_close_timeout{0};
  sim::Duration schedule_to_start_timeout{0};
  sim::Duration start_to_close_timeout{0};
  sim::Duration heartbeat_timeout{0};
  RetryPolicy retry_policy;
  std::optional<Failure> last_failure;
  Payload heartbeat_details;
  sim::TimePoint last_heartbeat_time{};
  bool cancel_requested = false;
  EventId cancel_requested_event_id = 0;
  bool retry_backoff = false;  // Waiting out a retry backoff: no task in matching.

  bool started() const noexcept { return started_time != sim::TimePoint{}; }
};
DURO_CODEC_FIELDS(ActivityInfo, scheduled_event_id, activity_id, activity_type, task_queue, scheduled_time,
                  attempt_scheduled_time, started_time, attempt, started_identity, started_request_id,
                  schedule_to_close_timeout, schedule_to_start_timeout, start_to_close_timeout, heartbeat_timeout,
                  retry_policy, last_failure, heartbeat_details, last_heartbeat_time, cancel_requested,
                  cancel_requested_event_id, retry_backoff);

struct TimerInfo {
  std::string timer_id;
  EventId started_event_id = 0;
  sim::TimePoint expiry_time{};
};
DURO_CODEC_FIELDS(TimerInfo, timer_id, started_event_id, expiry_time);

struct ChildInfo {
  EventId initiated_event_id = 0;
  std::string workflow_id;
  std::string workflow_type;
  std::string run_id;  // Empty until ChildWorkflowExecutionStarted.
  EventId started_event_id = 0;
  ParentClosePolicy parent_close_policy = ParentClosePolicy::kTerminate;
};
DURO_CODEC_FIELDS(ChildInfo, initiated_event_id, workflow_id, workflow_type, run_id, started_event_id,
                  parent_close_policy);

// A pending SignalExternal… or RequestCancelExternal… command.
struct ExternalInfo {
  EventId initiated_event_id = 0;
  bool cancel = false;  // RequestCancelExternal; else SignalExternal.
  WorkflowExecution target;
};
DURO_CODEC_FIELDS(ExternalInfo, initiated_event_id, cancel, target);

// The run's workflow task, if one is outstanding (scheduled_event_id != 0).
struct WorkflowTaskInfo {
  EventId scheduled_event_id = 0;
  EventId started_event_id = 0;  // 0: scheduled, not started.
  std::int32_t attempt = 1;
  TaskQueue task_queue;
  sim::TimePoint scheduled_time{};
  sim::TimePoint started_time{};
  std::string request_id;  // Of the poll that started it.
  std::string identity;
  sim::Duration start_to_close_timeout{0};
};
DURO_CODEC_FIELDS(WorkflowTaskInfo, scheduled_event_id, started_event_id, attempt, task_queue, scheduled_time,
                  started_time, request_id, identity, start_to_close_timeout);

struct MutableState {
  // --- The run -------------------------------------------------------------
  WorkflowExecution execution;
  std::string workflow_type;
  TaskQueue task_queue;
  WorkflowStatus status = WorkflowStatus::kRunning;
  EventId next_event_id = 1;
  sim::TimePoint last_event_time{};  // Event times never go backwards, whichever node writes.
  sim::TimePoint start_time{};
  sim::TimePoint close_time{};
  sim::Duration workflow_execution_timeout{0};
  sim::Duration workflow_run_timeout{0};
  sim::Duration workflow_task_timeout{0};
  sim::TimePoint execution_expiration_time{};  // Epoch: none.
  std::optional<RetryPolicy> retry_policy;
  std::int32_t attempt = 1;
  std::string first_execution_run_id;
  std::optional<ParentInfo> parent;
  ParentClosePolicy parent_close_policy = ParentClosePolicy::kTerminate;
  std::string start_request_id;
  std::string new_execution_run_id;  // Set on close by continue-as-new or a retry.

  // --- Workflow tasks ---------------------------------------------------------
  WorkflowTaskInfo workflow_task;
  EventId previous_started_event_id = 0;  // Of the last completed workflow task.
  TaskQueue sticky_task_queue;            // Empty name: none.
  sim::Duration sticky_schedule_to_start_timeout{0};
  std::int32_t workflow_task_failures = 0;  // Consecutive; reset by a completion.
  bool workflow_task_backoff = false;       // A retry backoff timer is pending.

  // --- Pending work -------------------------------------------------------------
  std::map<EventId, ActivityInfo> activities;  // By scheduled event id.
  std::map<std::string, TimerInfo> timers;     // By timer id.
  std::map<EventId, ChildInfo> children;       // By initiated event id.
  std::map<EventId, ExternalInfo> externals;   // By initiated event id.
  // Events that arrived while a workflow task was started: written to
  // history (ids assigned) after the task closes, so the task's own events
  // stay contiguous. Their event_id is 0 until then.
  std::vector<HistoryEvent> buffered_events;
  bool cancel_requested = false;
  // Request ids of recent signals and cancels (oldest first, bounded), so a
  // retried signal is delivered once.
  std::vector<std::string> request_ids;

  // --- Closing ------------------------------------------------------------------
  std::optional<HistoryEvent> close_event;
  bool history_size_warned = false;
  Payload input;  // The run's input: a retry of the workflow starts with it again.

  bool running() const noexcept { return status == WorkflowStatus::kRunning; }
  bool workflow_task_outstanding() const noexcept { return workflow_task.scheduled_event_id != 0; }
  bool workflow_task_started() const noexcept { return workflow_task.started_event_id != 0; }
  const ActivityInfo* activity_by_id(std::string_view activity_id) const;
  bool seen_request(std::string_view request_id) const;
  void remember_request(std::string request_id);
};
DURO_CODEC_FIELDS(MutableState, execution, workflow_type, task_queue, status, next_event_id, last_event_time,
                  start_time, close_time, workflow_execution_timeout, workflow_run_timeout, workflow_task_timeout,
                  execution_expiration_time, retry_policy, attempt, first_execution_run_id, parent,
                  parent_close_policy, start_request_id, new_execution_run_id, workflow_task,
                  previous_started_event_id, sticky_task_queue, sticky_schedule_to_start_timeout,
                  workflow_task_failures, workflow_task_backoff, activities, timers, children, externals,
                  buffered_events, cancel_requested, request_ids, close_event, history_size_warned, input);

inline constexpr std::size_t kRequestIdsPerRunMax = 1000;

}  // namespace duro::engine
