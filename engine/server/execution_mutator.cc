#include "engine/server/execution_mutator.h"

#include <algorithm>
#include <map>
#include <optional>
#include <utility>

#include "sim/assert.h"

namespace duro::engine {
namespace {

using sim::Error;
using sim::ErrorCode;

Error not_found(std::string message) { return Error{ErrorCode::kNotFound, "NotFound: " + std::move(message)}; }
Error bad_request(std::string message) { return Error{ErrorCode::kInvalidArgument, "BadRequest: " + std::move(message)}; }

// The backoff before workflow-task attempt `failures + 1`: none for the
// first retry, then doubling from the initial value up to the maximum.
sim::Duration workflow_task_backoff_for(std::int32_t failures, const ServerLimits& limits) {
  if (failures <= 1) return sim::Duration{0};
  sim::Duration backoff = limits.workflow_task_retry_backoff_initial;
  for (std::int32_t i = 2; i < failures && backoff < limits.workflow_task_retry_backoff_max; i++) backoff *= 2;
  return std::min(backoff, limits.workflow_task_retry_backoff_max);
}

// What seeds a retry's jitter (jittered_backoff): the run, what is retried
// (an activity's scheduled event id; 0 for the run itself) and the attempt.
// Distinct for every retry, so activities that failed together draw apart;
// the same however often the mutator computes it, so it stays pure.
std::uint64_t retry_jitter_seed(const WorkflowExecution& execution, EventId retried, std::int32_t attempt) {
  std::uint64_t state = sim::hash_label(execution.run_id) ^ static_cast<std::uint64_t>(retried);
  state = sim::splitmix64(state) ^ static_cast<std::uint64_t>(attempt);
  return sim::splitmix64(state);
}

}  // namespace

std::string make_run_id(sim::Random& random) {
  static constexpr char kCrockford[] = "0123456789abcdefghjkmnpqrstvwxyz";
  static constexpr int kBitsPerChar = 5;
  static_assert(kRunIdLength * kBitsPerChar <= 128);
  std::uint64_t words[2] = {random.next(), random.next()};
  std::string id(kRunIdLength, '0');
  for (std::size_t i = 0; i < kRunIdLength; i++) {
    // Twelve characters from the first word (60 bits), the rest from the second.
    std::uint64_t& word = words[i < 64 / kBitsPerChar ? 0 : 1];
    id[i] = kCrockford[word & 31];
    word >>= kBitsPerChar;
  }
  DURO_ASSERT(id.size() == kRunIdLength);
  return id;
}

ExecutionMutator::ExecutionMutator(MutableState& state, sim::TimePoint now, const ServerLimits& limits,
                                   const MutableState* original)
    : state_(state), original_(original), now_(std::max(now, state.last_event_time)), limits_(limits) {
  DURO_ASSERT(original == nullptr || (original != &state && original->next_event_id == state.next_event_id &&
                                      original->execution == state.execution));
}

// --- Events -----------------------------------------------------------------------------

HistoryEvent& ExecutionMutator::add_event(EventAttributes attributes) {
  DURO_ASSERT(state_.next_event_id >= 1);
  HistoryEvent& event = mutation_.events.emplace_back();
  event.event_id = state_.next_event_id++;
  event.time = now_;
  event.attributes = std::move(attributes);
  state_.last_event_time = now_;
  return event;
}

void ExecutionMutator::add_external_event(EventAttributes attributes) {
  DURO_ASSERT(state_.running());
  if (state_.workflow_task_started()) {
    HistoryEvent event;
    event.time = now_;
    event.attributes = std::move(attributes);
    buffer_event(std::move(event));
    return;
  }
  add_event(std::move(attributes));
  schedule_workflow_task();
}

void ExecutionMutator::buffer_event(HistoryEvent event) {
  DURO_ASSERT(state_.workflow_task_started());
  DURO_ASSERT(event.event_id == 0);
  state_.buffered_events.push_back(std::move(event));
  // No event or task in the mutation, yet the state must be written.
  mutation_.state_changed = true;
}

bool ExecutionMutator::buffered_activity_close(EventId scheduled_event_id) const {
  return std::any_of(state_.buffered_events.begin(), state_.buffered_events.end(), [&](const HistoryEvent& event) {
    if (const auto* e = event.as<ActivityTaskCompleted>()) return e->scheduled_event_id == scheduled_event_id;
    if (const auto* e = event.as<ActivityTaskFailed>()) return e->scheduled_event_id == scheduled_event_id;
    if (const auto* e = event.as<ActivityTaskTimedOut>()) return e->scheduled_event_id == scheduled_event_id;
    if (const auto* e = event.as<ActivityTaskCanceled>()) return e->scheduled_event_id == scheduled_event_id;
    return false;
  });
}

bool ExecutionMutator::stale_reference(EventId event_id) {
  DURO_ASSERT(event_id > 0);
  if (event_id < state_.next_event_id) return false;
  mutation_.stale_reference = true;
  return true;
}

void ExecutionMutator::flush_buffered_events() {
  std::vector<HistoryEvent> buffered = std::move(state_.buffered_events);
  state_.buffered_events.clear();
  // Events buffered in pairs (an activity's Started and its close; a
  // child's Started and its close) refer to each other by id, known only
  // now: -1 stands for "the Started event buffered before me".
  std::map<EventId, EventId> activity_started;  // Scheduled id -> Started id.
  std::map<EventId, EventId> child_started;     // Initiated id -> Started id.
  auto resolve = [](EventId& id, const std::map<EventId, EventId>& ids, EventId key) {
    if (id != -1) return;
    auto it = ids.find(key);
    DURO_ASSERT_MSG(it != ids.end(), "a buffered close event without its buffered Started event");
    id = it->second;
  };
  for (HistoryEvent& event : buffered) {
    EventAttributes& a = event.attributes;
    if (auto* e = std::get_if<ActivityTaskCompleted>(&a)) resolve(e->started_event_id, activity_started, e->scheduled_event_id);
    if (auto* e = std::get_if<ActivityTaskFailed>(&a)) resolve(e->started_event_id, activity_started, e->scheduled_event_id);
    if (auto* e = std::get_if<ActivityTaskTimedOut>(&a)) resolve(e->started_event_id, activity_started, e->scheduled_event_id);
    if (auto* e = std::get_if<ActivityTaskCanceled>(&a)) resolve(e->started_event_id, activity_started, e->scheduled_event_id);
    if (auto* e = std::get_if<ChildWorkflowExecutionCompleted>(&a)) resolve(e->started_event_id, child_started, e->initiated_event_id);
    if (auto* e = std::get_if<ChildWorkflowExecutionFailed>(&a)) resolve(e->started_event_id, child_started, e->initiated_event_id);
    if (auto* e = std::get_if<ChildWorkflowExecutionCanceled>(&a)) resolve(e->started_event_id, child_started, e->initiated_event_id);
    if (auto* e = std::get_if<ChildWorkflowExecutionTimedOut>(&a)) resolve(e->started_event_id, child_started, e->initiated_event_id);
    if (auto* e = std::get_if<ChildWorkflowExecutionTerminated>(&a)) resolve(e->started_event_id, child_started, e->initiated_event_id);
    const HistoryEvent& written = add_event(std::move(a));
    if (const auto* e = written.as<ActivityTaskStarted>()) activity_started[e->scheduled_event_id] = written.event_id;
    if (const auto* e = written.as<ChildWorkflowExecutionStarted>()) {
      child_started[e->initiated_event_id] = written.event_id;
      auto child = state_.children.find(e->initiated_event_id);
      if (child != state_.children.end()) child->second.started_event_id = written.event_id;
    }
  }
}

void ExecutionMutator::add_timer(sim::TimePoint fire_time, TimerKind kind) {
  mutation_.timers.push_back(TimerTaskInfo{state_.execution, fire_time, std::move(kind)});
}

void ExecutionMutator::schedule_workflow_task(sim::Duration backoff) {
  if (!state_.running() || state_.workflow_task_outstanding() || state_.workflow_task_backoff) return;
  if (backoff > sim::Duration{0}) {
    state_.workflow_task_backoff = true;
    add_timer(now_ + backoff, WorkflowTaskBackoffTimer{state_.workflow_task_failures});
    return;
  }
  WorkflowTaskInfo& task = state_.workflow_task;
  task = WorkflowTaskInfo{};
  task.attempt = state_.workflow_task_failures + 1;
  task.task_queue = state_.sticky_task_queue.name.empty() ? state_.task_queue : state_.sticky_task_queue;
  task.scheduled_time = now_;
  task.start_to_close_timeout = state_.workflow_task_timeout;
  task.scheduled_event_id =
      add_event(WorkflowTaskScheduled{task.task_queue, task.start_to_close_timeout, task.attempt}).event_id;
  mutation_.transfer.push_back(
      TransferTaskInfo{state_.execution, WorkflowTaskTransfer{task.scheduled_event_id, task.attempt, task.task_queue}});
  if (task.task_queue.kind == TaskQueueKind::kSticky) {
    // Nobody picks it up on the sticky queue in time: the worker is gone;
    // the timeout moves the task to the normal queue.
    add_timer(now_ + state_.sticky_schedule_to_start_timeout,
              WorkflowTaskTimeoutTimer{task.scheduled_event_id, task.attempt, TimeoutType::kScheduleToStart});
  } else {
    add_timer(now_ + limits_.redispatch_initial, RedispatchTimer{false, task.scheduled_event_id, task.attempt, 1});
  }
}

sim::Result<void> ExecutionMutator::check_payload(const Payload& payload, const char* what) const {
  if (payload.size() > limits_.payload_bytes_max) {
    return Error{ErrorCode::kInvalidArgument, std::string("BadRequest: ") + what + " of " +
                                                  std::to_string(payload.size()) + " bytes exceeds the limit of " +
                                                  std::to_string(limits_.payload_bytes_max)};
  }
  return {};
}

void ExecutionMutator::check_history_size() {
  if (!state_.running()) return;
  const std::int64_t length = state_.next_event_id - 1;
  if (length >= limits_.history_events_warn && !state_.history_size_warned) {
    state_.history_size_warned = true;
    mutation_.warnings.push_back("history of " + state_.execution.workflow_id + "/" + state_.execution.run_id +
                                 " has " + std::to_string(length) + " events (warning threshold " +
                                 std::to_string(limits_.history_events_warn) + "); consider continue-as-new");
  }
  if (length >= limits_.history_events_max) {
    mutation_.warnings.push_back("history of " + state_.execution.workflow_id + "/" + state_.execution.run_id +
                                 " reached the limit of " + std::to_string(limits_.history_events_max) +
                                 " events: terminated");
    flush_buffered_events();
    close(WorkflowStatus::kTerminated,
          WorkflowExecutionTerminated{"history size exceeds limit of " + std::to_string(limits_.history_events_max) +
                                          " events",
                                      {}, "history-service"});
  }
}

// --- Start and close ------------------------------------------------------------------------

sim::Result<std::unique_ptr<NewRun>> ExecutionMutator::start(const StartArgs& args, sim::TimePoint now,
                                                             const ServerLimits& limits) {
  DURO_ASSERT(!args.execution.workflow_id.empty() && !args.execution.run_id.empty());
  if (args.workflow_type.empty()) return bad_request("workflow type is empty");
  if (args.task_queue.name.empty()) return bad_request("task queue is empty");
  if (args.workflow_execution_timeout < sim::Duration{0} || args.workflow_run_timeout < sim::Duration{0} ||
      args.workflow_task_timeout < sim::Duration{0}) {
    return bad_request("negative timeout");
  }
  if (args.retry_policy) {
    if (std::optional<std::string> why = validate(*args.retry_policy)) return bad_request("retry policy: " + *why);
  }
  if (args.input.size() > limits.payload_bytes_max || args.signal_input.size() > limits.payload_bytes_max) {
    return bad_request("input exceeds the payload limit of " + std::to_string(limits.payload_bytes_max) + " bytes");
  }
  // On the heap: a start runs in a fiber, whose stack is resident as deep
  // as it ever ran; the state is 1.7 KB, and the caller moves it on.
  auto run = std::make_unique<NewRun>();
  MutableState& state = run->state;
  state.execution = args.execution;
  state.workflow_type = args.workflow_type;
  state.task_queue = args.task_queue;
  state.task_queue.kind = TaskQueueKind::kNormal;
  state.start_time = now;
  state.last_event_time = now;
  state.workflow_execution_timeout = args.workflow_execution_timeout;
  state.workflow_run_timeout = args.workflow_run_timeout;
  // Temporal: the run timeout defaults to, and is capped by, the execution timeout.
  if (state.workflow_execution_timeout > sim::Duration{0} &&
      (state.workflow_run_timeout == sim::Duration{0} || state.workflow_run_timeout > state.workflow_execution_timeout)) {
    state.workflow_run_timeout = state.workflow_execution_timeout;
  }
  state.workflow_task_timeout = args.workflow_task_timeout == sim::Duration{0} ? limits.default_workflow_task_timeout
                                                                               : args.workflow_task_timeout;
  state.workflow_task_timeout = std::min(state.workflow_task_timeout, limits.max_workflow_task_timeout);
  state.execution_expiration_time = args.execution_expiration_time;
  if (state.execution_expiration_time == sim::TimePoint{} && state.workflow_execution_timeout > sim::Duration{0}) {
    state.execution_expiration_time = now + state.workflow_execution_timeout;
  }
  if (args.retry_policy) state.retry_policy = normalized(*args.retry_policy);
  state.attempt = args.attempt;
  state.first_execution_run_id = args.first_execution_run_id.empty() ? args.execution.run_id : args.first_execution_run_id;
  state.parent = args.parent;
  state.parent_close_policy = args.parent_close_policy;
  state.start_request_id = args.request_id;
  state.input = args.input;

  ExecutionMutator mutator(state, now, limits);
  WorkflowExecutionStarted started;
  started.workflow_type = args.workflow_type;
  started.task_queue = state.task_queue;
  started.input = args.input;
  started.workflow_execution_timeout = state.workflow_execution_timeout;
  started.workflow_run_timeout = state.workflow_run_timeout;
  started.workflow_task_timeout = state.workflow_task_timeout;
  started.retry_policy = state.retry_policy;
  started.attempt = args.attempt;
  started.original_execution_run_id = args.execution.run_id;
  started.first_execution_run_id = state.first_execution_run_id;
  started.continued_execution_run_id = args.continued_execution_run_id;
  started.initiator = args.initiator;
  started.continued_failure = args.continued_failure;
  started.last_completion_result = args.last_completion_result;
  started.parent = args.parent;
  started.parent_close_policy = args.parent_close_policy;
  started.workflow_execution_expiration_time = state.execution_expiration_time;
  started.first_workflow_task_backoff = args.first_workflow_task_backoff;
  started.identity = args.identity;
  started.request_id = args.request_id;
  mutator.add_event(std::move(started));
  if (args.signal_name) {
    mutator.add_event(WorkflowExecutionSignaled{*args.signal_name, args.signal_input, args.identity,
                                                args.signal_request_id});
    if (!args.signal_request_id.empty()) state.remember_request(args.signal_request_id);
  }
  if (state.workflow_run_timeout > sim::Duration{0}) {
    mutator.add_timer(now + args.first_workflow_task_backoff + state.workflow_run_timeout, WorkflowTimeoutTimer{false});
  }
  if (state.execution_expiration_time != sim::TimePoint{}) {
    mutator.add_timer(state.execution_expiration_time, WorkflowTimeoutTimer{true});
  }
  mutator.schedule_workflow_task(args.first_workflow_task_backoff);
  Mutation mutation = mutator.take_mutation();
  run->events = std::move(mutation.events);
  run->transfer = std::move(mutation.transfer);
  run->timers = std::move(mutation.timers);
  return run;
}

void ExecutionMutator::close(WorkflowStatus status, EventAttributes close_event) {
  DURO_ASSERT(state_.running());
  DURO_ASSERT(status != WorkflowStatus::kRunning);
  HistoryEvent& event = add_event(std::move(close_event));
  DURO_ASSERT(is_close_event(event.type()));
  state_.status = status;
  state_.close_time = now_;
  state_.close_event = event;
  // What is still pending dies with the run; the tasks already written for
  // it find the run closed and do nothing. Children are dealt with by the
  // close transfer task (parent-close policy), which needs them.
  state_.activities.clear();
  state_.timers.clear();
  state_.externals.clear();
  state_.buffered_events.clear();
  state_.workflow_task = WorkflowTaskInfo{};
  state_.workflow_task_backoff = false;
  mutation_.closed = true;
  mutation_.transfer.push_back(TransferTaskInfo{state_.execution, CloseTransfer{event.event_id}});
}

StartArgs ExecutionMutator::next_run_args(sim::Random& run_ids) const {
  StartArgs args;
  args.execution = WorkflowExecution{state_.execution.workflow_id, make_run_id(run_ids)};
  args.workflow_type = state_.workflow_type;
  args.task_queue = state_.task_queue;
  args.workflow_execution_timeout = state_.workflow_execution_timeout;
  args.workflow_run_timeout = state_.workflow_run_timeout;
  args.workflow_task_timeout = state_.workflow_task_timeout;
  args.retry_policy = state_.retry_policy;
  args.first_execution_run_id = state_.first_execution_run_id;
  args.continued_execution_run_id = state_.execution.run_id;
  args.parent = state_.parent;
  args.parent_close_policy = state_.parent_close_policy;
  args.execution_expiration_time = state_.execution_expiration_time;
  args.request_id = state_.start_request_id;
  args.input = state_.input;
  return args;
}

void ExecutionMutator::start_new_run(const StartArgs& args) {
  sim::Result<std::unique_ptr<NewRun>> run = start(args, now_, limits_);
  // The arguments come from a run that started with the same checks, or
  // from a command already validated.
  DURO_ASSERT_MSG(run.ok(), "continuing a run with arguments its start would refuse");
  mutation_.new_run = std::move(run).value();
  // The chain's next run remembers the request ids this one saw: a client
  // retrying a signal whose first try was recorded here (its answer lost)
  // reaches the new run, which must not record it again.
  std::vector<std::string> ids = state_.request_ids;
  for (std::string& id : mutation_.new_run->state.request_ids) ids.push_back(std::move(id));
  mutation_.new_run->state.request_ids.clear();
  for (std::string& id : ids) {
    if (!mutation_.new_run->state.seen_request(id)) mutation_.new_run->state.remember_request(std::move(id));
  }
}

std::optional<sim::Duration> ExecutionMutator::workflow_retry_backoff(const Failure& failure) const {
  if (!state_.retry_policy) return std::nullopt;
  std::optional<sim::Duration> time_left;
  if (state_.execution_expiration_time != sim::TimePoint{}) time_left = state_.execution_expiration_time - now_;
  const RetryDecision decision = next_retry(*state_.retry_policy, state_.attempt, failure, time_left);
  if (decision.state != RetryState::kInProgress) return std::nullopt;
  return jittered_backoff(*state_.retry_policy, decision.backoff, retry_jitter_seed(state_.execution, 0, state_.attempt));
}

// --- Clients -----------------------------------------------------------------------------------

sim::Result<void> ExecutionMutator::signal(const std::string& signal_name, const Payload& input,
                                           const std::string& identity, const std::string& request_id) {
  // A retry of a signal already delivered gets the first answer, even if
  // the run closed since (its reply was lost, and the run went on).
  if (!request_id.empty() && state_.seen_request(request_id)) return {};
  if (!state_.running()) return not_found("workflow execution already completed");
  if (sim::Result<void> ok = check_payload(input, "signal input"); !ok.ok()) return ok;
  if (state_.buffered_events.size() >= limits_.buffered_events_max) {
    return Error{ErrorCode::kOverloaded, "too many signals waiting for the workflow task"};
  }
  if (!request_id.empty()) state_.remember_request(request_id);
  add_external_event(WorkflowExecutionSignaled{signal_name, input, identity, request_id});
  check_history_size();
  return {};
}

sim::Result<void> ExecutionMutator::request_cancel(const std::string& cause, const std::string& identity,
                                                   const std::string& request_id,
                                                   std::optional<std::pair<WorkflowExecution, EventId>> external) {
  if (!request_id.empty() && state_.seen_request(request_id)) return {};
  if (!state_.running()) return not_found("workflow execution already completed");
  if (!request_id.empty()) state_.remember_request(request_id);
  // A second request changes nothing: the workflow has been told.
  if (state_.cancel_requested) return {};
  state_.cancel_requested = true;
  WorkflowExecutionCancelRequested requested;
  requested.cause = cause;
  requested.identity = identity;
  if (external) {
    requested.external_workflow_execution = external->first;
    requested.external_initiated_event_id = external->second;
  }
  add_external_event(std::move(requested));
  check_history_size();
  return {};
}

sim::Result<void> ExecutionMutator::terminate(const std::string& reason, const Payload& details,
                                              const std::string& identity) {
  if (!state_.running()) return not_found("workflow execution already completed");
  flush_buffered_events();
  close(WorkflowStatus::kTerminated, WorkflowExecutionTerminated{reason, details, identity});
  return {};
}

// --- Workflow tasks ------------------------------------------------------------------------------

sim::Result<void> ExecutionMutator::record_workflow_task_started(EventId scheduled_event_id, std::int32_t attempt,
                                                                 const std::string& request_id,
                                                                 const std::string& identity) {
  if (!state_.running()) return not_found("workflow execution already completed");
  WorkflowTaskInfo& task = state_.workflow_task;
  if (task.scheduled_event_id != scheduled_event_id || task.attempt != attempt) {
    return not_found("workflow task " + std::to_string(scheduled_event_id) + " is not outstanding");
  }
  if (task.started_event_id != 0) {
    // The same poll asking again (its first answer was lost): same answer.
    if (!request_id.empty() && task.request_id == request_id) return {};
    return not_found("workflow task " + std::to_string(scheduled_event_id) + " already started");
  }
  task.started_event_id = add_event(WorkflowTaskStarted{scheduled_event_id, identity, request_id}).event_id;
  task.started_time = now_;
  task.request_id = request_id;
  task.identity = identity;
  add_timer(now_ + task.start_to_close_timeout,
            WorkflowTaskTimeoutTimer{scheduled_event_id, task.attempt, TimeoutType::kStartToClose});
  return {};
}

bool ExecutionMutator::start_workflow_task_eagerly(const TaskQueue& sticky_queue, const std::string& request_id,
                                                   const std::string& identity) {
  const WorkflowTaskInfo& task = state_.workflow_task;
  if (sticky_queue.kind != TaskQueueKind::kSticky || sticky_queue.name.empty()) return false;
  if (!state_.running() || !state_.workflow_task_outstanding() || state_.workflow_task_started()) return false;
  if (task.task_queue != sticky_queue) return false;
  // Scheduled in this mutation: its task for matching is here, unwritten.
  // A task scheduled earlier is in matching already: it is left to it.
  const auto transfer = std::find_if(mutation_.transfer.begin(), mutation_.transfer.end(), [&](const TransferTaskInfo& t) {
    const auto* dispatch = std::get_if<WorkflowTaskTransfer>(&t.kind);
    return dispatch != nullptr && dispatch->scheduled_event_id == task.scheduled_event_id &&
           dispatch->attempt == task.attempt;
  });
  if (transfer == mutation_.transfer.end()) return false;
  const auto timer = std::find_if(mutation_.timers.begin(), mutation_.timers.end(), [&](const TimerTaskInfo& t) {
    const auto* timeout = std::get_if<WorkflowTaskTimeoutTimer>(&t.kind);
    return timeout != nullptr && timeout->scheduled_event_id == task.scheduled_event_id &&
           timeout->attempt == task.attempt && timeout->timeout_type == TimeoutType::kScheduleToStart;
  });
  DURO_ASSERT_MSG(timer != mutation_.timers.end(), "a sticky workflow task scheduled without its schedule-to-start timer");
  mutation_.transfer.erase(transfer);
  mutation_.timers.erase(timer);
  const sim::Result<void> started = record_workflow_task_started(task.scheduled_event_id, task.attempt, request_id, identity);
  DURO_ASSERT_MSG(started.ok(), "a workflow task scheduled in this mutation did not start");
  DURO_ASSERT(state_.workflow_task_started());
  return true;
}

sim::Result<void> ExecutionMutator::fail_workflow_task(const TaskToken& token, WorkflowTaskFailedCause cause,
                                                       const Failure& failure, const std::string& identity) {
  if (!state_.running()) return not_found("workflow execution already completed");
  const WorkflowTaskInfo task = state_.workflow_task;
  if (token.scheduled_event_id != task.scheduled_event_id || token.started_event_id != task.started_event_id ||
      task.started_event_id == 0 || token.attempt != task.attempt) {
    return not_found("workflow task token is stale");
  }
  add_event(WorkflowTaskFailed{task.scheduled_event_id, task.started_event_id, cause, failure, identity});
  state_.workflow_task = WorkflowTaskInfo{};
  // The worker that failed it may hold a broken cache: start over on the
  // normal queue, where any worker replays from event 1.
  state_.sticky_task_queue = TaskQueue{};
  flush_buffered_events();
  if (cause != WorkflowTaskFailedCause::kUnhandledCommand) state_.workflow_task_failures++;
  schedule_workflow_task(workflow_task_backoff_for(state_.workflow_task_failures, limits_));
  check_history_size();
  return {};
}

sim::Result<void> ExecutionMutator::complete_workflow_task(const TaskToken& token,
                                                           const RespondWorkflowTaskCompletedRequest& request,
                                                           sim::Random& run_ids) {
  if (!state_.running()) return not_found("workflow execution already completed");
  const WorkflowTaskInfo task = state_.workflow_task;
  if (token.scheduled_event_id != task.scheduled_event_id || token.started_event_id != task.started_event_id ||
      task.started_event_id == 0 || token.attempt != task.attempt) {
    return not_found("workflow task token is stale");
  }
  const bool closes = std::any_of(request.commands.begin(), request.commands.end(),
                                  [](const Command& c) { return is_close_command(command_type(c)); });
  if (closes && !state_.buffered_events.empty()) {
    // New events arrived while the code decided to close: it has not seen
    // them. Refuse, and let a new task carry them (Temporal's rule).
    (void)fail_workflow_task(token, WorkflowTaskFailedCause::kUnhandledCommand,
                             Failure{"UnhandledCommand", "new events arrived while the workflow task ran", {}, false,
                                     TimeoutType::kNone, "server"},
                             request.identity);
    return Error{ErrorCode::kInvalidArgument, "UnhandledCommand: new events arrived during the workflow task"};
  }

  // A refused command leaves nothing of the others: the state goes back to
  // what it was. As the first op, nothing has changed it yet, so the
  // caller's original is that state; else a copy is made now.
  const bool first_op = original_ != nullptr && mutation_.empty() && unstarted_cancels_.empty();
  // The state untouched so far, as far as a few cheap fields can tell (an
  // op that changed it without a trace in the mutation would break this).
  DURO_ASSERT(!first_op || (original_->next_event_id == state_.next_event_id &&
                            original_->request_ids.size() == state_.request_ids.size() &&
                            original_->cancel_requested == state_.cancel_requested &&
                            original_->buffered_events.size() == state_.buffered_events.size() &&
                            original_->activities.size() == state_.activities.size() &&
                            original_->workflow_task.started_event_id == state_.workflow_task.started_event_id));
  std::optional<MutableState> before;
  if (!first_op) before = state_;
  const Mutation mutation_before = mutation_;
  const EventId completed_event_id =
      add_event(WorkflowTaskCompleted{task.scheduled_event_id, task.started_event_id, request.identity, request.build_id,
                                      request.sdk_flags})
          .event_id;
  state_.workflow_task = WorkflowTaskInfo{};
  state_.previous_started_event_id = task.started_event_id;
  state_.workflow_task_failures = 0;
  state_.sticky_task_queue = request.sticky_task_queue;
  state_.sticky_task_queue.kind = TaskQueueKind::kSticky;
  if (request.sticky_task_queue.name.empty()) state_.sticky_task_queue = TaskQueue{};
  state_.sticky_schedule_to_start_timeout = request.sticky_schedule_to_start_timeout > sim::Duration{0}
                                                ? request.sticky_schedule_to_start_timeout
                                                : std::chrono::seconds{5};

  sim::Result<void> applied;
  if (request.commands.size() > limits_.commands_per_task_max) {
    applied = bad_request(std::to_string(request.commands.size()) + " commands in one task; the limit is " +
                          std::to_string(limits_.commands_per_task_max));
  }
  // A task that also closes the run starts nothing eagerly: the close ends
  // its activities as it writes them.
  completing_ = closes ? nullptr : &request;
  eager_started_.clear();
  for (std::size_t i = 0; applied.ok() && i < request.commands.size(); i++) {
    const Command& command = request.commands[i];
    if (!state_.running()) {
      applied = bad_request(std::string(command_type_name(command_type(command))) + " after the workflow closed");
      break;
    }
    applied = apply_command(command, completed_event_id, run_ids);
  }
  completing_ = nullptr;
  if (!applied.ok()) {
    state_ = first_op ? *original_ : *before;
    mutation_ = mutation_before;
    unstarted_cancels_.clear();
    eager_started_.clear();
    const WorkflowTaskFailedCause cause = applied.error().code == ErrorCode::kOverloaded
                                              ? WorkflowTaskFailedCause::kPendingLimitExceeded
                                              : WorkflowTaskFailedCause::kBadCommandAttributes;
    (void)fail_workflow_task(token, cause,
                             Failure{"BadCommandAttributes", applied.error().message, {}, true, TimeoutType::kNone,
                                     "server"},
                             request.identity);
    return Error{ErrorCode::kInvalidArgument, applied.error().message};
  }
  if (state_.running()) {
    std::vector<ActivityTaskCanceled> cancels = std::move(unstarted_cancels_);
    unstarted_cancels_.clear();
    for (ActivityTaskCanceled& canceled : cancels) add_event(std::move(canceled));
    const bool had_buffered = !state_.buffered_events.empty();
    flush_buffered_events();
    if (had_buffered || !cancels.empty()) schedule_workflow_task();
    check_history_size();
  }
  unstarted_cancels_.clear();
  return {};
}

sim::Result<void> ExecutionMutator::apply_command(const Command& command, EventId completed_event_id,
                                                  sim::Random& run_ids) {
  if (const auto* c = std::get_if<ScheduleActivityTask>(&command)) {
    if (c->activity_id.empty()) return bad_request("ScheduleActivityTask without an activity id");
    if (c->activity_type.empty()) return bad_request("ScheduleActivityTask " + c->activity_id + " without a type");
    if (state_.activity_by_id(c->activity_id) != nullptr) {
      return bad_request("activity id " + c->activity_id + " is already pending");
    }
    if (state_.activities.size() >= limits_.pending_activities_max) {
      return Error{ErrorCode::kOverloaded,
                   "pending activities limit of " + std::to_string(limits_.pending_activities_max) + " reached"};
    }
    if (sim::Result<void> ok = check_payload(c->input, "activity input"); !ok.ok()) return ok;
    const sim::Duration zero{0};
    if (c->schedule_to_close_timeout < zero || c->schedule_to_start_timeout < zero ||
        c->start_to_close_timeout < zero || c->heartbeat_timeout < zero) {
      return bad_request("activity " + c->activity_id + " has a negative timeout");
    }
    if (c->schedule_to_close_timeout == zero && c->start_to_close_timeout == zero) {
      return bad_request("activity " + c->activity_id + " needs a schedule-to-close or start-to-close timeout");
    }
    ActivityTaskScheduled scheduled;
    scheduled.activity_id = c->activity_id;
    scheduled.activity_type = c->activity_type;
    scheduled.task_queue = c->task_queue.name.empty() ? state_.task_queue : c->task_queue;
    scheduled.task_queue.kind = TaskQueueKind::kNormal;
    scheduled.input = c->input;
    // Temporal's normalization: each timeout is bounded by the ones that
    // contain it, and all by what is left of the run.
    sim::Duration schedule_to_close = c->schedule_to_close_timeout;
    if (state_.workflow_run_timeout > zero) {
      const sim::Duration run_left = state_.start_time + state_.workflow_run_timeout - now_;
      if (schedule_to_close == zero || schedule_to_close > run_left) schedule_to_close = std::max(run_left, sim::Duration{1});
    }
    sim::Duration start_to_close = c->start_to_close_timeout;
    if (start_to_close == zero || (schedule_to_close > zero && start_to_close > schedule_to_close)) {
      start_to_close = schedule_to_close;
    }
    sim::Duration schedule_to_start = c->schedule_to_start_timeout;
    if (schedule_to_close > zero && (schedule_to_start == zero || schedule_to_start > schedule_to_close)) {
      schedule_to_start = schedule_to_close;
    }
    sim::Duration heartbeat = std::min(c->heartbeat_timeout, start_to_close);
    scheduled.schedule_to_close_timeout = schedule_to_close;
    scheduled.schedule_to_start_timeout = schedule_to_start;
    scheduled.start_to_close_timeout = start_to_close;
    scheduled.heartbeat_timeout = heartbeat;
    scheduled.workflow_task_completed_event_id = completed_event_id;
    RetryPolicy policy = c->retry_policy.value_or(RetryPolicy{});
    if (std::optional<std::string> why = validate(policy)) return bad_request("activity retry policy: " + *why);
    scheduled.retry_policy = normalized(policy);

    ActivityInfo activity;
    activity.activity_id = c->activity_id;
    activity.activity_type = c->activity_type;
    activity.task_queue = scheduled.task_queue;
    activity.scheduled_time = now_;
    activity.attempt_scheduled_time = now_;
    activity.schedule_to_close_timeout = schedule_to_close;
    activity.schedule_to_start_timeout = schedule_to_start;
    activity.start_to_close_timeout = start_to_close;
    activity.heartbeat_timeout = heartbeat;
    activity.retry_policy = scheduled.retry_policy;
    activity.scheduled_event_id = add_event(std::move(scheduled)).event_id;
    ActivityInfo& stored = state_.activities[activity.scheduled_event_id] = std::move(activity);
    if (schedule_to_close > zero) {
      add_timer(now_ + schedule_to_close,
                ActivityTimeoutTimer{stored.scheduled_event_id, 0, TimeoutType::kScheduleToClose});
    }
    // Eager: the worker that completes this task runs the activity itself
    // (Temporal's rules: the first attempt, on the run's own task queue).
    const bool eager = completing_ != nullptr && stored.attempt == 1 && stored.task_queue == state_.task_queue &&
                       std::find(completing_->eager_activity_ids.begin(), completing_->eager_activity_ids.end(),
                                 stored.activity_id) != completing_->eager_activity_ids.end();
    if (eager) {
      start_activity(stored, "eager/" + std::to_string(stored.scheduled_event_id), completing_->identity);
      eager_started_.push_back(stored.scheduled_event_id);
    } else {
      dispatch_activity(stored);
    }
    return {};
  }
  if (const auto* c = std::get_if<RequestCancelActivityTask>(&command)) {
    auto it = state_.activities.find(c->scheduled_event_id);
    if (it == state_.activities.end()) {
      // The activity closed while this task ran: its close is buffered, so
      // the code could not know. The request is recorded (the code's
      // command has its event, as replay expects) and the buffered close
      // follows it (Temporal does the same).
      if (buffered_activity_close(c->scheduled_event_id)) {
        add_event(ActivityTaskCancelRequested{c->scheduled_event_id, completed_event_id});
        return {};
      }
      return bad_request("RequestCancelActivityTask for activity " + std::to_string(c->scheduled_event_id) +
                         ", which is not pending");
    }
    ActivityInfo& activity = it->second;
    if (activity.cancel_requested) return bad_request("activity " + activity.activity_id + " cancel requested twice");
    const EventId requested =
        add_event(ActivityTaskCancelRequested{activity.scheduled_event_id, completed_event_id}).event_id;
    activity.cancel_requested = true;
    activity.cancel_requested_event_id = requested;
    if (!activity.started()) {
      // Not running anywhere: cancelled at once (Temporal does the same),
      // its Canceled written after the task's last command event, so a
      // task's command events stay one block.
      unstarted_cancels_.push_back(
          ActivityTaskCanceled{{}, requested, activity.scheduled_event_id, 0, "history-service"});
      state_.activities.erase(it);
    }
    return {};
  }
  if (const auto* c = std::get_if<StartTimer>(&command)) {
    if (c->timer_id.empty()) return bad_request("StartTimer without a timer id");
    if (state_.timers.contains(c->timer_id)) return bad_request("timer id " + c->timer_id + " is already pending");
    if (c->start_to_fire_timeout <= sim::Duration{0}) return bad_request("timer " + c->timer_id + " must be positive");
    if (state_.timers.size() >= limits_.pending_timers_max) {
      return Error{ErrorCode::kOverloaded, "pending timers limit reached"};
    }
    const EventId started = add_event(TimerStarted{c->timer_id, c->start_to_fire_timeout, completed_event_id}).event_id;
    const sim::TimePoint expiry = now_ + c->start_to_fire_timeout;
    state_.timers[c->timer_id] = TimerInfo{c->timer_id, started, expiry};
    add_timer(expiry, UserTimerTimer{c->timer_id, started});
    return {};
  }
  if (const auto* c = std::get_if<CancelTimer>(&command)) {
    auto it = state_.timers.find(c->timer_id);
    if (it == state_.timers.end()) {
      // The timer fired while this task ran and the code cancelled it
      // without knowing: the cancel wins, the buffered firing is dropped
      // (Temporal's rule), so the code never sees a timer it cancelled fire.
      auto fired = std::find_if(state_.buffered_events.begin(), state_.buffered_events.end(),
                                [&](const HistoryEvent& event) {
                                  const auto* timer = event.as<TimerFired>();
                                  return timer != nullptr && timer->timer_id == c->timer_id;
                                });
      if (fired == state_.buffered_events.end()) {
        return bad_request("CancelTimer for timer " + c->timer_id + ", which is not pending");
      }
      const EventId started = fired->as<TimerFired>()->started_event_id;
      state_.buffered_events.erase(fired);
      add_event(TimerCanceled{c->timer_id, started, completed_event_id, "workflow"});
      return {};
    }
    add_event(TimerCanceled{c->timer_id, it->second.started_event_id, completed_event_id, "workflow"});
    state_.timers.erase(it);
    return {};
  }
  if (const auto* c = std::get_if<RecordMarker>(&command)) {
    if (c->marker_name.empty()) return bad_request("RecordMarker without a name");
    for (const auto& [key, value] : c->details) {
      if (sim::Result<void> ok = check_payload(value, "marker details"); !ok.ok()) return ok;
    }
    add_event(MarkerRecorded{c->marker_name, c->details, completed_event_id, c->failure});
    return {};
  }
  if (const auto* c = std::get_if<StartChildWorkflowExecution>(&command)) {
    if (c->workflow_id.empty() || c->workflow_type.empty()) {
      return bad_request("StartChildWorkflowExecution needs a workflow id and type");
    }
    if (state_.children.size() >= limits_.pending_children_max) {
      return Error{ErrorCode::kOverloaded, "pending children limit reached"};
    }
    if (sim::Result<void> ok = check_payload(c->input, "child input"); !ok.ok()) return ok;
    if (c->retry_policy) {
      if (std::optional<std::string> why = validate(*c->retry_policy)) return bad_request("child retry policy: " + *why);
    }
    StartChildWorkflowExecutionInitiated initiated;
    initiated.workflow_id = c->workflow_id;
    initiated.workflow_type = c->workflow_type;
    initiated.task_queue = c->task_queue.name.empty() ? state_.task_queue : c->task_queue;
    initiated.task_queue.kind = TaskQueueKind::kNormal;
    initiated.input = c->input;
    initiated.workflow_execution_timeout = c->workflow_execution_timeout;
    initiated.workflow_run_timeout = c->workflow_run_timeout;
    initiated.workflow_task_timeout = c->workflow_task_timeout;
    initiated.parent_close_policy = c->parent_close_policy;
    initiated.workflow_task_completed_event_id = completed_event_id;
    initiated.workflow_id_reuse_policy = c->workflow_id_reuse_policy;
    initiated.retry_policy = c->retry_policy;
    const EventId id = add_event(std::move(initiated)).event_id;
    state_.children[id] = ChildInfo{id, c->workflow_id, c->workflow_type, {}, 0, c->parent_close_policy};
    mutation_.transfer.push_back(TransferTaskInfo{state_.execution, StartChildTransfer{id}});
    return {};
  }
  if (const auto* c = std::get_if<SignalExternalWorkflowExecution>(&command)) {
    if (c->execution.workflow_id.empty() || c->signal_name.empty()) {
      return bad_request("SignalExternalWorkflowExecution needs a workflow id and a signal name");
    }
    if (state_.externals.size() >= limits_.pending_externals_max) {
      return Error{ErrorCode::kOverloaded, "pending signals limit reached"};
    }
    if (sim::Result<void> ok = check_payload(c->input, "signal input"); !ok.ok()) return ok;
    const EventId id = add_event(SignalExternalWorkflowExecutionInitiated{completed_event_id, c->execution,
                                                                          c->signal_name, c->input,
                                                                          c->child_workflow_only})
                           .event_id;
    state_.externals[id] = ExternalInfo{id, false, c->execution};
    mutation_.transfer.push_back(TransferTaskInfo{state_.execution, ExternalTransfer{id}});
    return {};
  }
  if (const auto* c = std::get_if<RequestCancelExternalWorkflowExecution>(&command)) {
    if (c->execution.workflow_id.empty()) return bad_request("RequestCancelExternalWorkflowExecution needs a workflow id");
    if (state_.externals.size() >= limits_.pending_externals_max) {
      return Error{ErrorCode::kOverloaded, "pending cancel requests limit reached"};
    }
    const EventId id = add_event(RequestCancelExternalWorkflowExecutionInitiated{completed_event_id, c->execution,
                                                                                 c->child_workflow_only, c->reason})
                           .event_id;
    state_.externals[id] = ExternalInfo{id, true, c->execution};
    mutation_.transfer.push_back(TransferTaskInfo{state_.execution, ExternalTransfer{id}});
    return {};
  }
  if (const auto* c = std::get_if<CompleteWorkflowExecution>(&command)) {
    if (sim::Result<void> ok = check_payload(c->result, "workflow result"); !ok.ok()) return ok;
    close(WorkflowStatus::kCompleted, WorkflowExecutionCompleted{c->result, completed_event_id});
    return {};
  }
  if (const auto* c = std::get_if<FailWorkflowExecution>(&command)) {
    WorkflowExecutionFailed failed{c->failure, RetryState::kRetryPolicyNotSet, completed_event_id, {}};
    std::optional<sim::Duration> backoff;
    if (state_.retry_policy) {
      std::optional<sim::Duration> time_left;
      if (state_.execution_expiration_time != sim::TimePoint{}) time_left = state_.execution_expiration_time - now_;
      const RetryDecision decision = next_retry(*state_.retry_policy, state_.attempt, c->failure, time_left);
      failed.retry_state = decision.state;
      if (decision.state == RetryState::kInProgress) {
        backoff = jittered_backoff(*state_.retry_policy, decision.backoff,
                                   retry_jitter_seed(state_.execution, 0, state_.attempt));
      }
    }
    if (!backoff) {
      close(WorkflowStatus::kFailed, std::move(failed));
      return {};
    }
    StartArgs args = next_run_args(run_ids);
    args.attempt = state_.attempt + 1;
    args.initiator = ContinueAsNewInitiator::kRetry;
    args.continued_failure = c->failure;
    args.first_workflow_task_backoff = *backoff;
    args.input = state_.input;
    failed.new_execution_run_id = args.execution.run_id;
    state_.new_execution_run_id = args.execution.run_id;
    close(WorkflowStatus::kFailed, std::move(failed));
    start_new_run(args);
    return {};
  }
  if (std::get_if<CancelWorkflowExecution>(&command) != nullptr) {
    const auto& c = std::get<CancelWorkflowExecution>(command);
    if (!state_.cancel_requested) return bad_request("CancelWorkflowExecution without a cancel request");
    close(WorkflowStatus::kCanceled, WorkflowExecutionCanceled{completed_event_id, c.details});
    return {};
  }
  if (const auto* c = std::get_if<ContinueAsNewWorkflowExecution>(&command)) {
    if (sim::Result<void> ok = check_payload(c->input, "continue-as-new input"); !ok.ok()) return ok;
    if (c->backoff_start_interval < sim::Duration{0} || c->workflow_run_timeout < sim::Duration{0} ||
        c->workflow_task_timeout < sim::Duration{0}) {
      return bad_request("ContinueAsNewWorkflowExecution with a negative duration");
    }
    StartArgs args = next_run_args(run_ids);
    if (!c->workflow_type.empty()) args.workflow_type = c->workflow_type;
    if (!c->task_queue.name.empty()) args.task_queue = c->task_queue;
    args.input = c->input;
    if (c->workflow_run_timeout > sim::Duration{0}) args.workflow_run_timeout = c->workflow_run_timeout;
    if (c->workflow_task_timeout > sim::Duration{0}) args.workflow_task_timeout = c->workflow_task_timeout;
    args.first_workflow_task_backoff = c->backoff_start_interval;
    args.initiator = ContinueAsNewInitiator::kWorkflow;
    WorkflowExecutionContinuedAsNew continued;
    continued.new_execution_run_id = args.execution.run_id;
    continued.workflow_type = args.workflow_type;
    continued.task_queue = args.task_queue;
    continued.input = args.input;
    continued.workflow_run_timeout = args.workflow_run_timeout;
    continued.workflow_task_timeout = args.workflow_task_timeout;
    continued.workflow_task_completed_event_id = completed_event_id;
    continued.backoff_start_interval = args.first_workflow_task_backoff;
    continued.initiator = ContinueAsNewInitiator::kWorkflow;
    state_.new_execution_run_id = args.execution.run_id;
    close(WorkflowStatus::kContinuedAsNew, std::move(continued));
    start_new_run(args);
    return {};
  }
  DURO_ASSERT_MSG(false, "a command type without a rule");
  return bad_request("unknown command");
}

// --- Activities --------------------------------------------------------------------------------------

void ExecutionMutator::dispatch_activity(ActivityInfo& activity) {
  activity.retry_backoff = false;
  mutation_.transfer.push_back(TransferTaskInfo{
      state_.execution, ActivityTaskTransfer{activity.scheduled_event_id, activity.attempt, activity.task_queue}});
  if (activity.schedule_to_start_timeout > sim::Duration{0}) {
    add_timer(now_ + activity.schedule_to_start_timeout,
              ActivityTimeoutTimer{activity.scheduled_event_id, activity.attempt, TimeoutType::kScheduleToStart});
  }
  add_timer(now_ + limits_.redispatch_initial,
            RedispatchTimer{true, activity.scheduled_event_id, activity.attempt, 1});
}

sim::Result<void> ExecutionMutator::record_activity_task_started(EventId scheduled_event_id, std::int32_t attempt,
                                                                 const std::string& request_id,
                                                                 const std::string& identity) {
  if (!state_.running()) return not_found("workflow execution already completed");
  auto it = state_.activities.find(scheduled_event_id);
  if (it == state_.activities.end()) return not_found("activity " + std::to_string(scheduled_event_id) + " is not pending");
  ActivityInfo& activity = it->second;
  if (activity.attempt != attempt || activity.retry_backoff) {
    return not_found("activity " + activity.activity_id + " attempt " + std::to_string(attempt) + " is stale");
  }
  if (activity.started()) {
    if (!request_id.empty() && activity.started_request_id == request_id) return {};
    return not_found("activity " + activity.activity_id + " already started");
  }
  start_activity(activity, request_id, identity);
  return {};
}

void ExecutionMutator::start_activity(ActivityInfo& activity, const std::string& request_id,
                                      const std::string& identity) {
  DURO_ASSERT(!activity.started() && !activity.retry_backoff);
  activity.started_time = now_;
  activity.started_identity = identity;
  activity.started_request_id = request_id;
  activity.last_heartbeat_time = now_;
  const EventId scheduled_event_id = activity.scheduled_event_id;
  add_timer(now_ + activity.start_to_close_timeout,
            ActivityTimeoutTimer{scheduled_event_id, activity.attempt, TimeoutType::kStartToClose});
  if (activity.heartbeat_timeout > sim::Duration{0}) {
    add_timer(now_ + activity.heartbeat_timeout,
              ActivityTimeoutTimer{scheduled_event_id, activity.attempt, TimeoutType::kHeartbeat});
  }
}

sim::Result<const ActivityInfo*> ExecutionMutator::activity_for(const TaskToken& token) const {
  if (!state_.running()) return not_found("workflow execution already completed");
  auto it = state_.activities.find(token.scheduled_event_id);
  if (it == state_.activities.end()) return not_found("activity is no longer pending");
  if (it->second.attempt != token.attempt || !it->second.started()) {
    return not_found("activity task token is stale (attempt " + std::to_string(token.attempt) + ")");
  }
  return &it->second;
}

sim::Result<bool> ExecutionMutator::record_activity_heartbeat(const TaskToken& token, const Payload& details) {
  sim::Result<const ActivityInfo*> found = activity_for(token);
  if (!found.ok()) return found.error();
  if (sim::Result<void> ok = check_payload(details, "heartbeat details"); !ok.ok()) return ok.error();
  ActivityInfo& activity = state_.activities.at(token.scheduled_event_id);
  activity.heartbeat_details = details;
  activity.last_heartbeat_time = now_;
  mutation_.state_changed = true;
  return activity.cancel_requested;
}

EventId ExecutionMutator::write_activity_started(const ActivityInfo& activity) {
  return add_event(ActivityTaskStarted{activity.scheduled_event_id, activity.started_identity,
                                       activity.started_request_id, activity.attempt, activity.last_failure})
      .event_id;
}

sim::Result<void> ExecutionMutator::complete_activity(const TaskToken& token, const Payload& result,
                                                      const std::string& identity) {
  sim::Result<const ActivityInfo*> found = activity_for(token);
  if (!found.ok()) return found.error();
  if (sim::Result<void> ok = check_payload(result, "activity result"); !ok.ok()) return ok;
  ActivityInfo activity = *found.value();
  state_.activities.erase(token.scheduled_event_id);
  if (state_.workflow_task_started()) {
    // Buffered: ids come when the task closes. The pair stays together.
    HistoryEvent started;
    started.time = now_;
    started.attributes = ActivityTaskStarted{activity.scheduled_event_id, activity.started_identity,
                                             activity.started_request_id, activity.attempt, activity.last_failure};
    buffer_event(std::move(started));
    HistoryEvent completed;
    completed.time = now_;
    // started_event_id is resolved at flush: the event before it.
    completed.attributes = ActivityTaskCompleted{result, activity.scheduled_event_id, -1, identity};
    buffer_event(std::move(completed));
    return {};
  }
  const EventId started = write_activity_started(activity);
  add_event(ActivityTaskCompleted{result, activity.scheduled_event_id, started, identity});
  schedule_workflow_task();
  check_history_size();
  return {};
}

bool ExecutionMutator::retry_activity(ActivityInfo& activity, const Failure& failure) {
  std::optional<sim::Duration> time_left;
  if (activity.schedule_to_close_timeout > sim::Duration{0}) {
    time_left = activity.scheduled_time + activity.schedule_to_close_timeout - now_;
  }
  const RetryDecision decision = next_retry(activity.retry_policy, activity.attempt, failure, time_left);
  if (decision.state != RetryState::kInProgress) return false;
  const sim::Duration backoff =
      jittered_backoff(activity.retry_policy, decision.backoff,
                       retry_jitter_seed(state_.execution, activity.scheduled_event_id, activity.attempt));
  activity.attempt++;
  activity.last_failure = failure;
  activity.started_time = sim::TimePoint{};
  activity.started_identity.clear();
  activity.started_request_id.clear();
  activity.attempt_scheduled_time = now_ + backoff;
  activity.retry_backoff = true;
  add_timer(now_ + backoff, ActivityRetryTimer{activity.scheduled_event_id, activity.attempt});
  return true;
}

void ExecutionMutator::close_activity_failed(ActivityInfo& activity, const Failure& failure, bool timed_out,
                                             RetryState retry_state) {
  const ActivityInfo closing = activity;
  state_.activities.erase(closing.scheduled_event_id);
  std::vector<EventAttributes> events;
  if (closing.started()) {
    events.push_back(ActivityTaskStarted{closing.scheduled_event_id, closing.started_identity,
                                         closing.started_request_id, closing.attempt, closing.last_failure});
  }
  if (timed_out) {
    events.push_back(ActivityTaskTimedOut{failure, closing.scheduled_event_id, closing.started() ? -1 : 0, retry_state});
  } else {
    events.push_back(ActivityTaskFailed{failure, closing.scheduled_event_id, closing.started() ? -1 : 0,
                                        closing.started_identity, retry_state});
  }
  if (state_.workflow_task_started()) {
    for (EventAttributes& attributes : events) {
      HistoryEvent event;
      event.time = now_;
      event.attributes = std::move(attributes);
      buffer_event(std::move(event));
    }
    return;
  }
  EventId started = 0;
  for (EventAttributes& attributes : events) {
    if (auto* t = std::get_if<ActivityTaskTimedOut>(&attributes); t && t->started_event_id == -1) t->started_event_id = started;
    if (auto* f = std::get_if<ActivityTaskFailed>(&attributes); f && f->started_event_id == -1) f->started_event_id = started;
    const EventId id = add_event(std::move(attributes)).event_id;
    if (std::holds_alternative<ActivityTaskStarted>(mutation_.events.back().attributes)) started = id;
  }
  schedule_workflow_task();
  check_history_size();
}

sim::Result<void> ExecutionMutator::fail_activity(const TaskToken& token, const Failure& failure,
                                                  const Payload& details, const std::string& identity) {
  sim::Result<const ActivityInfo*> found = activity_for(token);
  if (!found.ok()) return found.error();
  ActivityInfo& activity = state_.activities.at(token.scheduled_event_id);
  activity.started_identity = identity;
  if (!details.empty()) activity.heartbeat_details = details;
  if (retry_activity(activity, failure)) return {};
  std::optional<sim::Duration> time_left;
  if (activity.schedule_to_close_timeout > sim::Duration{0}) {
    time_left = activity.scheduled_time + activity.schedule_to_close_timeout - now_;
  }
  const RetryState state = next_retry(activity.retry_policy, activity.attempt, failure, time_left).state;
  close_activity_failed(activity, failure, false, state);
  return {};
}

sim::Result<void> ExecutionMutator::cancel_activity(const TaskToken& token, const Payload& details,
                                                    const std::string& identity) {
  sim::Result<const ActivityInfo*> found = activity_for(token);
  if (!found.ok()) return found.error();
  if (!found.value()->cancel_requested) return bad_request("activity canceled without a cancel request");
  ActivityInfo activity = *found.value();
  state_.activities.erase(token.scheduled_event_id);
  if (state_.workflow_task_started()) {
    HistoryEvent started;
    started.time = now_;
    started.attributes = ActivityTaskStarted{activity.scheduled_event_id, identity, activity.started_request_id,
                                             activity.attempt, activity.last_failure};
    buffer_event(std::move(started));
    HistoryEvent canceled;
    canceled.time = now_;
    canceled.attributes =
        ActivityTaskCanceled{details, activity.cancel_requested_event_id, activity.scheduled_event_id, -1, identity};
    buffer_event(std::move(canceled));
    return {};
  }
  activity.started_identity = identity;
  const EventId started = write_activity_started(activity);
  add_event(ActivityTaskCanceled{details, activity.cancel_requested_event_id, activity.scheduled_event_id, started,
                                 identity});
  schedule_workflow_task();
  check_history_size();
  return {};
}

// --- Timers ------------------------------------------------------------------------------------

bool ExecutionMutator::timer_may_act(const MutableState& state, const TimerKind& timer) {
  if (!state.running()) return false;
  return std::visit(
      [&](const auto& kind) -> bool {
        using Kind = std::decay_t<decltype(kind)>;
        if constexpr (std::is_same_v<Kind, UserTimerTimer>) {
          auto it = state.timers.find(kind.timer_id);
          return it != state.timers.end() && it->second.started_event_id == kind.started_event_id;
        } else if constexpr (std::is_same_v<Kind, ActivityTimeoutTimer>) {
          auto it = state.activities.find(kind.scheduled_event_id);
          if (it == state.activities.end()) return false;
          const ActivityInfo& activity = it->second;
          switch (kind.timeout_type) {
            case TimeoutType::kScheduleToClose:
              return true;  // Spans every attempt.
            case TimeoutType::kScheduleToStart:
              return activity.attempt == kind.attempt && !activity.started() && !activity.retry_backoff;
            case TimeoutType::kHeartbeat:
            case TimeoutType::kStartToClose:
              return activity.attempt == kind.attempt && activity.started();
            case TimeoutType::kNone:
              return true;  // The handler asserts.
          }
          return true;
        } else if constexpr (std::is_same_v<Kind, ActivityRetryTimer>) {
          auto it = state.activities.find(kind.scheduled_event_id);
          return it != state.activities.end() && it->second.attempt == kind.attempt && it->second.retry_backoff;
        } else if constexpr (std::is_same_v<Kind, WorkflowTaskTimeoutTimer>) {
          const WorkflowTaskInfo& task = state.workflow_task;
          if (task.scheduled_event_id != kind.scheduled_event_id || task.attempt != kind.attempt) return false;
          return kind.timeout_type == TimeoutType::kScheduleToStart ? task.started_event_id == 0
                                                                    : task.started_event_id != 0;
        } else if constexpr (std::is_same_v<Kind, WorkflowTaskBackoffTimer>) {
          return state.workflow_task_backoff;
        } else if constexpr (std::is_same_v<Kind, WorkflowTimeoutTimer>) {
          return kind.execution || state.workflow_run_timeout != sim::Duration{0};
        } else {
          static_assert(std::is_same_v<Kind, RedispatchTimer>);
          if (kind.activity) {
            auto it = state.activities.find(kind.scheduled_event_id);
            return it != state.activities.end() && it->second.attempt == kind.attempt && !it->second.started() &&
                   !it->second.retry_backoff;
          }
          const WorkflowTaskInfo& task = state.workflow_task;
          return task.scheduled_event_id == kind.scheduled_event_id && task.attempt == kind.attempt &&
                 task.started_event_id == 0;
        }
      },
      timer);
}

void ExecutionMutator::fire_timer(const TimerKind& timer, sim::Random& run_ids) {
  std::visit(
      [&](const auto& kind) {
        using Kind = std::decay_t<decltype(kind)>;
        if constexpr (std::is_same_v<Kind, UserTimerTimer>) {
          fire_user_timer(kind);
        } else if constexpr (std::is_same_v<Kind, ActivityTimeoutTimer>) {
          activity_timeout(kind);
        } else if constexpr (std::is_same_v<Kind, ActivityRetryTimer>) {
          activity_retry(kind);
        } else if constexpr (std::is_same_v<Kind, WorkflowTaskTimeoutTimer>) {
          workflow_task_timeout(kind);
        } else if constexpr (std::is_same_v<Kind, WorkflowTaskBackoffTimer>) {
          workflow_task_backoff();
        } else if constexpr (std::is_same_v<Kind, WorkflowTimeoutTimer>) {
          workflow_timeout(kind, run_ids);
        } else {
          static_assert(std::is_same_v<Kind, RedispatchTimer>);
          (void)redispatch(kind);
        }
      },
      timer);
}

void ExecutionMutator::fire_user_timer(const UserTimerTimer& timer) {
  if (!timer_may_act(state_, timer)) return;
  auto it = state_.timers.find(timer.timer_id);
  state_.timers.erase(it);
  add_external_event(TimerFired{timer.timer_id, timer.started_event_id});
  check_history_size();
}

void ExecutionMutator::activity_timeout(const ActivityTimeoutTimer& timer) {
  if (!timer_may_act(state_, timer)) return;
  auto it = state_.activities.find(timer.scheduled_event_id);
  ActivityInfo& activity = it->second;
  Failure failure{kTimeoutFailureType, std::string("activity ") + timeout_type_name(timer.timeout_type) + " timeout",
                  activity.heartbeat_details, false, timer.timeout_type, "server"};
  switch (timer.timeout_type) {
    case TimeoutType::kScheduleToClose:
      // Spans every attempt: final.
      close_activity_failed(activity, failure, true, RetryState::kTimeout);
      return;
    case TimeoutType::kScheduleToStart:
      // Not retried: no worker polls that queue (Temporal's rule).
      close_activity_failed(activity, failure, true, RetryState::kTimeout);
      return;
    case TimeoutType::kHeartbeat:
      if (activity.last_heartbeat_time + activity.heartbeat_timeout > now_) {
        // It heartbeat since this timer was set: look again later.
        add_timer(activity.last_heartbeat_time + activity.heartbeat_timeout,
                  ActivityTimeoutTimer{activity.scheduled_event_id, activity.attempt, TimeoutType::kHeartbeat});
        return;
      }
      break;
    case TimeoutType::kStartToClose:
      break;
    case TimeoutType::kNone:
      DURO_ASSERT_MSG(false, "activity timeout of no type");
      return;
  }
  if (retry_activity(activity, failure)) return;
  std::optional<sim::Duration> time_left;
  if (activity.schedule_to_close_timeout > sim::Duration{0}) {
    time_left = activity.scheduled_time + activity.schedule_to_close_timeout - now_;
  }
  close_activity_failed(activity, failure, true, next_retry(activity.retry_policy, activity.attempt, failure, time_left).state);
}

void ExecutionMutator::activity_retry(const ActivityRetryTimer& timer) {
  if (!timer_may_act(state_, timer)) return;
  dispatch_activity(state_.activities.find(timer.scheduled_event_id)->second);
}

void ExecutionMutator::workflow_task_timeout(const WorkflowTaskTimeoutTimer& timer) {
  if (!timer_may_act(state_, timer)) return;
  const WorkflowTaskInfo task = state_.workflow_task;
  if (timer.timeout_type == TimeoutType::kScheduleToStart) {
    add_event(WorkflowTaskTimedOut{task.scheduled_event_id, 0, TimeoutType::kScheduleToStart});
    state_.workflow_task = WorkflowTaskInfo{};
    state_.sticky_task_queue = TaskQueue{};  // The sticky worker is gone.
    schedule_workflow_task();
    check_history_size();
    return;
  }
  add_event(WorkflowTaskTimedOut{task.scheduled_event_id, task.started_event_id, TimeoutType::kStartToClose});
  state_.workflow_task = WorkflowTaskInfo{};
  state_.sticky_task_queue = TaskQueue{};
  flush_buffered_events();
  state_.workflow_task_failures++;
  schedule_workflow_task(workflow_task_backoff_for(state_.workflow_task_failures, limits_));
  check_history_size();
}

void ExecutionMutator::workflow_task_backoff() {
  if (!timer_may_act(state_, WorkflowTaskBackoffTimer{})) return;
  state_.workflow_task_backoff = false;
  schedule_workflow_task();
}

void ExecutionMutator::workflow_timeout(const WorkflowTimeoutTimer& timer, sim::Random& run_ids) {
  if (!timer_may_act(state_, timer)) return;
  flush_buffered_events();
  WorkflowExecutionTimedOut timed_out{RetryState::kTimeout, {}};
  std::optional<sim::Duration> backoff;
  if (!timer.execution) {
    const Failure failure{kTimeoutFailureType, "workflow run timeout", {}, false, TimeoutType::kStartToClose, "server"};
    backoff = workflow_retry_backoff(failure);
  }
  if (!backoff) {
    close(WorkflowStatus::kTimedOut, std::move(timed_out));
    return;
  }
  StartArgs args = next_run_args(run_ids);
  args.attempt = state_.attempt + 1;
  args.initiator = ContinueAsNewInitiator::kRetry;
  args.continued_failure = Failure{kTimeoutFailureType, "workflow run timeout", {}, false, TimeoutType::kStartToClose,
                                   "server"};
  args.first_workflow_task_backoff = *backoff;
  timed_out.retry_state = RetryState::kInProgress;
  timed_out.new_execution_run_id = args.execution.run_id;
  state_.new_execution_run_id = args.execution.run_id;
  close(WorkflowStatus::kTimedOut, std::move(timed_out));
  start_new_run(args);
}

bool ExecutionMutator::redispatch(const RedispatchTimer& timer) {
  if (!timer_may_act(state_, timer)) return false;
  const sim::Duration next = std::min(limits_.redispatch_initial * (std::int64_t{1} << std::min(timer.round, 16)),
                                      limits_.redispatch_max);
  if (timer.activity) {
    const ActivityInfo& activity = state_.activities.find(timer.scheduled_event_id)->second;
    mutation_.transfer.push_back(TransferTaskInfo{
        state_.execution, ActivityTaskTransfer{activity.scheduled_event_id, activity.attempt, activity.task_queue}});
    add_timer(now_ + next, RedispatchTimer{true, timer.scheduled_event_id, timer.attempt, timer.round + 1});
    return true;
  }
  const WorkflowTaskInfo& task = state_.workflow_task;
  mutation_.transfer.push_back(TransferTaskInfo{
      state_.execution, WorkflowTaskTransfer{task.scheduled_event_id, task.attempt, task.task_queue}});
  add_timer(now_ + next, RedispatchTimer{false, timer.scheduled_event_id, timer.attempt, timer.round + 1});
  return true;
}

// --- Children and other workflows --------------------------------------------------------------------

void ExecutionMutator::child_started(EventId initiated_event_id, const std::string& run_id) {
  if (!state_.running()) return;
  auto it = state_.children.find(initiated_event_id);
  if (it == state_.children.end()) {
    (void)stale_reference(initiated_event_id);
    return;
  }
  if (!it->second.run_id.empty()) return;
  ChildInfo& child = it->second;
  child.run_id = run_id;
  if (state_.workflow_task_started()) {
    HistoryEvent event;
    event.time = now_;
    event.attributes = ChildWorkflowExecutionStarted{{child.workflow_id, run_id}, child.workflow_type, initiated_event_id};
    buffer_event(std::move(event));
    child.started_event_id = -1;  // Resolved when the buffer is flushed.
    return;
  }
  child.started_event_id =
      add_event(ChildWorkflowExecutionStarted{{child.workflow_id, run_id}, child.workflow_type, initiated_event_id})
          .event_id;
  schedule_workflow_task();
  check_history_size();
}

void ExecutionMutator::child_start_failed(EventId initiated_event_id, StartChildFailedCause cause) {
  if (!state_.running()) return;
  auto it = state_.children.find(initiated_event_id);
  if (it == state_.children.end()) {
    (void)stale_reference(initiated_event_id);
    return;
  }
  if (!it->second.run_id.empty()) return;
  const ChildInfo child = it->second;
  state_.children.erase(it);
  add_external_event(StartChildWorkflowExecutionFailed{child.workflow_id, child.workflow_type, cause,
                                                       initiated_event_id, 0});
  check_history_size();
}

void ExecutionMutator::child_closed(EventId initiated_event_id, const WorkflowExecution& child_execution,
                                    const HistoryEvent& close_event) {
  if (!state_.running()) return;
  auto it = state_.children.find(initiated_event_id);
  if (it == state_.children.end()) {
    (void)stale_reference(initiated_event_id);
    return;
  }
  if (it->second.run_id.empty()) child_started(initiated_event_id, child_execution.run_id);
  it = state_.children.find(initiated_event_id);
  DURO_ASSERT(it != state_.children.end());
  const ChildInfo child = it->second;
  state_.children.erase(it);
  const WorkflowExecution execution{child.workflow_id, child_execution.run_id};
  const EventId started = child.started_event_id;  // -1 while buffered: resolved at flush.
  EventAttributes attributes;
  if (const auto* e = close_event.as<WorkflowExecutionCompleted>()) {
    attributes = ChildWorkflowExecutionCompleted{e->result, execution, child.workflow_type, initiated_event_id, started};
  } else if (const auto* e = close_event.as<WorkflowExecutionFailed>()) {
    attributes = ChildWorkflowExecutionFailed{e->failure, execution, child.workflow_type, initiated_event_id, started,
                                              e->retry_state};
  } else if (const auto* e = close_event.as<WorkflowExecutionCanceled>()) {
    attributes = ChildWorkflowExecutionCanceled{e->details, execution, child.workflow_type, initiated_event_id, started};
  } else if (const auto* e = close_event.as<WorkflowExecutionTimedOut>()) {
    attributes = ChildWorkflowExecutionTimedOut{execution, child.workflow_type, initiated_event_id, started,
                                                e->retry_state};
  } else {
    attributes = ChildWorkflowExecutionTerminated{execution, child.workflow_type, initiated_event_id, started};
  }
  add_external_event(std::move(attributes));
  check_history_size();
}

void ExecutionMutator::external_delivered(EventId initiated_event_id) {
  if (!state_.running()) return;
  auto it = state_.externals.find(initiated_event_id);
  if (it == state_.externals.end()) {
    (void)stale_reference(initiated_event_id);
    return;
  }
  const ExternalInfo external = it->second;
  state_.externals.erase(it);
  if (external.cancel) {
    add_external_event(ExternalWorkflowExecutionCancelRequested{initiated_event_id, external.target});
  } else {
    add_external_event(ExternalWorkflowExecutionSignaled{initiated_event_id, external.target});
  }
  check_history_size();
}

void ExecutionMutator::external_failed(EventId initiated_event_id, ExternalFailedCause cause) {
  if (!state_.running()) return;
  auto it = state_.externals.find(initiated_event_id);
  if (it == state_.externals.end()) {
    (void)stale_reference(initiated_event_id);
    return;
  }
  const ExternalInfo external = it->second;
  state_.externals.erase(it);
  if (external.cancel) {
    add_external_event(RequestCancelExternalWorkflowExecutionFailed{cause, 0, external.target, initiated_event_id});
  } else {
    add_external_event(SignalExternalWorkflowExecutionFailed{cause, 0, external.target, initiated_event_id});
  }
  check_history_size();
}

}  // namespace duro::engine
