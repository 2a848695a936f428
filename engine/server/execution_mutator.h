// ExecutionMutator: the rules of a workflow run, as pure functions of its
// state, the request, and the time.
//
// Every change to a run goes through here: a client's start, signal, cancel
// or terminate; a worker's workflow-task or activity-task response; a timer
// firing. Each operation checks the request against the run's MutableState,
// then changes the state and records, in a Mutation, the history events it
// produced and the transfer and timer tasks it needs. The shard then writes
// the events, the new state and the tasks in one conditional store write —
// or none of it. The mutator does no I/O and reads no clock: given the same
// state, request and time, it produces the same mutation, which is what lets
// the engine's behaviour be tested without a simulation, and replayed.
//
// Semantics are Temporal's (../shared/TEMPORAL_MODEL.md), with these
// differences, on purpose:
// - Every workflow-task attempt is written to history (Temporal keeps
//   retried attempts "transient", unwritten until one completes). Retries
//   back off (ServerLimits), so a task that fails forever grows history
//   slowly; the history limit then terminates the run.
// - A redispatch timer re-hands a scheduled task to matching until it
//   starts, because Duro's matching keeps its queues in memory.
// - A retry policy may ask for jitter (RetryPolicy::jitter, off by
//   default): each retry's backoff is shortened by a fraction drawn from a
//   hash of the run, the activity and the attempt — random across
//   activities, yet the same every time the mutator computes it.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "engine/history/command.h"
#include "engine/history/event.h"
#include "engine/server/api.h"
#include "engine/server/history_tasks.h"
#include "engine/server/mutable_state.h"
#include "engine/server/server_limits.h"
#include "sim/random.h"
#include "sim/result.h"

namespace duro::engine {

// A run created in the same write as the close of the previous one
// (continue-as-new, or a retry of a failed or timed-out workflow).
struct NewRun {
  MutableState state;
  std::vector<HistoryEvent> events;
  std::vector<TransferTaskInfo> transfer;
  std::vector<TimerTaskInfo> timers;
};

// Continue-as-new's next run, on the heap but copied as a value (a task's
// mutation is copied, to be restored if a command is refused). Inline, as
// std::optional<NewRun>, it was 1.7 KB of every Mutation and so of every
// ExecutionMutator, in the frames of every update and start on a fiber's
// stack (a thousand starts at once: a thousand stacks faulted in that much
// deeper), for the rare mutation that has one.
class NextRun {
 public:
  NextRun() = default;
  NextRun(const NextRun& other) : run_(other.run_ ? std::make_unique<NewRun>(*other.run_) : nullptr) {}
  NextRun& operator=(const NextRun& other) {
    if (this != &other) run_ = other.run_ ? std::make_unique<NewRun>(*other.run_) : nullptr;
    return *this;
  }
  NextRun(NextRun&&) noexcept = default;
  NextRun& operator=(NextRun&&) noexcept = default;
  ~NextRun() = default;
  NextRun& operator=(std::unique_ptr<NewRun> run) noexcept {
    run_ = std::move(run);
    return *this;
  }

  explicit operator bool() const noexcept { return run_ != nullptr; }
  // Const as std::optional is: a const Mutation's next run is const too.
  NewRun& operator*() noexcept { return *run_; }
  const NewRun& operator*() const noexcept { return *run_; }
  NewRun* operator->() noexcept { return run_.get(); }
  const NewRun* operator->() const noexcept { return run_.get(); }

 private:
  std::unique_ptr<NewRun> run_;
};

struct Mutation {
  std::vector<HistoryEvent> events;  // Ids dense from the state's old next_event_id.
  std::vector<TransferTaskInfo> transfer;
  std::vector<TimerTaskInfo> timers;
  NextRun new_run;
  bool closed = false;  // The run closed in this mutation.
  bool state_changed = false;  // The state changed without events or tasks (a heartbeat).
  std::vector<std::string> warnings;  // For the server's log (history size).
  // Not a change: the op named an event this copy of the run does not have
  // yet (its id is at or after next_event_id), so the copy is stale (a cache
  // on an owner that lost the shard); the caller re-reads the run.
  bool stale_reference = false;

