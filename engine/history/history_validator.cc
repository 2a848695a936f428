#include "engine/history/history_validator.h"

#include <map>
#include <string>
#include <string_view>
#include <utility>

#include <fmt/format.h>

#include "sim/assert.h"

namespace duro::engine {
namespace {

// What the checker remembers about each thing a history tracks, keyed by
// the id of the event that began it. Ordered maps: the checker's output
// must not depend on hashing (DESIGN.md §2), and these stay small.
struct WorkflowTaskState {
  EventId started_event_id = 0;
  bool closed = false;
};

struct ActivityState {
  std::string activity_id;
  EventId started_event_id = 0;
  EventId latest_cancel_requested_event_id = 0;
  bool closed = false;
};

struct TimerState {
  std::string timer_id;
  bool closed = false;
};

struct ChildState {
  std::string workflow_id;
  EventId started_event_id = 0;
  bool start_failed = false;
  bool closed = false;
};

class Validator {
 public:
  explicit Validator(const History& history) : history_(history) {}

  std::vector<std::string> run() {
    if (history_.events.empty()) {
      violations_.push_back("history: empty: no events (a history begins with WorkflowExecutionStarted)");
      return std::move(violations_);
    }
    for (std::size_t i = 0; i < history_.events.size() && !stopped_; i++) check(i);
    return std::move(violations_);
  }

 private:
  template <typename... Args>
  void violation(std::string_view rule, fmt::format_string<Args...> format, Args&&... args) {
    if (stopped_) return;
    if (violations_.size() == kHistoryViolationsMax) {
      violations_.push_back(fmt::format("stopped after {} violations", kHistoryViolationsMax));
      stopped_ = true;
      return;
    }
    violations_.push_back(fmt::format("event {} ({}): {}: {}", current_->event_id,
                                      event_type_name(current_->type()), rule,
                                      fmt::format(format, std::forward<Args>(args)...)));
  }

  // The earlier event with id `id` (the first, if ids repeat), or nullptr.
  const HistoryEvent* earlier(EventId id) const {
    const auto it = index_by_id_.find(id);
    return it == index_by_id_.end() ? nullptr : &history_.events[it->second];
  }

  // The name of what `id` refers to, for messages.
  std::string describe(EventId id) const {
    const HistoryEvent* event = earlier(id);
    if (event == nullptr) return fmt::format("{} is no earlier event", id);
    return fmt::format("{} is a {}", id, event_type_name(event->type()));
  }

  void check(std::size_t index) {
    const HistoryEvent& event = history_.events[index];
    current_ = &event;
    const EventType type = event.type();

    // Order and identity.
    if (event.event_id != static_cast<EventId>(index) + 1) {
      violation("dense-ids", "at index {} the id must be {}", index, index + 1);
    }
    if (index == 0 && type != EventType::kWorkflowExecutionStarted) {
      violation("first-event", "the first event must be WorkflowExecutionStarted");
    }
    if (index > 0 && type == EventType::kWorkflowExecutionStarted) {
      violation("first-event", "WorkflowExecutionStarted is only ever the first event");
    }
    if (index > 0 && event.time < history_.events[index - 1].time) {
      violation("time-order", "time {} is before the previous event's {}", sim::format_time(event.time),
                sim::format_time(history_.events[index - 1].time));
    }
    if (close_event_id_ != 0) {
      violation("after-close", "follows the closing event {}", close_event_id_);
    }

    // The command block this event is in (before the event's own rules,
    // which read it), then the rules of its type.
    if (is_command_event(type)) check_command_block(event);
    std::visit([&](const auto& attributes) { on(attributes); }, event.attributes);

    // State for the events that follow.
    if (is_close_event(type) && close_event_id_ == 0) close_event_id_ = event.event_id;
    update_command_block(event);
    index_by_id_.emplace(event.event_id, index);
  }

  // --- Command blocks ---------------------------------------------------------

