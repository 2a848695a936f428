// ExecutionMutator: the history rules as pure functions of (state, input),
// without a store, a shard or a network. Every test ends by validating the
// history it built.
#include "engine/server/execution_mutator.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include "engine/history/history_validator.h"

namespace duro::engine {
namespace {

using namespace std::chrono_literals;

// One run and the history its mutations wrote.
class TestRun {
 public:
  explicit TestRun(std::string run_id = "run-1") {
    StartArgs args;
    args.execution = {"wf", std::move(run_id)};
    args.workflow_type = "type";
    args.task_queue = TaskQueue{"q"};
    args.request_id = "start-1";
    sim::Result<std::unique_ptr<NewRun>> run = ExecutionMutator::start(args, now_, limits_);
    EXPECT_TRUE(run.ok());
    state_ = run.value()->state;
    history_.events = run.value()->events;
    timers_ = run.value()->timers;
  }

  // Applies `op` through a fresh mutator, as a shard would, and keeps what it wrote.
  template <typename Op>
  auto apply(Op op) {
    ExecutionMutator mutator(state_, now_, limits_);
    auto result = op(mutator);
    last_ = mutator.take_mutation();
    for (const HistoryEvent& event : last_.events) history_.events.push_back(event);
    for (const TimerTaskInfo& timer : last_.timers) timers_.push_back(timer);
    return result;
  }

  void start_workflow_task() {
    const WorkflowTaskInfo task = state_.workflow_task;
    ASSERT_NE(task.scheduled_event_id, 0) << "no workflow task outstanding";
    ASSERT_TRUE(apply([&](ExecutionMutator& m) {
                  return m.record_workflow_task_started(task.scheduled_event_id, task.attempt, "poll", "worker");
                }).ok());
  }
  TaskToken workflow_token() const {
    const WorkflowTaskInfo& task = state_.workflow_task;
    return TaskToken{TaskToken::Kind::kWorkflow, state_.execution, task.scheduled_event_id, task.started_event_id,
                     task.attempt, {}, {}};
  }
  sim::Result<void> complete(std::vector<Command> commands, std::vector<std::string> eager_activity_ids = {}) {
    RespondWorkflowTaskCompletedRequest request;
    request.commands = std::move(commands);
    request.identity = "worker";
    request.eager_activity_ids = std::move(eager_activity_ids);
    const TaskToken token = workflow_token();
    return apply([&](ExecutionMutator& m) {
      sim::Result<void> done = m.complete_workflow_task(token, request, random_);
      eager_started_ = m.eager_started();
      return done;
    });
  }
  const std::vector<EventId>& eager_started() const { return eager_started_; }
  // Starts activity `scheduled` (its current attempt) and returns its token.
  TaskToken start_activity(EventId scheduled) {
    const std::int32_t attempt = state_.activities.at(scheduled).attempt;
    EXPECT_TRUE(apply([&](ExecutionMutator& m) {
                  return m.record_activity_task_started(scheduled, attempt, "poll-" + std::to_string(attempt), "w");
                }).ok());
    return TaskToken{TaskToken::Kind::kActivity, state_.execution, scheduled, 0, attempt, {}, {}};
  }
  // The last timer task written of kind T.
  template <typename T>
  const TimerTaskInfo* last_timer() const {
    for (auto it = timers_.rbegin(); it != timers_.rend(); ++it) {
      if (std::holds_alternative<T>(it->kind)) return &*it;
    }
    return nullptr;
  }
  std::vector<EventType> types() const {
    std::vector<EventType> out;
    for (const HistoryEvent& event : history_.events) out.push_back(event.type());
    return out;
  }
  void expect_valid() const {
    for (const std::string& violation : validate_history(history_)) ADD_FAILURE() << violation;
  }

  MutableState& state() { return state_; }
  const std::vector<TimerTaskInfo>& timers() const { return timers_; }
  const ServerLimits& limits() const { return limits_; }
  const Mutation& last() const { return last_; }
  void advance(sim::Duration by) { now_ += by; }
  sim::TimePoint now() const { return now_; }

