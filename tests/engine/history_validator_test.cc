// The history checker: valid histories of every shape pass, each broken
// rule is reported with its event and tag, and random damage to valid
// histories is noticed.
#include "engine/history/history_validator.h"

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "engine/history/history_json.h"

namespace duro::engine {
namespace {

using namespace std::chrono_literals;

// Builds histories event by event, one second apart, with the ids right.
class Builder {
 public:
  Builder() {
    WorkflowExecutionStarted started;
    started.workflow_type = "wf";
    started.task_queue.name = "main";
    add(started);
  }

  EventId add(EventAttributes attributes, sim::Duration after = 1s) {
    time_ += after;
    const EventId id = static_cast<EventId>(history_.events.size()) + 1;
    history_.events.push_back(HistoryEvent{id, time_, std::move(attributes)});
    return id;
  }

  // A workflow task that completes; returns the WorkflowTaskCompleted's id,
  // which the commands that follow name.
  EventId workflow_task() {
    const EventId scheduled = add(WorkflowTaskScheduled{});
    const EventId started = add(WorkflowTaskStarted{scheduled, "w", ""});
    return add(WorkflowTaskCompleted{scheduled, started, "w", "", {}});
  }

  History& history() { return history_; }

 private:
  History history_;
  sim::TimePoint time_ = sim::kDefaultStartTime;
};

std::string joined(const std::vector<std::string>& lines) {
  std::string out;
  for (const std::string& line : lines) out += line + "\n";
  return out;
}

void expect_valid(const History& history) {
  const std::vector<std::string> violations = validate_history(history);
  EXPECT_TRUE(violations.empty()) << joined(violations) << to_json(history, true);
}

// Exactly one violation, naming `event_id` and `rule`, containing `detail`.
void expect_violation(const History& history, EventId event_id, std::string_view rule, std::string_view detail = "") {
  const std::vector<std::string> violations = validate_history(history);
  ASSERT_EQ(violations.size(), 1u) << joined(violations);
  const std::string& message = violations[0];
  EXPECT_EQ(message.rfind("event " + std::to_string(event_id) + " (", 0), 0u) << message;
  EXPECT_NE(message.find("): " + std::string(rule) + ": "), std::string::npos) << message;
  EXPECT_NE(message.find(detail), std::string::npos) << message;
}

ActivityTaskScheduled activity(std::string id, EventId completed) {
  ActivityTaskScheduled scheduled;
  scheduled.activity_id = std::move(id);
  scheduled.activity_type = "provision";
  scheduled.start_to_close_timeout = 10s;
  scheduled.workflow_task_completed_event_id = completed;
  return scheduled;
}

StartChildWorkflowExecutionInitiated child(std::string workflow_id, EventId completed) {
  StartChildWorkflowExecutionInitiated initiated;
  initiated.workflow_id = std::move(workflow_id);
  initiated.workflow_type = "child";
  initiated.workflow_task_completed_event_id = completed;
  return initiated;
}

WorkflowExecution execution(std::string workflow_id) { return WorkflowExecution{std::move(workflow_id), "run"}; }

// Valid shapes -------------------------------------------------------------------

TEST(ValidHistories, AnActivityThatSucceeds) {
  Builder b;
  const EventId wtc = b.workflow_task();
  const EventId scheduled = b.add(activity("a", wtc));
  const EventId started = b.add(ActivityTaskStarted{scheduled, "w", "", 3, Failure{}});
  b.add(ActivityTaskCompleted{"ok", scheduled, started, "w"});
  const EventId wtc2 = b.workflow_task();
  b.add(WorkflowExecutionCompleted{"done", wtc2});
  expect_valid(b.history());
}

TEST(ValidHistories, ActivitiesThatFailTimeOutAndReuseTheirIds) {
  Builder b;
  const EventId wtc = b.workflow_task();
  const EventId first = b.add(activity("a", wtc));
  const EventId second = b.add(activity("b", wtc));
  const EventId started = b.add(ActivityTaskStarted{first, "w", "", 1, std::nullopt});
  b.add(ActivityTaskFailed{Failure{}, first, started, "w", RetryState::kMaximumAttemptsReached});
  b.add(ActivityTaskTimedOut{Failure{}, second, 0, RetryState::kTimeout});  // Never started.
  const EventId wtc2 = b.workflow_task();
  b.add(activity("a", wtc2));  // Ids are unique among pending activities only.
  b.add(WorkflowExecutionFailed{Failure{}, RetryState::kRetryPolicyNotSet, wtc2, ""});
  expect_valid(b.history());
}

TEST(ValidHistories, TimersThatFireAndThatAreCanceled) {
  Builder b;
  const EventId wtc = b.workflow_task();
  const EventId t1 = b.add(TimerStarted{"t1", 5s, wtc});
  const EventId t2 = b.add(TimerStarted{"t2", 50s, wtc});
  b.add(TimerFired{"t1", t1});
  const EventId wtc2 = b.workflow_task();
  b.add(TimerCanceled{"t2", t2, wtc2, "w"});
  b.add(TimerStarted{"t1", 5s, wtc2});  // Reused once the first fired.
  b.add(MarkerRecorded{"SideEffect", {{"data", "1"}}, wtc2, std::nullopt});
  expect_valid(b.history());  // Open: no close event yet.
}

TEST(ValidHistories, SignalsAndACancelRequestArriveAnyTime) {
  Builder b;
  const EventId scheduled = b.add(WorkflowTaskScheduled{});
  b.add(WorkflowExecutionSignaled{"go", "", "client", "r1"});  // Before the task starts.
  const EventId started = b.add(WorkflowTaskStarted{scheduled, "w", ""});
  b.add(WorkflowExecutionSignaled{"go", "", "client", "r2"});  // While it runs: buffered.
  const EventId wtc = b.add(WorkflowTaskCompleted{scheduled, started, "w", "", {}});
  b.add(WorkflowExecutionCancelRequested{"stop", 0, std::nullopt, "client"});
  const EventId wtc2 = b.workflow_task();
  b.add(WorkflowExecutionCanceled{wtc2, ""});
  (void)wtc;
  expect_valid(b.history());
}

TEST(ValidHistories, ChildWorkflows) {
  Builder b;
  const EventId wtc = b.workflow_task();
  const EventId c1 = b.add(child("c1", wtc));
  const EventId c2 = b.add(child("c2", wtc));
  const EventId c3 = b.add(child("c3", wtc));
  const EventId c1_started = b.add(ChildWorkflowExecutionStarted{execution("c1"), "child", c1});
  b.add(StartChildWorkflowExecutionFailed{"c2", "child", StartChildFailedCause::kWorkflowAlreadyExists, c2, wtc});
  const EventId c3_started = b.add(ChildWorkflowExecutionStarted{execution("c3"), "child", c3});
  b.add(ChildWorkflowExecutionCompleted{"r", execution("c1"), "child", c1, c1_started});
  b.add(ChildWorkflowExecutionTimedOut{execution("c3"), "child", c3, c3_started, RetryState::kTimeout});
  const EventId wtc2 = b.workflow_task();
  const EventId c4 = b.add(child("c1", wtc2));  // The same workflow id again, once the first closed.
  const EventId c4_started = b.add(ChildWorkflowExecutionStarted{execution("c1"), "child", c4});
  b.add(ChildWorkflowExecutionTerminated{execution("c1"), "child", c4, c4_started});
  const EventId wtc3 = b.workflow_task();
  b.add(WorkflowExecutionCompleted{"", wtc3});
  expect_valid(b.history());
}

TEST(ValidHistories, SignallingAndCancellingOtherWorkflows) {
  Builder b;
  const EventId wtc = b.workflow_task();
  const EventId s1 = b.add(SignalExternalWorkflowExecutionInitiated{wtc, execution("x"), "sig", "", false});
  const EventId s2 = b.add(SignalExternalWorkflowExecutionInitiated{wtc, execution("y"), "sig", "", false});
  const EventId k1 = b.add(RequestCancelExternalWorkflowExecutionInitiated{wtc, execution("x"), false, "why"});
  const EventId k2 = b.add(RequestCancelExternalWorkflowExecutionInitiated{wtc, execution("z"), false, "why"});
  b.add(ExternalWorkflowExecutionSignaled{s1, execution("x")});
  b.add(SignalExternalWorkflowExecutionFailed{ExternalFailedCause::kExternalWorkflowNotFound, wtc, execution("y"), s2});
  b.add(ExternalWorkflowExecutionCancelRequested{k1, execution("x")});
  b.add(RequestCancelExternalWorkflowExecutionFailed{ExternalFailedCause::kExternalWorkflowNotFound, wtc,
                                                     execution("z"), k2});
  const EventId wtc2 = b.workflow_task();
  b.add(WorkflowExecutionCompleted{"", wtc2});
  expect_valid(b.history());
}

TEST(ValidHistories, WorkflowTasksThatFailAndTimeOut) {
  Builder b;
  EventId scheduled = b.add(WorkflowTaskScheduled{});
  EventId started = b.add(WorkflowTaskStarted{scheduled, "w", ""});
  b.add(WorkflowTaskFailed{scheduled, started, WorkflowTaskFailedCause::kNondeterminism, Failure{}, "w"});
  scheduled = b.add(WorkflowTaskScheduled{TaskQueue{"w-sticky", TaskQueueKind::kSticky}, 10s, 2});
  b.add(WorkflowTaskTimedOut{scheduled, 0, TimeoutType::kScheduleToStart});  // The sticky worker is gone.
  scheduled = b.add(WorkflowTaskScheduled{});
  started = b.add(WorkflowTaskStarted{scheduled, "w", ""});
  b.add(WorkflowTaskTimedOut{scheduled, started, TimeoutType::kStartToClose});
  const EventId wtc = b.workflow_task();
  WorkflowExecutionContinuedAsNew continued;
  continued.new_execution_run_id = "run-2";
  continued.workflow_task_completed_event_id = wtc;
  b.add(continued);
  expect_valid(b.history());
}

TEST(ValidHistories, ActivityCancellation) {
  Builder b;
  const EventId wtc = b.workflow_task();
  const EventId unstarted = b.add(activity("a", wtc));
  const EventId running = b.add(activity("b", wtc));
  const EventId running_started = b.add(ActivityTaskStarted{running, "w", "", 1, std::nullopt});
  const EventId wtc2 = b.workflow_task();
  // Not started: canceled at once, in the same block as its request; the
  // block goes on after it.
  const EventId request = b.add(ActivityTaskCancelRequested{unstarted, wtc2});
  b.add(ActivityTaskCanceled{"", request, unstarted, 0, "w"});
  const EventId running_request = b.add(ActivityTaskCancelRequested{running, wtc2});
  b.add(TimerStarted{"t", 1s, wtc2});
  // Started: canceled when the worker acknowledges.
  b.add(ActivityTaskCanceled{"", running_request, running, running_started, "w"});
  expect_valid(b.history());
}

TEST(ValidHistories, ServerClosesWhileAWorkflowTaskIsOutstanding) {
  Builder terminated;
  const EventId scheduled = terminated.add(WorkflowTaskScheduled{});
  terminated.add(WorkflowTaskStarted{scheduled, "w", ""});
  terminated.add(WorkflowExecutionTerminated{"operator", "", "admin"});
  expect_valid(terminated.history());

  Builder timed_out;
  timed_out.add(WorkflowTaskScheduled{});
  timed_out.add(WorkflowExecutionTimedOut{RetryState::kTimeout, ""});
  expect_valid(timed_out.history());

  Builder just_started;
  expect_valid(just_started.history());
}

// Broken histories: one violation each --------------------------------------------

TEST(BrokenHistories, EmptyAndFirstEvent) {
  const std::vector<std::string> violations = validate_history(History{});
  ASSERT_EQ(violations.size(), 1u);
  EXPECT_NE(violations[0].find("empty"), std::string::npos);

  History history;
  history.events.push_back(HistoryEvent{1, sim::kDefaultStartTime, WorkflowExecutionSignaled{}});
  expect_violation(history, 1, "first-event", "must be WorkflowExecutionStarted");

  Builder b;
  b.add(WorkflowExecutionStarted{});
  expect_violation(b.history(), 2, "first-event", "only ever the first");
}

TEST(BrokenHistories, IdsAndTime) {
  Builder gap;
  gap.add(WorkflowExecutionSignaled{});
  gap.history().events[1].event_id = 3;
  expect_violation(gap.history(), 3, "dense-ids", "at index 1 the id must be 2");

  Builder backwards;
  backwards.add(WorkflowExecutionSignaled{});
  backwards.add(WorkflowExecutionSignaled{}, -2s);
  expect_violation(backwards.history(), 3, "time-order", "is before the previous event's");

  Builder same_time;
  same_time.add(WorkflowExecutionSignaled{}, 0s);
  expect_valid(same_time.history());
}

TEST(BrokenHistories, NothingAfterTheClose) {
  Builder b;
  b.add(WorkflowExecutionTerminated{});
  b.add(WorkflowExecutionSignaled{});
  expect_violation(b.history(), 3, "after-close", "follows the closing event 2");

  Builder twice;
  twice.add(WorkflowExecutionTimedOut{});
  twice.add(WorkflowExecutionTerminated{});
  expect_violation(twice.history(), 3, "after-close");
}

TEST(BrokenHistories, WorkflowTasks) {
  {
    Builder b;
    b.add(WorkflowTaskStarted{1, "w", ""});
    expect_violation(b.history(), 2, "workflow-task", "1 is a WorkflowExecutionStarted");
  }
  {
    Builder b;
    const EventId scheduled = b.add(WorkflowTaskScheduled{});
    b.add(WorkflowTaskStarted{scheduled, "w", ""});
    b.add(WorkflowTaskStarted{scheduled, "w", ""});
    expect_violation(b.history(), 4, "workflow-task", "already started at 3");
  }
  {
    Builder b;
    b.add(WorkflowTaskScheduled{});
    b.add(WorkflowTaskScheduled{});
    expect_violation(b.history(), 3, "workflow-task", "outstanding");
  }
  {
    Builder b;
    const EventId scheduled = b.add(WorkflowTaskScheduled{});
    b.add(WorkflowTaskCompleted{scheduled, 0, "w", "", {}});
    expect_violation(b.history(), 3, "workflow-task", "never started");
  }
  {
    Builder b;
    const EventId scheduled = b.add(WorkflowTaskScheduled{});
    b.add(WorkflowTaskStarted{scheduled, "w", ""});
    b.add(WorkflowTaskFailed{scheduled, 2, WorkflowTaskFailedCause::kUnspecified, Failure{}, "w"});
    expect_violation(b.history(), 4, "workflow-task", "started_event_id 2 is not the task's WorkflowTaskStarted 3");
  }
  {
    Builder b;
    const EventId scheduled = b.add(WorkflowTaskScheduled{});
    b.add(WorkflowTaskTimedOut{scheduled, 0, TimeoutType::kStartToClose});
    expect_violation(b.history(), 3, "workflow-task", "can only time out schedule-to-start");
  }
  {
    Builder b;
    const EventId wtc = b.workflow_task();
    b.add(WorkflowTaskCompleted{2, 3, "w", "", {}});
    expect_violation(b.history(), wtc + 1, "workflow-task", "has already closed");
  }
}

TEST(BrokenHistories, CommandBlocks) {
  {
    Builder b;
    b.workflow_task();
    b.add(WorkflowExecutionSignaled{});
    b.add(TimerStarted{"t", 1s, 4});
    expect_violation(b.history(), 6, "command-block", "must follow a WorkflowTaskCompleted");
  }
  {
    Builder b;
    const EventId wtc = b.workflow_task();
    b.add(TimerStarted{"t", 1s, wtc});
    b.add(MarkerRecorded{"m", {}, wtc - 1, std::nullopt});
    expect_violation(b.history(), 6, "command-block", "workflow_task_completed_event_id 3 is not the WorkflowTaskCompleted 4");
  }
  {
    Builder b;
    b.workflow_task();
    b.add(WorkflowExecutionSignaled{});
    b.add(WorkflowExecutionCompleted{"", 4});
    expect_violation(b.history(), 6, "command-block");
  }
}

TEST(BrokenHistories, Activities) {
  {
    Builder b;
    const EventId wtc = b.workflow_task();
    b.add(ActivityTaskCompleted{"", wtc, 0, "w"});
    expect_violation(b.history(), 5, "activity", "scheduled_event_id 4 is a WorkflowTaskCompleted");
  }
  {
    Builder b;
    const EventId wtc = b.workflow_task();
    const EventId scheduled = b.add(activity("a", wtc));
    b.add(ActivityTaskCompleted{"", scheduled, 0, "w"});
    expect_violation(b.history(), 6, "activity", "never started");
  }
  {
    Builder b;
    const EventId wtc = b.workflow_task();
    const EventId scheduled = b.add(activity("a", wtc));
    const EventId started = b.add(ActivityTaskStarted{scheduled, "w", "", 1, std::nullopt});
    b.add(ActivityTaskCompleted{"", scheduled, started, "w"});
    b.add(ActivityTaskFailed{Failure{}, scheduled, started, "w", RetryState::kUnspecified});
    expect_violation(b.history(), 8, "activity", "has already closed");
  }
  {
    Builder b;
    const EventId wtc = b.workflow_task();
    const EventId scheduled = b.add(activity("a", wtc));
    b.add(ActivityTaskStarted{scheduled, "w", "", 1, std::nullopt});
    b.add(ActivityTaskStarted{scheduled, "w", "", 2, std::nullopt});
    expect_violation(b.history(), 7, "activity", "already started at 6");
  }
  {
    Builder b;
    const EventId wtc = b.workflow_task();
    const EventId scheduled = b.add(activity("a", wtc));
    b.add(ActivityTaskStarted{scheduled, "w", "", 1, std::nullopt});
    b.add(ActivityTaskTimedOut{Failure{}, scheduled, 0, RetryState::kTimeout});
    expect_violation(b.history(), 7, "activity", "started_event_id 0 is not the activity's ActivityTaskStarted (6)");
  }
  {
    Builder b;
    const EventId wtc = b.workflow_task();
    b.add(activity("a", wtc));
    b.add(activity("a", wtc));
    expect_violation(b.history(), 6, "activity", "activity id \"a\" is already pending (scheduled at 5)");
  }
  {
    Builder b;
    const EventId wtc = b.workflow_task();
    const EventId scheduled = b.add(activity("a", wtc));
    b.add(ActivityTaskCanceled{"", 0, scheduled, 0, "w"});
    expect_violation(b.history(), 6, "activity", "without an ActivityTaskCancelRequested");
  }
  {
    Builder b;
    const EventId wtc = b.workflow_task();
    const EventId scheduled = b.add(activity("a", wtc));
    b.add(ActivityTaskTimedOut{Failure{}, scheduled, 0, RetryState::kTimeout});
    const EventId wtc2 = b.workflow_task();
    b.add(ActivityTaskCancelRequested{scheduled, wtc2});
    expect_violation(b.history(), 10, "activity", "has already closed");
  }
}

TEST(BrokenHistories, Timers) {
  {
    Builder b;
    b.add(TimerFired{"t", 1});
    expect_violation(b.history(), 2, "timer", "started_event_id 1 is a WorkflowExecutionStarted");
  }
  {
    Builder b;
    const EventId wtc = b.workflow_task();
    const EventId started = b.add(TimerStarted{"t", 1s, wtc});
    b.add(TimerFired{"t", started});
    b.add(TimerFired{"t", started});
    expect_violation(b.history(), 7, "timer", "already fired or been canceled");
  }
  {
    Builder b;
    const EventId wtc = b.workflow_task();
    const EventId started = b.add(TimerStarted{"t", 1s, wtc});
    b.add(TimerFired{"u", started});
    expect_violation(b.history(), 6, "timer", "timer id \"u\" is not the id \"t\"");
  }
  {
    Builder b;
    const EventId wtc = b.workflow_task();
    b.add(TimerStarted{"t", 1s, wtc});
    b.add(TimerStarted{"t", 2s, wtc});
    expect_violation(b.history(), 6, "timer", "already pending (started at 5)");
  }
}

TEST(BrokenHistories, Children) {
  {
    Builder b;
    b.add(ChildWorkflowExecutionStarted{execution("c"), "child", 7});
    expect_violation(b.history(), 2, "child", "7 is no earlier event");
  }
  {
    Builder b;
    const EventId wtc = b.workflow_task();
    const EventId initiated = b.add(child("c", wtc));
    b.add(ChildWorkflowExecutionStarted{execution("c"), "child", initiated});
    b.add(StartChildWorkflowExecutionFailed{"c", "child", StartChildFailedCause::kWorkflowAlreadyExists, initiated, wtc});
    expect_violation(b.history(), 7, "child", "has already started at 6");
  }
  {
    Builder b;
    const EventId wtc = b.workflow_task();
    const EventId initiated = b.add(child("c", wtc));
    b.add(ChildWorkflowExecutionCompleted{"", execution("c"), "child", initiated, 0});
    expect_violation(b.history(), 6, "child", "never started");
  }
  {
    Builder b;
    const EventId wtc = b.workflow_task();
    const EventId initiated = b.add(child("c", wtc));
    const EventId started = b.add(ChildWorkflowExecutionStarted{execution("c"), "child", initiated});
    b.add(ChildWorkflowExecutionCompleted{"", execution("c"), "child", initiated, started});
    b.add(ChildWorkflowExecutionCanceled{"", execution("c"), "child", initiated, started});
    expect_violation(b.history(), 8, "child", "has already closed");
  }
  {
    Builder b;
    const EventId wtc = b.workflow_task();
    const EventId initiated = b.add(child("c", wtc));
    b.add(ChildWorkflowExecutionStarted{execution("d"), "child", initiated});
    expect_violation(b.history(), 6, "child", "workflow id \"d\" is not the id \"c\"");
  }
}

TEST(BrokenHistories, ExternalSignalsAndCancels) {
  {
    Builder b;
    const EventId wtc = b.workflow_task();
    const EventId initiated = b.add(SignalExternalWorkflowExecutionInitiated{wtc, execution("x"), "s", "", false});
    b.add(ExternalWorkflowExecutionSignaled{initiated, execution("x")});
    b.add(SignalExternalWorkflowExecutionFailed{ExternalFailedCause::kExternalWorkflowNotFound, wtc, execution("x"),
                                                initiated});
    expect_violation(b.history(), 7, "signal-external", "has already resolved");
  }
  {
    Builder b;
    const EventId wtc = b.workflow_task();
    const EventId initiated = b.add(SignalExternalWorkflowExecutionInitiated{wtc, execution("x"), "s", "", false});
    b.add(ExternalWorkflowExecutionCancelRequested{initiated, execution("x")});
    expect_violation(b.history(), 6, "cancel-external",
                     "5 is a SignalExternalWorkflowExecutionInitiated is not an earlier RequestCancelExternal");
  }
}

TEST(BrokenHistories, ReportsEveryViolationUpToTheCap) {
  Builder b;
  for (int i = 0; i < 5; i++) b.add(TimerFired{"t", 1});
  EXPECT_EQ(validate_history(b.history()).size(), 5u);
  for (std::size_t i = 0; i < kHistoryViolationsMax; i++) b.add(TimerFired{"t", 1});
  const std::vector<std::string> violations = validate_history(b.history());
  ASSERT_EQ(violations.size(), kHistoryViolationsMax + 1);
  EXPECT_EQ(violations.back(), "stopped after 100 violations");
}

// Random valid histories ------------------------------------------------------------

// A uniform choice in [low, high). (rc::gen::inRange narrows its range at
// RapidCheck's small sizes; these choices should not.)
template <typename T = int>
T uniform(T low, T high) {
  return *rc::gen::resize(100, rc::gen::inRange<T>(low, high));
}

// Plays a random workflow run against the server's rules, drawing every
// choice from RapidCheck, and records its history: valid by construction.
class RandomRun {
 public:
  History play() {
    WorkflowExecutionStarted started;
    started.workflow_type = "random";
    add(started);
    const int steps = *rc::gen::inRange(0, 60);
    for (int step = 0; step < steps && !closed_; step++) this->step();
    if (!closed_ && uniform(0, 3) == 0) {
      if (uniform(0, 2) == 0) {
        add(WorkflowExecutionTerminated{"end", "", "test"});
      } else {
        add(WorkflowExecutionTimedOut{RetryState::kTimeout, ""});
      }
    }
    return std::move(history_);
  }