  bool empty() const noexcept {
    return events.empty() && transfer.empty() && timers.empty() && !new_run && !closed && !state_changed;
  }
};

// What a start needs, from a client (or a parent, or continue-as-new).
struct StartArgs {
  WorkflowExecution execution;  // Both ids set.
  std::string workflow_type;
  TaskQueue task_queue;
  Payload input;
  sim::Duration workflow_execution_timeout{0};
  sim::Duration workflow_run_timeout{0};
  sim::Duration workflow_task_timeout{0};
  std::optional<RetryPolicy> retry_policy;
  std::int32_t attempt = 1;
  std::string first_execution_run_id;   // Empty: this run.
  std::string continued_execution_run_id;
  ContinueAsNewInitiator initiator = ContinueAsNewInitiator::kWorkflow;
  std::optional<Failure> continued_failure;
  Payload last_completion_result;
  std::optional<ParentInfo> parent;
  ParentClosePolicy parent_close_policy = ParentClosePolicy::kTerminate;
  sim::TimePoint execution_expiration_time{};  // Epoch: from the execution timeout.
  sim::Duration first_workflow_task_backoff{0};
  std::string identity;
  std::string request_id;
  std::optional<std::string> signal_name;  // Signal-with-start.
  Payload signal_input;
  std::string signal_request_id;
};

// A new run id: 75 bits from `random`, as 15 characters of Crockford's
// base32 (digits and lowercase letters but i, l, o, u).
//
// Not a 36-character UUID, as Temporal's are: a run id is copied into every
// message, event, task token and key a run touches, and at 15 characters
// it fits a std::string's inline buffer, so none of those copies allocates
// (a workflow's allocations fell by a fifth). 75 bits keep run ids unique:
// two of a million runs share one with odds of about 1 in 10^11.
inline constexpr std::size_t kRunIdLength = 15;
std::string make_run_id(sim::Random& random);

class ExecutionMutator {
 public:
  // Events are stamped max(now, the run's last event time): a new shard
  // owner's clock may be behind the last one's, and history never goes back.
  // `original`, if given, is `state` as it is now, kept unchanged by the
  // caller for as long as the mutator lives (the shard's cached copy): a
  // workflow task whose commands are refused, when it is the mutator's
  // first op, restores it from there instead of copying the run's state to
  // roll back to. (A shard runs one op on each mutator.)
  ExecutionMutator(MutableState& state, sim::TimePoint now, const ServerLimits& limits,
                   const MutableState* original = nullptr);

  // A new run's state and first events (Started, maybe Signaled, the first
  // WorkflowTaskScheduled or its backoff timer) and timeout timers.
  // On the heap: see NextRun.
  static sim::Result<std::unique_ptr<NewRun>> start(const StartArgs& args, sim::TimePoint now,
                                                    const ServerLimits& limits);

  const Mutation& mutation() const noexcept { return mutation_; }
  Mutation take_mutation() { return std::move(mutation_); }
  const MutableState& state() const noexcept { return state_; }

  // --- Clients ------------------------------------------------------------------
  // kNotFound unless running. A request id seen before: ok, nothing changes.
  sim::Result<void> signal(const std::string& signal_name, const Payload& input, const std::string& identity,
                           const std::string& request_id);
  sim::Result<void> request_cancel(const std::string& cause, const std::string& identity,
                                   const std::string& request_id,
                                   std::optional<std::pair<WorkflowExecution, EventId>> external = std::nullopt);
  sim::Result<void> terminate(const std::string& reason, const Payload& details, const std::string& identity);

  // --- Workflow tasks -------------------------------------------------------------
  // Matching hands the task to a poller: kNotFound if it is not this run's
  // outstanding, unstarted task (or started by another poll).
  sim::Result<void> record_workflow_task_started(EventId scheduled_event_id, std::int32_t attempt,
                                                 const std::string& request_id, const std::string& identity);
  // Applies the commands. A stale token is kNotFound. Commands the server
  // refuses fail the task instead (WorkflowTaskFailed) and return
  // kInvalidArgument, as does completing while new events wait
  // (UnhandledCommand): in both cases the mutation is still to be written.
  // Activities it schedules on the run's own task queue whose ids the
  // request lists as eager are started at once (no task for matching),
  // unless the task also closes the run; eager_started() names them.
  sim::Result<void> complete_workflow_task(const TaskToken& token, const RespondWorkflowTaskCompletedRequest& request,
                                           sim::Random& run_ids);
  // The scheduled event ids of the activities complete_workflow_task
  // started eagerly, in command order.
  const std::vector<EventId>& eager_started() const noexcept { return eager_started_; }
  sim::Result<void> fail_workflow_task(const TaskToken& token, WorkflowTaskFailedCause cause,
                                       const Failure& failure, const std::string& identity);
  // Eager workflow task: after an op of this mutation scheduled the run's
  // workflow task on `sticky_queue`, starts it at once for the worker that
  // polls that queue (as record_workflow_task_started would for its poll
  // `request_id`), and takes back the task for matching and the sticky
  // schedule-to-start timer the schedule wrote. False, and nothing changes,
  // if no task was scheduled in this mutation, or it is on another queue.
  bool start_workflow_task_eagerly(const TaskQueue& sticky_queue, const std::string& request_id,
                                   const std::string& identity);