 private:
  ServerLimits limits_;
  sim::TimePoint now_ = sim::TimePoint{} + 24h;
  sim::Random random_{7};
  MutableState state_;
  History history_;
  std::vector<TimerTaskInfo> timers_;
  Mutation last_;
  std::vector<EventId> eager_started_;
};

ScheduleActivityTask activity(const std::string& id, std::optional<RetryPolicy> retry = std::nullopt) {
  ScheduleActivityTask command;
  command.activity_id = id;
  command.activity_type = "act";
  command.start_to_close_timeout = 30s;
  command.retry_policy = std::move(retry);
  return command;
}

TEST(ExecutionMutator, ASignalDuringATaskIsBufferedAndACloseThenIsRefused) {
  TestRun run;
  run.start_workflow_task();
  ASSERT_TRUE(run.apply([](ExecutionMutator& m) { return m.signal("go", "x", "client", "sig-1"); }).ok());
  // Buffered: no event yet, but the state must be written.
  EXPECT_TRUE(run.last().events.empty());
  EXPECT_TRUE(run.last().state_changed);
  EXPECT_EQ(run.state().buffered_events.size(), 1u);

  // The code decided to close without having seen the signal.
  sim::Result<void> closed = run.complete({CompleteWorkflowExecution{"done"}});
  ASSERT_FALSE(closed.ok());
  EXPECT_NE(closed.error().message.find("UnhandledCommand"), std::string::npos) << closed.error().message;
  EXPECT_TRUE(run.state().running());
  EXPECT_EQ(run.types(), (std::vector<EventType>{EventType::kWorkflowExecutionStarted,
                                                 EventType::kWorkflowTaskScheduled, EventType::kWorkflowTaskStarted,
                                                 EventType::kWorkflowTaskFailed, EventType::kWorkflowExecutionSignaled,
                                                 EventType::kWorkflowTaskScheduled}));
  // An unhandled command is not the code's failure: no backoff, no strike.
  EXPECT_EQ(run.state().workflow_task_failures, 0);

  // The next task sees the signal and may close.
  run.start_workflow_task();
  ASSERT_TRUE(run.complete({CompleteWorkflowExecution{"done"}}).ok());
  EXPECT_FALSE(run.state().running());
  EXPECT_TRUE(run.last().closed);
  run.expect_valid();
}

TEST(ExecutionMutator, ARepeatedSignalRequestIsAppliedOnce) {
  TestRun run;
  ASSERT_TRUE(run.apply([](ExecutionMutator& m) { return m.signal("go", "x", "client", "sig-1"); }).ok());
  const std::size_t events = run.types().size();
  ASSERT_TRUE(run.apply([](ExecutionMutator& m) { return m.signal("go", "x", "client", "sig-1"); }).ok());
  EXPECT_EQ(run.types().size(), events);
  EXPECT_TRUE(run.last().events.empty());
  run.expect_valid();
}

TEST(ExecutionMutator, ActivityFailuresRetryWithBackoffUntilTheAttemptsRunOut) {
  TestRun run;
  run.start_workflow_task();
  RetryPolicy retry;
  retry.initial_interval = 2s;
  retry.backoff_coefficient = 3.0;
  retry.maximum_attempts = 3;
  ASSERT_TRUE(run.complete({activity("a", retry)}).ok());
  const EventId scheduled = run.state().activities.begin()->first;
  const Failure boom{"Boom", "it broke", {}, false, TimeoutType::kNone, "activity"};

  std::vector<sim::Duration> backoffs;
  for (int attempt = 1; attempt <= 2; attempt++) {
    const TaskToken token = run.start_activity(scheduled);
    ASSERT_TRUE(run.apply([&](ExecutionMutator& m) { return m.fail_activity(token, boom, {}, "w"); }).ok());
    // A retried failure writes no event: only a retry timer.
    EXPECT_TRUE(run.last().events.empty());
    const TimerTaskInfo* timer = run.last_timer<ActivityRetryTimer>();
    ASSERT_NE(timer, nullptr);
    backoffs.push_back(timer->fire_time - run.now());
    run.advance(timer->fire_time - run.now());
    const ActivityRetryTimer due = std::get<ActivityRetryTimer>(timer->kind);
    run.apply([&](ExecutionMutator& m) {
      m.activity_retry(due);
      return 0;
    });
    EXPECT_EQ(run.state().activities.at(scheduled).attempt, attempt + 1);
  }
  EXPECT_EQ(backoffs, (std::vector<sim::Duration>{2s, 6s}));

  // The third attempt is the last: its failure closes the activity.
  const TaskToken token = run.start_activity(scheduled);
  ASSERT_TRUE(run.apply([&](ExecutionMutator& m) { return m.fail_activity(token, boom, {}, "w"); }).ok());
  EXPECT_TRUE(run.state().activities.empty());
  const std::vector<EventType> types = run.types();
  EXPECT_EQ(types[types.size() - 3], EventType::kActivityTaskStarted);
  EXPECT_EQ(types[types.size() - 2], EventType::kActivityTaskFailed);
  EXPECT_EQ(types.back(), EventType::kWorkflowTaskScheduled);
  run.expect_valid();
}

// Jitter draws from the run, the activity and the attempt: runs whose
// activities failed at the same moment retry at different times, and a
// mutation computed twice (a retried write) gives the same time.
TEST(ExecutionMutator, JitteredRetriesDrawApartAcrossRunsAndRepeatWithinOne) {
  RetryPolicy retry;
  retry.initial_interval = 100s;
  retry.jitter = 0.5;
  const Failure boom{"Boom", "it broke", {}, false, TimeoutType::kNone, "activity"};
  const auto first_backoff = [&](const std::string& run_id) {
    TestRun run(run_id);
    run.start_workflow_task();
    EXPECT_TRUE(run.complete({activity("a", retry)}).ok());
    const EventId scheduled = run.state().activities.begin()->first;
    const TaskToken token = run.start_activity(scheduled);
    EXPECT_TRUE(run.apply([&](ExecutionMutator& m) { return m.fail_activity(token, boom, {}, "w"); }).ok());
    const TimerTaskInfo* timer = run.last_timer<ActivityRetryTimer>();
    EXPECT_NE(timer, nullptr);
    run.expect_valid();
    return timer == nullptr ? sim::Duration::zero() : timer->fire_time - run.now();
  };
  std::vector<sim::Duration> backoffs;
  for (int i = 0; i < 8; i++) {
    const sim::Duration backoff = first_backoff("run-" + std::to_string(i));
    EXPECT_GE(backoff, 50s);
    EXPECT_LE(backoff, 100s);
    EXPECT_EQ(first_backoff("run-" + std::to_string(i)), backoff) << "pure: the same state, the same backoff";
    backoffs.push_back(backoff);
  }
  std::sort(backoffs.begin(), backoffs.end());
  EXPECT_EQ(std::unique(backoffs.begin(), backoffs.end()), backoffs.end()) << "eight runs, eight retry times";
}

TEST(ExecutionMutator, ANonRetryableFailureTypeClosesTheActivityAtOnce) {
  TestRun run;
  run.start_workflow_task();
  RetryPolicy retry;
  retry.non_retryable_error_types = {"Fatal"};
  ASSERT_TRUE(run.complete({activity("a", retry)}).ok());
  const EventId scheduled = run.state().activities.begin()->first;
  const TaskToken token = run.start_activity(scheduled);
  const Failure fatal{"Fatal", "no point retrying", {}, false, TimeoutType::kNone, "activity"};
  ASSERT_TRUE(run.apply([&](ExecutionMutator& m) { return m.fail_activity(token, fatal, {}, "w"); }).ok());
  EXPECT_TRUE(run.state().activities.empty());
  EXPECT_EQ(run.types()[run.types().size() - 2], EventType::kActivityTaskFailed);
  run.expect_valid();
}

TEST(ExecutionMutator, AStaleActivityTokenChangesNothing) {
  TestRun run;
  run.start_workflow_task();
  ASSERT_TRUE(run.complete({activity("a")}).ok());
  const EventId scheduled = run.state().activities.begin()->first;
  TaskToken token = run.start_activity(scheduled);
  token.attempt = 2;  // An attempt that never ran.
  sim::Result<void> done = run.apply([&](ExecutionMutator& m) { return m.complete_activity(token, "r", "w"); });
  ASSERT_FALSE(done.ok());
  EXPECT_EQ(done.error().code, sim::ErrorCode::kNotFound);
  EXPECT_TRUE(run.last().empty());
  run.expect_valid();
}

// Eager activity execution: of the activities a task's completion asks for,
// those on the run's own task queue start in the same mutation, with their
// start-to-close timeout armed and no task for matching; the others, and
// those not asked for, are dispatched as usual. A refused task starts none.
TEST(ExecutionMutator, EagerActivitiesOnTheRunsQueueStartWithTheTasksCompletion) {
  TestRun run;
  run.start_workflow_task();
  ScheduleActivityTask elsewhere = activity("elsewhere");
  elsewhere.task_queue = TaskQueue{"other-queue"};
  ASSERT_TRUE(run.complete({activity("eager"), elsewhere, activity("polled")}, {"eager", "elsewhere"}).ok());
  ASSERT_EQ(run.eager_started().size(), 1U);
  const ActivityInfo& eager = run.state().activities.at(run.eager_started().front());
  EXPECT_EQ(eager.activity_id, "eager");
  EXPECT_TRUE(eager.started());
  EXPECT_EQ(eager.started_identity, "worker");
  std::vector<std::string> dispatched;
  for (const TransferTaskInfo& task : run.last().transfer) {
    if (const auto* transfer = std::get_if<ActivityTaskTransfer>(&task.kind)) {
      dispatched.push_back(run.state().activities.at(transfer->scheduled_event_id).activity_id);
    }
  }
  EXPECT_EQ(dispatched, (std::vector<std::string>{"elsewhere", "polled"}));
  const TimerTaskInfo* timeout = run.last_timer<ActivityTimeoutTimer>();
  ASSERT_NE(timeout, nullptr);
  EXPECT_EQ(std::get<ActivityTimeoutTimer>(timeout->kind).scheduled_event_id, eager.scheduled_event_id);
  EXPECT_EQ(std::get<ActivityTimeoutTimer>(timeout->kind).timeout_type, TimeoutType::kStartToClose);
  // Started already: a poll that finds it anyway changes nothing.
  const EventId scheduled = eager.scheduled_event_id;
  EXPECT_EQ(run.apply([&](ExecutionMutator& m) { return m.record_activity_task_started(scheduled, 1, "poll", "w"); })
                .error()
                .code,
            sim::ErrorCode::kNotFound);
  // Its completion closes it as for a polled one.
  const TaskToken token{TaskToken::Kind::kActivity, run.state().execution, scheduled, 0, 1, {}, {}};
  ASSERT_TRUE(run.apply([&](ExecutionMutator& m) { return m.complete_activity(token, "r", "w"); }).ok());
  EXPECT_FALSE(run.state().activities.contains(scheduled));
  run.expect_valid();

  TestRun refused;
  refused.start_workflow_task();
  ScheduleActivityTask bad = activity("bad");
  bad.start_to_close_timeout = -1s;
  ASSERT_FALSE(refused.complete({activity("eager"), bad}, {"eager"}).ok());
  EXPECT_TRUE(refused.eager_started().empty());
  EXPECT_TRUE(refused.state().activities.empty());
  refused.expect_valid();
}

// A refused task rolls back to the state before it, whether the mutator
// copied that state first or was given it (as a shard gives its cached
// copy): both end the same, byte for byte.
TEST(ExecutionMutator, ARefusedTaskRollsBackTheSameWithOrWithoutTheOriginalState) {
  TestRun run;
  run.start_workflow_task();
  ScheduleActivityTask bad = activity("bad");
  bad.start_to_close_timeout = -1s;
  RespondWorkflowTaskCompletedRequest request;
  request.commands = {activity("fine"), bad};
  request.identity = "worker";
  const TaskToken token = run.workflow_token();
  const MutableState original = run.state();
  auto refuse = [&](const MutableState* given) {
    MutableState state = original;
    sim::Random random(1);
    ExecutionMutator mutator(state, run.now(), run.limits(), given);
    EXPECT_FALSE(mutator.complete_workflow_task(token, request, random).ok());
    return std::pair{sim::encode(state), mutator.take_mutation()};
  };
  const auto [copied, copied_mutation] = refuse(nullptr);
  const auto [given, given_mutation] = refuse(&original);
  EXPECT_EQ(copied, given);
  ASSERT_EQ(copied_mutation.events.size(), given_mutation.events.size());
  for (const HistoryEvent& event : given_mutation.events) {
    EXPECT_NE(event.type(), EventType::kActivityTaskScheduled) << "a refused task's command was kept";
  }
  EXPECT_EQ(given_mutation.events.front().type(), EventType::kWorkflowTaskFailed);
}

// A task that schedules an activity and closes the run in one completion
// starts nothing eagerly: the close ends the activity as it is written.
TEST(ExecutionMutator, ATaskThatClosesTheRunStartsNoEagerActivity) {
  TestRun run;
  run.start_workflow_task();
  ASSERT_TRUE(run.complete({activity("last"), CompleteWorkflowExecution{"done"}}, {"last"}).ok());
  EXPECT_TRUE(run.eager_started().empty());
  EXPECT_FALSE(run.state().running());
  EXPECT_TRUE(run.state().activities.empty());
  run.expect_valid();
}

// Eager workflow task: an activity's completion that schedules the run's
// next task on the sticky queue of the worker that asks starts it in the
// same mutation, with no task for matching and no schedule-to-start timer,
// and its start-to-close timeout armed. Asked by a worker of another
// queue, or when the completion schedules nothing, it changes nothing.
TEST(ExecutionMutator, AnActivitysCompletionStartsTheNextTaskEagerlyOnlyForItsStickyWorker) {
  const TaskQueue sticky{"q/worker-1/sticky/1", TaskQueueKind::kSticky};
  // Runs to an activity started on the worker: its token in `token`.
  auto run_to_activity = [&](TestRun& run, TaskToken& token) {
    run.start_workflow_task();
    RespondWorkflowTaskCompletedRequest request;
    request.commands = {activity("a")};
    request.identity = "worker-1";
    request.sticky_task_queue = sticky;
    request.sticky_schedule_to_start_timeout = 5s;
    sim::Random random(1);
    const TaskToken task_token = run.workflow_token();
    ASSERT_TRUE(run.apply([&](ExecutionMutator& m) { return m.complete_workflow_task(task_token, request, random); }).ok());
    token = run.start_activity(run.state().activities.begin()->first);
  };

  TestRun run;
  TaskToken token;
  run_to_activity(run, token);
  // Completes the activity as `worker` and asks for the task eagerly on
  // `queue`: whether it was started.
  auto complete_eagerly = [&](TestRun& target, const TaskQueue& queue, const std::string& request_id,
                              const std::string& worker) {
    bool eager = false;
    EXPECT_TRUE(target
                    .apply([&](ExecutionMutator& m) {
                      sim::Result<void> done = m.complete_activity(token, "r", worker);
                      eager = m.start_workflow_task_eagerly(queue, request_id, worker);
                      return done;
                    })
                    .ok());
    return eager;
  };
  EXPECT_TRUE(complete_eagerly(run, sticky, "eager-1", "worker-1"));
  const WorkflowTaskInfo& task = run.state().workflow_task;
  EXPECT_TRUE(run.state().workflow_task_started());
  EXPECT_EQ(task.task_queue, sticky);
  EXPECT_EQ(task.request_id, "eager-1");
  for (const TransferTaskInfo& transfer : run.last().transfer) {
    EXPECT_FALSE(std::holds_alternative<WorkflowTaskTransfer>(transfer.kind)) << "a task for matching";
  }
  std::vector<TimeoutType> timeouts;
  for (const TimerTaskInfo& timer : run.last().timers) {
    if (const auto* t = std::get_if<WorkflowTaskTimeoutTimer>(&timer.kind)) timeouts.push_back(t->timeout_type);
  }
  EXPECT_EQ(timeouts, std::vector<TimeoutType>{TimeoutType::kStartToClose});
  std::vector<EventType> written;
  for (const HistoryEvent& event : run.last().events) written.push_back(event.type());
  EXPECT_EQ(written, (std::vector<EventType>{EventType::kActivityTaskStarted, EventType::kActivityTaskCompleted,
                                             EventType::kWorkflowTaskScheduled, EventType::kWorkflowTaskStarted}));
  // Started: a poll that finds the task anyway is refused; the eager
  // poll's own retry gets it again.
  const EventId scheduled = task.scheduled_event_id;
  EXPECT_EQ(run.apply([&](ExecutionMutator& m) { return m.record_workflow_task_started(scheduled, 1, "poll", "w"); })
                .error()
                .code,
            sim::ErrorCode::kNotFound);
  EXPECT_TRUE(run.apply([&](ExecutionMutator& m) {
                   return m.record_workflow_task_started(scheduled, 1, "eager-1", "worker-1");
                 }).ok());
  run.expect_valid();

  // Another worker's sticky queue: the task goes through matching.
  TestRun other;
  run_to_activity(other, token);
  EXPECT_FALSE(complete_eagerly(other, TaskQueue{"q/worker-2/sticky/1", TaskQueueKind::kSticky}, "eager-2", "worker-2"));
  EXPECT_FALSE(other.state().workflow_task_started());
  ASSERT_EQ(other.last().transfer.size(), 1U);
  EXPECT_TRUE(std::holds_alternative<WorkflowTaskTransfer>(other.last().transfer.front().kind));
  ASSERT_NE(other.last_timer<WorkflowTaskTimeoutTimer>(), nullptr);
  EXPECT_EQ(std::get<WorkflowTaskTimeoutTimer>(other.last_timer<WorkflowTaskTimeoutTimer>()->kind).timeout_type,
            TimeoutType::kScheduleToStart);
  other.expect_valid();

  // A completion while a task is started schedules nothing (it is
  // buffered): nothing to start.
  TestRun busy;
  run_to_activity(busy, token);
  ASSERT_TRUE(busy.apply([](ExecutionMutator& m) { return m.signal("go", "x", "client", "sig-1"); }).ok());
  busy.start_workflow_task();
  EXPECT_FALSE(complete_eagerly(busy, sticky, "eager-3", "worker-1"));
  EXPECT_EQ(busy.state().workflow_task.request_id, "poll");
  EXPECT_EQ(busy.state().buffered_events.size(), 2U);
  busy.expect_valid();
}

// Fires `timer` at `state` through a mutator, as a shard's timer task does.
Mutation fire(MutableState state, const TimerTaskInfo& timer, sim::TimePoint now, const ServerLimits& limits) {
  sim::Random run_ids(3);
  ExecutionMutator mutator(state, now, limits);
  mutator.fire_timer(timer.kind, run_ids);
  return mutator.take_mutation();
}

// Every timer the run ever wrote, judged by timer_may_act against the run
// as it is now, and then fired at a copy of it: the judgement says exactly
// whether firing would change anything. (A shard skips the timers it
// judges stale without an update.)
void expect_timers_judged_as_they_act(TestRun& run, const std::string& when) {
  ASSERT_GT(run.timers().size(), 0U) << when;
  for (const TimerTaskInfo& timer : run.timers()) {
    const bool may_act = ExecutionMutator::timer_may_act(run.state(), timer.kind);
    const Mutation fired = fire(run.state(), timer, run.now(), run.limits());
    EXPECT_EQ(may_act, !fired.empty()) << when << ": timer kind " << timer.kind.index();
  }
}

TEST(ExecutionMutator, ATimerJudgedStaleOnTheRunChangesNothingAndOneJudgedLiveActs) {
  TestRun run;
  expect_timers_judged_as_they_act(run, "started");
  run.start_workflow_task();
  expect_timers_judged_as_they_act(run, "workflow task started");
  RetryPolicy retry;
  retry.maximum_attempts = 3;
  ScheduleActivityTask beating = activity("b");
  beating.heartbeat_timeout = 5s;
  ASSERT_TRUE(run.complete({activity("a", retry), beating, StartTimer{"t1", 1h}, StartTimer{"t2", 2h}}).ok());
  expect_timers_judged_as_they_act(run, "activities and timers scheduled");
  const EventId a = run.state().activity_by_id("a")->scheduled_event_id;
  const EventId b = run.state().activity_by_id("b")->scheduled_event_id;
  (void)run.start_activity(a);
  (void)run.start_activity(b);
  expect_timers_judged_as_they_act(run, "activities started");
  run.advance(30s);
  // Attempt 1 of `a` times out and backs off; `b` missed its heartbeat.
  for (const TimerTaskInfo& timer : std::vector<TimerTaskInfo>(run.timers())) {
    if (const auto* timeout = std::get_if<ActivityTimeoutTimer>(&timer.kind);
        timeout != nullptr && timeout->scheduled_event_id == a && timeout->timeout_type == TimeoutType::kStartToClose) {
      run.apply([&](ExecutionMutator& m) {
        m.activity_timeout(*timeout);
        return 0;
      });
    }
  }
  ASSERT_TRUE(run.state().activities.at(a).retry_backoff);
  expect_timers_judged_as_they_act(run, "activity a backing off");
  run.advance(1h);
  expect_timers_judged_as_they_act(run, "an hour on");
  const UserTimerTimer t1{"t1", run.state().timers.at("t1").started_event_id};
  run.apply([&](ExecutionMutator& m) {
    m.fire_user_timer(t1);
    return 0;
  });
  expect_timers_judged_as_they_act(run, "timer t1 fired");
  run.start_workflow_task();
  ASSERT_TRUE(run.complete({CancelTimer{"t2"}}).ok());
  expect_timers_judged_as_they_act(run, "timer t2 cancelled");
}

TEST(ExecutionMutator, AStartToCloseTimeoutRetriesThenTimesOut) {
  TestRun run;
  run.start_workflow_task();
  RetryPolicy retry;
  retry.maximum_attempts = 2;
  ASSERT_TRUE(run.complete({activity("a", retry)}).ok());
  const EventId scheduled = run.state().activities.begin()->first;
  for (int attempt = 1; attempt <= 2; attempt++) {
    (void)run.start_activity(scheduled);
    const TimerTaskInfo* timeout = run.last_timer<ActivityTimeoutTimer>();
    ASSERT_NE(timeout, nullptr);
    EXPECT_EQ(timeout->fire_time - run.now(), 30s);
    const ActivityTimeoutTimer due = std::get<ActivityTimeoutTimer>(timeout->kind);
    run.advance(30s);
    run.apply([&](ExecutionMutator& m) {
      m.activity_timeout(due);
      return 0;
    });
    if (attempt == 1) {
      const ActivityRetryTimer retry_due = std::get<ActivityRetryTimer>(run.last_timer<ActivityRetryTimer>()->kind);
      run.advance(1s);
      run.apply([&](ExecutionMutator& m) {
        m.activity_retry(retry_due);
        return 0;
      });
    }
  }
  EXPECT_TRUE(run.state().activities.empty());
  EXPECT_EQ(run.types()[run.types().size() - 2], EventType::kActivityTaskTimedOut);
  run.expect_valid();
}

TEST(ExecutionMutator, AFiredTimerSchedulesATaskAndACancelledOneIsStale) {
  TestRun run;
  run.start_workflow_task();
  ASSERT_TRUE(run.complete({StartTimer{"t1", 1h}, StartTimer{"t2", 2h}}).ok());
  const UserTimerTimer t1 = std::get<UserTimerTimer>(run.last().timers.at(0).kind);
  const UserTimerTimer t2 = std::get<UserTimerTimer>(run.last().timers.at(1).kind);
  run.advance(1h);
  run.apply([&](ExecutionMutator& m) {
    m.fire_user_timer(t1);
    return 0;
  });
  EXPECT_EQ(run.types()[run.types().size() - 2], EventType::kTimerFired);
  run.start_workflow_task();
  ASSERT_TRUE(run.complete({CancelTimer{"t2"}}).ok());
  run.advance(1h);
  run.apply([&](ExecutionMutator& m) {
    m.fire_user_timer(t2);  // Its task was already written; the timer is gone.
    return 0;
  });
  EXPECT_TRUE(run.last().empty());
  run.expect_valid();
}

TEST(ExecutionMutator, CancellingATimerThatFiredDuringTheTaskDropsTheBufferedFiring) {
  TestRun run;
  run.start_workflow_task();
  ASSERT_TRUE(run.complete({StartTimer{"t1", 1h}}).ok());
  const UserTimerTimer t1 = std::get<UserTimerTimer>(run.last().timers.at(0).kind);
  // A signal wakes the workflow; while its task runs, the timer fires.
  ASSERT_TRUE(run.apply([](ExecutionMutator& m) { return m.signal("go", "x", "client", "sig-1"); }).ok());
  run.start_workflow_task();
  run.advance(1h);
  run.apply([&](ExecutionMutator& m) {
    m.fire_user_timer(t1);
    return 0;
  });
  ASSERT_EQ(run.state().buffered_events.size(), 1u);
  // The code, not knowing, cancels it: accepted, and the firing is gone.
  ASSERT_TRUE(run.complete({CancelTimer{"t1"}}).ok());
  EXPECT_TRUE(run.state().buffered_events.empty());
  const std::vector<EventType> types = run.types();
  EXPECT_EQ(types.back(), EventType::kTimerCanceled);
  EXPECT_EQ(std::count(types.begin(), types.end(), EventType::kTimerFired), 0);
  // A timer that never existed is still refused.
  ASSERT_TRUE(run.apply([](ExecutionMutator& m) { return m.signal("go", "y", "client", "sig-2"); }).ok());
  run.start_workflow_task();
  EXPECT_FALSE(run.complete({CancelTimer{"t9"}}).ok());
  run.expect_valid();
}

TEST(ExecutionMutator, CancellingAnActivityThatClosedDuringTheTaskIsRecordedBeforeItsClose) {
  TestRun run;
  run.start_workflow_task();
  ASSERT_TRUE(run.complete({activity("a")}).ok());
  const EventId scheduled = run.last().events.at(1).event_id;
  const TaskToken token = run.start_activity(scheduled);
  ASSERT_TRUE(run.apply([](ExecutionMutator& m) { return m.signal("go", "x", "client", "sig-1"); }).ok());
  run.start_workflow_task();
  // The activity completes while the task runs: buffered.
  ASSERT_TRUE(run.apply([&](ExecutionMutator& m) { return m.complete_activity(token, "r", "w"); }).ok());
  ASSERT_FALSE(run.state().buffered_events.empty());
  ASSERT_TRUE(run.complete({RequestCancelActivityTask{scheduled}}).ok());
  // The request has its event (replay matches the command against it), and
  // the completion follows it.
  const std::vector<EventType> types = run.types();
  auto requested = std::find(types.begin(), types.end(), EventType::kActivityTaskCancelRequested);
  auto completed = std::find(types.begin(), types.end(), EventType::kActivityTaskCompleted);
  ASSERT_NE(requested, types.end());
  ASSERT_NE(completed, types.end());
  EXPECT_LT(requested, completed);
  run.expect_valid();
}

TEST(ExecutionMutator, AChildCloseNamingAnEventPastThisCopyMarksItStale) {
  TestRun run;
  const EventId next = run.state().next_event_id;
  run.apply([&](ExecutionMutator& m) {
    m.child_closed(next + 3, {"child", "run-c"}, HistoryEvent{});
    return 0;
  });
  // Nothing changed here, and the caller learns to re-read the run.
  EXPECT_TRUE(run.last().empty());
  EXPECT_TRUE(run.last().stale_reference);
  // A child this copy has seen and resolved is a plain no-op.
  run.apply([&](ExecutionMutator& m) {
    m.child_closed(1, {"child", "run-c"}, HistoryEvent{});
    return 0;
  });
  EXPECT_TRUE(run.last().empty());
  EXPECT_FALSE(run.last().stale_reference);
  run.expect_valid();
}

TEST(ExecutionMutator, EventTimesNeverGoBack) {
  TestRun run;
  run.advance(-1h);  // A new owner whose clock is behind.
  ASSERT_TRUE(run.apply([](ExecutionMutator& m) { return m.signal("go", "x", "client", "sig-1"); }).ok());
  ASSERT_FALSE(run.last().events.empty());
  EXPECT_EQ(run.last().events.front().time, sim::TimePoint{} + 24h);
  run.expect_valid();
}

TEST(ExecutionMutator, RepeatedWorkflowTaskFailuresBackOff) {
  TestRun run;
  const Failure bug{"Panic", "nondeterminism", {}, false, TimeoutType::kNone, "workflow"};
  for (int failures = 1; failures <= 3; failures++) {
    run.start_workflow_task();
    const TaskToken token = run.workflow_token();
    ASSERT_TRUE(run.apply([&](ExecutionMutator& m) {
                  return m.fail_workflow_task(token, WorkflowTaskFailedCause::kWorkflowWorkerUnhandledFailure, bug,
                                              "worker");
                }).ok());
    EXPECT_EQ(run.state().workflow_task_failures, failures);
    if (failures == 1) {
      // The first retry is immediate.
      EXPECT_TRUE(run.state().workflow_task_outstanding());
      continue;
    }
    // Later ones wait on a backoff timer, with no task outstanding.
    EXPECT_FALSE(run.state().workflow_task_outstanding());
    const TimerTaskInfo* backoff = run.last_timer<WorkflowTaskBackoffTimer>();
    ASSERT_NE(backoff, nullptr);
    EXPECT_GT(backoff->fire_time, run.now());
    run.advance(backoff->fire_time - run.now());
    run.apply([](ExecutionMutator& m) {
      m.workflow_task_backoff();
      return 0;
    });
    EXPECT_TRUE(run.state().workflow_task_outstanding());
  }
  run.expect_valid();
}

TEST(ExecutionMutator, RunIdsAreShortDistinctAndRepeatFromTheSeed) {
  sim::Random random(42);
  sim::Random again(42);
  std::set<std::string> seen;
  for (int i = 0; i < 100'000; i++) {
    const std::string id = make_run_id(random);
    ASSERT_EQ(id.size(), kRunIdLength);
    // No allocation for a copy (std::string's inline buffer).
    ASSERT_EQ(std::string(id).capacity(), std::string().capacity()) << id;
    ASSERT_EQ(id.find_first_not_of("0123456789abcdefghjkmnpqrstvwxyz"), std::string::npos) << id;
    ASSERT_TRUE(seen.insert(id).second) << "repeated: " << id;
    ASSERT_EQ(make_run_id(again), id);
  }
  // The last characters come from the second draw: they vary too.
  std::set<char> last;
  for (const std::string& id : seen) last.insert(id.back());
  EXPECT_EQ(last.size(), 32U);
}

}  // namespace
}  // namespace duro::engine