 private:
  struct Activity {
    std::string id;
    EventId started = 0;
    EventId cancel_requested = 0;
  };
  struct Child {
    std::string workflow_id;
    EventId started = 0;
  };

  EventId add(EventAttributes attributes) {
    time_ += std::chrono::milliseconds{uniform(0, 3000)};
    const EventId id = static_cast<EventId>(history_.events.size()) + 1;
    history_.events.push_back(HistoryEvent{id, time_, std::move(attributes)});
    if (is_close_event(history_.events.back().type())) closed_ = true;
    return id;
  }

  // A uniformly chosen entry of `map` that satisfies `wanted` (one must).
  template <typename Map, typename Wanted>
  static auto pick(Map& map, Wanted wanted) {
    std::vector<typename Map::iterator> candidates;
    for (auto it = map.begin(); it != map.end(); ++it) {
      if (wanted(*it)) candidates.push_back(it);
    }
    DURO_ASSERT(!candidates.empty());
    return candidates[uniform<std::size_t>(0, candidates.size())];
  }
  template <typename Map>
  static auto pick(Map& map) {
    return pick(map, [](const auto&) { return true; });
  }

  // An id from a small pool that no pending thing uses: ids get reused.
  template <typename Map>
  static std::string free_id(const Map& pending, std::string_view prefix, auto id_of) {
    for (int attempt = 0; attempt < 20; attempt++) {
      std::string id = std::string(prefix) + std::to_string(uniform(0, 6));
      bool used = false;
      for (const auto& entry : pending) used = used || id_of(entry.second) == id;
      if (!used) return id;
    }
    return std::string(prefix) + "-" + std::to_string(pending.size() + 100);
  }