  template <typename T>
  static EventId workflow_task_completed_event_id(const T& attributes) {
    if constexpr (requires { attributes.workflow_task_completed_event_id; }) {
      return attributes.workflow_task_completed_event_id;
    } else {
      DURO_ASSERT_MSG(false, "a command event without workflow_task_completed_event_id");
      return 0;
    }
  }

  void check_command_block(const HistoryEvent& event) {
    const EventId named =
        std::visit([](const auto& attributes) { return workflow_task_completed_event_id(attributes); },
                   event.attributes);
    if (block_ == 0) {
      violation("command-block", "a command event must follow a WorkflowTaskCompleted or another command event");
    } else if (named != block_) {
      violation("command-block", "workflow_task_completed_event_id {} is not the WorkflowTaskCompleted {} it follows",
                named, block_);
    }
  }

  void update_command_block(const HistoryEvent& event) {
    const EventType type = event.type();
    if (type == EventType::kWorkflowTaskCompleted) {
      block_ = event.event_id;
    } else if (is_command_event(type)) {
      // Stays in the block (a mismatch was reported above).
    } else if (const auto* canceled = event.as<ActivityTaskCanceled>();
               canceled != nullptr && previous_cancel_request_ != 0 &&
               canceled->latest_cancel_requested_event_id == previous_cancel_request_) {
      // Canceled at once, with its request: still the block.
    } else {
      block_ = 0;
    }
    previous_cancel_request_ = event.is<ActivityTaskCancelRequested>() ? event.event_id : 0;
  }

  // --- Workflow tasks ---------------------------------------------------------

  // The task scheduled at `scheduled`, if that is a WorkflowTaskScheduled
  // that has not closed; otherwise reports why not and returns nullptr.
  WorkflowTaskState* open_workflow_task(EventId scheduled) {
    const auto it = workflow_tasks_.find(scheduled);
    if (it == workflow_tasks_.end()) {
      violation("workflow-task", "scheduled_event_id {} is not an earlier WorkflowTaskScheduled", describe(scheduled));
      return nullptr;
    }
    if (it->second.closed) {
      violation("workflow-task", "the workflow task scheduled at {} has already closed", scheduled);
      return nullptr;
    }
    return &it->second;
  }

  void close_workflow_task(EventId scheduled, WorkflowTaskState& task) {
    task.closed = true;
    if (outstanding_workflow_task_ == scheduled) outstanding_workflow_task_ = 0;
  }

  // Completed and Failed: the task must have started, and say so.
  void close_started_workflow_task(EventId scheduled, EventId started) {
    WorkflowTaskState* task = open_workflow_task(scheduled);
    if (task == nullptr) return;
    if (task->started_event_id == 0) {
      violation("workflow-task", "the workflow task scheduled at {} never started", scheduled);
    } else if (started != task->started_event_id) {
      violation("workflow-task", "started_event_id {} is not the task's WorkflowTaskStarted {}", started,
                task->started_event_id);
    }
    close_workflow_task(scheduled, *task);
  }

  void on(const WorkflowTaskScheduled&) {
    if (outstanding_workflow_task_ != 0) {
      violation("workflow-task", "scheduled while the workflow task scheduled at {} is outstanding",
                outstanding_workflow_task_);
    }
    outstanding_workflow_task_ = current_->event_id;
    workflow_tasks_.emplace(current_->event_id, WorkflowTaskState{});
  }

  void on(const WorkflowTaskStarted& started) {
    WorkflowTaskState* task = open_workflow_task(started.scheduled_event_id);
    if (task == nullptr) return;
    if (task->started_event_id != 0) {
      violation("workflow-task", "the workflow task scheduled at {} already started at {}",
                started.scheduled_event_id, task->started_event_id);
      return;
    }
    task->started_event_id = current_->event_id;
  }

  void on(const WorkflowTaskCompleted& completed) {
    close_started_workflow_task(completed.scheduled_event_id, completed.started_event_id);
  }

