// The well-formedness checker for histories: what every history the engine
// writes must satisfy, whatever faults hit the run. The end-to-end tests
// run it on every workflow they close; `duro history show` can run it on a
// recorded one.
//
//   std::vector<std::string> violations = validate_history(history);
//   // Empty: well-formed. Otherwise one line per violation, each naming
//   // the event id and the rule: "event 7 (ActivityTaskCompleted):
//   // activity-ref: scheduled_event_id 4 is not an ActivityTaskScheduled".
//
// The rules (the tag in each message in brackets):
//   [empty]           a history has at least its first event.
//   [first-event]     the first event is WorkflowExecutionStarted, and no
//                     other event is.
//   [dense-ids]       event ids are 1, 2, 3, ... in order.
//   [time-order]      event times never decrease.
//   [after-close]     nothing follows a closing event (is_close_event):
//                     a run closes at most once, and its close is last.
//   [workflow-task]   at most one workflow task is outstanding (scheduled,
//                     not yet completed, failed or timed out); Started names
//                     an earlier WorkflowTaskScheduled not started before;
//                     Completed/Failed name the task's Scheduled and its
//                     Started; TimedOut names its Scheduled and its Started
//                     (0 if it never started: a schedule-to-start timeout);
//                     a task closes once.
//   [command-block]   a command event (is_command_event) sits in the block
//                     of events written with a WorkflowTaskCompleted: right
//                     after it or after another event of the block, and its
//                     workflow_task_completed_event_id names that
//                     WorkflowTaskCompleted. (An ActivityTaskCanceled right
//                     after the ActivityTaskCancelRequested of an activity
//                     that had not started belongs to the block too: the
//                     server cancels such an activity at once.)
//   [activity]        Started/Completed/Failed/TimedOut/Canceled and
//                     CancelRequested name an earlier ActivityTaskScheduled
//                     that has not closed; Started at most once; Completed
//                     and Failed name the activity's Started, TimedOut and
//                     Canceled name it or 0 if it never started; Canceled
//                     names the latest CancelRequested; an activity closes
//                     once; activity ids are unique among pending activities.
//   [timer]           Fired/Canceled name an earlier TimerStarted with the
//                     same timer id that has not fired or been canceled;
//                     timer ids are unique among pending timers.
//   [child]           StartChildWorkflowExecutionFailed and
//                     ChildWorkflowExecutionStarted name an earlier
//                     Initiated that has neither started nor failed to (and
//                     the same workflow id); the child's closing events
//                     name its Initiated and its Started, once.
//   [signal-external] SignalExternal…Failed and ExternalWorkflowExecution
//                     Signaled name an earlier SignalExternal…Initiated,
//                     resolved once.
//   [cancel-external] likewise for RequestCancelExternal….
//
// The checker reports every violation it finds (up to
// kHistoryViolationsMax), not only the first: one broken reference tends to
// explain the next, and seeing them together is faster.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "engine/history/history.h"

namespace duro::engine {

// The most violations reported; past it, one last line says so.
inline constexpr std::size_t kHistoryViolationsMax = 100;

std::vector<std::string> validate_history(const History& history);

}  // namespace duro::engine