  // --- Activity tasks ---------------------------------------------------------------
  sim::Result<void> record_activity_task_started(EventId scheduled_event_id, std::int32_t attempt,
                                                 const std::string& request_id, const std::string& identity);
  // Returns whether cancellation was requested.
  sim::Result<bool> record_activity_heartbeat(const TaskToken& token, const Payload& details);
  sim::Result<void> complete_activity(const TaskToken& token, const Payload& result, const std::string& identity);
  sim::Result<void> fail_activity(const TaskToken& token, const Failure& failure, const Payload& details,
                                  const std::string& identity);
  sim::Result<void> cancel_activity(const TaskToken& token, const Payload& details, const std::string& identity);

  // --- Timers (stale ones change nothing and return ok) --------------------------------
  // False when a timer would change nothing in `state`: what it timed has
  // moved on (completed, started, retried, closed). Each handler below
  // starts with this check, so the shard may make it first, on the run as
  // cached, and skip a stale timer without copying the run.
  static bool timer_may_act(const MutableState& state, const TimerKind& timer);
  // The handler below for the timer's kind.
  void fire_timer(const TimerKind& timer, sim::Random& run_ids);
  void fire_user_timer(const UserTimerTimer& timer);
  void activity_timeout(const ActivityTimeoutTimer& timer);
  void activity_retry(const ActivityRetryTimer& timer);
  void workflow_task_timeout(const WorkflowTaskTimeoutTimer& timer);
  void workflow_task_backoff();
  void workflow_timeout(const WorkflowTimeoutTimer& timer, sim::Random& run_ids);
  // Re-hands a task to matching if still unstarted; true if it did.
  bool redispatch(const RedispatchTimer& timer);

  // --- Children and other workflows (from this run's transfer tasks) ------------------
  void child_started(EventId initiated_event_id, const std::string& run_id);
  void child_start_failed(EventId initiated_event_id, StartChildFailedCause cause);
  // The child's close event (from the child's CloseTransfer).
  void child_closed(EventId initiated_event_id, const WorkflowExecution& child, const HistoryEvent& close_event);
  void external_delivered(EventId initiated_event_id);
  void external_failed(EventId initiated_event_id, ExternalFailedCause cause);

 private:
  HistoryEvent& add_event(EventAttributes attributes);
  // An event from outside the workflow task: buffered while a task is
  // started; otherwise written, and a workflow task scheduled for it.
  void add_external_event(EventAttributes attributes);
  void buffer_event(HistoryEvent event);
  void flush_buffered_events();
  // True if the activity's close (completed, failed, timed out, canceled)
  // is among the buffered events.
  bool buffered_activity_close(EventId scheduled_event_id) const;
  // For an op whose target was not found: true (and the mutation marked
  // stale) when the event it names is newer than this copy of the run.
  bool stale_reference(EventId event_id);
  void schedule_workflow_task(sim::Duration backoff = sim::Duration{0});
  void dispatch_activity(ActivityInfo& activity);
  // Marks the activity's current attempt started by `identity` and arms
  // its start-to-close and heartbeat timeouts.
  void start_activity(ActivityInfo& activity, const std::string& request_id, const std::string& identity);
  void add_timer(sim::TimePoint fire_time, TimerKind kind);
  void close(WorkflowStatus status, EventAttributes close_event);
  void start_new_run(const StartArgs& args);
  StartArgs next_run_args(sim::Random& run_ids) const;
  // A failure under the workflow's retry policy: the backoff of the next
  // run, or nullopt to close for good.
  std::optional<sim::Duration> workflow_retry_backoff(const Failure& failure) const;
  bool retry_activity(ActivityInfo& activity, const Failure& failure);
  void close_activity_failed(ActivityInfo& activity, const Failure& failure, bool timed_out, RetryState retry_state);
  EventId write_activity_started(const ActivityInfo& activity);
  sim::Result<void> apply_command(const Command& command, EventId completed_event_id, sim::Random& run_ids);
  sim::Result<void> check_payload(const Payload& payload, const char* what) const;
  void check_history_size();
  sim::Result<const ActivityInfo*> activity_for(const TaskToken& token) const;

  MutableState& state_;
  const MutableState* original_;
  sim::TimePoint now_;
  const ServerLimits& limits_;
  // Unstarted activities a task's commands cancelled: their Canceled
  // events are written after the task's command events.
  std::vector<ActivityTaskCanceled> unstarted_cancels_;
  // While complete_workflow_task applies commands: the request, whose
  // eager activity ids it honours; and what it started eagerly.
  const RespondWorkflowTaskCompletedRequest* completing_ = nullptr;
  std::vector<EventId> eager_started_;
  Mutation mutation_;
};

}  // namespace duro::engine