  void on(const WorkflowTaskFailed& failed) {
    close_started_workflow_task(failed.scheduled_event_id, failed.started_event_id);
  }

  void on(const WorkflowTaskTimedOut& timed_out) {
    WorkflowTaskState* task = open_workflow_task(timed_out.scheduled_event_id);
    if (task == nullptr) return;
    if (timed_out.started_event_id != task->started_event_id) {
      violation("workflow-task", "started_event_id {} is not the task's WorkflowTaskStarted ({})",
                timed_out.started_event_id, task->started_event_id == 0 ? "none" : std::to_string(task->started_event_id));
    } else if (task->started_event_id == 0 && timed_out.timeout_type != TimeoutType::kScheduleToStart) {
      violation("workflow-task", "a task that never started can only time out schedule-to-start, not {}",
                timeout_type_name(timed_out.timeout_type));
    }
    close_workflow_task(timed_out.scheduled_event_id, *task);
  }

  // --- Activities ---------------------------------------------------------------

  ActivityState* open_activity(EventId scheduled) {
    const auto it = activities_.find(scheduled);
    if (it == activities_.end()) {
      violation("activity", "scheduled_event_id {} is not an earlier ActivityTaskScheduled", describe(scheduled));
      return nullptr;
    }
    if (it->second.closed) {
      violation("activity", "the activity scheduled at {} has already closed", scheduled);
      return nullptr;
    }
    return &it->second;
  }

  // `started` must be the activity's Started; 0 is allowed when it never
  // started and `zero_if_unstarted`.
  void check_activity_started(const ActivityState& activity, EventId started, bool zero_if_unstarted) {
    if (activity.started_event_id == 0 && !zero_if_unstarted) {
      violation("activity", "the activity never started (no ActivityTaskStarted)");
    } else if (started != activity.started_event_id) {
      violation("activity", "started_event_id {} is not the activity's ActivityTaskStarted ({})", started,
                activity.started_event_id == 0 ? "none" : std::to_string(activity.started_event_id));
    }
  }

  void close_activity(ActivityState& activity) {
    activity.closed = true;
    pending_activity_ids_.erase(activity.activity_id);
  }

  void on(const ActivityTaskScheduled& scheduled) {
    if (const auto it = pending_activity_ids_.find(scheduled.activity_id); it != pending_activity_ids_.end()) {
      violation("activity", "activity id \"{}\" is already pending (scheduled at {})", scheduled.activity_id,
                it->second);
    } else {
      pending_activity_ids_.emplace(scheduled.activity_id, current_->event_id);
    }
    activities_.emplace(current_->event_id, ActivityState{scheduled.activity_id, 0, 0, false});
  }

  void on(const ActivityTaskStarted& started) {
    ActivityState* activity = open_activity(started.scheduled_event_id);
    if (activity == nullptr) return;
    if (activity->started_event_id != 0) {
      violation("activity", "the activity scheduled at {} already started at {}", started.scheduled_event_id,
                activity->started_event_id);
      return;
    }
    activity->started_event_id = current_->event_id;
  }

  void on(const ActivityTaskCompleted& completed) {
    ActivityState* activity = open_activity(completed.scheduled_event_id);
    if (activity == nullptr) return;
    check_activity_started(*activity, completed.started_event_id, false);
    close_activity(*activity);
  }

  void on(const ActivityTaskFailed& failed) {
    ActivityState* activity = open_activity(failed.scheduled_event_id);
    if (activity == nullptr) return;
    check_activity_started(*activity, failed.started_event_id, false);
    close_activity(*activity);
  }

  void on(const ActivityTaskTimedOut& timed_out) {
    ActivityState* activity = open_activity(timed_out.scheduled_event_id);
    if (activity == nullptr) return;
    check_activity_started(*activity, timed_out.started_event_id, true);
    close_activity(*activity);
  }

