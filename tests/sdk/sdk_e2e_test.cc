// The SDK end to end: workflows written as ordinary code, run by workers on
// a simulated cluster, and their histories replayed by a fresh replayer.
#include <gtest/gtest.h>

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "engine/history/history_validator.h"
#include "engine/sdk/registry.h"
#include "engine/server/server_node.h"
#include "engine/sdk/replayer.h"
#include "engine/store/store_service.h"
#include "engine/testing/sdk_cluster.h"

namespace duro::sdk {

struct ProvisionRequest {
  std::string region;
  std::string name;
};
DURO_CODEC_FIELDS(ProvisionRequest, region, name);

struct Approval {
  std::string by;
};
DURO_CODEC_FIELDS(Approval, by);

struct ProvisionResult {
  std::string cell;
  std::string approved_by;
  bool validated = false;
};
DURO_CODEC_FIELDS(ProvisionResult, cell, approved_by, validated);

struct FanoutResult {
  std::vector<std::int64_t> squares;
  std::int64_t child_total = 0;
  std::uint64_t token = 0;
  std::vector<std::string> notes;
};
DURO_CODEC_FIELDS(FanoutResult, squares, child_total, token, notes);

namespace {

using namespace std::chrono_literals;
using engine::testing::SdkCluster;
using engine::testing::TestClient;

// The example, nearly verbatim.
ProvisionResult provision(WorkflowContext& ctx, const ProvisionRequest& req) {
  auto cell = ctx.activity<std::string>("pick_cell", req.region,
                                        {.start_to_close = 30s, .retry = {.maximum_attempts = 5}});
  ctx.sleep(std::chrono::hours{1});
  auto approved = ctx.wait_signal<Approval>("approve", /*timeout=*/std::chrono::hours{48});
  bool validated = false;
  if (ctx.patched("validate-endpoints")) {
    ctx.activity<void>("validate", cell, {.start_to_close = 10s});
    validated = true;
  }
  return {cell, approved ? approved->by : "nobody", validated};
}

std::string pick_cell(ActivityContext& ctx, const std::string& region) {
  // Fails its first attempt: the retry policy brings it back.
  if (ctx.attempt() == 1) throw ApplicationError("CellsBusy", "try again");
  return region + "-cell-" + std::to_string(ctx.attempt());
}

void validate(ActivityContext&, const std::string& cell) {
  if (cell.empty()) throw ApplicationError("BadCell", "empty", {}, /*non_retryable=*/true);
}


// Fan-out and fan-in, a child, a side effect, a query and a signal handler.
std::int64_t square(ActivityContext&, const std::int64_t& n) { return n * n; }

std::int64_t sum_child(WorkflowContext& ctx, const std::vector<std::int64_t>& values) {
  std::int64_t total = 0;
  for (std::int64_t value : values) total += value;
  ctx.sleep(10min);
  return total;
}

FanoutResult fanout(WorkflowContext& ctx, const std::int64_t& count) {
  FanoutResult result;
  std::string stage = "starting";
  ctx.on_query<std::string>("stage", [&] { return stage; });
  ctx.on_signal<std::string>("note", [&](const std::string& note) { result.notes.push_back(note); });
  std::vector<Future<std::int64_t>> squares;
  for (std::int64_t i = 1; i <= count; i++) {
    squares.push_back(ctx.start_activity<std::int64_t>("square", i, {.start_to_close = 10s}));
  }
  stage = "squaring";
  ctx.wait_all(squares);
  for (const Future<std::int64_t>& square : squares) result.squares.push_back(square.get());
  stage = "summing";
  result.child_total = ctx.child<std::int64_t>("sum_child", result.squares);
  result.token = ctx.side_effect([] { return std::uint64_t{42}; });
  stage = "waiting for notes";
  ctx.await([&] { return result.notes.size() >= 2; });
  stage = "done";
  return result;
}

Registry make_registry() {
  Registry registry;
  registry.workflow("provision", provision)
      .workflow("fanout", fanout)
      .workflow("sum_child", sum_child)
      .activity("pick_cell", pick_cell)
      .activity("validate", validate)
      .activity("square", square);
  return registry;
}

// What the workers answered, by (run id, started event id).
struct Observed {
  std::map<std::pair<std::string, engine::EventId>, std::vector<engine::Command>> commands;
  int failed_tasks = 0;
};

worker::TaskObserver observe(Observed& observed) {
  return [&observed](const worker::TaskReport& report) {
    if (report.answer.failed) {
      observed.failed_tasks++;
      return;
    }
    observed.commands[{report.execution.run_id, report.started_event_id}] = report.answer.commands;
  };
}

// Replays `history` in a fresh replayer and checks that every recorded task
// yields the commands the live worker sent for it.
void expect_replays_identically(const Registry& registry, const engine::History& history,
                                const engine::WorkflowExecution& execution, const Observed& observed) {
  const std::string& run_id = execution.run_id;
  Replayer replayer(registry);
  ReplayResult replay = replayer.replay(history.events, execution.workflow_id, run_id);
  ASSERT_TRUE(replay.ok) << replay.message;
  ASSERT_FALSE(replay.commands_by_task.empty());
  for (const TaskCommands& task : replay.commands_by_task) {
    auto live = observed.commands.find({run_id, task.started_event_id});
    ASSERT_NE(live, observed.commands.end()) << "no live answer for the task started at " << task.started_event_id;
    EXPECT_EQ(live->second, task.commands) << "task started at " << task.started_event_id;
  }
}

void run_provision(std::size_t cache_size) {
  Registry registry = make_registry();
  Observed observed;
  worker::WorkerOptions worker_options;
  worker_options.cache_size = cache_size;
  SdkCluster cluster(registry, {.seed = 11, .worker = worker_options, .observer = observe(observed)});
  std::optional<ProvisionResult> result;
  engine::History history;
  std::string run_id;
  cluster.on_client([&](sim::Env& env, TestClient& client) {
    sim::Result<std::string> started =
        SdkCluster::start(client, env, "provision-1", "provision", to_payload(ProvisionRequest{"eu", "acme"}));
    ASSERT_TRUE(started.ok()) << sim::to_string(started.error());
    run_id = started.value();
    env.sleep_for(2h);
    engine::SignalWorkflowExecutionRequest signal{"approve-1", {"provision-1", ""}, "approve",
                                                  to_payload(Approval{"alice"}), "client"};
    ASSERT_TRUE(client.signal(signal, env.sim().deadline_after(1min)).ok());
    auto closed = client.wait_result({"provision-1", run_id}, env.sim().deadline_after(1h));
    ASSERT_TRUE(closed.ok());
    ASSERT_EQ(closed.value().status, engine::WorkflowStatus::kCompleted);
    result = from_payload<ProvisionResult>(closed.value().close_event->as<engine::WorkflowExecutionCompleted>()->result);
    auto fetched = client.history({"provision-1", run_id}, env.sim().deadline_after(1min));
    ASSERT_TRUE(fetched.ok());
    history = fetched.value();
    env.sim().stop();
  });
  cluster.world.run_for(6h);
  ASSERT_TRUE(result.has_value());
  EXPECT_EQ(result->cell, "eu-cell-2");
  EXPECT_EQ(result->approved_by, "alice");
  EXPECT_TRUE(result->validated);
  EXPECT_TRUE(engine::validate_history(history).empty());
  expect_replays_identically(registry, history, {"provision-1", run_id}, observed);
  EXPECT_EQ(observed.failed_tasks, 0);
  worker::Worker* worker = cluster.worker(0);
  ASSERT_NE(worker, nullptr);
  if (cache_size == 0) {
    EXPECT_EQ(worker->stats().cache_hits, 0U);
  } else {
    EXPECT_GT(worker->stats().cache_hits, 0U);
  }
}

TEST(SdkEndToEnd, TheExampleWorkflowCompletesAndItsHistoryReplays) { run_provision(10'000); }

TEST(SdkEndToEnd, WithoutACacheEveryTaskReplaysAndTheOutcomeIsTheSame) { run_provision(0); }

TEST(SdkEndToEnd, FanOutChildSideEffectQueryAndSignalHandler) {
  Registry registry = make_registry();
  Observed observed;
  SdkCluster cluster(registry, {.seed = 5, .observer = observe(observed)});
  std::optional<FanoutResult> result;
  std::vector<std::string> stages;
  engine::History history;
  std::string run_id;
  cluster.on_client([&](sim::Env& env, TestClient& client) {
    sim::Result<std::string> started = SdkCluster::start(client, env, "fanout-1", "fanout", to_payload(std::int64_t{4}));
    ASSERT_TRUE(started.ok());
    run_id = started.value();
    env.sleep_for(20min);
    auto query = client.call<engine::QueryWorkflowReply>(
        engine::method::kQueryWorkflow, engine::QueryWorkflowRequest{{"fanout-1", ""}, "stage", {}},
        env.sim().deadline_after(1min));
    ASSERT_TRUE(query.ok()) << sim::to_string(query.error());
    ASSERT_FALSE(query.value().failure.has_value()) << query.value().failure->message;
    stages.push_back(from_payload<std::string>(query.value().result));
    for (const char* note : {"first", "second"}) {
      engine::SignalWorkflowExecutionRequest signal{std::string("note-") + note, {"fanout-1", ""}, "note",
                                                    to_payload(std::string(note)), "client"};
      ASSERT_TRUE(client.signal(signal, env.sim().deadline_after(1min)).ok());
    }
    auto closed = client.wait_result({"fanout-1", run_id}, env.sim().deadline_after(1h));
    ASSERT_TRUE(closed.ok());
    ASSERT_EQ(closed.value().status, engine::WorkflowStatus::kCompleted);
    result = from_payload<FanoutResult>(closed.value().close_event->as<engine::WorkflowExecutionCompleted>()->result);
    auto fetched = client.history({"fanout-1", run_id}, env.sim().deadline_after(1min));
    ASSERT_TRUE(fetched.ok());
    history = fetched.value();
    env.sim().stop();
  });
  cluster.world.run_for(3h);
  ASSERT_TRUE(result.has_value());
  EXPECT_EQ(result->squares, (std::vector<std::int64_t>{1, 4, 9, 16}));
  EXPECT_EQ(result->child_total, 30);
  EXPECT_EQ(result->token, 42U);
  EXPECT_EQ(result->notes, (std::vector<std::string>{"first", "second"}));
  EXPECT_EQ(stages, (std::vector<std::string>{"waiting for notes"}));
  EXPECT_TRUE(engine::validate_history(history).empty());
  expect_replays_identically(registry, history, {"fanout-1", run_id}, observed);
}

// A burst of starts beyond the store's bound on concurrent requests (half
// as many again):
// the store refuses the excess (kOverloaded, before running them) and the
// shards send those writes again. Nobody reloads a shard for it — a refusal
// at the bound is not an unknown outcome — and every workflow completes.
std::int64_t burst_step(WorkflowContext& ctx, const std::int64_t& x) {
  return ctx.activity<std::int64_t>("burst_add", x, ActivityOptions{.start_to_close = std::chrono::minutes{1}});
}

TEST(SdkEndToEnd, ABurstBeyondTheStoresBoundCompletesWithoutReloadingAShard) {
  Registry registry;
  registry.workflow("burst", burst_step).activity("burst_add", [](ActivityContext&, const std::int64_t& x) {
    return x + 1;
  });
  SdkCluster cluster(registry, {.seed = 3, .servers = 1});
  const auto kWorkflows = static_cast<std::int64_t>(engine::store::StoreOptions{}.requests_concurrent_max * 3 / 2);
  std::int64_t completed = 0;
  std::int64_t finished = 0;
  cluster.on_client([&](sim::Env& env, TestClient& client) {
    for (std::int64_t i = 0; i < kWorkflows; i++) {
      env.spawn("burst", [&, i] {
        const std::string id = "burst-" + std::to_string(i);
        sim::Result<std::string> run_id =
            SdkCluster::start(client, env, id, "burst", to_payload(i), std::chrono::minutes{10});
        if (run_id.ok()) {
          auto closed = client.wait_result({id, run_id.value()}, env.sim().deadline_after(std::chrono::minutes{30}));
          if (closed.ok() && closed.value().status == engine::WorkflowStatus::kCompleted &&
              from_payload<std::int64_t>(closed.value().close_event->as<engine::WorkflowExecutionCompleted>()->result) ==
                  i + 1) {
            completed++;
          }
        }
        finished++;
      });
    }
    // The client lives as long as this body: wait for every burst fiber.
    for (int seconds = 0; seconds < 3600 && finished < kWorkflows; seconds++) env.sleep_for(std::chrono::seconds{1});
    env.sim().stop();
  });
  cluster.world.run_for(std::chrono::hours{1});
  EXPECT_EQ(completed, kWorkflows);
  auto* server = dynamic_cast<engine::ServerNode*>(cluster.world.sim().process(cluster.servers.at(0)));
  ASSERT_NE(server, nullptr);
  EXPECT_EQ(server->shards().stats().acquired, 8U) << "a shard was reloaded";
  std::uint64_t retried = 0;
  for (std::uint32_t shard = 0; shard < 8; shard++) {
    if (auto owned = server->shards().shard(shard)) retried += owned->stats().overloaded_write_retries;
  }
  EXPECT_GT(retried, 0U) << "the burst never reached the store's bound: the test shows nothing";
}

// The history a sticky worker's workflow task needs (its new events) and an
// activity's input (its scheduled event) are read from the batches the
// shard has just written, not from the store; an input too large for what
// the shard keeps of those batches is read from the store, whole.
std::int64_t input_lengths(WorkflowContext& ctx, const std::int64_t& large_bytes) {
  std::int64_t total = 0;
  for (const std::int64_t bytes : {std::int64_t{10}, large_bytes, std::int64_t{20}}) {
    total += ctx.activity<std::int64_t>("length", std::string(static_cast<std::size_t>(bytes), 'x'),
                                        ActivityOptions{.start_to_close = std::chrono::minutes{1}});
  }
  return total;
}

// Starts workflow `id` of `type` on `input`, waits for it to close, and
// stops the world: its result if it completed.
std::optional<std::int64_t> run_to_completion(SdkCluster& cluster, const std::string& id, const std::string& type,
                                              const engine::Payload& input) {
  std::optional<std::int64_t> result;
  cluster.on_client([&](sim::Env& env, TestClient& client) {
    sim::Result<std::string> run_id = SdkCluster::start(client, env, id, type, input, std::chrono::minutes{10});
    if (run_id.ok()) {
      auto closed = client.wait_result({id, run_id.value()}, env.sim().deadline_after(std::chrono::minutes{30}));
      if (closed.ok() && closed.value().status == engine::WorkflowStatus::kCompleted) {
        result =
            from_payload<std::int64_t>(closed.value().close_event->as<engine::WorkflowExecutionCompleted>()->result);
      }
    }
    env.sim().stop();
  });
  cluster.world.run_for(std::chrono::hours{1});
  return result;
}

// input_lengths, and an activity that answers its input's length.
Registry lengths_registry() {
  Registry registry;
  registry.workflow("input_lengths", input_lengths)
      .activity("length", [](ActivityContext&, const std::string& input) { return static_cast<std::int64_t>(input.size()); });
  return registry;
}

struct LengthsRun {
  std::optional<std::int64_t> total;
  std::uint64_t history_from_writes = 0;
  std::uint64_t history_from_store = 0;
  std::uint64_t activity_tasks = 0;
  std::uint64_t eager_activities = 0;
};

// Runs input_lengths once on one server and one worker with
// `eager_activity_slots`.
LengthsRun run_input_lengths(std::size_t eager_activity_slots, std::int64_t large_bytes) {
  const Registry registry = lengths_registry();
  worker::WorkerOptions worker_options;
  worker_options.eager_activity_slots = eager_activity_slots;
  SdkCluster cluster(registry, {.seed = 7, .servers = 1, .worker = worker_options});
  LengthsRun out;
  out.total = run_to_completion(cluster, "lengths-1", "input_lengths", to_payload(large_bytes));
  auto* server = dynamic_cast<engine::ServerNode*>(cluster.world.sim().process(cluster.servers.at(0)));
  if (server != nullptr) {
    for (std::uint32_t shard = 0; shard < 8; shard++) {
      if (auto owned = server->shards().shard(shard)) {
        out.history_from_writes += owned->stats().history_reads_from_writes;
        out.history_from_store += owned->stats().history_reads_from_store;
      }
    }
  }
  if (const worker::Worker* worker = cluster.worker(0)) {
    out.activity_tasks = worker->stats().activity_tasks;
    out.eager_activities = worker->stats().eager_activities;
  }
  return out;
}

TEST(SdkEndToEnd, TasksReadTheHistoryTheShardJustWroteAndLargeInputsFromTheStore) {
  constexpr std::int64_t kLargeBytes = 100 * 1024;
  const LengthsRun run = run_input_lengths(/*eager_activity_slots=*/0, kLargeBytes);
  ASSERT_EQ(run.total, std::optional<std::int64_t>{10 + kLargeBytes + 20});
  // Four workflow tasks and three polled activities read history. The
  // large input's batch is beyond what a cached run keeps: its activity,
  // and the workflow task after it (whose new events begin with that
  // batch), read the store.
  EXPECT_EQ(run.history_from_writes + run.history_from_store, 7U);
  EXPECT_EQ(run.history_from_store, 2U);
  EXPECT_EQ(run.eager_activities, 0U);
}

// Eager activities: the worker asks for the activities its workflow task
// schedules, the server starts them in the task's completion and hands
// them back with their input, and they run without a poll or a read.
TEST(SdkEndToEnd, EagerActivitiesRunFromTheWorkflowTasksCompletionWithTheirInput) {
  constexpr std::int64_t kLargeBytes = 100 * 1024;
  const LengthsRun run = run_input_lengths(/*eager_activity_slots=*/100, kLargeBytes);
  ASSERT_EQ(run.total, std::optional<std::int64_t>{10 + kLargeBytes + 20});
  EXPECT_EQ(run.activity_tasks, 3U);
  EXPECT_EQ(run.eager_activities, 3U);
  // Only the four workflow tasks read history; the one after the large
  // input reads it from the store.
  EXPECT_EQ(run.history_from_writes + run.history_from_store, 4U);
  EXPECT_EQ(run.history_from_store, 1U);
}


struct EagerTasksRun {
  std::optional<std::int64_t> total;
  std::vector<engine::EventType> types;
  std::uint64_t workflow_tasks = 0;
  std::uint64_t eager_workflow_tasks = 0;
  std::uint64_t messages = 0;
  bool replays = false;
};

// Runs input_lengths once on one server and one worker, with eager
// workflow tasks on or off, and keeps the history it wrote.
EagerTasksRun run_with_eager_workflow_tasks(bool eager) {
  const Registry registry = lengths_registry();
  worker::WorkerOptions worker_options;
  worker_options.eager_workflow_tasks = eager;
  SdkCluster cluster(registry, {.seed = 7, .servers = 1, .worker = worker_options});
  EagerTasksRun out;
  cluster.on_client([&](sim::Env& env, TestClient& client) {
    sim::Result<std::string> run_id = SdkCluster::start(client, env, "eager-1", "input_lengths", to_payload(std::int64_t{30}));
    if (!run_id.ok()) return;
    auto closed = client.wait_result({"eager-1", run_id.value()}, env.sim().deadline_after(30min));
    if (closed.ok() && closed.value().status == engine::WorkflowStatus::kCompleted) {
      out.total = from_payload<std::int64_t>(closed.value().close_event->as<engine::WorkflowExecutionCompleted>()->result);
    }
    auto history = client.history({"eager-1", run_id.value()}, env.sim().deadline_after(1min));
    if (history.ok()) {
      for (const engine::HistoryEvent& event : history.value().events) out.types.push_back(event.type());
      out.replays = Replayer(registry).replay(history.value().events, "eager-1", run_id.value()).ok;
    }
    env.sim().stop();
  });
  cluster.world.run_for(1h);
  out.messages = cluster.world.network().stats().delivered;
  if (const worker::Worker* worker = cluster.worker(0)) {
    out.workflow_tasks = worker->stats().workflow_tasks;
    out.eager_workflow_tasks = worker->stats().eager_workflow_tasks;
  }
  return out;
}

// Eager workflow tasks: each activity's completion hands the workflow task
// it schedules straight back to its sticky worker. The history is the one
// matching would have produced, event for event, and replays; it only
// takes fewer messages.
TEST(SdkEndToEnd, AnActivitysCompletionHandsTheNextWorkflowTaskBackToItsStickyWorker) {
  const EagerTasksRun eager = run_with_eager_workflow_tasks(true);
  const EagerTasksRun polled = run_with_eager_workflow_tasks(false);
  ASSERT_EQ(eager.total, std::optional<std::int64_t>{60});
  ASSERT_EQ(polled.total, std::optional<std::int64_t>{60});
  EXPECT_EQ(eager.workflow_tasks, 4U);
  EXPECT_EQ(polled.workflow_tasks, 4U);
  EXPECT_EQ(eager.eager_workflow_tasks, 3U) << "one per activity's completion";
  EXPECT_EQ(polled.eager_workflow_tasks, 0U);
  EXPECT_EQ(eager.types, polled.types);
  EXPECT_TRUE(eager.replays);
  EXPECT_LT(eager.messages, polled.messages);
}

// A history larger than one message may carry (9 inputs of 1.9 MB: 17 MB
// against the network's 16 MiB) reaches a worker that replays it whole at
// every task: the store reads it, and history hands it over, in pages of
// about 4 MiB (ReadLimits, and collect_events' own bound on the bytes it
// joins), and the worker fetches the pages after the first.
TEST(SdkEndToEnd, AHistoryLargerThanAMessageReachesTheWorkerInPages) {
  constexpr std::int64_t kInputBytes = 1'900'000;
  constexpr int kActivities = 9;
  Registry registry;
  registry
      .workflow("large_inputs",
                [](WorkflowContext& ctx, const std::int64_t& bytes) {
                  std::int64_t total = 0;
                  for (int i = 0; i < kActivities; i++) {
                    total += ctx.activity<std::int64_t>("length", std::string(static_cast<std::size_t>(bytes), 'x'),
                                                        ActivityOptions{.start_to_close = std::chrono::minutes{1}});
                  }
                  return total;
                })
      .activity("length", [](ActivityContext&, const std::string& input) { return static_cast<std::int64_t>(input.size()); });
  worker::WorkerOptions worker_options;
  worker_options.fuzz_eviction_probability = 1.0;  // Every task replays the whole history.
  SdkCluster cluster(registry, {.seed = 3, .servers = 1, .worker = worker_options});
  const std::optional<std::int64_t> total = run_to_completion(cluster, "large-1", "large_inputs", to_payload(kInputBytes));
  EXPECT_EQ(total, std::optional<std::int64_t>{kActivities * kInputBytes});
  const worker::Worker* worker = cluster.worker(0);
  ASSERT_NE(worker, nullptr);
  // Each of the ten workflow tasks replayed from the first event.
  EXPECT_EQ(worker->stats().cache_misses, std::uint64_t{kActivities + 1});
}
}  // namespace
}  // namespace duro::sdk
