#include "engine/sdk/workflow_run.h"

#include <fmt/format.h>

#include <algorithm>
#include <utility>

#include "engine/sdk/markers.h"
#include "sim/assert.h"

namespace duro::sdk {

using engine::Command;
using engine::EventId;
using engine::HistoryEvent;

namespace detail {

struct Op {
  enum class Kind : std::uint8_t { kActivity, kTimer, kChild, kSignalExternal, kCancelExternal };
  Kind kind = Kind::kActivity;
  std::string id;    // Activity id, timer id, child workflow id.
  std::string type;  // Activity type, child workflow type.
  EventId event_id = 0;        // Its command event, once matched.
  std::uint64_t task_seq = 0;  // The workflow task whose code produced it.
  std::shared_ptr<FutureCore> result;
  std::shared_ptr<FutureCore> started;  // Children: resolves with the execution.
  engine::WorkflowExecution child_execution;
  bool closed = false;            // History closed it (completed, fired, failed, ...).
  bool cancel_requested = false;  // The code cancelled it.
};

}  // namespace detail

namespace {

using detail::CodeSite;
using detail::Op;

// Thrown (after the run recorded why in failure_) to unwind workflow code:
// not a std::exception, so workflow code that catches std::exception does
// not stop it. The run is poisoned from then on.
struct ReplayAbort {};

// Thrown by continue_as_new() out of the workflow function.
struct ContinueAsNewRequest {
  engine::ContinueAsNewWorkflowExecution command;
};

// The run whose coroutines are running on this thread: futures find it here.
thread_local WorkflowRun* current_run = nullptr;

class CurrentRun {
 public:
  explicit CurrentRun(WorkflowRun* run) : previous_(std::exchange(current_run, run)) {}
  ~CurrentRun() { current_run = previous_; }
  CurrentRun(const CurrentRun&) = delete;
  CurrentRun& operator=(const CurrentRun&) = delete;