  void on(const ActivityTaskCancelRequested& requested) {
    ActivityState* activity = open_activity(requested.scheduled_event_id);
    if (activity == nullptr) return;
    activity->latest_cancel_requested_event_id = current_->event_id;
  }

  void on(const ActivityTaskCanceled& canceled) {
    ActivityState* activity = open_activity(canceled.scheduled_event_id);
    if (activity == nullptr) return;
    check_activity_started(*activity, canceled.started_event_id, true);
    if (activity->latest_cancel_requested_event_id == 0) {
      violation("activity", "canceled without an ActivityTaskCancelRequested");
    } else if (canceled.latest_cancel_requested_event_id != activity->latest_cancel_requested_event_id) {
      violation("activity", "latest_cancel_requested_event_id {} is not the activity's latest cancel request {}",
                canceled.latest_cancel_requested_event_id, activity->latest_cancel_requested_event_id);
    }
    close_activity(*activity);
  }

  // --- Timers -------------------------------------------------------------------

  void on(const TimerStarted& started) {
    if (const auto it = pending_timer_ids_.find(started.timer_id); it != pending_timer_ids_.end()) {
      violation("timer", "timer id \"{}\" is already pending (started at {})", started.timer_id, it->second);
    } else {
      pending_timer_ids_.emplace(started.timer_id, current_->event_id);
    }
    timers_.emplace(current_->event_id, TimerState{started.timer_id, false});
  }

  void close_timer(EventId started, const std::string& timer_id) {
    const auto it = timers_.find(started);
    if (it == timers_.end()) {
      violation("timer", "started_event_id {} is not an earlier TimerStarted", describe(started));
      return;
    }
    TimerState& timer = it->second;
    if (timer.closed) {
      violation("timer", "the timer started at {} has already fired or been canceled", started);
      return;
    }
    if (timer_id != timer.timer_id) {
      violation("timer", "timer id \"{}\" is not the id \"{}\" the timer started with", timer_id, timer.timer_id);
    }
    timer.closed = true;
    pending_timer_ids_.erase(timer.timer_id);
  }

  void on(const TimerFired& fired) { close_timer(fired.started_event_id, fired.timer_id); }
  void on(const TimerCanceled& canceled) { close_timer(canceled.started_event_id, canceled.timer_id); }

  // --- Children -----------------------------------------------------------------

  ChildState* child(EventId initiated) {
    const auto it = children_.find(initiated);
    if (it == children_.end()) {
      violation("child", "initiated_event_id {} is not an earlier StartChildWorkflowExecutionInitiated",
                describe(initiated));
      return nullptr;
    }
    return &it->second;
  }

  // Started and StartChild…Failed: the child must not have resolved yet.
  ChildState* unresolved_child(EventId initiated, const std::string& workflow_id) {
    ChildState* state = child(initiated);
    if (state == nullptr) return nullptr;
    if (state->started_event_id != 0 || state->start_failed) {
      violation("child", "the child initiated at {} has already {}", initiated,
                state->start_failed ? "failed to start" : fmt::format("started at {}", state->started_event_id));
      return nullptr;
    }
    if (workflow_id != state->workflow_id) {
      violation("child", "workflow id \"{}\" is not the id \"{}\" the child was initiated with", workflow_id,
                state->workflow_id);
    }
    return state;
  }

  template <typename T>
  void close_child(const T& closed) {
    ChildState* state = child(closed.initiated_event_id);
    if (state == nullptr) return;
    if (state->started_event_id == 0) {
      violation("child", "the child initiated at {} never started", closed.initiated_event_id);
    } else if (state->closed) {
      violation("child", "the child initiated at {} has already closed", closed.initiated_event_id);
    } else if (closed.started_event_id != state->started_event_id) {
      violation("child", "started_event_id {} is not the child's ChildWorkflowExecutionStarted {}",
                closed.started_event_id, state->started_event_id);
    }
    state->closed = true;
  }

