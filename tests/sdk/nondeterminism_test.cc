// Nondeterminism: what replay says when workflow code changes under runs
// that history already records.
//
// The pattern: run version 1 of a workflow on an SdkCluster, fetch its
// history, and replay that history offline (Replayer) over a Registry where
// the same workflow type name runs version 2. Every divergence must name the
// run (workflow id, run id, type), the history event, both sides, and the
// file:line of the SDK call in version 2 that produced the command. The last
// tests do the same live: a worker whose code changes under open runs.
//
// Expected lines are captured next to the calls: `g_line_x = __LINE__ + 1;`
// on the line before the SDK call whose location the report must name. The
// assignment is workflow code writing a global, which real workflow code must
// not do; here it only records a line number and changes no command.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "engine/sdk/registry.h"
#include "engine/sdk/replayer.h"
#include "engine/testing/sdk_cluster.h"

namespace duro::sdk {
namespace {

using namespace std::chrono_literals;
using engine::testing::SdkCluster;
using engine::testing::TestClient;
using Kind = NondeterminismError::Kind;
using ::testing::HasSubstr;

constexpr const char* kThisFile = "tests/sdk/nondeterminism_test.cc";

const ActivityOptions kQuick{.start_to_close = 10s};

std::string echo(ActivityContext&, const std::string& input) { return input; }

// Every activity type the workflows below call.
Registry with_activities() {
  Registry registry;
  for (const char* type : {"a", "b", "c", "audit", "old_path", "new_path"}) registry.activity(type, echo);
  return registry;
}

// --- Running version 1 live -------------------------------------------------

struct LiveRun {
  engine::WorkflowExecution execution;
  std::string workflow_type;
  engine::WorkflowStatus status = engine::WorkflowStatus::kRunning;
  engine::History history;
};

// Starts `workflow_type` as `workflow_id` on a fresh cluster serving
// `registry` and returns its history once it closed — or, with `open_for`,
// that long after the start, while it is still open. Stops the simulation as
// soon as it has the history: virtual time is free, wall time is not.
LiveRun run_live(const Registry& registry, const std::string& workflow_id, const std::string& workflow_type,
                 std::optional<sim::Duration> open_for = std::nullopt, std::uint64_t seed = 1) {
  LiveRun live;
  live.workflow_type = workflow_type;
  bool done = false;
  SdkCluster cluster(registry, {.seed = seed});
  cluster.on_client([&](sim::Env& env, TestClient& client) {
    sim::Result<std::string> started =
        SdkCluster::start(client, env, workflow_id, workflow_type, to_payload(std::string{}));
    ASSERT_TRUE(started.ok()) << sim::to_string(started.error());
    live.execution = {workflow_id, started.value()};
    if (open_for) {
      env.sleep_for(*open_for);
    } else {
      auto closed = client.wait_result(live.execution, env.sim().deadline_after(1h));
      ASSERT_TRUE(closed.ok()) << sim::to_string(closed.error());
      ASSERT_TRUE(closed.value().closed);
      live.status = closed.value().status;
    }
    auto fetched = client.history(live.execution, env.sim().deadline_after(1min));
    ASSERT_TRUE(fetched.ok()) << sim::to_string(fetched.error());
    live.history = fetched.value();
    done = true;
    env.sim().stop();
  });
  cluster.world.run_for(2h);
  EXPECT_TRUE(done) << workflow_id << " did not finish its live run";
  return live;
}

LiveRun run_to_completion(const Registry& registry, const std::string& workflow_id, const std::string& workflow_type) {
  LiveRun live = run_live(registry, workflow_id, workflow_type);
  EXPECT_EQ(live.status, engine::WorkflowStatus::kCompleted) << workflow_id;
  return live;
}

ReplayResult replay(const Registry& registry, const LiveRun& live) {
  Replayer replayer(registry);
  return replayer.replay(live.history.events, live.execution.workflow_id, live.execution.run_id);
}

// The id of the first event of type T for which `match` holds; 0 if none.
template <typename T>
engine::EventId first_event(const engine::History& history, std::function<bool(const T&)> match = nullptr) {
  for (const engine::HistoryEvent& event : history.events) {
    const T* attributes = event.as<T>();
    if (attributes != nullptr && (!match || match(*attributes))) return event.event_id;
  }
  return 0;
}

engine::EventId scheduled(const engine::History& history, const std::string& activity_type) {
  return first_event<engine::ActivityTaskScheduled>(
      history, [&](const engine::ActivityTaskScheduled& e) { return e.activity_type == activity_type; });
}

// What a divergence must say, in its structure and in its message.
struct Expected {
  Kind kind = Kind::kMismatch;
  // The divergent history event. Unset: not checked (an extra command has
  // none; where the report places it is a bug, see the disabled test).
  std::optional<engine::EventId> event_id;
  std::string history_holds;     // A substring of the one-line description; empty: "(nothing)".
  std::string code_produced;     // Likewise.
  // The SDK call in this file the report points at: its line (captured by
  // the version 2 code as it runs, so build Expected after the replay) and
  // its kind ("activity", "child", ...). An empty `call`: no location.
  int line = 0;
  std::string call;
};

void expect_divergence(const ReplayResult& result, const LiveRun& live, const Expected& expected) {
  ASSERT_FALSE(result.ok) << "replay unexpectedly succeeded";
  ASSERT_TRUE(result.divergence.has_value()) << result.message;
  const NondeterminismError::Divergence& d = *result.divergence;
  const std::string& message = result.message;
  SCOPED_TRACE(message);
  EXPECT_EQ(d.kind, expected.kind);
  EXPECT_EQ(d.workflow_id, live.execution.workflow_id);
  EXPECT_EQ(d.run_id, live.execution.run_id);
  EXPECT_EQ(d.workflow_type, live.workflow_type);
  if (expected.event_id) {
    EXPECT_EQ(d.event_id, *expected.event_id);
  }
  ASSERT_TRUE(result.failure.has_value());
  EXPECT_EQ(result.failure->type, kNondeterminismFailureType);
  EXPECT_EQ(message, format_divergence(d));

  EXPECT_THAT(message, HasSubstr(std::string("NondeterminismError (") + nondeterminism_kind_name(expected.kind) + ")"));
  EXPECT_THAT(message, HasSubstr("workflow \"" + live.execution.workflow_id + "\""));
  EXPECT_THAT(message, HasSubstr("run \"" + live.execution.run_id + "\""));
  EXPECT_THAT(message, HasSubstr("type \"" + live.workflow_type + "\""));
  if (expected.event_id) {
    const engine::EventId event_id = *expected.event_id;
    ASSERT_GT(event_id, 0U);
    ASSERT_LE(event_id, live.history.events.size());
    EXPECT_THAT(message, ::testing::ContainsRegex("at event " + std::to_string(event_id) + "[ \n]"));
    // And which workflow task was being replayed.
    EXPECT_THAT(message, HasSubstr("in the workflow task started at event " +
                                   std::to_string(d.workflow_task_started_event_id)));
    EXPECT_GT(d.workflow_task_started_event_id, 0U);
    EXPECT_LT(d.workflow_task_started_event_id, event_id);
    // The event named is the one history holds there.
    const engine::HistoryEvent& event = live.history.events[event_id - 1];
    EXPECT_THAT(d.history_holds, HasSubstr(std::string(engine::event_type_name(event.type()))));
  }
  if (expected.history_holds.empty()) {
    EXPECT_EQ(d.history_holds, "");
    EXPECT_THAT(message, HasSubstr("history holds: (nothing)"));
  } else {
    EXPECT_THAT(d.history_holds, HasSubstr(expected.history_holds));
    EXPECT_THAT(message, HasSubstr("history holds: " + d.history_holds));
  }
  if (expected.code_produced.empty()) {
    EXPECT_EQ(d.code_produced, "");
    EXPECT_THAT(message, HasSubstr("code produced: (nothing)"));
  } else {
    EXPECT_THAT(d.code_produced, HasSubstr(expected.code_produced));
    EXPECT_THAT(message, HasSubstr("code produced: " + d.code_produced));
  }
  if (expected.call.empty()) {
    EXPECT_EQ(d.location.file, "");
    EXPECT_THAT(message, ::testing::Not(HasSubstr(kThisFile)));
  } else {
    ASSERT_GT(expected.line, 0) << "the version 2 code never reached the call";
    EXPECT_EQ(d.location.file, kThisFile);
    EXPECT_EQ(d.location.line, static_cast<std::uint32_t>(expected.line));
    EXPECT_EQ(d.location.call, expected.call);
    EXPECT_THAT(message,
                HasSubstr(std::string(kThisFile) + ":" + std::to_string(expected.line) + " (" + expected.call + ")"));
  }
}

// --- 1. A changed activity type ----------------------------------------------

int g_line_changed_type = 0;

void changed_type_v1(WorkflowContext& ctx) {
  ctx.activity<std::string>("a", std::string("one"), kQuick);
  ctx.activity<std::string>("b", std::string("two"), kQuick);
}

void changed_type_v2(WorkflowContext& ctx) {
  ctx.activity<std::string>("a", std::string("one"), kQuick);
  g_line_changed_type = __LINE__ + 1;
  ctx.activity<std::string>("c", std::string("two"), kQuick);
}

TEST(NondeterminismMismatch, ChangedActivityTypeAtTheSameStep) {
  Registry v1 = with_activities();
  v1.workflow("changed_type", changed_type_v1);
  Registry v2 = with_activities();
  v2.workflow("changed_type", changed_type_v2);

  LiveRun live = run_to_completion(v1, "changed-type-1", "changed_type");
  ASSERT_TRUE(replay(v1, live).ok) << replay(v1, live).message;  // The history itself is fine.
  ReplayResult diverged = replay(v2, live);
  expect_divergence(diverged, live,
                    {.kind = Kind::kMismatch,
                     .event_id = scheduled(live.history, "b"),
                     .history_holds = "ActivityTaskScheduled id=\"2\" type=\"b\"",
                     .code_produced = "ScheduleActivityTask id=\"2\" type=\"c\"",
                     .line = g_line_changed_type,
                     .call = "activity"});
}

// --- 2. Reordered activities -----------------------------------------------------

int g_line_reordered = 0;

void reordered_v1(WorkflowContext& ctx) {
  ctx.activity<std::string>("a", std::string("one"), kQuick);
  ctx.activity<std::string>("b", std::string("two"), kQuick);
}

void reordered_v2(WorkflowContext& ctx) {
  g_line_reordered = __LINE__ + 1;
  ctx.activity<std::string>("b", std::string("two"), kQuick);
  ctx.activity<std::string>("a", std::string("one"), kQuick);
}

TEST(NondeterminismMismatch, ReorderedActivities) {
  Registry v1 = with_activities();
  v1.workflow("reordered", reordered_v1);
  Registry v2 = with_activities();
  v2.workflow("reordered", reordered_v2);

  LiveRun live = run_to_completion(v1, "reordered-1", "reordered");
  ASSERT_TRUE(replay(v1, live).ok);
  // The first command already differs: history's "a" is at the code's "b".
  ReplayResult diverged = replay(v2, live);
  expect_divergence(diverged, live,
                    {.kind = Kind::kMismatch,
                     .event_id = scheduled(live.history, "a"),
                     .history_holds = "ActivityTaskScheduled id=\"1\" type=\"a\"",
                     .code_produced = "ScheduleActivityTask id=\"1\" type=\"b\"",
                     .line = g_line_reordered,
                     .call = "activity"});
}

// --- 3. A removed timer, under a run that is open and waiting on it --------------

int g_line_removed_timer = 0;

void removed_timer_v1(WorkflowContext& ctx) {
  ctx.activity<std::string>("a", std::string("one"), kQuick);
  ctx.sleep(24h);
  ctx.activity<std::string>("b", std::string("two"), kQuick);
}

void removed_timer_v2(WorkflowContext& ctx) {
  ctx.activity<std::string>("a", std::string("one"), kQuick);
  g_line_removed_timer = __LINE__ + 1;
  ctx.activity<std::string>("b", std::string("two"), kQuick);
}

TEST(NondeterminismMismatch, RemovedTimerUnderAnOpenRun) {
  Registry v1 = with_activities();
  v1.workflow("removed_timer", removed_timer_v1);
  Registry v2 = with_activities();
  v2.workflow("removed_timer", removed_timer_v2);

  // Still sleeping: what a deploy of v2 meets in flight.
  LiveRun live = run_live(v1, "removed-timer-1", "removed_timer", /*open_for=*/1min);
  ASSERT_EQ(live.status, engine::WorkflowStatus::kRunning);
  const engine::EventId timer = first_event<engine::TimerStarted>(live.history);
  ASSERT_NE(timer, 0U);
  ASSERT_EQ(first_event<engine::TimerFired>(live.history), 0U) << "the run should still wait on its timer";
  ASSERT_TRUE(replay(v1, live).ok);
  ReplayResult diverged = replay(v2, live);
  expect_divergence(diverged, live,
                    {.kind = Kind::kMismatch,
                     .event_id = timer,
                     .history_holds = "TimerStarted id=\"1\"",
                     .code_produced = "ScheduleActivityTask id=\"2\" type=\"b\"",
                     .line = g_line_removed_timer,
                     .call = "activity"});
}

// --- 4. An added activity before the end ------------------------------------------

int g_line_added = 0;

void added_v1(WorkflowContext& ctx) {
  ctx.activity<std::string>("a", std::string("one"), kQuick);
  ctx.activity<std::string>("b", std::string("two"), kQuick);
}

void added_v2(WorkflowContext& ctx) {
  ctx.activity<std::string>("a", std::string("one"), kQuick);
  ctx.activity<std::string>("b", std::string("two"), kQuick);
  g_line_added = __LINE__ + 1;
  ctx.activity<void>("audit", std::string("three"), kQuick);
}

TEST(NondeterminismMismatch, AddedActivityBeforeTheEnd) {
  Registry v1 = with_activities();
  v1.workflow("added", added_v1);
  Registry v2 = with_activities();
  v2.workflow("added", added_v2);

  LiveRun live = run_to_completion(v1, "added-1", "added");
  ASSERT_TRUE(replay(v1, live).ok);
  // The task that completed the workflow in history is where v2 schedules
  // "audit": a mismatch against the completion (a command event), not an
  // extra command.
  ReplayResult diverged = replay(v2, live);
  expect_divergence(diverged, live,
                    {.kind = Kind::kMismatch,
                     .event_id = first_event<engine::WorkflowExecutionCompleted>(live.history),
                     .history_holds = "WorkflowExecutionCompleted",
                     .code_produced = "ScheduleActivityTask id=\"3\" type=\"audit\"",
                     .line = g_line_added,
                     .call = "activity"});
}

// --- 5. A branch on the wall clock ---------------------------------------------------

// Stands in for the wall clock (`system_clock::now() > cutoff`): something
// workflow code reads that is not in history and differs between the live
// run and a later replay. The simulator has no wall clock to read, so the
// test flips this global between the two. ctx.now() is the deterministic
// way: it is the task's time from history.
bool g_after_cutoff = false;
int g_line_wall_clock = 0;

void wall_clock(WorkflowContext& ctx) {
  ctx.activity<std::string>("a", std::string("one"), kQuick);
  if (g_after_cutoff) {
    g_line_wall_clock = __LINE__ + 1;
    ctx.activity<std::string>("new_path", std::string("two"), kQuick);
  } else {
    ctx.activity<std::string>("old_path", std::string("two"), kQuick);
  }
}

class CutoffGuard {
 public:
  CutoffGuard() { g_after_cutoff = false; }
  ~CutoffGuard() { g_after_cutoff = false; }
  CutoffGuard(const CutoffGuard&) = delete;
  CutoffGuard& operator=(const CutoffGuard&) = delete;
};

TEST(NondeterminismMismatch, BranchOnTheWallClock) {
  CutoffGuard guard;
  Registry registry = with_activities();  // A single version of the code.
  registry.workflow("wall_clock", wall_clock);

  LiveRun live = run_to_completion(registry, "wall-clock-1", "wall_clock");
  ASSERT_NE(scheduled(live.history, "old_path"), 0U);
  ASSERT_TRUE(replay(registry, live).ok) << "before the cutoff, replay agrees";
  g_after_cutoff = true;  // Time passed between the run and its replay.
  ReplayResult diverged = replay(registry, live);
  expect_divergence(diverged, live,
                    {.kind = Kind::kMismatch,
                     .event_id = scheduled(live.history, "old_path"),
                     .history_holds = "ActivityTaskScheduled id=\"2\" type=\"old_path\"",
                     .code_produced = "ScheduleActivityTask id=\"2\" type=\"new_path\"",
                     .line = g_line_wall_clock,
                     .call = "activity"});
}

// --- 6. A changed child workflow type --------------------------------------------------

int g_line_child = 0;

void child_body(WorkflowContext&) {}

void child_parent_v1(WorkflowContext& ctx) {
  ctx.activity<std::string>("a", std::string("one"), kQuick);
  ctx.child<void>("child_v1", std::string("x"));
}

void child_parent_v2(WorkflowContext& ctx) {
  ctx.activity<std::string>("a", std::string("one"), kQuick);
  g_line_child = __LINE__ + 1;
  ctx.child<void>("child_v2", std::string("x"));
}

TEST(NondeterminismMismatch, ChangedChildWorkflowType) {
  Registry v1 = with_activities();
  v1.workflow("child_parent", child_parent_v1).workflow("child_v1", child_body);
  Registry v2 = with_activities();
  v2.workflow("child_parent", child_parent_v2).workflow("child_v2", child_body);

  LiveRun live = run_to_completion(v1, "child-parent-1", "child_parent");
  ASSERT_TRUE(replay(v1, live).ok);
  ReplayResult diverged = replay(v2, live);
  expect_divergence(diverged, live,
                    {.kind = Kind::kMismatch,
                     .event_id = first_event<engine::StartChildWorkflowExecutionInitiated>(live.history),
                     .history_holds = "StartChildWorkflowExecutionInitiated type=\"child_v1\"",
                     .code_produced = "StartChildWorkflowExecution type=\"child_v2\"",
                     .line = g_line_child,
                     .call = "child"});
}

// --- 9. A missing command -------------------------------------------------------------------

void stops_early_v1(WorkflowContext& ctx) {
  ctx.activity<std::string>("a", std::string("one"), kQuick);
  ctx.activity<std::string>("b", std::string("two"), kQuick);
}

int g_line_stops_early = 0;

void stops_early_v2(WorkflowContext& ctx) {
  g_line_stops_early = __LINE__ + 1;
  ctx.activity<std::string>("a", std::string("one"), kQuick);
  // Returns where v1 scheduled "b".
}

TEST(NondeterminismMismatch, ReturningBeforeAnActivityHistoryHolds) {
  Registry v1 = with_activities();
  v1.workflow("stops_early", stops_early_v1);
  Registry v2 = with_activities();
  v2.workflow("stops_early", stops_early_v2);

  LiveRun live = run_to_completion(v1, "stops-early-1", "stops_early");
  ASSERT_TRUE(replay(v1, live).ok);
  // Returning is a command (complete the workflow) at the position of "b":
  // a mismatch, not a missing command. No SDK call made it, so the report
  // says the function returned and points at the last SDK call before.
  ReplayResult result = replay(v2, live);
  expect_divergence(result, live,
                    {.kind = Kind::kMismatch,
                     .event_id = scheduled(live.history, "b"),
                     .history_holds = "ActivityTaskScheduled id=\"2\" type=\"b\"",
                     .code_produced = "CompleteWorkflowExecution",
                     .line = g_line_stops_early,
                     .call = "the workflow function returned, after activity"});
}

int g_line_dropped = 0;

void dropped_v1(WorkflowContext& ctx) {
  Future<std::string> a = ctx.start_activity<std::string>("a", std::string("one"), kQuick);
  Future<std::string> b = ctx.start_activity<std::string>("b", std::string("two"), kQuick);
  ctx.wait_all(a, b);
}

void dropped_v2(WorkflowContext& ctx) {
  g_line_dropped = __LINE__ + 1;
  Future<std::string> a = ctx.start_activity<std::string>("a", std::string("one"), kQuick);
  ctx.wait_all(a);
}

TEST(NondeterminismMissing, DroppedOneOfTwoParallelActivities) {
  Registry v1 = with_activities();
  v1.workflow("dropped", dropped_v1);
  Registry v2 = with_activities();
  v2.workflow("dropped", dropped_v2);

  LiveRun live = run_to_completion(v1, "dropped-1", "dropped");
  ASSERT_TRUE(replay(v1, live).ok);
  // v2 blocks after "a" in the task where history scheduled "a" and "b":
  // "b" is a command event the code did not produce. The report points at
  // the code's last command in that task.
  ReplayResult diverged = replay(v2, live);
  expect_divergence(diverged, live,
                    {.kind = Kind::kMissing,
                     .event_id = scheduled(live.history, "b"),
                     .history_holds = "ActivityTaskScheduled id=\"2\" type=\"b\"",
                     .code_produced = "",
                     .line = g_line_dropped,
                     .call = "activity"});
}

// --- An extra command ------------------------------------------------------------------------

int g_line_extra = 0;

void extra_v1(WorkflowContext& ctx) {
  ctx.activity<std::string>("a", std::string("one"), kQuick);
  ctx.activity<std::string>("b", std::string("two"), kQuick);
}

void extra_v2(WorkflowContext& ctx) {
  Future<std::string> a = ctx.start_activity<std::string>("a", std::string("one"), kQuick);
  g_line_extra = __LINE__ + 1;
  Future<void> audit = ctx.start_activity<void>("audit", std::string("three"), kQuick);
  ctx.wait_all(a, audit);
  ctx.activity<std::string>("b", std::string("two"), kQuick);
}

TEST(NondeterminismExtra, AddedParallelActivityInARecordedTask) {
  Registry v1 = with_activities();
  v1.workflow("extra", extra_v1);
  Registry v2 = with_activities();
  v2.workflow("extra", extra_v2);

  LiveRun live = run_to_completion(v1, "extra-1", "extra");
  ASSERT_TRUE(replay(v1, live).ok);
  // History's first task scheduled only "a"; v2 schedules "audit" next to
  // it, in the same task: a command with no event.
  ReplayResult result = replay(v2, live);
  expect_divergence(result, live,
                    {.kind = Kind::kExtra,
                     .event_id = std::nullopt,
                     .history_holds = "no more commands in this workflow task",
                     .code_produced = "ScheduleActivityTask id=\"2\" type=\"audit\"",
                     .line = g_line_extra,
                     .call = "activity"});
  // The task's commands on both sides place it: history's "a", then the
  // code's "a" and "audit".
  ASSERT_TRUE(result.divergence.has_value());
  ASSERT_EQ(result.divergence->history_around.size(), 1U);
  EXPECT_EQ(result.divergence->history_around[0].event_id, scheduled(live.history, "a"));
  ASSERT_EQ(result.divergence->code_around.size(), 2U);
  EXPECT_EQ(result.divergence->code_around[1].location.line, static_cast<std::uint32_t>(g_line_extra));
}

// --- 7 and 8. Patching: patched(), deprecate_patch(), then neither -----------------------

int g_line_patch_b_v1 = 0;
int g_line_patch_b_v4 = 0;

void audit_v1(WorkflowContext& ctx) {
  ctx.activity<std::string>("a", std::string("one"), kQuick);
  g_line_patch_b_v1 = __LINE__ + 1;
  ctx.activity<std::string>("b", std::string("two"), kQuick);
}

void audit_v2(WorkflowContext& ctx) {
  ctx.activity<std::string>("a", std::string("one"), kQuick);
  if (ctx.patched("add-audit")) ctx.activity<void>("audit", std::string("three"), kQuick);
  ctx.activity<std::string>("b", std::string("two"), kQuick);
}

void audit_v3(WorkflowContext& ctx) {
  ctx.activity<std::string>("a", std::string("one"), kQuick);
  ctx.deprecate_patch("add-audit");
  ctx.activity<void>("audit", std::string("three"), kQuick);
  ctx.activity<std::string>("b", std::string("two"), kQuick);
}

void audit_v4(WorkflowContext& ctx) {
  ctx.activity<std::string>("a", std::string("one"), kQuick);
  g_line_patch_b_v4 = __LINE__ + 1;
  ctx.activity<void>("audit", std::string("three"), kQuick);
  ctx.activity<std::string>("b", std::string("two"), kQuick);
}

Registry audit_registry(void (*version)(WorkflowContext&)) {
  Registry registry = with_activities();
  registry.workflow("audit_flow", version);
  return registry;
}

// The Patch marker for "add-audit" in `history`, or nullptr.
const engine::HistoryEvent* patch_marker(const engine::History& history) {
  for (const engine::HistoryEvent& event : history.events) {
    const auto* marker = event.as<engine::MarkerRecorded>();
    if (marker == nullptr || marker->marker_name != "Patch") continue;
    auto id = marker->details.find("patch_id");
    if (id != marker->details.end() && id->second == "add-audit") return &event;
  }
  return nullptr;
}

bool marker_deprecated(const engine::HistoryEvent& event) {
  const auto& details = event.as<engine::MarkerRecorded>()->details;
  auto flag = details.find("deprecated");
  return flag != details.end() && flag->second == "1";
}

TEST(NondeterminismPatch, PatchedReplaysOldHistoriesAndNewRunsRecordAMarker) {
  const Registry v1 = audit_registry(audit_v1);
  const Registry v2 = audit_registry(audit_v2);

  // A run from before the patch: v2 takes the old path on replay.
  LiveRun old_run = run_to_completion(v1, "audit-v1", "audit_flow");
  ASSERT_EQ(patch_marker(old_run.history), nullptr);
  ASSERT_EQ(scheduled(old_run.history, "audit"), 0U);
  ReplayResult old_with_v2 = replay(v2, old_run);
  EXPECT_TRUE(old_with_v2.ok) << old_with_v2.message;

  // A run of v2: the new path, with the marker before "audit".
  LiveRun new_run = run_to_completion(v2, "audit-v2", "audit_flow");
  const engine::HistoryEvent* marker = patch_marker(new_run.history);
  ASSERT_NE(marker, nullptr);
  EXPECT_FALSE(marker_deprecated(*marker));
  ASSERT_NE(scheduled(new_run.history, "audit"), 0U);
  EXPECT_LT(marker->event_id, scheduled(new_run.history, "audit"));
  ReplayResult new_with_v2 = replay(v2, new_run);
  EXPECT_TRUE(new_with_v2.ok) << new_with_v2.message;

  // Rolling back to v1 breaks the v2 run: history holds a marker v1 never
  // produces.
  ReplayResult diverged = replay(v1, new_run);
  expect_divergence(diverged, new_run,
                    {.kind = Kind::kMismatch,
                     .event_id = marker->event_id,
                     .history_holds = "MarkerRecorded name=\"Patch\" patch=\"add-audit\"",
                     .code_produced = "ScheduleActivityTask id=\"2\" type=\"b\"",
                     .line = g_line_patch_b_v1,
                     .call = "activity"});
}

TEST(NondeterminismPatch, DeprecatePatchReplaysPatchedRunsAndCanThenBeRemoved) {
  const Registry v2 = audit_registry(audit_v2);
  const Registry v3 = audit_registry(audit_v3);
  const Registry v4 = audit_registry(audit_v4);

  LiveRun v2_run = run_to_completion(v2, "audit-v2", "audit_flow");
  ASSERT_NE(patch_marker(v2_run.history), nullptr);
  ReplayResult v2_with_v3 = replay(v3, v2_run);
  EXPECT_TRUE(v2_with_v3.ok) << v2_with_v3.message;

  // v3 records the marker as deprecated.
  LiveRun v3_run = run_to_completion(v3, "audit-v3", "audit_flow");
  const engine::HistoryEvent* marker = patch_marker(v3_run.history);
  ASSERT_NE(marker, nullptr);
  EXPECT_TRUE(marker_deprecated(*marker));
  ReplayResult v3_with_v3 = replay(v3, v3_run);
  EXPECT_TRUE(v3_with_v3.ok) << v3_with_v3.message;
  // v4 has neither call: the deprecated marker is skipped.
  ReplayResult v3_with_v4 = replay(v4, v3_run);
  EXPECT_TRUE(v3_with_v4.ok) << v3_with_v4.message;

  // But a marker that is not deprecated may not be skipped: v4 is too
  // early for runs v2 started.
  ReplayResult diverged = replay(v4, v2_run);
  expect_divergence(diverged, v2_run,
                    {.kind = Kind::kMismatch,
                     .event_id = patch_marker(v2_run.history)->event_id,
                     .history_holds = "MarkerRecorded name=\"Patch\" patch=\"add-audit\"",
                     .code_produced = "ScheduleActivityTask id=\"2\" type=\"audit\"",
                     .line = g_line_patch_b_v4,
                     .call = "activity"});
}

// --- 10. Live: a worker whose code changes under open runs ------------------------------------

// Which version the worker runs: the test flips it while runs are open.
// With cache_size = 0 every workflow task replays from event 1, so the
// task after the flip replays v1's history with v2's code.
int g_version = 1;
int g_line_flip = 0;

void flip(WorkflowContext& ctx) {
  if (g_version == 1) {
    ctx.activity<std::string>("a", std::string("one"), kQuick);
  } else {
    g_line_flip = __LINE__ + 1;
    ctx.activity<std::string>("c", std::string("one"), kQuick);
  }
  ctx.sleep(2min);
  ctx.activity<std::string>("b", std::string("two"), kQuick);
}

class VersionGuard {
 public:
  VersionGuard() { g_version = 1; }
  ~VersionGuard() { g_version = 1; }
  VersionGuard(const VersionGuard&) = delete;
  VersionGuard& operator=(const VersionGuard&) = delete;
};

struct FlipOutcome {
  engine::WorkflowExecution execution;
  std::optional<engine::DescribeWorkflowExecutionReply> described;  // After the flip.
  std::optional<engine::GetWorkflowExecutionResultReply> closed;
  engine::History history;
  worker::WorkerStats stats;
  std::vector<NondeterminismError::Divergence> reported;  // By the observer.
};

// Starts `workflow_type` (the flip workflow) with v1, flips to v2 while it
// sleeps, describes it 3 minutes after its timer fired, then — when
// `roll_back` — flips back to v1 and waits for it to close.
FlipOutcome run_flip(const Registry& registry, const std::string& workflow_type, bool roll_back) {
  FlipOutcome outcome;
  worker::WorkerOptions worker_options;
  worker_options.cache_size = 0;
  auto observer = [&outcome](const worker::TaskReport& report) {
    if (report.answer.divergence) outcome.reported.push_back(*report.answer.divergence);
  };
  SdkCluster cluster(registry, {.seed = 3, .worker = worker_options, .observer = observer});
  cluster.on_client([&](sim::Env& env, TestClient& client) {
    sim::Result<std::string> started =
        SdkCluster::start(client, env, workflow_type + "-1", workflow_type, to_payload(std::string{}));
    ASSERT_TRUE(started.ok()) << sim::to_string(started.error());
    outcome.execution = {workflow_type + "-1", started.value()};
    env.sleep_for(1min);
    g_version = 2;  // The deploy: the run sleeps, its timer fires in a minute.
    env.sleep_for(4min);
    auto described = client.call<engine::DescribeWorkflowExecutionReply>(
        engine::method::kDescribeWorkflowExecution, engine::DescribeWorkflowExecutionRequest{outcome.execution},
        env.sim().deadline_after(1min));
    ASSERT_TRUE(described.ok()) << sim::to_string(described.error());
    outcome.described = described.value();
    if (roll_back) g_version = 1;
    auto closed = client.wait_result(outcome.execution, env.sim().deadline_after(roll_back ? 30min : 1min));
    ASSERT_TRUE(closed.ok()) << sim::to_string(closed.error());
    if (closed.value().closed) outcome.closed = closed.value();
    auto fetched = client.history(outcome.execution, env.sim().deadline_after(1min));
    ASSERT_TRUE(fetched.ok());
    outcome.history = fetched.value();
    worker::Worker* worker = cluster.worker(0);
    ASSERT_NE(worker, nullptr);
    outcome.stats = worker->stats();
    env.sim().stop();
  });
  cluster.world.run_for(2h);
  return outcome;
}

TEST(NondeterminismLive, TheWorkflowTaskFailsAndTheWorkflowStaysOpenUntilFixedCodeRuns) {
  VersionGuard guard;
  Registry registry = with_activities();
  registry.workflow("flip", flip);
  FlipOutcome outcome = run_flip(registry, "flip", /*roll_back=*/true);

  // After the deploy: the task fails, again and again, and the run waits.
  ASSERT_TRUE(outcome.described.has_value());
  EXPECT_EQ(outcome.described->status, engine::WorkflowStatus::kRunning);
  EXPECT_GT(outcome.stats.nondeterminism, 1U) << "the failed task is retried";
  EXPECT_EQ(outcome.stats.nondeterminism, outcome.reported.size());
  ASSERT_FALSE(outcome.reported.empty());
  const NondeterminismError::Divergence& d = outcome.reported.front();
  EXPECT_EQ(d.kind, Kind::kMismatch);
  EXPECT_EQ(d.workflow_id, "flip-1");
  EXPECT_EQ(d.run_id, outcome.execution.run_id);
  EXPECT_EQ(d.workflow_type, "flip");
  EXPECT_EQ(d.event_id, scheduled(outcome.history, "a"));
  EXPECT_THAT(d.history_holds, HasSubstr("type=\"a\""));
  EXPECT_THAT(d.code_produced, HasSubstr("type=\"c\""));
  EXPECT_EQ(d.location.file, kThisFile);
  EXPECT_EQ(d.location.line, static_cast<std::uint32_t>(g_line_flip));
  // History records the failed task, with its cause and the report.
  const engine::HistoryEvent* task_failed = nullptr;
  for (const engine::HistoryEvent& event : outcome.history.events) {
    if (event.is<engine::WorkflowTaskFailed>()) {
      task_failed = &event;
      break;
    }
  }
  ASSERT_NE(task_failed, nullptr);
  const auto* failed = task_failed->as<engine::WorkflowTaskFailed>();
  EXPECT_EQ(failed->cause, engine::WorkflowTaskFailedCause::kNondeterminism);
  EXPECT_EQ(failed->failure.type, kNondeterminismFailureType);
  EXPECT_THAT(failed->failure.message,
              HasSubstr(std::string(kThisFile) + ":" + std::to_string(g_line_flip) + " (activity)"));

  // Rolling back to code that matches history unblocks the run, and its
  // history (failed tasks included) replays with that code.
  ASSERT_TRUE(outcome.closed.has_value());
  EXPECT_EQ(outcome.closed->status, engine::WorkflowStatus::kCompleted);
  EXPECT_EQ(scheduled(outcome.history, "c"), 0U);
  EXPECT_NE(scheduled(outcome.history, "b"), 0U);
  ASSERT_EQ(g_version, 1);
  Replayer replayer(registry);
  ReplayResult replayed =
      replayer.replay(outcome.history.events, outcome.execution.workflow_id, outcome.execution.run_id);
  EXPECT_TRUE(replayed.ok) << replayed.message;
}

TEST(NondeterminismLive, FailWorkflowOnTaskFailureClosesTheWorkflowAsFailed) {
  VersionGuard guard;
  Registry registry = with_activities();
  registry.workflow("flip_fails", flip, WorkflowOptions{.fail_workflow_on_task_failure = true});
  FlipOutcome outcome = run_flip(registry, "flip_fails", /*roll_back=*/false);

  ASSERT_TRUE(outcome.described.has_value());
  EXPECT_EQ(outcome.described->status, engine::WorkflowStatus::kFailed);
  ASSERT_TRUE(outcome.closed.has_value());
  EXPECT_EQ(outcome.closed->status, engine::WorkflowStatus::kFailed);
  ASSERT_TRUE(outcome.closed->close_event.has_value());
  const auto* failed = outcome.closed->close_event->as<engine::WorkflowExecutionFailed>();
  ASSERT_NE(failed, nullptr);
  EXPECT_EQ(failed->failure.type, kNondeterminismFailureType);
  EXPECT_THAT(failed->failure.message, HasSubstr("workflow \"flip_fails-1\""));
  EXPECT_THAT(failed->failure.message, HasSubstr("run \"" + outcome.execution.run_id + "\""));
  EXPECT_THAT(failed->failure.message,
              HasSubstr(std::string(kThisFile) + ":" + std::to_string(g_line_flip) + " (activity)"));
  // The observer saw the divergence behind it; the code after the flip
  // never ran a command past it.
  ASSERT_EQ(outcome.reported.size(), 1U);
  EXPECT_EQ(outcome.reported.front().kind, Kind::kMismatch);
  EXPECT_EQ(scheduled(outcome.history, "b"), 0U);
  EXPECT_EQ(first_event<engine::WorkflowTaskFailed>(outcome.history), 0U);
}

// --- Regressions: bugs these tests found --------------------------------------------------

// Offline replay reports a divergence even for a type whose live runs fail
// the workflow on one (WorkflowOptions::fail_workflow_on_task_failure): the
// option is about what a live worker does, and `duro replay` in CI must not
// pass a change that breaks every open run of such a type.
TEST(NondeterminismReplayer, ReportsDivergenceForATypeThatFailsWorkflowsOnTaskFailure) {
  Registry v1 = with_activities();
  v1.workflow("changed_type", changed_type_v1);
  Registry v2 = with_activities();
  v2.workflow("changed_type", changed_type_v2, WorkflowOptions{.fail_workflow_on_task_failure = true});

  LiveRun live = run_to_completion(v1, "changed-type-fails-1", "changed_type");
  ReplayResult diverged = replay(v2, live);
  expect_divergence(diverged, live,
                    {.kind = Kind::kMismatch,
                     .event_id = scheduled(live.history, "b"),
                     .history_holds = "ActivityTaskScheduled id=\"2\" type=\"b\"",
                     .code_produced = "ScheduleActivityTask id=\"2\" type=\"c\"",
                     .line = g_line_changed_type,
                     .call = "activity"});
}

// An extra command in the middle of a history is placed: at the event
// after the task's last command event, not "past its last event".
TEST(NondeterminismExtra, TheHeadlineSaysWhereInHistoryTheExtraCommandIs) {
  Registry v1 = with_activities();
  v1.workflow("extra", extra_v1);
  Registry v2 = with_activities();
  v2.workflow("extra", extra_v2);

  LiveRun live = run_to_completion(v1, "extra-1", "extra");
  ReplayResult result = replay(v2, live);
  ASSERT_TRUE(result.divergence.has_value()) << result.message;
  ASSERT_EQ(result.divergence->kind, Kind::kExtra);
  const engine::EventId last_command = scheduled(live.history, "a");
  ASSERT_LT(last_command, live.history.events.size());
  EXPECT_THAT(result.divergence->event_id, ::testing::AnyOf(last_command, last_command + 1))
      << "the history does not end there";
  const std::string headline = result.message.substr(0, result.message.find('\n'));
  EXPECT_THAT(headline, ::testing::Not(HasSubstr("past its last event")));
  EXPECT_THAT(headline, HasSubstr("event " + std::to_string(result.divergence->event_id)));
}

// A worker counts nondeterminism that failed the workflow (the option) as
// well as nondeterminism that failed the task.
TEST(NondeterminismLive, TheWorkerCountsNondeterminismThatFailedTheWorkflow) {
  VersionGuard guard;
  Registry registry = with_activities();
  registry.workflow("flip_fails", flip, WorkflowOptions{.fail_workflow_on_task_failure = true});
  FlipOutcome outcome = run_flip(registry, "flip_fails", /*roll_back=*/false);
  ASSERT_TRUE(outcome.closed.has_value());
  ASSERT_EQ(outcome.closed->status, engine::WorkflowStatus::kFailed);
  ASSERT_EQ(outcome.reported.size(), 1U);
  EXPECT_EQ(outcome.stats.nondeterminism, 1U);
}

}  // namespace
}  // namespace duro::sdk
