// The engine end to end, without the SDK: a store, three servers, a raw
// worker and a client, in one simulated world.
#include <gtest/gtest.h>

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "engine/history/history_validator.h"
#include "engine/server/frontend.h"
#include "engine/server/server_node.h"
#include "engine/store/store_service.h"
#include "engine/testing/raw_worker.h"
#include "engine/testing/sequential_decider.h"
#include "engine/testing/test_client.h"
#include "sim/world.h"

namespace duro::engine {
namespace {

using namespace std::chrono_literals;
using testing::ActivityOutcome;
using testing::Decider;
using testing::RawWorker;
using testing::RawWorkerOptions;
using testing::TestClient;

struct Cluster {
  explicit Cluster(std::uint64_t seed, int server_count = 3, std::function<void(ServerOptions&)> adjust = {})
      : world({.seed = seed}) {
    store = world.add_node("store", [](sim::Env& env) { return store::boot_store(env); });
    ServerOptions options;
    options.store_address = world.env(store).address();
    options.shard_count = 8;
    if (adjust) adjust(options);
    for (int i = 1; i <= server_count; i++) {
      servers.push_back(world.add_node("server-" + std::to_string(i), server_boot(options)));
      addresses.push_back(world.env(servers.back()).address());
    }
    RawWorkerOptions worker_options;
    worker_options.servers = addresses;
    worker = world.add_node("worker", [worker_options](sim::Env& env) -> std::unique_ptr<sim::Process> {
      std::map<std::string, Decider> deciders{{"three_steps", testing::sequential_activities(3, "echo", 10s)}};
      std::map<std::string, testing::ActivityFn> activities{
          {"echo", [](const PollActivityTaskQueueReply& task, sim::Env&) { return ActivityOutcome{"<" + task.input + ">", {}}; }}};
      return std::make_unique<RawWorker>(env, worker_options, deciders, activities);
    });
    client = world.add_node("client", [](sim::Env&) -> std::unique_ptr<sim::Process> { return nullptr; });
  }