  void step() {
    enum Action {
      kScheduleTask, kStartTask, kCompleteTask, kFailTask, kTimeOutStartedTask, kTimeOutScheduledTask, kSignal,
      kCancelRequest, kStartActivity, kCloseStartedActivity, kTimeOutActivity, kCancelActivity, kFireTimer,
      kResolveChildStart, kCloseChild, kResolveSignal, kResolveCancel,
    };
    std::vector<Action> actions = {kSignal, kCancelRequest};
    if (task_scheduled_ == 0) actions.push_back(kScheduleTask);
    if (task_scheduled_ != 0 && task_started_ == 0) actions.insert(actions.end(), {kStartTask, kStartTask, kTimeOutScheduledTask});
    if (task_started_ != 0) {
      actions.insert(actions.end(), {kCompleteTask, kCompleteTask, kCompleteTask, kFailTask, kTimeOutStartedTask});
    }
    bool unstarted_activity = false, started_activity = false, cancel_requested = false;
    for (const auto& [id, a] : activities_) {
      unstarted_activity |= a.started == 0;
      started_activity |= a.started != 0;
      cancel_requested |= a.cancel_requested != 0;
    }
    if (unstarted_activity) actions.push_back(kStartActivity);
    if (started_activity) actions.push_back(kCloseStartedActivity);
    if (!activities_.empty()) actions.push_back(kTimeOutActivity);
    if (cancel_requested) actions.push_back(kCancelActivity);
    if (!timers_.empty()) actions.push_back(kFireTimer);
    bool unstarted_child = false, started_child = false;
    for (const auto& [id, c] : children_) {
      unstarted_child |= c.started == 0;
      started_child |= c.started != 0;
    }
    if (unstarted_child) actions.push_back(kResolveChildStart);
    if (started_child) actions.push_back(kCloseChild);
    if (!signals_.empty()) actions.push_back(kResolveSignal);
    if (!cancels_.empty()) actions.push_back(kResolveCancel);

    switch (actions[uniform<std::size_t>(0, actions.size())]) {
      case kScheduleTask:
        task_scheduled_ = add(WorkflowTaskScheduled{TaskQueue{"q", TaskQueueKind::kNormal}, 10s, 1});
        break;
      case kStartTask:
        task_started_ = add(WorkflowTaskStarted{task_scheduled_, "w", ""});
        break;
      case kCompleteTask: {
        const EventId completed = add(WorkflowTaskCompleted{task_scheduled_, task_started_, "w", "", {}});
        task_scheduled_ = task_started_ = 0;
        commands(completed);
        break;
      }
      case kFailTask:
        add(WorkflowTaskFailed{task_scheduled_, task_started_, WorkflowTaskFailedCause::kUnspecified, Failure{}, "w"});
        task_scheduled_ = task_started_ = 0;
        break;
      case kTimeOutStartedTask:
        add(WorkflowTaskTimedOut{task_scheduled_, task_started_, TimeoutType::kStartToClose});
        task_scheduled_ = task_started_ = 0;
        break;
      case kTimeOutScheduledTask:
        add(WorkflowTaskTimedOut{task_scheduled_, 0, TimeoutType::kScheduleToStart});
        task_scheduled_ = 0;
        break;
      case kSignal:
        add(WorkflowExecutionSignaled{"s", "x", "client", ""});
        break;
      case kCancelRequest:
        add(WorkflowExecutionCancelRequested{"why", 0, std::nullopt, "client"});
        break;
      case kStartActivity: {
        auto it = pick(activities_, [](const auto& entry) { return entry.second.started == 0; });
        it->second.started = add(ActivityTaskStarted{it->first, "w", "", 1, std::nullopt});
        break;
      }
      case kCloseStartedActivity: {
        auto it = pick(activities_, [](const auto& entry) { return entry.second.started != 0; });
        if ((uniform(0, 2) == 0)) {
          add(ActivityTaskCompleted{"r", it->first, it->second.started, "w"});
        } else {
          add(ActivityTaskFailed{Failure{}, it->first, it->second.started, "w", RetryState::kNonRetryableFailure});
        }
        activities_.erase(it);
        break;
      }
      case kTimeOutActivity: {
        auto it = pick(activities_);
        add(ActivityTaskTimedOut{Failure{}, it->first, it->second.started, RetryState::kTimeout});
        activities_.erase(it);
        break;
      }
      case kCancelActivity: {
        auto it = pick(activities_, [](const auto& entry) { return entry.second.cancel_requested != 0; });
        add(ActivityTaskCanceled{"", it->second.cancel_requested, it->first, it->second.started, "w"});
        activities_.erase(it);
        break;
      }
      case kFireTimer: {
        auto it = pick(timers_);
        add(TimerFired{it->second, it->first});
        timers_.erase(it);
        break;
      }
      case kResolveChildStart: {
        auto it = pick(children_, [](const auto& entry) { return entry.second.started == 0; });
        if ((uniform(0, 2) == 0)) {
          it->second.started =
              add(ChildWorkflowExecutionStarted{execution(it->second.workflow_id), "child", it->first});
        } else {
          add(StartChildWorkflowExecutionFailed{it->second.workflow_id, "child",
                                                StartChildFailedCause::kWorkflowAlreadyExists, it->first, 0});
          children_.erase(it);
        }
        break;
      }
      case kCloseChild: {
        auto it = pick(children_, [](const auto& entry) { return entry.second.started != 0; });
        const WorkflowExecution child_execution = execution(it->second.workflow_id);
        switch (uniform(0, 5)) {
          case 0: add(ChildWorkflowExecutionCompleted{"", child_execution, "child", it->first, it->second.started}); break;
          case 1: add(ChildWorkflowExecutionFailed{Failure{}, child_execution, "child", it->first, it->second.started,
                                                   RetryState::kUnspecified}); break;
          case 2: add(ChildWorkflowExecutionCanceled{"", child_execution, "child", it->first, it->second.started}); break;
          case 3: add(ChildWorkflowExecutionTimedOut{child_execution, "child", it->first, it->second.started,
                                                     RetryState::kTimeout}); break;
          default: add(ChildWorkflowExecutionTerminated{child_execution, "child", it->first, it->second.started}); break;
        }
        children_.erase(it);
        break;
      }
      case kResolveSignal: {
        auto it = pick(signals_);
        if ((uniform(0, 2) == 0)) {
          add(ExternalWorkflowExecutionSignaled{*it, execution("x")});
        } else {
          add(SignalExternalWorkflowExecutionFailed{ExternalFailedCause::kExternalWorkflowNotFound, 0, execution("x"), *it});
        }
        signals_.erase(it);
        break;
      }
      case kResolveCancel: {
        auto it = pick(cancels_);
        if ((uniform(0, 2) == 0)) {
          add(ExternalWorkflowExecutionCancelRequested{*it, execution("x")});
        } else {
          add(RequestCancelExternalWorkflowExecutionFailed{ExternalFailedCause::kExternalWorkflowNotFound, 0,
                                                           execution("x"), *it});
        }
        cancels_.erase(it);
        break;
      }
    }
  }