 private:
  WorkflowRun* previous_;
};

std::string_view base_name(const char* path) {
  std::string_view file(path);
  // Keep the path from the repository's top folders on, which is how users
  // name their files; an absolute build path says nothing more.
  for (std::string_view top : {"tests/", "engine/", "scenarios/", "cli/", "bench/", "examples/"}) {
    if (std::size_t at = file.rfind(top); at != std::string_view::npos) return file.substr(at);
  }
  if (std::size_t slash = file.rfind('/'); slash != std::string_view::npos) return file.substr(slash + 1);
  return file;
}

CodeLocation code_location(const CodeSite& site) {
  return CodeLocation{std::string(base_name(site.where.file_name())), site.where.line(), site.call};
}

bool has_file(const CodeSite& site) { return site.where.file_name()[0] != '\0'; }

EventId task_completed_id(const HistoryEvent& event) {
  return std::visit(
      [](const auto& attributes) -> EventId {
        if constexpr (requires { attributes.workflow_task_completed_event_id; }) {
          return attributes.workflow_task_completed_event_id;
        } else {
          return 0;
        }
      },
      event.attributes);
}

std::string in_quotes(std::string_view text) { return fmt::format("\"{}\"", text); }

std::string describe_marker(std::string_view name, const std::map<std::string, Payload>& details) {
  std::string text = fmt::format("name={}", in_quotes(name));
  if (name == kPatchMarkerName) {
    if (auto it = details.find(kPatchIdKey); it != details.end()) text += fmt::format(" patch={}", in_quotes(it->second));
    if (auto it = details.find(kPatchDeprecatedKey); it != details.end() && it->second == "1") text += " deprecated";
  }
  return text;
}

std::string describe(const Command& command) {
  const std::string_view name = engine::command_type_name(engine::command_type(command));
  return std::visit(
      [&](const auto& c) -> std::string {
        using T = std::decay_t<decltype(c)>;
        if constexpr (std::is_same_v<T, engine::ScheduleActivityTask>) {
          return fmt::format("{} id={} type={}", name, in_quotes(c.activity_id), in_quotes(c.activity_type));
        } else if constexpr (std::is_same_v<T, engine::RequestCancelActivityTask>) {
          return fmt::format("{} scheduled_event_id={}", name, c.scheduled_event_id);
        } else if constexpr (std::is_same_v<T, engine::StartTimer> || std::is_same_v<T, engine::CancelTimer>) {
          return fmt::format("{} id={}", name, in_quotes(c.timer_id));
        } else if constexpr (std::is_same_v<T, engine::RecordMarker>) {
          return fmt::format("{} {}", name, describe_marker(c.marker_name, c.details));
        } else if constexpr (std::is_same_v<T, engine::StartChildWorkflowExecution>) {
          return fmt::format("{} type={} id={}", name, in_quotes(c.workflow_type), in_quotes(c.workflow_id));
        } else if constexpr (std::is_same_v<T, engine::SignalExternalWorkflowExecution>) {
          return fmt::format("{} signal={} target={}", name, in_quotes(c.signal_name), in_quotes(c.execution.workflow_id));
        } else if constexpr (std::is_same_v<T, engine::RequestCancelExternalWorkflowExecution>) {
          return fmt::format("{} target={}", name, in_quotes(c.execution.workflow_id));
        } else {
          return std::string(name);
        }
      },
      command);
}

std::string describe(const HistoryEvent& event) {
  const std::string_view name = engine::event_type_name(event.type());
  if (const auto* e = event.as<engine::ActivityTaskScheduled>()) {
    return fmt::format("{} id={} type={}", name, in_quotes(e->activity_id), in_quotes(e->activity_type));
  }
  if (const auto* e = event.as<engine::ActivityTaskCancelRequested>()) {
    return fmt::format("{} scheduled_event_id={}", name, e->scheduled_event_id);
  }
  if (const auto* e = event.as<engine::TimerStarted>()) return fmt::format("{} id={}", name, in_quotes(e->timer_id));
  if (const auto* e = event.as<engine::TimerCanceled>()) return fmt::format("{} id={}", name, in_quotes(e->timer_id));
  if (const auto* e = event.as<engine::MarkerRecorded>()) {
    return fmt::format("{} {}", name, describe_marker(e->marker_name, e->details));
  }
  if (const auto* e = event.as<engine::StartChildWorkflowExecutionInitiated>()) {
    return fmt::format("{} type={} id={}", name, in_quotes(e->workflow_type), in_quotes(e->workflow_id));
  }
  if (const auto* e = event.as<engine::SignalExternalWorkflowExecutionInitiated>()) {
    return fmt::format("{} signal={} target={}", name, in_quotes(e->signal_name),
                       in_quotes(e->workflow_execution.workflow_id));
  }
  if (const auto* e = event.as<engine::RequestCancelExternalWorkflowExecutionInitiated>()) {
    return fmt::format("{} target={}", name, in_quotes(e->workflow_execution.workflow_id));
  }
  return std::string(name);
}

const std::string* detail_value(const std::map<std::string, Payload>& details, const char* key) {
  auto it = details.find(key);
  return it == details.end() ? nullptr : &it->second;
}

// Temporal's rules (sdk-go): what identifies a command and its event. Inputs,
// timeouts, task queues and timer durations are not compared: changing them
// is allowed.
bool command_matches(const Command& command, const HistoryEvent& event) {
  if (engine::command_event_type(engine::command_type(command)) != event.type()) return false;
  return std::visit(
      [&](const auto& c) -> bool {
        using T = std::decay_t<decltype(c)>;
        if constexpr (std::is_same_v<T, engine::ScheduleActivityTask>) {
          const auto* e = event.as<engine::ActivityTaskScheduled>();
          return e->activity_id == c.activity_id && e->activity_type == c.activity_type;
        } else if constexpr (std::is_same_v<T, engine::RequestCancelActivityTask>) {
          return event.as<engine::ActivityTaskCancelRequested>()->scheduled_event_id == c.scheduled_event_id;
        } else if constexpr (std::is_same_v<T, engine::StartTimer>) {
          return event.as<engine::TimerStarted>()->timer_id == c.timer_id;
        } else if constexpr (std::is_same_v<T, engine::CancelTimer>) {
          return event.as<engine::TimerCanceled>()->timer_id == c.timer_id;
        } else if constexpr (std::is_same_v<T, engine::RecordMarker>) {
          const auto* e = event.as<engine::MarkerRecorded>();
          if (e->marker_name != c.marker_name) return false;
          if (c.marker_name != kPatchMarkerName) return true;
          const std::string* recorded = detail_value(e->details, kPatchIdKey);
          const std::string* produced = detail_value(c.details, kPatchIdKey);
          return recorded != nullptr && produced != nullptr && *recorded == *produced;
        } else if constexpr (std::is_same_v<T, engine::StartChildWorkflowExecution>) {
          return event.as<engine::StartChildWorkflowExecutionInitiated>()->workflow_type == c.workflow_type;
        } else if constexpr (std::is_same_v<T, engine::SignalExternalWorkflowExecution>) {
          const auto* e = event.as<engine::SignalExternalWorkflowExecutionInitiated>();
          return e->signal_name == c.signal_name && e->workflow_execution.workflow_id == c.execution.workflow_id;
        } else if constexpr (std::is_same_v<T, engine::RequestCancelExternalWorkflowExecution>) {
          return event.as<engine::RequestCancelExternalWorkflowExecutionInitiated>()->workflow_execution.workflow_id ==
                 c.execution.workflow_id;
        } else {
          return true;  // Closing commands: by type.
        }
      },
      command);
}

bool is_patch_marker(const HistoryEvent& event, bool* deprecated, const std::string** patch_id) {
  const auto* marker = event.as<engine::MarkerRecorded>();
  if (marker == nullptr || marker->marker_name != kPatchMarkerName) return false;
  const std::string* flag = detail_value(marker->details, kPatchDeprecatedKey);
  *deprecated = flag != nullptr && *flag == "1";
  *patch_id = detail_value(marker->details, kPatchIdKey);
  return true;
}

engine::RecordMarker patch_marker(std::string_view patch_id, bool deprecated) {
  engine::RecordMarker marker;
  marker.marker_name = kPatchMarkerName;
  marker.details[kPatchIdKey] = std::string(patch_id);
  marker.details[kPatchDeprecatedKey] = deprecated ? "1" : "0";
  return marker;
}

Failure workflow_failure(Failure failure) {
  if (failure.source.empty()) failure.source = "workflow";
  return failure;
}

void prune(std::vector<std::weak_ptr<Op>>& ops) {
  std::erase_if(ops, [](const std::weak_ptr<Op>& weak) {
    std::shared_ptr<Op> op = weak.lock();
    return op == nullptr || op->closed;
  });
}

std::shared_ptr<Op> make_external_op(Op::Kind kind, std::string target) {
  auto op = std::make_shared<Op>();
  op->kind = kind;
  op->id = std::move(target);
  op->result = std::make_shared<detail::FutureCore>();
  return op;
}

}  // namespace

void detail::await_future(const FutureCore& core, const std::source_location& location) {
  if (core.ready) return;
  if (current_run == nullptr) throw WorkflowUsageError("Future::get() outside workflow code");
  auto ready = [&core] { return core.ready; };
  current_run->block_until(detail::FunctionRef<bool()>(ready), /*cancellable=*/false, location);
}

// --- Construction ----------------------------------------------------------------------

WorkflowRun::WorkflowRun(const WorkflowDefinition* definition, engine::WorkflowExecution execution,
                         std::string workflow_type, sim::StackPool& stacks, WorkflowRunOptions options)
    : definition_(definition),
      stacks_(stacks),
      options_(options),
      context_(*this),
      random_(sim::hash_label(execution.run_id)) {
  DURO_ASSERT(definition_ != nullptr);
  info_.workflow_id = std::move(execution.workflow_id);
  info_.run_id = std::move(execution.run_id);
  info_.workflow_type = std::move(workflow_type);
  root_scope_ = std::make_shared<detail::ScopeState>();
  root_scope_->run = this;
}

std::optional<CodeLocation> WorkflowRun::last_command_location() const {
  if (!has_file(last_site_)) return std::nullopt;
  return code_location(last_site_);
}

const WorkflowRun* running_workflow() noexcept { return current_run; }

WorkflowRun::~WorkflowRun() {
  // Unwind the coroutines first: their stacks hold references to the run.
  CurrentRun current(this);
  coroutines_.clear();
}

// --- Feeding history -----------------------------------------------------------------------

bool WorkflowRun::continues_with(const HistoryEvent& first) const noexcept {
  if (poisoned_ || first.event_id != next_event_id_) return false;
  // After a task the code answered live, the next event says whether the
  // server took the answer: anything but WorkflowTaskCompleted means it
  // did not, and this run's state holds commands history never will.
  if (last_task_live_) return first.is<engine::WorkflowTaskCompleted>();
  return true;
}

std::optional<TaskAnswer> WorkflowRun::apply(std::span<const HistoryEvent> events, bool run_last_task) {
  DURO_ASSERT(!poisoned_);
  CurrentRun current(this);
  try {
    std::size_t i = 0;
    while (i < events.size()) {
      const HistoryEvent& event = events[i];
      if (event.event_id != next_event_id_) {
        bad_history(event, fmt::format("event id {} where {} was expected", event.event_id, next_event_id_));
      }
      if (next_event_id_ == 1 && !event.is<engine::WorkflowExecutionStarted>()) {
        bad_history(event, "a history starts with WorkflowExecutionStarted");
      }
      if (!event.is<engine::WorkflowTaskStarted>()) {
        if (engine::is_command_event(event.type())) {
          // Matched already when the code re-ran its task; else the
          // command events of a task this run answered live.
          if (replayed_completed_id_ == 0 || task_completed_id(event) != replayed_completed_id_) {
            match_one(event);
          }
        } else {
          apply_event(event);
        }
        next_event_id_++;
        i++;
        continue;
      }
      next_event_id_++;
      const HistoryEvent* next = i + 1 < events.size() ? &events[i + 1] : nullptr;
      if (next == nullptr) {
        if (!run_last_task) {
          next_event_id_--;  // Not consumed: the run may still answer it.
          break;
        }
        run_task(event, /*recorded=*/false);
        return take_answer();
      }
      if (next->is<engine::WorkflowTaskFailed>() || next->is<engine::WorkflowTaskTimedOut>()) {
        i++;  // The task produced nothing; its failure is applied as an event.
        continue;
      }
      if (!next->is<engine::WorkflowTaskCompleted>()) {
        bad_history(*next, "a WorkflowTaskStarted is followed by its Completed, Failed or TimedOut");
      }
      // The task's command events: those that name its Completed, up to the
      // next task. Events the server wrote with them (an unstarted
      // activity's Canceled, the next WorkflowTaskScheduled) may come in
      // between; they are applied in order after the code ran.
      recorded_.clear();
      for (std::size_t j = i + 2; j < events.size() && !events[j].is<engine::WorkflowTaskStarted>(); j++) {
        if (engine::is_command_event(events[j].type()) && task_completed_id(events[j]) == next->event_id) {
          recorded_.push_back(&events[j]);
        }
      }
      replayed_completed_id_ = next->event_id;
      run_task(event, /*recorded=*/true);
      i++;
    }
  } catch (const ReplayAbort&) {
    DURO_ASSERT(failure_.has_value());
  } catch (const std::exception& error) {
    // A signal handler threw, or an event's payload did not decode.
    task_failed(engine::WorkflowTaskFailedCause::kWorkflowWorkerUnhandledFailure,
                Failure{kPanicFailureType, error.what(), {}, false, engine::TimeoutType::kNone, "workflow"});
  }
  if (failure_) return take_answer();
  return std::nullopt;
}

void WorkflowRun::apply_event(const HistoryEvent& event) {
  using namespace engine;
  if (const auto* e = event.as<WorkflowExecutionStarted>()) {
    info_.task_queue = e->task_queue.name;
    info_.attempt = e->attempt;
    info_.first_execution_run_id = e->first_execution_run_id;
    info_.continued_execution_run_id = e->continued_execution_run_id;
    info_.parent = e->parent;
    info_.start_time = event.time;
    info_.run_timeout = e->workflow_run_timeout;
    info_.execution_timeout = e->workflow_execution_timeout;
    if (!e->workflow_type.empty() && e->workflow_type != info_.workflow_type) {
      bad_history(event, fmt::format("the history is of workflow type \"{}\", not \"{}\"", e->workflow_type,
                                     info_.workflow_type));
    }
    input_ = e->input;
    now_ = event.time;
    auto slot = std::make_unique<Slot>();
    slot->scope = root_scope_;
    slot->coroutine = std::make_unique<Coroutine>(stacks_, [this] { main_body(); });
    coroutines_.push_back(std::move(slot));
    return;
  }
  if (event.is<WorkflowTaskScheduled>() || event.is<WorkflowTaskCompleted>() || event.is<WorkflowTaskFailed>() ||
      event.is<WorkflowTaskTimedOut>() || event.is<ActivityTaskStarted>() || is_close_event(event.type())) {
    return;
  }
  if (const auto* e = event.as<WorkflowExecutionSignaled>()) {
    deliver_signal(e->signal_name, e->input);
    return;
  }
  if (event.is<WorkflowExecutionCancelRequested>()) {
    // Acted on when the code next runs, after every event before it is
    // applied: a timer that fired in the same batch is not cancelled.
    if (!cancel_requested_) cancel_pending_ = true;
    cancel_requested_ = true;
    return;
  }
  if (const auto* e = event.as<ActivityTaskCompleted>()) {
    std::shared_ptr<Op> op = op_for(e->scheduled_event_id, event);
    if (!op->result->ready) op->result->resolve(e->result);
    close_op(*op);
    return;
  }
  auto activity_failed = [&](EventId scheduled, const Failure& failure, RetryState retry_state) {
    std::shared_ptr<Op> op = op_for(scheduled, event);
    if (!op->result->ready) {
      op->result->fail(std::make_exception_ptr(ActivityError(failure, op->type, op->id, retry_state)));
    }
    close_op(*op);
  };
  if (const auto* e = event.as<ActivityTaskFailed>()) {
    activity_failed(e->scheduled_event_id, e->failure, e->retry_state);
    return;
  }
  if (const auto* e = event.as<ActivityTaskTimedOut>()) {
    activity_failed(e->scheduled_event_id, e->failure, e->retry_state);
    return;
  }
  if (const auto* e = event.as<ActivityTaskCanceled>()) {
    std::shared_ptr<Op> op = op_for(e->scheduled_event_id, event);
    if (!op->result->ready) op->result->fail(std::make_exception_ptr(CanceledError("activity " + op->id + " cancelled")));
    close_op(*op);
    return;
  }
  if (const auto* e = event.as<TimerFired>()) {
    std::shared_ptr<Op> op = op_for(e->started_event_id, event);
    if (!op->result->ready) op->result->resolve({});
    close_op(*op);
    return;
  }
  if (const auto* e = event.as<StartChildWorkflowExecutionFailed>()) {
    std::shared_ptr<Op> op = op_for(e->initiated_event_id, event);
    auto error = std::make_exception_ptr(ChildWorkflowError(
        Failure{"ChildWorkflowExecutionAlreadyStarted", "child workflow " + e->workflow_id + " could not start", {},
                true, TimeoutType::kNone, "server"},
        e->workflow_type, WorkflowExecution{e->workflow_id, ""}));
    if (!op->started->ready) op->started->fail(error);
    if (!op->result->ready) op->result->fail(error);
    close_op(*op);
    return;
  }
  if (const auto* e = event.as<ChildWorkflowExecutionStarted>()) {
    std::shared_ptr<Op> op = op_for(e->initiated_event_id, event);
    op->child_execution = e->workflow_execution;
    if (!op->started->ready) op->started->resolve(to_payload(e->workflow_execution));
    return;
  }
  auto child_closed = [&](EventId initiated, std::optional<Failure> failure, const Payload* result) {
    std::shared_ptr<Op> op = op_for(initiated, event);
    if (!op->result->ready) {
      if (failure) {
        op->result->fail(std::make_exception_ptr(ChildWorkflowError(*failure, op->type, op->child_execution)));
      } else {
        op->result->resolve(*result);
      }
    }
    close_op(*op);
  };
  if (const auto* e = event.as<ChildWorkflowExecutionCompleted>()) {
    child_closed(e->initiated_event_id, std::nullopt, &e->result);
    return;
  }
  if (const auto* e = event.as<ChildWorkflowExecutionFailed>()) {
    child_closed(e->initiated_event_id, e->failure, nullptr);
    return;
  }
  if (const auto* e = event.as<ChildWorkflowExecutionCanceled>()) {
    child_closed(e->initiated_event_id,
                 Failure{kCanceledFailureType, "child workflow cancelled", e->details, true, TimeoutType::kNone, "server"},
                 nullptr);
    return;
  }
  if (const auto* e = event.as<ChildWorkflowExecutionTimedOut>()) {
    child_closed(e->initiated_event_id,
                 Failure{kTimeoutFailureType, "child workflow timed out", {}, true, TimeoutType::kStartToClose, "server"},
                 nullptr);
    return;
  }
  if (const auto* e = event.as<ChildWorkflowExecutionTerminated>()) {
    child_closed(e->initiated_event_id,
                 Failure{kTerminatedFailureType, "child workflow terminated", {}, true, TimeoutType::kNone, "server"},
                 nullptr);
    return;
  }
  auto external_done = [&](EventId initiated, const WorkflowExecution& target, bool ok) {
    std::shared_ptr<Op> op = op_for(initiated, event);
    if (!op->result->ready) {
      if (ok) {
        op->result->resolve({});
      } else {
        op->result->fail(std::make_exception_ptr(ExternalWorkflowError(
            Failure{"ExternalWorkflowExecutionNotFound", "no workflow " + target.workflow_id, {}, true,
                    TimeoutType::kNone, "server"})));
      }
    }
    close_op(*op);
  };
  if (const auto* e = event.as<ExternalWorkflowExecutionSignaled>()) {
    external_done(e->initiated_event_id, e->workflow_execution, true);
    return;
  }
  if (const auto* e = event.as<SignalExternalWorkflowExecutionFailed>()) {
    external_done(e->initiated_event_id, e->workflow_execution, false);
    return;
  }
  if (const auto* e = event.as<ExternalWorkflowExecutionCancelRequested>()) {
    external_done(e->initiated_event_id, e->workflow_execution, true);
    return;
  }
  if (const auto* e = event.as<RequestCancelExternalWorkflowExecutionFailed>()) {
    external_done(e->initiated_event_id, e->workflow_execution, false);
    return;
  }
  bad_history(event, "an event the SDK does not expect here");
}

std::shared_ptr<Op> WorkflowRun::op_for(EventId event_id, const HistoryEvent& event) {
  auto it = ops_by_event_.find(event_id);
  if (it == ops_by_event_.end()) {
    bad_history(event, fmt::format("it refers to event {}, which started nothing still open", event_id));
  }
  return it->second;
}

void WorkflowRun::close_op(Op& op) {
  op.closed = true;
  ops_by_event_.erase(op.event_id);
}

// --- Running a workflow task ----------------------------------------------------------------

void WorkflowRun::run_task(const HistoryEvent& started, bool recorded) {
  if (coroutines_.empty()) bad_history(started, "a workflow task before WorkflowExecutionStarted");
  task_seq_++;
  now_ = std::max(now_, started.time);
  last_started_event_id_ = started.event_id;
  replaying_ = recorded;
  last_task_live_ = !recorded;
  if (!recorded) recorded_.clear();
  recorded_next_ = 0;
  task_log_.clear();
  task_commands_ = 0;
  answer_.clear();
  if (options_.record_commands) commands_by_task_.push_back(TaskCommands{started.event_id, {}});

  if (cancel_pending_) {
    cancel_pending_ = false;
    cancel_scope(*root_scope_);
  }
  emit_deferred_cancels();
  if (!close_emitted_) run_coroutines();

  if (recorded) {
    skip_deprecated_patches(nullptr);
    if (recorded_next_ < recorded_.size()) diverge(NondeterminismError::Kind::kMissing, recorded_[recorded_next_], nullptr);
  }
  // Finished coroutines give their stacks back; the main one stays first.
  std::erase_if(coroutines_, [&](const std::unique_ptr<Slot>& slot) {
    return slot->done && slot.get() != coroutines_.front().get();
  });
  recorded_.clear();
  replaying_ = false;
}

void WorkflowRun::run_coroutines() {
  for (std::size_t round = 0;; round++) {
    if (round >= options_.scheduling_rounds_max) {
      throw WorkflowUsageError("workflow coroutines kept waking each other without end (a livelock)");
    }
    bool progress = false;
    for (std::size_t i = 0; i < coroutines_.size() && !close_emitted_; i++) {
      Slot* slot = coroutines_[i].get();
      if (slot->done || !runnable(*slot)) continue;
      current_slot_ = slot;
      try {
        slot->coroutine->resume();
      } catch (...) {
        current_slot_ = nullptr;
        throw;
      }
      current_slot_ = nullptr;
      slot->done = slot->coroutine->done();
      progress = true;
      if (failure_) throw ReplayAbort{};
    }
    if (!progress || close_emitted_) return;
  }
}

bool WorkflowRun::runnable(const Slot& slot) const {
  if (slot.ready == nullptr) return true;  // Not started yet.
  if ((*slot.ready)()) return true;
  return slot.cancellable_wait && slot.scope->cancelled;
}

void WorkflowRun::block_until(detail::FunctionRef<bool()> ready, bool cancellable, const std::source_location& where) {
  if (failure_) throw ReplayAbort{};
  Slot* slot = current_slot_;
  if (slot == nullptr || Coroutine::current() == nullptr || in_handler_) {
    throw WorkflowUsageError(fmt::format("a blocking call at {}:{} outside workflow code (in a signal or query handler?)",
                                         base_name(where.file_name()), where.line()));
  }
  for (;;) {
    if (ready()) return;
    if (cancellable && slot->scope->cancelled) {
      throw CanceledError(fmt::format("cancelled while waiting at {}:{}", base_name(where.file_name()), where.line()));
    }
    slot->ready = &ready;
    slot->cancellable_wait = cancellable;
    Coroutine::suspend();
    slot->ready = nullptr;
    if (failure_) throw ReplayAbort{};
  }
}

void WorkflowRun::main_body() {
  // Handlers capture the workflow function's locals, by reference as is
  // natural: they end with its frame, whichever way it is left, and are
  // never called again (a query or a signal would read a dead stack).
  struct HandlersEnd {
    WorkflowRun& run;
    ~HandlersEnd() {
      run.function_returned_ = true;
      run.signal_handlers_.clear();
      run.query_handlers_.clear();
    }
  } handlers_end{*this};
  try {
    Payload result = definition_->body(context_, input_);
    finish_main(engine::CompleteWorkflowExecution{std::move(result)});
  } catch (const CoroutineUnwind&) {
    throw;
  } catch (const ReplayAbort&) {
    throw;
  } catch (const ContinueAsNewRequest& request) {
    finish_main(request.command);
  } catch (const CanceledError& error) {
    if (cancel_requested_) {
      finish_main(engine::CancelWorkflowExecution{});
    } else {
      finish_main(engine::FailWorkflowExecution{workflow_failure(error.failure())});
    }
  } catch (const WorkflowError& error) {
    finish_main(engine::FailWorkflowExecution{workflow_failure(error.failure())});
  } catch (const std::exception& error) {
    code_threw(error.what());
  } catch (...) {
    code_threw("an exception that is not a std::exception");
  }
}

void WorkflowRun::code_threw(const std::string& what) {
  Failure failure{kPanicFailureType, what, {}, false, engine::TimeoutType::kNone, "workflow"};
  if (definition_->options.fail_workflow_on_task_failure && !replaying_) {
    finish_main(engine::FailWorkflowExecution{failure});
    return;
  }
  task_failed(engine::WorkflowTaskFailedCause::kWorkflowWorkerUnhandledFailure, std::move(failure));
  throw ReplayAbort{};
}

void WorkflowRun::finish_main(Command close) {
  emit(std::move(close), nullptr, CodeSite{{}, "the workflow function returned"});
  close_emitted_ = true;
}

void WorkflowRun::task_failed(engine::WorkflowTaskFailedCause cause, Failure failure) {
  if (failure_) return;  // The first reason stands.
  TaskAnswer answer;
  answer.failed = true;
  answer.cause = cause;
  answer.failure = std::move(failure);
  failure_ = std::move(answer);
  poisoned_ = true;
}

TaskAnswer WorkflowRun::take_answer() {
  if (failure_) {
    TaskAnswer answer = *failure_;
    if (definition_->options.fail_workflow_on_task_failure) {
      // The workflow opted to fail rather than wait for fixed code.
      answer.failed = false;
      answer.commands = {engine::FailWorkflowExecution{answer.failure}};
    }
    return answer;
  }
  TaskAnswer answer;
  answer.commands = std::move(answer_);
  answer_.clear();
  return answer;
}

// --- Commands and matching --------------------------------------------------------------------

void WorkflowRun::emit(Command command, std::shared_ptr<Op> op, CodeSite site) {
  if (failure_) throw ReplayAbort{};
  if (in_handler_ || close_emitted_ || task_commands_ >= options_.commands_per_task_max) {
    const CodeLocation at = code_location(site);
    if (in_handler_) {
      throw WorkflowUsageError(fmt::format("{} at {}:{} from a signal or query handler: handlers may not issue commands",
                                           at.call, at.file, at.line));
    }
    if (close_emitted_) {
      throw WorkflowUsageError(fmt::format("{} at {}:{} after the workflow closed", at.call, at.file, at.line));
    }
    throw WorkflowUsageError(fmt::format("more than {} commands in one workflow task (at {}:{})",
                                         options_.commands_per_task_max, at.file, at.line));
  }
  task_commands_++;
  if (op) op->task_seq = task_seq_;
  if (has_file(site)) last_site_ = site;
  if (options_.record_commands) commands_by_task_.back().commands.push_back(command);
  if (!replaying_) {
    answer_.push_back(command);
    pending_.push_back(Pending{std::move(command), std::move(op), site});
    return;
  }
  // History already records this task: check the command now, so a
  // divergence points at the call that made it. Matched commands stay in
  // task_log_ until the task ends, for the report.
  skip_deprecated_patches(&command);
  task_log_.push_back(Pending{std::move(command), std::move(op), site});
  Pending& pending = task_log_.back();
  if (recorded_next_ >= recorded_.size()) diverge(NondeterminismError::Kind::kExtra, nullptr, &pending);
  const HistoryEvent& event = *recorded_[recorded_next_];
  if (!command_matches(pending.command, event)) diverge(NondeterminismError::Kind::kMismatch, &event, &pending);
  bind(pending, event);
  recorded_next_++;
}

void WorkflowRun::bind(const Pending& pending, const HistoryEvent& event) {
  if (pending.op) {
    pending.op->event_id = event.event_id;
    ops_by_event_[event.event_id] = pending.op;
  }
}

void WorkflowRun::match_one(const HistoryEvent& event) {
  if (pending_.empty()) diverge(NondeterminismError::Kind::kMissing, &event, nullptr);
  Pending& pending = pending_.front();
  if (!command_matches(pending.command, event)) diverge(NondeterminismError::Kind::kMismatch, &event, &pending);
  bind(pending, event);
  pending_.pop_front();
}

void WorkflowRun::skip_deprecated_patches(const Command* next) {
  // A deprecated patch marker the code no longer asks for is skipped
  // (Temporal's rule): it lets deprecate_patch() calls be removed once no
  // run from before the patch remains. `next`: the command about to be
  // matched (not skipped past when it is that very marker).
  while (recorded_next_ < recorded_.size()) {
    bool deprecated = false;
    const std::string* patch_id = nullptr;
    if (!is_patch_marker(*recorded_[recorded_next_], &deprecated, &patch_id) || !deprecated) return;
    if (next != nullptr) {
      const auto* marker = std::get_if<engine::RecordMarker>(next);
      if (marker != nullptr && marker->marker_name == kPatchMarkerName) {
        const std::string* produced = detail_value(marker->details, kPatchIdKey);
        if (produced != nullptr && patch_id != nullptr && *produced == *patch_id) return;
      }
    }
    recorded_next_++;
  }
}

void WorkflowRun::diverge(NondeterminismError::Kind kind, const HistoryEvent* event, const Pending* pending) {
  NondeterminismError::Divergence d;
  d.kind = kind;
  d.workflow_id = info_.workflow_id;
  d.run_id = info_.run_id;
  d.workflow_type = info_.workflow_type;
  d.workflow_task_started_event_id = last_started_event_id_;
  if (event != nullptr) {
    d.event_id = event->event_id;
    d.history_holds = describe(*event);
  } else {
    // An extra command: history's commands for this task end before it.
    // The task's Completed is the event after its Started.
    const engine::EventId last = recorded_.empty() ? last_started_event_id_ + 1 : recorded_.back()->event_id;
    d.event_id = last + 1;
    d.history_holds = fmt::format("no more commands in this workflow task (they end at event {})", last);
  }
  if (pending != nullptr) d.code_produced = describe(pending->command);
  d.location = code_location(pending != nullptr ? pending->site : last_site_);
  if (d.location.file.empty()) {
    // A command the SDK made for the code (a close, a cancellation): point
    // at the code's last SDK call before it.
    const std::string what = d.location.call;
    d.location = code_location(last_site_);
    d.location.call = what + (has_file(last_site_) ? std::string(", after ") + last_site_.call : "");
  }
  for (const HistoryEvent* recorded : recorded_) {
    d.history_around.push_back(CommandLine{recorded->event_id, describe(*recorded), {}});
  }
  if (recorded_.empty() && event != nullptr) d.history_around.push_back(CommandLine{event->event_id, describe(*event), {}});
  for (const Pending& logged : task_log_) {
    d.code_around.push_back(CommandLine{0, describe(logged.command), code_location(logged.site)});
  }
  if (task_log_.empty() && pending != nullptr) {
    d.code_around.push_back(CommandLine{0, describe(pending->command), code_location(pending->site)});
  }
  NondeterminismError error(d);
  TaskAnswer answer;
  answer.failed = true;
  answer.cause = engine::WorkflowTaskFailedCause::kNondeterminism;
  answer.failure = Failure{kNondeterminismFailureType, error.what(), {}, false, engine::TimeoutType::kNone, "workflow"};
  answer.divergence = std::move(d);
  if (!failure_) failure_ = std::move(answer);
  poisoned_ = true;
  throw ReplayAbort{};
}

void WorkflowRun::bad_history(const HistoryEvent& event, std::string_view problem) {
  task_failed(engine::WorkflowTaskFailedCause::kWorkflowWorkerUnhandledFailure,
              Failure{"BadHistory",
                      fmt::format("workflow \"{}\" run \"{}\": event {} ({}): {}", info_.workflow_id, info_.run_id,
                                  event.event_id, engine::event_type_name(event.type()), problem),
                      {}, false, engine::TimeoutType::kNone, "workflow"});
  throw ReplayAbort{};
}

// --- Cancellation ------------------------------------------------------------------------------

std::shared_ptr<detail::ScopeState>& WorkflowRun::current_scope() {
  return current_slot_ != nullptr ? current_slot_->scope : root_scope_;
}

std::shared_ptr<detail::ScopeState> WorkflowRun::new_scope(bool cancellable) {
  auto scope = std::make_shared<detail::ScopeState>();
  scope->run = this;
  if (cancellable) {
    std::shared_ptr<detail::ScopeState>& parent = current_scope();
    scope->parent = parent;
    std::erase_if(parent->children, [](const std::weak_ptr<detail::ScopeState>& child) { return child.expired(); });
    parent->children.push_back(scope);
    scope->cancelled = parent->cancelled;
  }
  return scope;
}

void WorkflowRun::register_op(const std::shared_ptr<Op>& op) {
  std::vector<std::weak_ptr<Op>>& ops = current_scope()->ops;
  // Prune closed operations now and then, so a long-lived scope stays small.
  if (ops.size() >= 64 && (ops.size() & (ops.size() - 1)) == 0) prune(ops);
  ops.push_back(op);
}

void WorkflowRun::cancel_scope(detail::ScopeState& scope) {
  if (scope.cancelled && scope.ops.empty() && scope.children.empty()) return;
  scope.cancelled = true;
  std::vector<std::weak_ptr<Op>> ops = std::move(scope.ops);
  scope.ops.clear();
  for (const std::weak_ptr<Op>& weak : ops) {
    if (std::shared_ptr<Op> op = weak.lock()) cancel_op(*op);
  }
  std::vector<std::weak_ptr<detail::ScopeState>> children = std::move(scope.children);
  scope.children.clear();
  for (const std::weak_ptr<detail::ScopeState>& weak : children) {
    if (std::shared_ptr<detail::ScopeState> child = weak.lock()) cancel_scope(*child);
  }
}

void WorkflowRun::cancel_op(Op& op) {
  if (op.closed || op.cancel_requested) return;
  op.cancel_requested = true;
  const CodeSite location{{}, "cancellation"};
  switch (op.kind) {
    case Op::Kind::kActivity:
      // Temporal's TRY_CANCEL: the workflow stops waiting at once.
      if (!op.result->ready) op.result->fail(std::make_exception_ptr(CanceledError("activity " + op.id + " cancelled")));
      // An activity scheduled in this same task has no event id yet on a
      // live run (it has one on replay): its cancel goes out with the next
      // task either way, so live and replay produce the same commands.
      deferred_cancels_.push_back(shared_from(op));
      if (op.task_seq != task_seq_) emit_deferred_cancels();
      return;
    case Op::Kind::kTimer:
      if (!op.result->ready) op.result->fail(std::make_exception_ptr(CanceledError("timer " + op.id + " cancelled")));
      emit(engine::CancelTimer{op.id}, nullptr, location);
      return;
    case Op::Kind::kChild:
      if (!op.result->ready) {
        op.result->fail(std::make_exception_ptr(CanceledError("child workflow " + op.id + " cancelled")));
      }
      if (!op.started->ready) {
        op.started->fail(std::make_exception_ptr(CanceledError("child workflow " + op.id + " cancelled")));
      }
      // Its cancel request needs it started; until then it waits.
      deferred_cancels_.push_back(shared_from(op));
      if (!op.child_execution.run_id.empty()) emit_deferred_cancels();
      return;
    case Op::Kind::kSignalExternal:
    case Op::Kind::kCancelExternal:
      return;
  }
}

std::shared_ptr<Op> WorkflowRun::shared_from(Op& op) {
  if (op.event_id != 0) {
    if (auto it = ops_by_event_.find(op.event_id); it != ops_by_event_.end()) return it->second;
  }
  for (const Pending& pending : pending_) {
    if (pending.op.get() == &op) return pending.op;
  }
  DURO_ASSERT_MSG(false, "a cancelled operation is neither pending nor open");
  return nullptr;
}

void WorkflowRun::emit_deferred_cancels() {
  const CodeSite location{{}, "cancellation"};
  std::vector<std::shared_ptr<Op>> waiting;
  std::vector<std::shared_ptr<Op>> deferred = std::move(deferred_cancels_);
  deferred_cancels_.clear();
  for (std::shared_ptr<Op>& op : deferred) {
    if (op->closed) continue;
    if (op->kind == Op::Kind::kActivity) {
      if (op->task_seq == task_seq_) {
        waiting.push_back(std::move(op));
        continue;
      }
      DURO_ASSERT(op->event_id != 0);
      emit(engine::RequestCancelActivityTask{op->event_id}, nullptr, location);
    } else if (op->kind == Op::Kind::kChild) {
      if (op->child_execution.run_id.empty()) {
        waiting.push_back(std::move(op));
        continue;
      }
      engine::RequestCancelExternalWorkflowExecution cancel;
      cancel.execution = op->child_execution;
      cancel.child_workflow_only = true;
      cancel.reason = "parent cancelled the child's scope";
      emit(std::move(cancel), make_external_op(Op::Kind::kCancelExternal, op->child_execution.workflow_id), location);
    }
  }
  for (std::shared_ptr<Op>& op : waiting) deferred_cancels_.push_back(std::move(op));
}


// --- What WorkflowContext asks for ---------------------------------------------------------------

std::shared_ptr<detail::FutureCore> WorkflowRun::start_activity(std::string_view type, Payload input,
                                                                const ActivityOptions& options,
                                                                const std::source_location& where) {
  engine::ScheduleActivityTask command;
  command.activity_id = options.activity_id.empty() ? std::to_string(++activity_seq_) : options.activity_id;
  command.activity_type = std::string(type);
  command.task_queue = engine::TaskQueue{options.task_queue, engine::TaskQueueKind::kNormal};
  command.input = std::move(input);
  const ActivityOptions& defaults = definition_->options.activity_defaults;
  const bool timeouts_set = options.schedule_to_close.count() > 0 || options.start_to_close.count() > 0;
  const ActivityOptions& timeouts = timeouts_set ? options : defaults;
  command.schedule_to_close_timeout = timeouts.schedule_to_close;
  command.schedule_to_start_timeout = timeouts.schedule_to_start;
  command.start_to_close_timeout = timeouts.start_to_close;
  command.heartbeat_timeout = options.heartbeat.count() > 0 ? options.heartbeat : timeouts.heartbeat;
  command.retry_policy = options.retry != RetryPolicy{} ? options.retry : defaults.retry;

  auto op = std::make_shared<Op>();
  op->kind = Op::Kind::kActivity;
  op->id = command.activity_id;
  op->type = command.activity_type;
  op->result = std::make_shared<detail::FutureCore>();
  if (current_scope()->cancelled) {
    // Started in a cancelled scope: cancelled before it was ever scheduled.
    op->result->fail(std::make_exception_ptr(CanceledError("activity " + op->id + " started in a cancelled scope")));
    return op->result;
  }
  register_op(op);
  std::shared_ptr<detail::FutureCore> result = op->result;
  emit(std::move(command), std::move(op), CodeSite{where, "activity"});
  return result;
}

std::shared_ptr<Op> WorkflowRun::start_timer_op(sim::Duration duration, const std::source_location& where,
                                                const char* call) {
  auto op = std::make_shared<Op>();
  op->kind = Op::Kind::kTimer;
  op->result = std::make_shared<detail::FutureCore>();
  if (duration <= sim::Duration{0}) {
    op->closed = true;
    op->result->resolve({});
    return op;
  }
  op->id = std::to_string(++timer_seq_);
  if (current_scope()->cancelled) {
    op->closed = true;
    op->result->fail(std::make_exception_ptr(CanceledError("timer " + op->id + " started in a cancelled scope")));
    return op;
  }
  register_op(op);
  emit(engine::StartTimer{op->id, duration}, op, CodeSite{where, call});
  return op;
}

std::shared_ptr<detail::FutureCore> WorkflowRun::start_timer(sim::Duration duration, const std::source_location& where) {
  return start_timer_op(duration, where, "timer")->result;
}

std::optional<Payload> WorkflowRun::wait_signal(std::string_view name, std::optional<sim::Duration> timeout,
                                                const std::source_location& where) {
  std::deque<Payload>& queue = signal_queues_[std::string(name)];
  auto take = [&queue] {
    Payload payload = std::move(queue.front());
    queue.pop_front();
    return payload;
  };
  if (!queue.empty()) return take();
  if (!timeout) {
    auto arrived = [&queue] { return !queue.empty(); };
    block_until(detail::FunctionRef<bool()>(arrived), /*cancellable=*/true, where);
    return take();
  }
  std::shared_ptr<Op> timer = start_timer_op(*timeout, where, "wait_signal");
  auto arrived_or_timed_out = [&queue, &timer] { return !queue.empty() || timer->result->ready; };
  block_until(detail::FunctionRef<bool()>(arrived_or_timed_out), /*cancellable=*/true, where);
  if (!queue.empty()) {
    if (!timer->closed) cancel_op(*timer);
    return take();
  }
  return std::nullopt;
}

void WorkflowRun::deliver_signal(const std::string& name, const Payload& input) {
  auto handler = signal_handlers_.find(name);
  if (handler == signal_handlers_.end()) {
    signal_queues_[name].push_back(input);
    return;
  }
  HandlerScope scope(in_handler_);
  handler->second(input);
}

void WorkflowRun::on_signal(std::string_view name, std::function<void(const Payload&)> handler) {
  std::function<void(const Payload&)>& stored = signal_handlers_[std::string(name)] = std::move(handler);
  // Signals that arrived before the handler existed go to it now, in order.
  auto queue = signal_queues_.find(name);
  if (queue == signal_queues_.end()) return;
  std::deque<Payload> waiting = std::move(queue->second);
  signal_queues_.erase(queue);
  HandlerScope scope(in_handler_);
  for (const Payload& payload : waiting) stored(payload);
}

void WorkflowRun::on_query(std::string_view name, std::function<Payload(const Payload&)> handler) {
  query_handlers_[std::string(name)] = std::move(handler);
}

QueryAnswer WorkflowRun::query(std::string_view query_type, const Payload& args) {
  if (function_returned_) {
    return QueryAnswer{{}, Failure{"QueryRunClosed",
                                   fmt::format("the function of workflow {} (run {}, type \"{}\") has returned: its "
                                               "query handlers ended with the state they read",
                                               info_.workflow_id, info_.run_id,
                                               info_.workflow_type),
                                   {}, true, engine::TimeoutType::kNone, "workflow"}};
  }
  auto handler = query_handlers_.find(query_type);
  if (handler == query_handlers_.end()) {
    std::string known;
    for (const auto& [name, fn] : query_handlers_) known += (known.empty() ? "" : ", ") + name;
    return QueryAnswer{{}, Failure{"QueryNotFound",
                                   fmt::format("workflow type \"{}\" has no query handler \"{}\" (it has: {})",
                                               info_.workflow_type, query_type, known.empty() ? "none" : known),
                                   {}, true, engine::TimeoutType::kNone, "workflow"}};
  }
  CurrentRun current(this);
  HandlerScope scope(in_handler_);
  try {
    return QueryAnswer{handler->second(args), std::nullopt};
  } catch (const WorkflowError& error) {
    return QueryAnswer{{}, error.failure()};
  } catch (const std::exception& error) {
    return QueryAnswer{{}, Failure{"QueryFailed", error.what(), {}, true, engine::TimeoutType::kNone, "workflow"}};
  }
}

Payload WorkflowRun::side_effect(detail::FunctionRef<Payload()> produce, const std::source_location& where) {
  if (in_handler_) {
    throw WorkflowUsageError(fmt::format("side_effect() at {}:{} from a handler: handlers may not issue commands",
                                         base_name(where.file_name()), where.line()));
  }
  engine::RecordMarker marker;
  marker.marker_name = kSideEffectMarkerName;
  if (replaying_) {
    // The recorded value, never a new one: the function may not be
    // deterministic (that is why it is a side effect).
    skip_deprecated_patches(nullptr);  // A side-effect marker is never a patch.
    if (recorded_next_ < recorded_.size()) {
      if (const auto* recorded = recorded_[recorded_next_]->as<engine::MarkerRecorded>();
          recorded != nullptr && recorded->marker_name == kSideEffectMarkerName) {
        marker.details = recorded->details;
      }
    }
  } else {
    HandlerScope scope(in_handler_);  // The function may not issue commands either.
    marker.details[kSideEffectDataKey] = produce();
  }
  Payload value;
  if (const std::string* data = detail_value(marker.details, kSideEffectDataKey)) value = *data;
  emit(std::move(marker), nullptr, CodeSite{where, "side_effect"});
  return value;
}

bool WorkflowRun::patched(std::string_view patch_id, bool deprecated, const std::source_location& where) {
  if (in_handler_) {
    throw WorkflowUsageError(fmt::format("patched() at {}:{} from a handler: handlers may not issue commands",
                                         base_name(where.file_name()), where.line()));
  }
  if (auto memo = patches_.find(patch_id); memo != patches_.end()) return memo->second;
  bool result = true;
  if (replaying_) {
    // True only if history holds this patch's marker here, possibly after
    // deprecated markers of other patches.
    result = false;
    for (std::size_t at = recorded_next_; at < recorded_.size(); at++) {
      bool marker_deprecated = false;
      const std::string* recorded_id = nullptr;
      if (!is_patch_marker(*recorded_[at], &marker_deprecated, &recorded_id)) break;
      if (recorded_id != nullptr && *recorded_id == patch_id) {
        result = true;
        break;
      }
      if (!marker_deprecated) break;
    }
  }
  if (result) emit(patch_marker(patch_id, deprecated), nullptr, CodeSite{where, deprecated ? "deprecate_patch" : "patched"});
  patches_.emplace(std::string(patch_id), result);
  return result;
}

std::pair<std::shared_ptr<detail::FutureCore>, std::shared_ptr<detail::FutureCore>> WorkflowRun::start_child(
    std::string_view workflow_type, Payload input, const ChildOptions& options, const std::source_location& where) {
  engine::StartChildWorkflowExecution command;
  child_seq_++;
  command.workflow_id = options.workflow_id.empty()
                            ? fmt::format("{}/{}/{}", info_.workflow_id, info_.run_id.substr(0, 8), child_seq_)
                            : options.workflow_id;
  command.workflow_type = std::string(workflow_type);
  command.task_queue = engine::TaskQueue{options.task_queue, engine::TaskQueueKind::kNormal};
  command.input = std::move(input);
  command.workflow_execution_timeout = options.execution_timeout;
  command.workflow_run_timeout = options.run_timeout;
  command.workflow_task_timeout = options.task_timeout;
  command.parent_close_policy = options.parent_close_policy;
  command.workflow_id_reuse_policy = options.id_reuse_policy;
  command.retry_policy = options.retry;

  auto op = std::make_shared<Op>();
  op->kind = Op::Kind::kChild;
  op->id = command.workflow_id;
  op->type = command.workflow_type;
  op->result = std::make_shared<detail::FutureCore>();
  op->started = std::make_shared<detail::FutureCore>();
  auto futures = std::make_pair(op->started, op->result);
  if (current_scope()->cancelled) {
    auto error = std::make_exception_ptr(CanceledError("child workflow " + op->id + " started in a cancelled scope"));
    op->started->fail(error);
    op->result->fail(error);
    return futures;
  }
  register_op(op);
  emit(std::move(command), std::move(op), CodeSite{where, "child"});
  return futures;
}

std::shared_ptr<detail::FutureCore> WorkflowRun::signal_external(const engine::WorkflowExecution& target,
                                                                 std::string_view signal_name, Payload input,
                                                                 const std::source_location& where) {
  std::shared_ptr<Op> op = make_external_op(Op::Kind::kSignalExternal, target.workflow_id);
  std::shared_ptr<detail::FutureCore> result = op->result;
  emit(engine::SignalExternalWorkflowExecution{target, std::string(signal_name), std::move(input), false}, std::move(op),
       CodeSite{where, "signal_workflow"});
  return result;
}

std::shared_ptr<detail::FutureCore> WorkflowRun::cancel_external(const engine::WorkflowExecution& target,
                                                                 const std::source_location& where) {
  std::shared_ptr<Op> op = make_external_op(Op::Kind::kCancelExternal, target.workflow_id);
  std::shared_ptr<detail::FutureCore> result = op->result;
  emit(engine::RequestCancelExternalWorkflowExecution{target, false, ""}, std::move(op),
       CodeSite{where, "cancel_workflow"});
  return result;
}

std::shared_ptr<detail::FutureCore> WorkflowRun::go(std::function<Payload()> body) {
  if (in_handler_) throw WorkflowUsageError("go() from a signal or query handler");
  if (coroutines_.size() >= options_.coroutines_max) {
    throw WorkflowUsageError(fmt::format("more than {} coroutines in one workflow", options_.coroutines_max));
  }
  auto slot = std::make_unique<Slot>();
  slot->scope = new_scope(/*cancellable=*/true);
  slot->result = std::make_shared<detail::FutureCore>();
  Slot* raw = slot.get();
  slot->coroutine = std::make_unique<Coroutine>(stacks_, [this, raw, body = std::move(body)] {
    try {
      raw->result->resolve(body());
    } catch (const CoroutineUnwind&) {
      throw;
    } catch (const ReplayAbort&) {
      throw;
    } catch (const ContinueAsNewRequest& request) {
      finish_main(request.command);
    } catch (const WorkflowError&) {
      raw->result->fail(std::current_exception());
    } catch (const std::exception& error) {
      code_threw(error.what());
    } catch (...) {
      code_threw("an exception that is not a std::exception");
    }
  });
  std::shared_ptr<detail::FutureCore> result = slot->result;
  coroutines_.push_back(std::move(slot));
  return result;
}

void WorkflowRun::continue_as_new(Payload input, const ContinueAsNewOptions& options) {
  if (in_handler_) throw WorkflowUsageError("continue_as_new() from a signal or query handler");
  engine::ContinueAsNewWorkflowExecution command;
  command.workflow_type = options.workflow_type;
  command.task_queue = engine::TaskQueue{options.task_queue, engine::TaskQueueKind::kNormal};
  command.input = std::move(input);
  command.workflow_run_timeout = options.run_timeout;
  command.workflow_task_timeout = options.task_timeout;
  throw ContinueAsNewRequest{std::move(command)};
}

}  // namespace duro::sdk