  sim::World world;
  sim::NodeId store;
  std::vector<sim::NodeId> servers;
  std::vector<sim::Address> addresses;
  sim::NodeId worker;
  sim::NodeId client;
};

// The start of workflow "wf-<i>", of type three_steps, on "default".
StartWorkflowExecutionRequest three_steps_start(int i) {
  StartWorkflowExecutionRequest start;
  start.request_id = "start-" + std::to_string(i);
  start.workflow_id = "wf-" + std::to_string(i);
  start.workflow_type = "three_steps";
  start.task_queue = TaskQueue{"default", TaskQueueKind::kNormal};
  return start;
}

TEST(EngineEndToEnd, ThreeActivityWorkflowsCompleteWithWellFormedHistories) {
  Cluster cluster(7);
  constexpr int kWorkflows = 20;
  int completed = 0;
  std::vector<std::string> problems;
  cluster.world.env(cluster.client).spawn("client", [&] {
    sim::Env& env = cluster.world.env(cluster.client);
    TestClient client(env, cluster.addresses, 7500);
    env.sleep_for(3s);  // Let the servers take their shards.
    for (int i = 0; i < kWorkflows; i++) {
      StartWorkflowExecutionRequest start = three_steps_start(i);
      sim::Result<StartWorkflowExecutionReply> started = client.start(start, env.sim().deadline_after(60s));
      if (!started.ok()) {
        problems.push_back("start " + start.workflow_id + ": " + sim::to_string(started.error()));
        continue;
      }
      const WorkflowExecution execution{start.workflow_id, started.value().run_id};
      sim::Result<GetWorkflowExecutionResultReply> result = client.wait_result(execution, env.sim().deadline_after(120s));
      if (!result.ok()) {
        problems.push_back("result " + start.workflow_id + ": " + sim::to_string(result.error()));
        continue;
      }
      const auto* done = result.value().close_event->as<WorkflowExecutionCompleted>();
      if (done == nullptr || done->result != "<0><1><2>") {
        problems.push_back(start.workflow_id + " closed as " + std::string(workflow_status_name(result.value().status)));
        continue;
      }
      sim::Result<History> history = client.history(execution, env.sim().deadline_after(60s));
      if (!history.ok()) {
        problems.push_back("history " + start.workflow_id + ": " + sim::to_string(history.error()));
        continue;
      }
      for (const std::string& violation : validate_history(history.value())) {
        problems.push_back(start.workflow_id + ": " + violation);
      }
      completed++;
    }
  });
  cluster.world.run_for(std::chrono::minutes{30});
  for (const std::string& problem : problems) ADD_FAILURE() << problem;
  EXPECT_EQ(completed, kWorkflows);
}

// Starting a workflow id the shard's owner has no run of creates the run
// on the condition that the id has no current record (one store call, not
// a read and then a write). When the id has one after all (here: the
// owner restarted and forgot), the start falls back to reading it, and
// Temporal's rules hold either way: a running id refuses a second start, a
// retried start gets its own run back, and a closed id follows the reuse
// policy.
TEST(EngineEndToEnd, ANewIdStartsInOneStoreCallAndAKnownIdKeepsTheStartRules) {
  Cluster cluster(9, /*server_count=*/1);  // One server: it owns every shard.
  const sim::NodeId server = cluster.servers.front();
  auto shard_stats = [&] {
    ShardStats total;
    auto* node = dynamic_cast<ServerNode*>(cluster.world.sim().process(server));
    if (node == nullptr) return total;
    for (std::uint32_t shard = 0; shard < 8; shard++) {
      if (auto owned = node->shards().shard(shard)) {
        total.brand_new_starts += owned->stats().brand_new_starts;
        total.start_conflicts += owned->stats().start_conflicts;
      }
    }
    return total;
  };
  std::vector<std::string> problems;
  bool done = false;
  ShardStats before_restart;
  ShardStats after_restart;
  sim::Env& env = cluster.world.env(cluster.client);
  env.spawn("client", [&] {
    TestClient client(env, cluster.addresses, 7500);
    env.sleep_for(5s);  // The server takes every shard.
    auto start = [&](const std::string& request_id, WorkflowIdReusePolicy policy) {
      StartWorkflowExecutionRequest request;
      request.request_id = request_id;
      request.workflow_id = "once";
      request.workflow_type = "three_steps";
      request.task_queue = TaskQueue{"default", TaskQueueKind::kNormal};
      request.workflow_id_reuse_policy = policy;
      return client.start(request, env.sim().deadline_after(60s));
    };
    sim::Result<StartWorkflowExecutionReply> first = start("r1", WorkflowIdReusePolicy::kAllowDuplicate);
    if (!first.ok()) {
      problems.push_back("first start: " + sim::to_string(first.error()));
      return;
    }
    before_restart = shard_stats();
    // The owner restarts and forgets every run it knew.
    cluster.world.sim().crash(server);
    cluster.world.sim().restart(server);
    env.sleep_for(5s);
    sim::Result<StartWorkflowExecutionReply> second = start("r2", WorkflowIdReusePolicy::kAllowDuplicate);
    if (second.ok() || second.error().code != sim::ErrorCode::kAlreadyExists) {
      problems.push_back("a second start of a running id: " +
                         (second.ok() ? "started " + second.value().run_id : sim::to_string(second.error())));
    }
    after_restart = shard_stats();
    sim::Result<StartWorkflowExecutionReply> retried = start("r1", WorkflowIdReusePolicy::kAllowDuplicate);
    if (!retried.ok() || retried.value().run_id != first.value().run_id) {
      problems.push_back("a retried start did not get its run back");
    }
    sim::Result<GetWorkflowExecutionResultReply> result =
        client.wait_result({"once", first.value().run_id}, env.sim().deadline_after(120s));
    if (!result.ok() || result.value().status != WorkflowStatus::kCompleted) {
      problems.push_back("the run did not complete: " + (result.ok() ? std::string(workflow_status_name(result.value().status))
                                                                     : sim::to_string(result.error())));
    }
    sim::Result<StartWorkflowExecutionReply> rejected = start("r3", WorkflowIdReusePolicy::kRejectDuplicate);
    if (rejected.ok() || rejected.error().code != sim::ErrorCode::kAlreadyExists) {
      problems.push_back("kRejectDuplicate started a closed id again");
    }
    sim::Result<StartWorkflowExecutionReply> again = start("r4", WorkflowIdReusePolicy::kAllowDuplicate);
    if (!again.ok() || again.value().run_id == first.value().run_id) {
      problems.push_back("kAllowDuplicate did not start a new run of a closed id");
    }
    done = true;
  });
  cluster.world.run_for(std::chrono::minutes{10});
  for (const std::string& problem : problems) ADD_FAILURE() << problem;
  EXPECT_TRUE(done);
  // The first start read no current record; after the restart, the owner
  // tried the same, found the running record, and fell back.
  EXPECT_EQ(before_restart.brand_new_starts, 1U);
  EXPECT_EQ(before_restart.start_conflicts, 0U);
  EXPECT_EQ(after_restart.brand_new_starts, 0U);
  EXPECT_EQ(after_restart.start_conflicts, 1U);
}

// A shard caches at most cached_runs_max runs. To make room it drops a
// closed run first, then the open run used least recently (not, as once,
// the smallest key). Runs on a queue nobody polls stay open; signals load
// them, and a miss shows in the shard's stats.
TEST(EngineEndToEnd, AShardEvictsClosedRunsFirstThenTheLeastRecentlyUsed) {
  Cluster cluster(21, /*server_count=*/1, [](ServerOptions& options) {
    options.shard_count = 1;
    options.cached_runs_max = 2;
  });
  const sim::NodeId server = cluster.servers.front();
  auto misses = [&]() -> std::uint64_t {
    auto* node = dynamic_cast<ServerNode*>(cluster.world.sim().process(server));
    auto owned = node != nullptr ? node->shards().shard(0) : nullptr;
    return owned != nullptr ? owned->stats().cache_misses : 0;
  };
  std::vector<std::string> problems;
  std::vector<std::uint64_t> missed;  // Misses after each step.
  bool done = false;
  sim::Env& env = cluster.world.env(cluster.client);
  env.spawn("client", [&] {
    TestClient client(env, cluster.addresses, 7500);
    env.sleep_for(5s);  // The server takes the shard.
    std::map<std::string, std::string> runs;
    auto start = [&](const std::string& id, const std::string& queue) {
      StartWorkflowExecutionRequest request;
      request.request_id = "start-" + id;
      request.workflow_id = id;
      request.workflow_type = "three_steps";
      request.task_queue = TaskQueue{queue, TaskQueueKind::kNormal};
      sim::Result<StartWorkflowExecutionReply> started = client.start(request, env.sim().deadline_after(60s));
      if (!started.ok()) problems.push_back("start " + id + ": " + sim::to_string(started.error()));
      if (started.ok()) runs[id] = started.value().run_id;
    };
    auto signal = [&](const std::string& id) {
      SignalWorkflowExecutionRequest request;
      request.request_id = "signal-" + id + "-" + std::to_string(missed.size());
      request.execution = {id, runs[id]};
      request.signal_name = "poke";
      if (sim::Result<Ack> sent = client.signal(request, env.sim().deadline_after(60s)); !sent.ok()) {
        problems.push_back("signal " + id + ": " + sim::to_string(sent.error()));
      }
      missed.push_back(misses());
    };
    // "a" stays open (nobody polls its queue); "done" completes and is
    // then the most recently used run, by its result.
    start("a", "nobody");
    start("done", "default");
    sim::Result<GetWorkflowExecutionResultReply> result =
        client.wait_result({"done", runs["done"]}, env.sim().deadline_after(120s));
    if (!result.ok() || result.value().status != WorkflowStatus::kCompleted) problems.push_back("done did not complete");
    missed.push_back(misses());
    start("b", "nobody");  // Room for b: the closed run goes, not a.
    signal("a");           // [0] a was kept: no miss.
    start("c", "nobody");  // Room for c: b, used before a.
    signal("a");           // [1] kept: no miss.
    signal("b");           // [2] b was dropped: a miss. It evicts c, used before a.
    signal("a");           // [3] kept: no miss.
    signal("c");           // [4] c was dropped: a miss.
    done = true;
  });
  cluster.world.run_for(std::chrono::minutes{10});
  for (const std::string& problem : problems) ADD_FAILURE() << problem;
  ASSERT_TRUE(done);
  ASSERT_EQ(missed.size(), 6U);
  const std::uint64_t base = missed[0];
  EXPECT_EQ(missed[1] - base, 0U) << "the open run went before the closed one";
  EXPECT_EQ(missed[2] - base, 0U) << "the most recently used open run went";
  EXPECT_EQ(missed[3] - base, 1U) << "the least recently used open run was kept";
  EXPECT_EQ(missed[4] - base, 1U);
  EXPECT_EQ(missed[5] - base, 2U);
}

// Most timers come due after what they timed is done (the task started,
// the activity completed). The shard tells so from the cached run and acks
// them at once, without a fiber; the store then forgets every timer task,
// and nothing timed out that should not have.
TEST(EngineEndToEnd, TimersOfFinishedWorkAreAckedFromTheCachedRun) {
  Cluster cluster(23, /*server_count=*/1, [](ServerOptions& options) { options.shard_count = 1; });
  constexpr int kWorkflows = 5;
  int completed = 0;
  std::vector<std::string> problems;
  sim::Env& env = cluster.world.env(cluster.client);
  env.spawn("client", [&] {
    TestClient client(env, cluster.addresses, 7500);
    env.sleep_for(5s);  // The server takes the shard.
    for (int i = 0; i < kWorkflows; i++) {
      StartWorkflowExecutionRequest start = three_steps_start(i);
      start.workflow_run_timeout = 2min;
      sim::Result<StartWorkflowExecutionReply> started = client.start(start, env.sim().deadline_after(60s));
      if (!started.ok()) {
        problems.push_back("start " + start.workflow_id + ": " + sim::to_string(started.error()));
        continue;
      }
      sim::Result<GetWorkflowExecutionResultReply> result =
          client.wait_result({start.workflow_id, started.value().run_id}, env.sim().deadline_after(60s));
      if (result.ok() && result.value().status == WorkflowStatus::kCompleted) completed++;
    }
  });
  // Past every timeout: the run timeouts (2 min) are the last to come due.
  cluster.world.run_for(10min);
  for (const std::string& problem : problems) ADD_FAILURE() << problem;
  ASSERT_EQ(completed, kWorkflows);
  auto* node = dynamic_cast<ServerNode*>(cluster.world.sim().process(cluster.servers.front()));
  ASSERT_NE(node, nullptr);
  const std::shared_ptr<Shard> shard = node->shards().shard(0);
  ASSERT_NE(shard, nullptr);
  const ShardStats& stats = shard->stats();
  // Each workflow has at least eight: a timeout for each of its four
  // workflow tasks and three activities, and the run timeout.
  EXPECT_GE(stats.stale_timers_cached, 8U * kWorkflows);
  EXPECT_EQ(stats.stale_timers_cached, stats.stale_timers) << "every run was cached";
  EXPECT_EQ(stats.timer_tasks_done, stats.stale_timers) << "no timer acted";
  auto* store = dynamic_cast<store::StoreService*>(cluster.world.sim().process(cluster.store));
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->state().timer_task_count(), 0U) << "acked timers are deleted";
}

// A worker's retry of an activity completion whose reply was lost finds
// the activity gone; the workflow task the first try started for it
// eagerly comes back with the retry, as a retried poll's task does, rather
// than waiting out its start-to-close timeout. A completion that asks with
// another request id gets nothing.
TEST(EngineEndToEnd, ARetriedCompletionGetsItsEagerWorkflowTaskAgain) {
  Cluster cluster(13, /*server_count=*/1);
  const TaskQueue queue{"by-hand"};  // No worker polls it: the test is the worker.
  const TaskQueue sticky{"by-hand/test/sticky/1", TaskQueueKind::kSticky};
  std::vector<std::string> problems;
  std::optional<RespondActivityTaskCompletedReply> first;
  std::optional<sim::Result<RespondActivityTaskCompletedReply>> retry;
  std::optional<sim::Result<RespondActivityTaskCompletedReply>> other;
  sim::Env& env = cluster.world.env(cluster.client);
  env.spawn("client", [&] {
    TestClient client(env, cluster.addresses, 7500);
    env.sleep_for(5s);  // The server takes every shard.
    const sim::TimePoint deadline = env.sim().deadline_after(1min);
    StartWorkflowExecutionRequest start;
    start.request_id = "start-1";
    start.workflow_id = "eager-retry";
    start.workflow_type = "by_hand";
    start.task_queue = queue;
    if (!client.start(start, deadline).ok()) return problems.push_back("not started");
    auto task = client.call<PollWorkflowTaskQueueReply>(
        method::kPollWorkflowTaskQueue, PollWorkflowTaskQueueRequest{queue, "test", "poll-1"}, deadline);
    if (!task.ok() || !task.value().has_task) return problems.push_back("no first workflow task");
    ScheduleActivityTask activity;
    activity.activity_id = "a";
    activity.activity_type = "step";
    activity.start_to_close_timeout = 30s;
    RespondWorkflowTaskCompletedRequest completed;
    completed.task_token = task.value().task_token;
    completed.commands = {activity};
    completed.identity = "test";
    completed.sticky_task_queue = sticky;
    completed.sticky_schedule_to_start_timeout = 5s;
    completed.eager_activity_ids = {"a"};
    auto done = client.call<RespondWorkflowTaskCompletedReply>(method::kRespondWorkflowTaskCompleted, completed, deadline);
    if (!done.ok() || done.value().activity_tasks.size() != 1) return problems.push_back("no eager activity");
    const RespondActivityTaskCompletedRequest result{done.value().activity_tasks.front().task_token, "r", "test", sticky,
                                                     "eager-1"};
    auto answered = client.call<RespondActivityTaskCompletedReply>(method::kRespondActivityTaskCompleted, result, deadline);
    if (!answered.ok()) return problems.push_back("completion failed: " + answered.error().message);
    first = answered.value();
    retry = client.call<RespondActivityTaskCompletedReply>(method::kRespondActivityTaskCompleted, result, deadline);
    RespondActivityTaskCompletedRequest stranger = result;
    stranger.eager_poll_request_id = "eager-2";
    other = client.call<RespondActivityTaskCompletedReply>(method::kRespondActivityTaskCompleted, stranger, deadline);
  });
  cluster.world.run_for(2min);
  for (const std::string& problem : problems) ADD_FAILURE() << problem;
  ASSERT_TRUE(first.has_value() && retry.has_value() && other.has_value());
  ASSERT_TRUE(first->workflow_task.has_task) << "the completion started no eager workflow task";
  ASSERT_TRUE(retry->ok()) << retry->error().message;
  ASSERT_TRUE(retry->value().workflow_task.has_task);
  EXPECT_EQ(retry->value().workflow_task.task_token, first->workflow_task.task_token);
  EXPECT_EQ(retry->value().workflow_task.started_event_id, first->workflow_task.started_event_id);
  ASSERT_FALSE(other->ok());
  EXPECT_EQ(other->error().code, sim::ErrorCode::kNotFound);
}

// The frontend forwards a worker's response by the task token it leads
// with, reading nothing else: every such request must lead with it.
TEST(Frontend, EveryResponseForwardedByTokenLeadsWithItsTaskToken) {
  const std::string token = sim::encode(TaskToken{TaskToken::Kind::kActivity, {"wf", "run"}, 5, 0, 1, {}, {}});
  EXPECT_EQ(leading_task_token(sim::encode(RespondWorkflowTaskCompletedRequest{token, {}, "w", {}, {}, {}, {}, {}})), token);
  EXPECT_EQ(leading_task_token(sim::encode(RespondWorkflowTaskFailedRequest{token, {}, {}, "w"})), token);
  EXPECT_EQ(leading_task_token(sim::encode(RecordActivityTaskHeartbeatRequest{token, "d", "w"})), token);
  EXPECT_EQ(leading_task_token(sim::encode(RespondActivityTaskCompletedRequest{token, "r", "w", {}, {}})), token);
  EXPECT_EQ(leading_task_token(sim::encode(RespondActivityTaskFailedRequest{token, {}, "w", {}})), token);
  EXPECT_EQ(leading_task_token(sim::encode(RespondActivityTaskCanceledRequest{token, {}, "w"})), token);
  EXPECT_EQ(leading_task_token(""), "");
  EXPECT_EQ(leading_task_token(std::string(1, '\x7f')), "") << "a length past the end";
}

// What the frontend forwards unread, history still checks: a bad token is
// refused at the frontend, a request whose rest does not decode by
// history, and neither reaches a run.
TEST(Frontend, AForwardedResponseThatDoesNotDecodeIsRefused) {
  Cluster cluster(5, /*server_count=*/1);
  std::optional<sim::Result<std::string>> bad_token;
  std::optional<sim::Result<std::string>> bad_rest;
  sim::Env& env = cluster.world.env(cluster.client);
  env.spawn("client", [&] {
    TestClient client(env, cluster.addresses, 7500);
    env.sleep_for(5s);  // The server takes every shard.
    bad_token = client.call_raw(method::kRespondActivityTaskCompleted,
                                sim::encode(RespondActivityTaskCompletedRequest{"not a token", "r", "w", {}, {}}),
                                env.sim().deadline_after(30s));
    std::string truncated = sim::encode(RespondActivityTaskCompletedRequest{
        sim::encode(TaskToken{TaskToken::Kind::kActivity, {"wf", "run"}, 5, 0, 1, {}, {}}), "result", "w", {}, {}});
    truncated.resize(truncated.size() - 3);
    bad_rest = client.call_raw(method::kRespondActivityTaskCompleted, truncated, env.sim().deadline_after(30s));
  });
  cluster.world.run_for(2min);
  ASSERT_TRUE(bad_token.has_value() && bad_rest.has_value());
  ASSERT_FALSE(bad_token->ok());
  EXPECT_EQ(bad_token->error().code, sim::ErrorCode::kInvalidArgument) << bad_token->error().message;
  ASSERT_FALSE(bad_rest->ok());
  EXPECT_EQ(bad_rest->error().code, sim::ErrorCode::kDecode) << bad_rest->error().message;
}

}  // namespace
}  // namespace duro::engine