  // The commands of one completed workflow task.
  void commands(EventId completed) {
    const int count = uniform(0, 5);
    for (int i = 0; i < count; i++) {
      switch (uniform(0, 9)) {
        case 0: {
          const std::string id = free_id(activities_, "a", [](const Activity& a) { return a.id; });
          const EventId scheduled = add(activity(id, completed));
          activities_.emplace(scheduled, Activity{id, 0, 0});
          break;
        }
        case 1: {
          const std::string id = free_id(timers_, "t", [](const std::string& timer_id) { return timer_id; });
          timers_.emplace(add(TimerStarted{id, 1s, completed}), id);
          break;
        }
        case 2:
          if (!timers_.empty()) {
            auto it = pick(timers_);
            add(TimerCanceled{it->second, it->first, completed, "w"});
            timers_.erase(it);
          }
          break;
        case 3:
          if (!activities_.empty()) {
            auto it = pick(activities_);
            it->second.cancel_requested = add(ActivityTaskCancelRequested{it->first, completed});
            // Not started: the server cancels it at once, in this block.
            if (it->second.started == 0 && (uniform(0, 2) == 0)) {
              add(ActivityTaskCanceled{"", it->second.cancel_requested, it->first, 0, "w"});
              activities_.erase(it);
            }
          }
          break;
        case 4:
          add(MarkerRecorded{"m", {}, completed, std::nullopt});
          break;
        case 5: {
          const std::string id = "c" + std::to_string(uniform(0, 4));
          children_.emplace(add(child(id, completed)), Child{id, 0});
          break;
        }
        case 6:
          signals_.insert(add(SignalExternalWorkflowExecutionInitiated{completed, execution("x"), "s", "", false}));
          break;
        case 7:
          cancels_.insert(add(RequestCancelExternalWorkflowExecutionInitiated{completed, execution("x"), false, ""}));
          break;
        default:
          break;
      }
    }
    if (uniform(0, 8) == 0) {
      switch (uniform(0, 4)) {
        case 0: add(WorkflowExecutionCompleted{"", completed}); break;
        case 1: add(WorkflowExecutionFailed{Failure{}, RetryState::kRetryPolicyNotSet, completed, ""}); break;
        case 2: add(WorkflowExecutionCanceled{completed, ""}); break;
        default: {
          WorkflowExecutionContinuedAsNew continued;
          continued.workflow_task_completed_event_id = completed;
          add(continued);
          break;
        }
      }
    }
  }

