// The SDK's calls one by one, on a simulated cluster without faults:
// cancellation scopes, workflow cancellation, wait_any, failures,
// signalling and cancelling other workflows, continue-as-new, and the
// limits on handlers. Each test also replays the histories it made.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "engine/history/history_validator.h"
#include "engine/sdk/registry.h"
#include "engine/sdk/replayer.h"
#include "engine/testing/sdk_cluster.h"

namespace duro::sdk {
namespace {

using namespace std::chrono_literals;
using engine::EventType;
using engine::testing::SdkCluster;
using engine::testing::TestClient;

const ActivityOptions kQuick{.start_to_close = 10s, .retry = {.maximum_attempts = 3}};

// Sleeps `seconds` of simulated time in one-second steps, heartbeating;
// stops with CanceledError when the heartbeat says so.
std::string slow(ActivityContext& ctx, const std::int64_t& seconds) {
  for (std::int64_t i = 0; i < seconds; i++) {
    ctx.env().sleep_for(1s);
    ctx.heartbeat(i);
    if (ctx.cancel_requested()) throw CanceledError("slow activity cancelled");
  }
  return "slow done";
}

std::string cleanup(ActivityContext&, const std::string& what) { return "cleaned " + what; }

std::string fail_always(ActivityContext&, const std::string& why) {
  throw ApplicationError("Broken", why, {}, /*non_retryable=*/true);
}

// What one workflow did, read back through the client.
struct Closed {
  engine::WorkflowStatus status = engine::WorkflowStatus::kRunning;
  std::optional<engine::HistoryEvent> close_event;
  engine::History history;
  std::string run_id;
};

// Starts `type` with `input`, waits for it to close, fetches its history.
Closed run_one(SdkCluster& cluster, const std::string& workflow_id, const std::string& type, Payload input,
               std::function<void(sim::Env&, TestClient&)> meanwhile = {}) {
  Closed closed;
  cluster.on_client([&, workflow_id, type, input](sim::Env& env, TestClient& client) {
    auto started = SdkCluster::start(client, env, workflow_id, type, input);
    ASSERT_TRUE(started.ok()) << sim::to_string(started.error());
    if (meanwhile) meanwhile(env, client);
    auto result = client.wait_result({workflow_id, started.value()}, env.sim().deadline_after(24h));
    ASSERT_TRUE(result.ok()) << sim::to_string(result.error());
    closed.status = result.value().status;
    closed.close_event = result.value().close_event;
    closed.run_id = result.value().run_id;
    auto history = client.history({workflow_id, closed.run_id}, env.sim().deadline_after(1min));
    ASSERT_TRUE(history.ok());
    closed.history = history.value();
    env.sim().stop();  // Done: no need to simulate the idle cluster further.
  });
  cluster.world.run_for(48h);
  return closed;
}

std::string completed_result(const Closed& closed) {
  const auto* completed = closed.close_event ? closed.close_event->as<engine::WorkflowExecutionCompleted>() : nullptr;
  return completed ? from_payload<std::string>(completed->result) : "(not completed)";
}

bool has_event(const engine::History& history, EventType type) {
  return std::any_of(history.events.begin(), history.events.end(),
                     [&](const engine::HistoryEvent& event) { return event.type() == type; });
}

void expect_valid_and_replays(const Registry& registry, const Closed& closed, const std::string& workflow_id) {
  for (const std::string& violation : engine::validate_history(closed.history)) ADD_FAILURE() << violation;
  Replayer replayer(registry);
  ReplayResult replay = replayer.replay(closed.history.events, workflow_id, closed.run_id);
  EXPECT_TRUE(replay.ok) << replay.message;
}

Registry base_registry() {
  Registry registry;
  registry.activity("slow", slow).activity("cleanup", cleanup).activity("fail_always", fail_always);
  return registry;
}

// --- Cancellation scopes --------------------------------------------------------------------

std::string cancel_scope_workflow(WorkflowContext& ctx) {
  std::vector<std::string> seen;
  ctx.cancellation_scope([&](CancellationScope& scope) {
    Future<std::string> activity =
        ctx.start_activity<std::string>("slow", std::int64_t{600}, {.start_to_close = 20min, .heartbeat = 10s});
    Future<void> timer = ctx.timer(1h);
    ctx.sleep(30s);  // In the same scope: returns before the cancel.
    scope.cancel();
    try {
      activity.get();
      seen.push_back("activity finished");
    } catch (const CanceledError&) {
      seen.push_back("activity cancelled");
    }
    try {
      timer.get();
      seen.push_back("timer fired");
    } catch (const CanceledError&) {
      seen.push_back("timer cancelled");
    }
    // Anything started in a cancelled scope is cancelled at once.
    try {
      ctx.activity<std::string>("cleanup", std::string("late"), kQuick);
      seen.push_back("late activity ran");
    } catch (const CanceledError&) {
      seen.push_back("late activity cancelled");
    }
  });
  // Outside the scope, work goes on.
  seen.push_back(ctx.activity<std::string>("cleanup", std::string("after"), kQuick));
  std::string out;
  for (const std::string& s : seen) out += s + ";";
  return out;
}

TEST(SdkFeatures, CancellingAScopeCancelsItsActivityAndTimer) {
  Registry registry = base_registry();
  registry.workflow("cancel_scope", cancel_scope_workflow);
  SdkCluster cluster(registry, {.seed = 3});
  Closed closed = run_one(cluster, "cancel-scope-1", "cancel_scope", Payload{});
  ASSERT_EQ(closed.status, engine::WorkflowStatus::kCompleted);
  EXPECT_EQ(completed_result(closed),
            "activity cancelled;timer cancelled;late activity cancelled;cleaned after;");
  EXPECT_TRUE(has_event(closed.history, EventType::kActivityTaskCancelRequested));
  // The hour-long timer (the first one, "1") was cancelled, never fired;
  // the 30 s sleep ("2") fired.
  std::vector<std::string> fired;
  std::vector<std::string> cancelled;
  for (const engine::HistoryEvent& event : closed.history.events) {
    if (const auto* e = event.as<engine::TimerFired>()) fired.push_back(e->timer_id);
    if (const auto* e = event.as<engine::TimerCanceled>()) cancelled.push_back(e->timer_id);
  }
  EXPECT_EQ(fired, std::vector<std::string>{"2"});
  EXPECT_EQ(cancelled, std::vector<std::string>{"1"});
  expect_valid_and_replays(registry, closed, "cancel-scope-1");
}

// An activity nobody picks up is cancelled by the server at once: its
// Canceled event lands among the task's command events. Replay must still
// match the task's commands (a timer started after the cancel) around it.
std::string cancels_unstarted(WorkflowContext& ctx) {
  std::string out;
  Future<std::string> stuck;
  CancellationScope scope = ctx.cancellation_scope([&](CancellationScope& inner) {
    stuck = ctx.start_activity<std::string>("cleanup", std::string("x"),
                                            {.start_to_close = 10s, .task_queue = "nobody-polls-this"});
    return inner;
  });
  ctx.sleep(5s);
  scope.cancel();                         // RequestCancelActivityTask ...
  Future<void> timer = ctx.timer(10s);    // ... and StartTimer, in one task.
  try {
    stuck.get();
  } catch (const CanceledError&) {
    out += "cancelled;";
  }
  timer.get();
  return out + "timer fired;";
}

TEST(SdkFeatures, CancellingAnUnstartedActivityAmidOtherCommandsReplays) {
  Registry registry = base_registry();
  registry.workflow("cancels_unstarted", cancels_unstarted);
  SdkCluster cluster(registry, {.seed = 13});
  Closed closed = run_one(cluster, "cancels-unstarted-1", "cancels_unstarted", Payload{});
  ASSERT_EQ(closed.status, engine::WorkflowStatus::kCompleted);
  EXPECT_EQ(completed_result(closed), "cancelled;timer fired;");
  EXPECT_TRUE(has_event(closed.history, EventType::kActivityTaskCanceled));
  expect_valid_and_replays(registry, closed, "cancels-unstarted-1");
}

// --- Workflow cancellation -------------------------------------------------------------------

std::string cancellable_workflow(WorkflowContext& ctx) {
  try {
    ctx.sleep(24h);
    return "slept";
  } catch (const CanceledError&) {
    // Cleanup the cancellation does not reach, then close as cancelled.
    ctx.non_cancellable([&] { ctx.activity<std::string>("cleanup", std::string("resources"), kQuick); });
    throw;
  }
}

TEST(SdkFeatures, ACancelledWorkflowRunsItsCleanupAndClosesCanceled) {
  Registry registry = base_registry();
  registry.workflow("cancellable", cancellable_workflow);
  SdkCluster cluster(registry, {.seed = 4});
  Closed closed = run_one(cluster, "cancellable-1", "cancellable", Payload{}, [](sim::Env& env, TestClient& client) {
    env.sleep_for(1h);
    auto cancel = client.call<engine::Ack>(
        engine::method::kRequestCancelWorkflowExecution,
        engine::RequestCancelWorkflowExecutionRequest{"cancel-1", {"cancellable-1", ""}, "no longer needed", "client"},
        env.sim().deadline_after(1min));
    ASSERT_TRUE(cancel.ok()) << sim::to_string(cancel.error());
  });
  EXPECT_EQ(closed.status, engine::WorkflowStatus::kCanceled);
  EXPECT_TRUE(has_event(closed.history, EventType::kTimerCanceled));
  // The cleanup activity ran to completion after the cancellation.
  EXPECT_TRUE(has_event(closed.history, EventType::kActivityTaskCompleted));
  expect_valid_and_replays(registry, closed, "cancellable-1");
}

// --- wait_any, failures ------------------------------------------------------------------------

std::string race_workflow(WorkflowContext& ctx) {
  return ctx.cancellation_scope([&](CancellationScope& scope) -> std::string {
    Future<std::string> activity =
        ctx.start_activity<std::string>("slow", std::int64_t{120}, {.start_to_close = 10min, .heartbeat = 10s});
    Future<void> deadline = ctx.timer(20s);
    const std::size_t first = ctx.wait_any(activity, deadline);
    scope.cancel();
    return first == 1 ? "deadline first" : "activity first";
  });
}

TEST(SdkFeatures, WaitAnyReturnsTheFirstToResolve) {
  Registry registry = base_registry();
  registry.workflow("race", race_workflow);
  SdkCluster cluster(registry, {.seed = 5});
  Closed closed = run_one(cluster, "race-1", "race", Payload{});
  ASSERT_EQ(closed.status, engine::WorkflowStatus::kCompleted);
  EXPECT_EQ(completed_result(closed), "deadline first");
  expect_valid_and_replays(registry, closed, "race-1");
}

std::string catches_activity_failure(WorkflowContext& ctx) {
  try {
    ctx.activity<std::string>("fail_always", std::string("disk on fire"), kQuick);
    return "no failure";
  } catch (const ActivityError& error) {
    return error.failure().type + ":" + error.failure().message + ":" + error.activity_type();
  }
}

std::string lets_activity_failure_escape(WorkflowContext& ctx) {
  return ctx.activity<std::string>("fail_always", std::string("disk on fire"), kQuick);
}

TEST(SdkFeatures, AnActivityFailureIsCaughtOrFailsTheWorkflow) {
  Registry registry = base_registry();
  registry.workflow("catches", catches_activity_failure).workflow("escapes", lets_activity_failure_escape);
  {
    SdkCluster cluster(registry, {.seed = 6});
    Closed closed = run_one(cluster, "catches-1", "catches", Payload{});
    ASSERT_EQ(closed.status, engine::WorkflowStatus::kCompleted);
    EXPECT_EQ(completed_result(closed), "Broken:disk on fire:fail_always");
    expect_valid_and_replays(registry, closed, "catches-1");
  }
  {
    SdkCluster cluster(registry, {.seed = 7});
    Closed closed = run_one(cluster, "escapes-1", "escapes", Payload{});
    ASSERT_EQ(closed.status, engine::WorkflowStatus::kFailed);
    const auto* failed = closed.close_event->as<engine::WorkflowExecutionFailed>();
    ASSERT_NE(failed, nullptr);
    EXPECT_EQ(failed->failure.type, "Broken");
    EXPECT_EQ(failed->failure.message, "disk on fire");
    // Non-retryable: one attempt only.
    EXPECT_EQ(std::count_if(closed.history.events.begin(), closed.history.events.end(),
                            [](const engine::HistoryEvent& e) { return e.is<engine::ActivityTaskStarted>(); }),
              1);
    expect_valid_and_replays(registry, closed, "escapes-1");
  }
}

std::string throws_a_bug(WorkflowContext& ctx) {
  ctx.sleep(1min);
  throw std::out_of_range("index 7 past the end");
}

TEST(SdkFeatures, AnExceptionFromWorkflowCodeFailsTheTaskAndTheWorkflowStaysOpen) {
  Registry registry = base_registry();
  registry.workflow("buggy", throws_a_bug);
  SdkCluster cluster(registry, {.seed = 8});
  engine::DescribeWorkflowExecutionReply described;
  engine::History history;
  cluster.on_client([&](sim::Env& env, TestClient& client) {
    auto started = SdkCluster::start(client, env, "buggy-1", "buggy", Payload{});
    ASSERT_TRUE(started.ok());
    env.sleep_for(2h);
    auto reply = client.call<engine::DescribeWorkflowExecutionReply>(
        engine::method::kDescribeWorkflowExecution, engine::DescribeWorkflowExecutionRequest{{"buggy-1", ""}},
        env.sim().deadline_after(1min));
    ASSERT_TRUE(reply.ok());
    described = reply.value();
    auto fetched = client.history({"buggy-1", ""}, env.sim().deadline_after(1min));
    ASSERT_TRUE(fetched.ok());
    history = fetched.value();
    env.sim().stop();
  });
  cluster.world.run_for(3h);
  EXPECT_EQ(described.status, engine::WorkflowStatus::kRunning);
  const auto failed = std::find_if(history.events.begin(), history.events.end(),
                                   [](const engine::HistoryEvent& e) { return e.is<engine::WorkflowTaskFailed>(); });
  ASSERT_NE(failed, history.events.end());
  EXPECT_EQ(failed->as<engine::WorkflowTaskFailed>()->cause,
            engine::WorkflowTaskFailedCause::kWorkflowWorkerUnhandledFailure);
  EXPECT_NE(failed->as<engine::WorkflowTaskFailed>()->failure.message.find("index 7 past the end"), std::string::npos);
  ASSERT_NE(cluster.worker(0), nullptr);
  EXPECT_GT(cluster.worker(0)->stats().task_failures, 1U);  // Retried, and failed again.
}

// --- Other workflows ------------------------------------------------------------------------------

std::string waits_for_ping(WorkflowContext& ctx) { return ctx.wait_signal<std::string>("ping"); }

std::string sleeps_long(WorkflowContext& ctx) {
  ctx.sleep(24h);
  return "woke";
}

std::string coordinator(WorkflowContext& ctx, const std::string& suffix) {
  std::string out;
  ctx.signal_workflow({"ponger-" + suffix, ""}, "ping", std::string("hello")).get();
  out += "signalled;";
  ctx.cancel_workflow({"sleeper-" + suffix, ""}).get();
  out += "cancelled;";
  try {
    ctx.signal_workflow({"nobody-" + suffix, ""}, "ping", std::string("hello")).get();
    out += "signalled nobody;";
  } catch (const ExternalWorkflowError&) {
    out += "nobody there;";
  }
  return out;
}

TEST(SdkFeatures, SignallingAndCancellingOtherWorkflows) {
  Registry registry = base_registry();
  registry.workflow("ponger", waits_for_ping).workflow("sleeper", sleeps_long).workflow("coordinator", coordinator);
  SdkCluster cluster(registry, {.seed = 9});
  std::map<std::string, engine::WorkflowStatus> statuses;
  std::string ponged;
  cluster.on_client([&](sim::Env& env, TestClient& client) {
    ASSERT_TRUE(SdkCluster::start(client, env, "ponger-x", "ponger", Payload{}).ok());
    ASSERT_TRUE(SdkCluster::start(client, env, "sleeper-x", "sleeper", Payload{}).ok());
    env.sleep_for(10s);
    auto coordinator_run = SdkCluster::start(client, env, "coordinator-x", "coordinator", to_payload(std::string("x")));
    ASSERT_TRUE(coordinator_run.ok());
    for (const char* id : {"ponger-x", "sleeper-x", "coordinator-x"}) {
      auto result = client.wait_result({id, ""}, env.sim().deadline_after(1h));
      ASSERT_TRUE(result.ok()) << id;
      statuses[id] = result.value().status;
      if (std::string(id) == "coordinator-x") {
        ponged = from_payload<std::string>(result.value().close_event->as<engine::WorkflowExecutionCompleted>()->result);
      }
    }
    env.sim().stop();
  });
  cluster.world.run_for(3h);
  EXPECT_EQ(statuses["ponger-x"], engine::WorkflowStatus::kCompleted);
  EXPECT_EQ(statuses["sleeper-x"], engine::WorkflowStatus::kCanceled);
  EXPECT_EQ(statuses["coordinator-x"], engine::WorkflowStatus::kCompleted);
  EXPECT_EQ(ponged, "signalled;cancelled;nobody there;");
}

// --- Continue-as-new -------------------------------------------------------------------------------

std::int64_t counter(WorkflowContext& ctx, const std::int64_t& count) {
  ctx.sleep(1min);
  if (count < 3) ctx.continue_as_new(count + 1);
  return count * 10;
}

TEST(SdkFeatures, ContinueAsNewStartsAFreshRunWithTheNewInput) {
  Registry registry = base_registry();
  registry.workflow("counter", counter);
  SdkCluster cluster(registry, {.seed = 10});
  Closed closed = run_one(cluster, "counter-1", "counter", to_payload(std::int64_t{0}));
  ASSERT_EQ(closed.status, engine::WorkflowStatus::kCompleted);
  EXPECT_EQ(from_payload<std::int64_t>(closed.close_event->as<engine::WorkflowExecutionCompleted>()->result), 30);
  // The last run began from the third continuation.
  const auto* started = closed.history.events.front().as<engine::WorkflowExecutionStarted>();
  ASSERT_NE(started, nullptr);
  EXPECT_EQ(from_payload<std::int64_t>(started->input), 3);
  EXPECT_FALSE(started->continued_execution_run_id.empty());
  expect_valid_and_replays(registry, closed, "counter-1");
}

// --- Handlers may not issue commands -----------------------------------------------------------------

std::string commands_from_query(WorkflowContext& ctx) {
  ctx.on_query<std::string>("bad", [&] { return ctx.activity<std::string>("cleanup", std::string("x"), kQuick); });
  ctx.on_query<std::string>("good", [] { return std::string("fine"); });
  ctx.sleep(1h);
  return "done";
}

TEST(SdkFeatures, AQueryHandlerThatIssuesACommandIsRefused) {
  Registry registry = base_registry();
  registry.workflow("queried", commands_from_query);
  SdkCluster cluster(registry, {.seed = 12});
  engine::QueryWorkflowReply bad;
  engine::QueryWorkflowReply good;
  engine::QueryWorkflowReply unknown;
  cluster.on_client([&](sim::Env& env, TestClient& client) {
    ASSERT_TRUE(SdkCluster::start(client, env, "queried-1", "queried", Payload{}).ok());
    env.sleep_for(1min);
    auto ask = [&](const char* name) {
      auto reply = client.call<engine::QueryWorkflowReply>(engine::method::kQueryWorkflow,
                                                           engine::QueryWorkflowRequest{{"queried-1", ""}, name, {}},
                                                           env.sim().deadline_after(1min));
      EXPECT_TRUE(reply.ok()) << name;
      return reply.ok() ? reply.value() : engine::QueryWorkflowReply{};
    };
    bad = ask("bad");
    good = ask("good");
    unknown = ask("missing");
    env.sim().stop();
  });
  cluster.world.run_for(2h);
  ASSERT_TRUE(bad.failure.has_value());
  EXPECT_NE(bad.failure->message.find("handlers may not issue commands"), std::string::npos) << bad.failure->message;
  ASSERT_FALSE(good.failure.has_value());
  EXPECT_EQ(from_payload<std::string>(good.result), "fine");
  ASSERT_TRUE(unknown.failure.has_value());
  EXPECT_EQ(unknown.failure->type, "QueryNotFound");
  EXPECT_NE(unknown.failure->message.find("good"), std::string::npos);  // It lists the handlers there are.
}

// A handler reads the workflow function's locals; once the function has
// returned they are gone, and a query must say so rather than read a dead
// stack (entity-workflows read garbage from one that continued as new).
std::string stage_then_return(WorkflowContext& ctx) {
  std::string stage = "waiting";
  ctx.on_query<std::string>("stage", [&] { return stage; });
  ctx.sleep(1min);
  stage = "returning";
  return stage;
}

TEST(SdkFeatures, AQueryAfterTheWorkflowFunctionReturnedFailsWithoutReadingItsState) {
  Registry registry = base_registry();
  registry.workflow("staged", stage_then_return);
  SdkCluster cluster(registry, {.seed = 13});
  std::vector<engine::QueryWorkflowReply> replies;
  cluster.on_client([&](sim::Env& env, TestClient& client) {
    ASSERT_TRUE(SdkCluster::start(client, env, "staged-1", "staged", Payload{}).ok());
    for (const sim::Duration wait : {sim::Duration{30s}, sim::Duration{2min}}) {
      env.sleep_for(wait);
      auto reply = client.call<engine::QueryWorkflowReply>(engine::method::kQueryWorkflow,
                                                           engine::QueryWorkflowRequest{{"staged-1", ""}, "stage", {}},
                                                           env.sim().deadline_after(1min));
      ASSERT_TRUE(reply.ok()) << sim::to_string(reply.error());
      replies.push_back(reply.value());
    }
    env.sim().stop();
  });
  cluster.world.run_for(1h);
  ASSERT_EQ(replies.size(), 2u);
  ASSERT_FALSE(replies[0].failure.has_value()) << replies[0].failure->message;
  EXPECT_EQ(from_payload<std::string>(replies[0].result), "waiting");
  ASSERT_TRUE(replies[1].failure.has_value());
  EXPECT_EQ(replies[1].failure->type, "QueryRunClosed");
  EXPECT_NE(replies[1].failure->message.find("staged-1"), std::string::npos) << replies[1].failure->message;
}

}  // namespace
}  // namespace duro::sdk