  void on(const StartChildWorkflowExecutionInitiated& initiated) {
    children_.emplace(current_->event_id, ChildState{initiated.workflow_id, 0, false, false});
  }

  void on(const StartChildWorkflowExecutionFailed& failed) {
    if (ChildState* state = unresolved_child(failed.initiated_event_id, failed.workflow_id)) state->start_failed = true;
  }

  void on(const ChildWorkflowExecutionStarted& started) {
    ChildState* state = unresolved_child(started.initiated_event_id, started.workflow_execution.workflow_id);
    if (state != nullptr) state->started_event_id = current_->event_id;
  }

  void on(const ChildWorkflowExecutionCompleted& closed) { close_child(closed); }
  void on(const ChildWorkflowExecutionFailed& closed) { close_child(closed); }
  void on(const ChildWorkflowExecutionCanceled& closed) { close_child(closed); }
  void on(const ChildWorkflowExecutionTimedOut& closed) { close_child(closed); }
  void on(const ChildWorkflowExecutionTerminated& closed) { close_child(closed); }

  // --- Signalling and cancelling other workflows -------------------------------

  // `pending` maps an Initiated's id to whether it has resolved.
  void resolve_external(std::map<EventId, bool>& pending, EventId initiated, std::string_view rule,
                        std::string_view initiated_type) {
    const auto it = pending.find(initiated);
    if (it == pending.end()) {
      violation(rule, "initiated_event_id {} is not an earlier {}", describe(initiated), initiated_type);
      return;
    }
    if (it->second) {
      violation(rule, "the request initiated at {} has already resolved", initiated);
      return;
    }
    it->second = true;
  }

  void on(const SignalExternalWorkflowExecutionInitiated&) { signals_.emplace(current_->event_id, false); }
  void on(const SignalExternalWorkflowExecutionFailed& failed) {
    resolve_external(signals_, failed.initiated_event_id, "signal-external", "SignalExternalWorkflowExecutionInitiated");
  }
  void on(const ExternalWorkflowExecutionSignaled& signaled) {
    resolve_external(signals_, signaled.initiated_event_id, "signal-external",
                     "SignalExternalWorkflowExecutionInitiated");
  }

  void on(const RequestCancelExternalWorkflowExecutionInitiated&) { cancels_.emplace(current_->event_id, false); }
  void on(const RequestCancelExternalWorkflowExecutionFailed& failed) {
    resolve_external(cancels_, failed.initiated_event_id, "cancel-external",
                     "RequestCancelExternalWorkflowExecutionInitiated");
  }
  void on(const ExternalWorkflowExecutionCancelRequested& requested) {
    resolve_external(cancels_, requested.initiated_event_id, "cancel-external",
                     "RequestCancelExternalWorkflowExecutionInitiated");
  }

  // Events with no references to check: the workflow's own lifecycle,
  // signals, markers (their placement is the command block's rule).
  template <typename T>
  void on(const T&) {}

  const History& history_;
  const HistoryEvent* current_ = nullptr;
  std::vector<std::string> violations_;
  bool stopped_ = false;

  std::map<EventId, std::size_t> index_by_id_;  // Events seen so far.
  EventId close_event_id_ = 0;
  EventId block_ = 0;                    // The WorkflowTaskCompleted whose block we are in; 0: none.
  EventId previous_cancel_request_ = 0;  // The previous event, if an ActivityTaskCancelRequested.
  EventId outstanding_workflow_task_ = 0;

  std::map<EventId, WorkflowTaskState> workflow_tasks_;
  std::map<EventId, ActivityState> activities_;
  std::map<std::string, EventId> pending_activity_ids_;
  std::map<EventId, TimerState> timers_;
  std::map<std::string, EventId> pending_timer_ids_;
  std::map<EventId, ChildState> children_;
  std::map<EventId, bool> signals_;
  std::map<EventId, bool> cancels_;
};

}  // namespace

std::vector<std::string> validate_history(const History& history) { return Validator(history).run(); }

}  // namespace duro::engine