  History history_;
  sim::TimePoint time_ = sim::kDefaultStartTime;
  bool closed_ = false;
  EventId task_scheduled_ = 0;
  EventId task_started_ = 0;
  std::map<EventId, Activity> activities_;  // Pending, by scheduled id.
  std::map<EventId, std::string> timers_;   // Pending: timer id by started id.
  std::map<EventId, Child> children_;       // Initiated, not closed.
  std::set<EventId> signals_;               // Unresolved SignalExternal… initiations.
  std::set<EventId> cancels_;               // Unresolved RequestCancelExternal… initiations.
};

RC_GTEST_PROP(RandomHistories, ValidRunsPass, ()) {
  const History history = RandomRun().play();
  const std::vector<std::string> violations = validate_history(history);
  RC_ASSERT(violations.empty());
  RC_TAG(history.closed() ? "closed" : "open");
  RC_CLASSIFY(history.events.size() > 30, "long");
}

// Top-level fields that refer to an earlier event of the same history,
// and that the checker checks (workflow_task_completed_event_id only on
// command events; external_initiated_event_id refers to another workflow).
template <typename Visit>
void for_each_checked_reference(HistoryEvent& event, Visit&& visit) {
  const bool command = is_command_event(event.type());
  std::visit(
      [&](auto& attributes) {
        sim::for_each_codec_field(attributes, [&]<typename Field>(std::string_view name, Field& field) {
          if constexpr (std::is_same_v<Field, EventId>) {
            if (!name.ends_with("_event_id") || name == "external_initiated_event_id") return;
            if (name == "workflow_task_completed_event_id" && !command) return;
            visit(field);
          }
        });
      },
      event.attributes);
}

// Inserts a copy of event `index` right after it, renumbering what follows
// and every reference to it, so that ids stay dense.
History duplicate_renumbered(const History& history, std::size_t index) {
  History out = history;
  const EventId inserted_id = static_cast<EventId>(index) + 2;
  out.events.insert(out.events.begin() + static_cast<std::ptrdiff_t>(index) + 1, history.events[index]);
  out.events[index + 1].event_id = inserted_id;
  for (std::size_t i = index + 2; i < out.events.size(); i++) {
    out.events[i].event_id++;
    std::visit(
        [&](auto& attributes) {
          sim::for_each_codec_field(attributes, [&]<typename Field>(std::string_view name, Field& field) {
            if constexpr (std::is_same_v<Field, EventId>) {
              if (name.ends_with("_event_id") && name != "external_initiated_event_id" && field >= inserted_id) field++;
            }
          });
        },
        out.events[i].attributes);
  }
  return out;
}

// Event types whose copy, right after the original, always breaks a rule.
bool once_only(EventType type) {
  switch (type) {
    case EventType::kWorkflowExecutionSignaled:
    case EventType::kWorkflowExecutionCancelRequested:
    case EventType::kMarkerRecorded:
    case EventType::kStartChildWorkflowExecutionInitiated:
    case EventType::kSignalExternalWorkflowExecutionInitiated:
    case EventType::kRequestCancelExternalWorkflowExecutionInitiated:
    case EventType::kActivityTaskCancelRequested:
      return false;
    default:
      return true;
  }
}

RC_GTEST_PROP(RandomHistories, DamageIsNoticed, ()) {
  History history = RandomRun().play();
  enum Mutation { kDrop, kDuplicate, kSwap, kChangeId, kTimeBackwards, kAfterClose, kRepeat, kForwardReference };
  auto mutation = static_cast<Mutation>(uniform(0, 8));
  // The mutations that need two events fall back to changing an id.
  if (history.events.size() < 2 && (mutation == kDrop || mutation == kSwap || mutation == kTimeBackwards)) {
    mutation = kChangeId;
  }
  const std::size_t size = history.events.size();
  std::string label;
  switch (mutation) {
    case kDrop: {  // Not the last: dropping the last leaves a shorter valid history.
      const std::size_t index = uniform<std::size_t>(0, size - 1);
      label = fmt::format("drop {}", event_type_name(history.events[index].type()));
      history.events.erase(history.events.begin() + static_cast<std::ptrdiff_t>(index));
      break;
    }
    case kDuplicate: {  // Ids and all.
      const std::size_t index = uniform<std::size_t>(0, size);
      history.events.insert(history.events.begin() + static_cast<std::ptrdiff_t>(index), history.events[index]);
      label = "duplicate";
      break;
    }
    case kSwap: {
      const std::size_t index = uniform<std::size_t>(0, size - 1);
      std::swap(history.events[index], history.events[index + 1]);
      label = "swap";
      break;
    }
    case kChangeId: {
      const std::size_t index = uniform<std::size_t>(0, size);
      EventId id = uniform<EventId>(-2, static_cast<EventId>(size) + 3);
      if (id == history.events[index].event_id) id = -7;
      history.events[index].event_id = id;
      label = "change id";
      break;
    }
    case kTimeBackwards: {
      const std::size_t index = uniform<std::size_t>(1, size);
      history.events[index].time = history.events[index - 1].time - std::chrono::nanoseconds{uniform(1, 1000)};
      label = "time backwards";
      break;
    }
    case kAfterClose: {  // Any event appended after the close (closing the run first if it is open).
      if (!history.closed()) {
        history.events.push_back(HistoryEvent{static_cast<EventId>(size) + 1, history.events.back().time,
                                              WorkflowExecutionTerminated{}});
      }
      HistoryEvent extra = history.events[uniform<std::size_t>(0, history.events.size())];
      extra.event_id = static_cast<EventId>(history.events.size()) + 1;
      extra.time = history.events.back().time;
      label = fmt::format("after close: {}", event_type_name(extra.type()));
      history.events.push_back(std::move(extra));
      break;
    }
    case kRepeat: {  // An event that happens once, repeated, renumbered so ids stay dense.
      std::vector<std::size_t> candidates;
      for (std::size_t i = 0; i < size; i++) {
        if (once_only(history.events[i].type())) candidates.push_back(i);
      }
      const std::size_t index = candidates[uniform<std::size_t>(0, candidates.size())];
      label = fmt::format("repeat {}", event_type_name(history.events[index].type()));
      history = duplicate_renumbered(history, index);
      break;
    }
    case kForwardReference: {  // A reference to the event itself or a later one.
      std::vector<std::pair<std::size_t, EventId*>> references;
      for (std::size_t i = 0; i < size; i++) {
        for_each_checked_reference(history.events[i], [&](EventId& field) { references.emplace_back(i, &field); });
      }
      RC_PRE(!references.empty());
      const auto [index, field] = references[uniform<std::size_t>(0, references.size())];
      *field = history.events[index].event_id + uniform<EventId>(0, 3);
      label = fmt::format("forward reference in {}", event_type_name(history.events[index].type()));
      break;
    }
  }
  RC_TAG(label.substr(0, label.find(' ')));
  const std::vector<std::string> violations = validate_history(history);
  RC_ASSERT(!violations.empty());
}

// Valid histories also survive both encodings.
RC_GTEST_PROP(RandomHistories, SurviveBinaryAndJson, ()) {
  const History history = RandomRun().play();
  sim::Result<std::vector<HistoryEvent>> decoded = decode_events(encode_events(history.events));
  RC_ASSERT(decoded.ok());
  RC_ASSERT(decoded.value() == history.events);
  sim::Result<History> reread = history_from_json(to_json(history, false));
  RC_ASSERT(reread.ok());
  RC_ASSERT(reread.value() == history);
}

}  // namespace
}  // namespace duro::engine
