// The SDK's costs: replaying a long history, running workflows end to end
// through SDK workers, and the memory an open workflow holds.
//
//   BM_replay_events               one history of ~23,000 events (1,000 rounds
//                                  of three activities and a 1 s timer),
//                                  replayed by a fresh Replayer each
//                                  iteration, as `duro replay` does (it keeps
//                                  every command). Items: events.
//   BM_replay_events_worker_run    the same history fed to a fresh
//                                  WorkflowRun with the worker's options (no
//                                  command log): a worker's full replay after
//                                  a cache miss.
//   BM_replay_decode_reference     decode_events() of the same history's
//                                  bytes: materializing every event once, a
//                                  floor no replay that reads the store can
//                                  go under.
//   BM_replay_copy_reference       copying the vector of events: touching
//                                  every event and its strings once.
//   BM_workflow_end_to_end_*       the three-activity workflow written with
//                                  the SDK, through a store, 1 (or 3) servers
//                                  and one SDK worker, no faults; a client
//                                  starts workflows in concurrent batches
//                                  (1,000, or 100) and waits for each result.
//                                  An iteration is one completed workflow, so
//                                  its time compares with
//                                  BM_engine_workflow_roundtrip's (the same
//                                  workflow on a raw-command worker, one at a
//                                  time). Counters: messages, workflow tasks,
//                                  cache misses (full replays) per workflow,
//                                  simulated seconds per batch, and shard
//                                  acquisitions (more than one per shard:
//                                  shards stopped and were taken again),
//                                  peak fiber stacks and their resident
//                                  bytes. Each shape first runs one batch
//                                  untimed, once per process (see
//                                  warm_up_once; DURO_BENCH_COLD=1: not).
//   BM_open_workflows_sdk_run_memory/N
//                                  N WorkflowRuns of a sleeping workflow, no
//                                  cluster: what a worker's cache holds per
//                                  run (heap, resident stack, mapped stack).
//   BM_open_workflows_memory/N/C   heap and RSS before and after N workflows
//                                  are started (100 starts in flight) and
//                                  asleep on a 30-day timer, on one server
//                                  and one worker with a cache of C runs
//                                  (beyond C runs are evicted; C = 0: all).
//                                  Then each node is crashed in turn and what
//                                  that frees is its share (the rest is the
//                                  simulated disk, which is memory too, and
//                                  the simulator). Iterations(1); bytes per
//                                  workflow as counters. 100,000 takes some
//                                  minutes. Best run alone
//                                  (--benchmark_filter=open_workflows), so
//                                  the heap of other benchmarks is not reused;
//                                  DURO_BENCH_PROGRESS=1 prints progress.
//
// Targets (the issue): replay >= 5 million events/s; >= 5,000 workflows/s
// end to end on one core; 100,000 open workflows within 2 GiB. Ratios are
// printed by main() (sim_bench.cc) after the table.
#include <benchmark/benchmark.h>
#include <malloc.h>
#if defined(DURO_MIMALLOC)
#include <mimalloc.h>
#endif
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "bench/allocation_counter.h"
#include "engine/history/history.h"
#include "engine/sdk/registry.h"
#include "engine/sdk/replayer.h"
#include "engine/sdk/workflow_run.h"
#include "engine/server/server_node.h"
#include "engine/store/store_service.h"
#include "engine/testing/sdk_cluster.h"
#include "engine/testing/test_client.h"

namespace duro::sdk {
namespace {

using namespace std::chrono_literals;
using engine::testing::SdkCluster;
using engine::testing::SdkClusterOptions;
using engine::testing::TestClient;

// --- Workflows ------------------------------------------------------------

constexpr std::int64_t kLoopRounds = 1'000;
constexpr const char* kLoopWorkflowId = "loop-1";

std::int64_t add_one(ActivityContext&, const std::int64_t& n) { return n + 1; }
std::string echo(ActivityContext&, const std::string&) { return "ok"; }

// 1,000 rounds of three activities in sequence and a short timer: 23 events
// a round (three times Scheduled, Started, Completed and a workflow task of
// three events; TimerStarted, TimerFired and a workflow task).
std::int64_t activity_loop(WorkflowContext& ctx, const std::int64_t& rounds) {
  std::int64_t total = 0;
  for (std::int64_t round = 0; round < rounds; round++) {
    total = ctx.activity<std::int64_t>("add_one", total, {.start_to_close = 10s});
    total = ctx.activity<std::int64_t>("add_one", total, {.start_to_close = 10s});
    total = ctx.activity<std::int64_t>("add_one", total, {.start_to_close = 10s});
    ctx.sleep(1s);
  }
  return total;
}

// BM_engine_workflow_roundtrip's workflow (sequential_activities(3, "echo",
// 10s)), written with the SDK.
std::string three_steps(WorkflowContext& ctx) {
  std::string results;
  for (int step = 0; step < 3; step++) {
    results += ctx.activity<std::string>("echo", std::to_string(step), {.start_to_close = 10s});
  }
  return results;
}

void sleeper(WorkflowContext& ctx) { ctx.sleep(std::chrono::hours{24 * 30}); }

const Registry& bench_registry() {
  static const Registry registry = [] {
    Registry r;
    r.workflow("activity_loop", activity_loop)
        .workflow("three_steps", three_steps)
        .workflow("sleeper", sleeper)
        .activity("add_one", add_one)
        .activity("echo", echo);
    return r;
  }();
  return registry;
}

// --- The long history ---------------------------------------------------------

struct LoopHistory {
  engine::History history;
  std::string error;  // Empty when the history is good.
};

// Runs activity_loop once on a cluster and fetches its history. Made once
// per process: every replay benchmark reads the same events.
const LoopHistory& loop_history() {
  static const LoopHistory produced = [] {
    LoopHistory out;
    SdkCluster cluster(bench_registry(), {.seed = 1, .servers = 1});
    bool done = false;
    cluster.on_client([&](sim::Env& env, TestClient& client) {
      sim::Result<std::string> run_id =
          SdkCluster::start(client, env, kLoopWorkflowId, "activity_loop", to_payload(kLoopRounds));
      if (!run_id.ok()) {
        out.error = "start: " + sim::to_string(run_id.error());
      } else {
        const engine::WorkflowExecution execution{kLoopWorkflowId, run_id.value()};
        auto closed = client.wait_result(execution, env.sim().deadline_after(12h));
        if (!closed.ok() || closed.value().status != engine::WorkflowStatus::kCompleted) {
          out.error = "the loop workflow did not complete";
        } else if (auto fetched = client.history(execution, env.sim().deadline_after(10min)); !fetched.ok()) {
          out.error = "history: " + sim::to_string(fetched.error());
        } else {
          out.history = std::move(fetched).value();
        }
      }
      done = true;
      env.sim().stop();
    });
    cluster.world.run_for(24h);
    if (!done && out.error.empty()) out.error = "the client did not finish within 24 h of simulated time";
    return out;
  }();
  return produced;
}

// Replays the history once, outside the timing, and says why not if it
// does not replay cleanly.
const engine::History* checked_history(benchmark::State& state) {
  const LoopHistory& produced = loop_history();
  if (!produced.error.empty()) {
    state.SkipWithError(produced.error.c_str());
    return nullptr;
  }
  static const std::string replay_error = [&] {
    Replayer replayer(bench_registry());
    ReplayResult result = replayer.replay(produced.history.events, kLoopWorkflowId);
    return result.ok ? std::string() : "replay failed: " + result.message;
  }();
  if (!replay_error.empty()) {
    state.SkipWithError(replay_error.c_str());
    return nullptr;
  }
  return &produced.history;
}

// Items and rates per event; `allocations` counted over the whole loop.
void report_events(benchmark::State& state, std::size_t events, std::uint64_t allocations) {
  const auto total = static_cast<double>(events) * static_cast<double>(state.iterations());
  state.SetItemsProcessed(static_cast<std::int64_t>(total));
  state.counters["events"] = static_cast<double>(events);
  state.counters["events_per_second"] = benchmark::Counter(total, benchmark::Counter::kIsRate);
  if (bench::counting_allocations() && total > 0) {
    state.counters["allocs_per_event"] = static_cast<double>(allocations) / total;
  }
}

// --- Replay -----------------------------------------------------------------

void BM_replay_events(benchmark::State& state) {
  const engine::History* history = checked_history(state);
  if (history == nullptr) return;
  const std::uint64_t allocations_before = bench::allocations();
  for (auto _ : state) {
    Replayer replayer(bench_registry());
    ReplayResult result = replayer.replay(history->events, kLoopWorkflowId);
    benchmark::DoNotOptimize(result.ok);
  }
  report_events(state, history->events.size(), bench::allocations() - allocations_before);
}
BENCHMARK(BM_replay_events)->Unit(benchmark::kMillisecond);

void BM_replay_events_worker_run(benchmark::State& state) {
  const engine::History* history = checked_history(state);
  if (history == nullptr) return;
  const WorkflowDefinition* definition = bench_registry().find_workflow("activity_loop");
  const auto* started = history->events.front().as<engine::WorkflowExecutionStarted>();
  const engine::WorkflowExecution execution{kLoopWorkflowId, started->original_execution_run_id};
  sim::StackPool stacks(sim::kDefaultStackSizeBytes, 64);
  const std::uint64_t allocations_before = bench::allocations();
  for (auto _ : state) {
    WorkflowRun run(definition, execution, "activity_loop", stacks);
    std::optional<TaskAnswer> answer = run.apply(history->events);
    if (answer.has_value()) {
      state.SkipWithError("the worker's run failed the history");
      break;
    }
  }
  report_events(state, history->events.size(), bench::allocations() - allocations_before);
}
BENCHMARK(BM_replay_events_worker_run)->Unit(benchmark::kMillisecond);

void BM_replay_decode_reference(benchmark::State& state) {
  const engine::History* history = checked_history(state);
  if (history == nullptr) return;
  const std::string bytes = engine::encode_events(history->events);
  const std::uint64_t allocations_before = bench::allocations();
  for (auto _ : state) {
    sim::Result<std::vector<engine::HistoryEvent>> events = engine::decode_events(bytes);
    if (!events.ok()) {
      state.SkipWithError("the history's bytes do not decode");
      break;
    }
    benchmark::DoNotOptimize(events.value().data());
  }
  state.counters["bytes_per_event"] = static_cast<double>(bytes.size()) / static_cast<double>(history->events.size());
  report_events(state, history->events.size(), bench::allocations() - allocations_before);
}
BENCHMARK(BM_replay_decode_reference)->Unit(benchmark::kMillisecond);

void BM_replay_copy_reference(benchmark::State& state) {
  const engine::History* history = checked_history(state);
  if (history == nullptr) return;
  const std::uint64_t allocations_before = bench::allocations();
  for (auto _ : state) {
    std::vector<engine::HistoryEvent> copy = history->events;
    benchmark::DoNotOptimize(copy.data());
  }
  report_events(state, history->events.size(), bench::allocations() - allocations_before);
}
BENCHMARK(BM_replay_copy_reference)->Unit(benchmark::kMillisecond);

// The shard controller of server node `node` (nullptr while it is down):
// shard acquisitions beyond the first few mean shards were lost and taken
// again, each time reloading the shard's task queues.
const engine::ShardController* shards_of(SdkCluster& cluster, sim::NodeId node) {
  if (!cluster.world.sim().is_up(node)) return nullptr;
  auto* server = dynamic_cast<engine::ServerNode*>(cluster.world.sim().process(node));
  return server != nullptr ? &server->shards() : nullptr;
}

void report_shards(benchmark::State& state, SdkCluster& cluster) {
  double acquired = 0;
  double lost = 0;
  for (sim::NodeId node : cluster.servers) {
    if (const engine::ShardController* shards = shards_of(cluster, node)) {
      acquired += static_cast<double>(shards->stats().acquired);
      lost += static_cast<double>(shards->stats().lost);
    }
  }
  state.counters["shard_acquisitions"] = acquired;
  state.counters["shards_lost"] = lost;
}

// --- End to end -------------------------------------------------------------

// Starts `batch` workflows at once on `cluster` and runs until all have
// closed (or an hour of simulated time passed): how many completed. Ids
// from `next_id` on. The counts are shared with the fibers, not on this
// frame: those of a batch that did not finish outlive the call.
std::uint64_t run_batch(SdkCluster& cluster, TestClient& client, std::uint64_t batch, std::uint64_t& next_id) {
  struct Progress {
    std::uint64_t finished = 0;
    std::uint64_t completed = 0;
  };
  sim::World& world = cluster.world;
  sim::Env& env = world.env(cluster.client);
  auto progress = std::make_shared<Progress>();
  for (std::uint64_t i = 0; i < batch; i++) {
    env.spawn("workflow", [progress, &client, &env, batch, id = next_id++] {
      const std::string workflow_id = "wf-" + std::to_string(id);
      sim::Result<std::string> run_id = SdkCluster::start(client, env, workflow_id, "three_steps", {}, 10min);
      if (run_id.ok()) {
        auto closed = client.wait_result({workflow_id, run_id.value()}, env.sim().deadline_after(30min));
        if (closed.ok() && closed.value().status == engine::WorkflowStatus::kCompleted) progress->completed++;
      }
      if (++progress->finished == batch) env.sim().stop();
    });
  }
  world.run({.until = world.sim().now() + 1h});
  return progress->completed;
}

// A client on the cluster's client node, once the servers hold their
// shards; nullptr if it did not start.
std::unique_ptr<TestClient> start_client(SdkCluster& cluster) {
  sim::Env& env = cluster.world.env(cluster.client);
  std::unique_ptr<TestClient> client;
  env.spawn("client", [&] { client = std::make_unique<TestClient>(env, cluster.addresses, 7500); });
  cluster.world.run_for(5s);
  return client;
}

// Once per process and shape, untimed: one batch on a cluster of its own,
// so that the timed simulations find the fiber stacks (sim/stack_pool.h)
// and the heap (sim/allocator/allocator_tuning.cc) it faulted in, as any
// simulation after a process's first does. A first touch of a page is a
// fault, ~11 us on the CI machines' hypervisor, and a thousand workflows
// at once peak at ~3,100 fibers: without this the figure swung by 2x with
// whether Google Benchmark's first run (1,000 workflows) took more or less
// than its 0.5 s minimum, the cold run being reported only when it did.
// DURO_BENCH_COLD=1 skips it, for the cold figure. False if the warm-up
// batch did not complete (then the figures would be cold ones).
bool warm_up_once(int servers, std::uint64_t batch) {
  static std::set<std::pair<int, std::uint64_t>> warmed;
  const char* cold = std::getenv("DURO_BENCH_COLD");
  if ((cold != nullptr && std::string_view(cold) == "1") || !warmed.emplace(servers, batch).second) return true;
  SdkCluster cluster(bench_registry(), {.seed = 2, .servers = servers});
  std::unique_ptr<TestClient> client = start_client(cluster);
  std::uint64_t next_id = 0;
  return client != nullptr && run_batch(cluster, *client, batch, next_id) == batch;
}

void workflow_end_to_end(benchmark::State& state, int servers, std::uint64_t batch) {
  if (!warm_up_once(servers, batch)) {
    state.SkipWithError("the warm-up batch did not complete");
    return;
  }
  SdkCluster cluster(bench_registry(), {.seed = 1, .servers = servers});
  sim::World& world = cluster.world;
  std::unique_ptr<TestClient> client = start_client(cluster);
  if (client == nullptr) {
    state.SkipWithError("the client did not start");
    return;
  }

  std::uint64_t next_id = 0;
  std::uint64_t completed = 0;
  std::uint64_t batches = 0;
  double sim_seconds = 0;
  double first_batch_wall_seconds = 0;
  double last_batch_wall_seconds = 0;
  const std::uint64_t messages_before = world.network().stats().delivered;
  auto store_stats = [&] {
    auto* store = dynamic_cast<engine::store::StoreService*>(world.sim().process(cluster.store));
    return store != nullptr ? store->stats() : engine::store::StoreServiceStats{};
  };
  const engine::store::StoreServiceStats store_before = store_stats();
  const std::uint64_t allocations_before = bench::allocations();
  while (state.KeepRunningBatch(static_cast<benchmark::IterationCount>(batch))) {
    const auto wall_start = std::chrono::steady_clock::now();
    const sim::TimePoint sim_start = world.sim().now();
    const std::uint64_t completed_now = run_batch(cluster, *client, batch, next_id);
    completed += completed_now;
    if (completed_now != batch) {
      state.SkipWithError("a workflow of the batch did not complete");
      break;
    }
    sim_seconds += std::chrono::duration<double>(world.sim().now() - sim_start).count();
    last_batch_wall_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start).count();
    if (batches++ == 0) first_batch_wall_seconds = last_batch_wall_seconds;
  }
  const auto workflows = static_cast<double>(completed);
  state.SetItemsProcessed(static_cast<std::int64_t>(completed));
  state.counters["workflows_per_second"] = benchmark::Counter(workflows, benchmark::Counter::kIsRate);
  state.counters["batch"] = static_cast<double>(batch);
  if (completed == 0) return;
  // Simulated seconds a batch took: above the sticky queue's 5 s
  // schedule-to-start, tasks go back to the normal queue and replay.
  state.counters["sim_seconds_per_batch"] = sim_seconds / static_cast<double>(batches);
  // The wall time of a batch, first and last: the engine's cost per
  // workflow grows with what the store holds (closed runs are kept).
  state.counters["first_batch_wall_ms"] = first_batch_wall_seconds * 1e3;
  state.counters["last_batch_wall_ms"] = last_batch_wall_seconds * 1e3;
  const double delivered = static_cast<double>(world.network().stats().delivered - messages_before);
  state.counters["messages_per_workflow"] = delivered / workflows;
  // What the store did per workflow (a store restart would reset these).
  const engine::store::StoreServiceStats store_after = store_stats();
  state.counters["store_writes_per_workflow"] = static_cast<double>(store_after.writes - store_before.writes) / workflows;
  state.counters["store_reads_per_workflow"] = static_cast<double>(store_after.reads - store_before.reads) / workflows;
  state.counters["store_batches_per_workflow"] = static_cast<double>(store_after.batches - store_before.batches) / workflows;
  // Writes that did not apply: a condition failed (a stale version), or a
  // retry got its first outcome back.
  state.counters["store_write_failures_per_workflow"] =
      static_cast<double>(store_after.write_failures - store_before.write_failures) / workflows;
  state.counters["store_duplicates_per_workflow"] =
      static_cast<double>(store_after.duplicates - store_before.duplicates) / workflows;
  if (bench::counting_allocations()) {
    state.counters["allocs_per_workflow"] = static_cast<double>(bench::allocations() - allocations_before) / workflows;
  }
  if (const worker::Worker* worker = cluster.worker(0); worker != nullptr) {
    const worker::WorkerStats& stats = worker->stats();
    state.counters["wf_tasks_per_workflow"] = static_cast<double>(stats.workflow_tasks) / workflows;
    state.counters["cache_misses_per_workflow"] = static_cast<double>(stats.cache_misses) / workflows;
    state.counters["replayed_events_per_workflow"] = static_cast<double>(stats.replayed_events) / workflows;
    state.counters["eager_activities_per_workflow"] = static_cast<double>(stats.eager_activities) / workflows;
    state.counters["eager_wf_tasks_per_workflow"] = static_cast<double>(stats.eager_workflow_tasks) / workflows;
    state.counters["call_failures"] = static_cast<double>(stats.call_failures);
  }
  // Fibers alive at once, at most: each holds a stack the kernel faults in
  // page by page as it first runs that deep.
  state.counters["fiber_stacks_mapped"] = static_cast<double>(world.sim().stacks().mapped());
  state.counters["fiber_stack_resident_mean_bytes"] =
      static_cast<double>(world.sim().stacks().resident_bytes()) /
      static_cast<double>(std::max<std::size_t>(1, world.sim().stacks().mapped()));
  report_shards(state, cluster);
}

void BM_workflow_end_to_end_1_server(benchmark::State& state) { workflow_end_to_end(state, 1, 1'000); }
BENCHMARK(BM_workflow_end_to_end_1_server)->Unit(benchmark::kMicrosecond);

void BM_workflow_end_to_end_1_server_batch_100(benchmark::State& state) { workflow_end_to_end(state, 1, 100); }
BENCHMARK(BM_workflow_end_to_end_1_server_batch_100)->Unit(benchmark::kMicrosecond);

void BM_workflow_end_to_end_3_servers(benchmark::State& state) { workflow_end_to_end(state, 3, 1'000); }
BENCHMARK(BM_workflow_end_to_end_3_servers)->Unit(benchmark::kMicrosecond);

// --- Memory of open workflows ---------------------------------------------------

// Memory mappings of the process: each fiber stack is two (the stack and
// its guard page), and the kernel caps a process at vm.max_map_count
// (65,530 by default).
std::size_t memory_mappings() {
  std::FILE* maps = std::fopen("/proc/self/maps", "r");
  if (maps == nullptr) return 0;
  std::size_t lines = 0;
  for (int c = std::fgetc(maps); c != EOF; c = std::fgetc(maps)) lines += c == '\n' ? 1 : 0;
  std::fclose(maps);
  return lines;
}

std::size_t resident_bytes() {
  std::FILE* statm = std::fopen("/proc/self/statm", "r");
  if (statm == nullptr) return 0;
  unsigned long size_pages = 0;
  unsigned long resident_pages = 0;
  const int read = std::fscanf(statm, "%lu %lu", &size_pages, &resident_pages);
  std::fclose(statm);
  if (read != 2) return 0;
  return static_cast<std::size_t>(resident_pages) * static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
}

// Heap bytes in use (from new and not deleted), after handing free memory
// back to the kernel so that RSS says what is held. The programs allocate
// through mimalloc (CMakeLists.txt), whose free memory mi_collect returns
// and whose use glibc's mallinfo2 does not see; the sanitizer build keeps
// its own allocator, and counts nothing.
std::size_t heap_bytes_in_use() {
#if defined(DURO_MIMALLOC)
  mi_collect(true);
#else
  ::malloc_trim(0);
#endif
  if (bench::counting_allocations()) return static_cast<std::size_t>(std::max<std::int64_t>(0, bench::live_heap_bytes()));
  const struct mallinfo2 info = ::mallinfo2();
  return info.uordblks + info.hblkhd;
}

struct MemorySample {
  double heap_bytes = 0;
  double rss_bytes = 0;
};

MemorySample sample_memory() {
  MemorySample sample;
  sample.heap_bytes = static_cast<double>(heap_bytes_in_use());
  sample.rss_bytes = static_cast<double>(resident_bytes());
  return sample;
}

// The SDK's share alone: N WorkflowRuns of the sleeper, each having
// answered its first task and suspended on its timer — what a worker's
// cache holds per run — with no cluster around them.
void BM_open_workflows_sdk_run_memory(benchmark::State& state) {
  const auto runs = static_cast<std::size_t>(state.range(0));
  const WorkflowDefinition* definition = bench_registry().find_workflow("sleeper");
  engine::History history;
  engine::WorkflowExecutionStarted started;
  started.workflow_type = "sleeper";
  started.task_queue = engine::TaskQueue{"default", engine::TaskQueueKind::kNormal};
  started.original_execution_run_id = "run";
  started.first_execution_run_id = "run";
  history.append(sim::TimePoint{}, started);
  history.append(sim::TimePoint{}, engine::WorkflowTaskScheduled{started.task_queue, 10s, 1});
  history.append(sim::TimePoint{}, engine::WorkflowTaskStarted{2, "worker", "poll-1"});
  for (auto _ : state) {
    sim::StackPool stacks(sim::kDefaultStackSizeBytes, runs + 1);
    std::vector<std::unique_ptr<WorkflowRun>> cached;
    cached.reserve(runs);
    const MemorySample before = sample_memory();
    const std::size_t mappings_before = memory_mappings();
    for (std::size_t i = 0; i < runs; i++) {
      auto run = std::make_unique<WorkflowRun>(
          definition, engine::WorkflowExecution{"sleeper-" + std::to_string(i), "run-" + std::to_string(i)}, "sleeper",
          stacks);
      std::optional<TaskAnswer> answer = run->apply(history.events);
      if (!answer || answer->failed || answer->commands.size() != 1) {
        state.SkipWithError("the sleeper did not answer its first task with one timer");
        break;
      }
      cached.push_back(std::move(run));
    }
    const MemorySample after = sample_memory();
    const auto n = static_cast<double>(runs);
    state.counters["heap_bytes_per_run"] = (after.heap_bytes - before.heap_bytes) / n;
    state.counters["rss_bytes_per_run"] = (after.rss_bytes - before.rss_bytes) / n;
    state.counters["mappings_per_run"] =
        (static_cast<double>(memory_mappings()) - static_cast<double>(mappings_before)) / n;
    state.counters["stack_bytes_mapped_per_run"] =
        static_cast<double>(stacks.mapped() * (stacks.stack_size_bytes() + static_cast<std::size_t>(::sysconf(_SC_PAGESIZE)))) / n;
    cached.clear();
  }
}
BENCHMARK(BM_open_workflows_sdk_run_memory)->Arg(10'000)->Iterations(1)->Unit(benchmark::kMillisecond);

void BM_open_workflows_memory(benchmark::State& state) {
  const auto workflows = static_cast<std::uint64_t>(state.range(0));
  const auto cache_size = static_cast<std::size_t>(state.range(1));
  // 1,000 starts in flight overload the store (in simulated time): writes
  // time out, shards stop on the unknown outcome and are taken again,
  // reloading their task queues each time, and the run goes quadratic.
  constexpr std::uint64_t kStartsInFlightMax = 100;
  for (auto _ : state) {
    std::uint64_t asleep = 0;  // Workflow tasks answered with the 30-day timer.
    worker::WorkerOptions worker_options;
    worker_options.cache_size = cache_size;
    SdkClusterOptions options;
    options.seed = 1;
    options.servers = 1;
    options.worker = worker_options;
    options.observer = [&asleep](const worker::TaskReport& report) {
      if (report.answer.failed) return;
      for (const engine::Command& command : report.answer.commands) {
        if (std::holds_alternative<engine::StartTimer>(command)) asleep++;
      }
    };
    auto cluster = std::make_unique<SdkCluster>(bench_registry(), options);
    sim::World& world = cluster->world;
    sim::Env& env = world.env(cluster->client);
    std::unique_ptr<TestClient> client;
    env.spawn("client", [&] { client = std::make_unique<TestClient>(env, cluster->addresses, 7500); });
    world.run_for(5s);
    const MemorySample before = sample_memory();
    const auto wall_start = std::chrono::steady_clock::now();
    const sim::TimePoint sim_start = world.sim().now();

    std::uint64_t started = 0;
    std::uint64_t failed_starts = 0;
    for (std::uint64_t first = 0; first < workflows; first += kStartsInFlightMax) {
      const std::uint64_t count = std::min(kStartsInFlightMax, workflows - first);
      std::uint64_t answered = 0;
      for (std::uint64_t id = first; id < first + count; id++) {
        env.spawn("start", [&, id] {
          sim::Result<std::string> run_id =
              SdkCluster::start(*client, env, "sleeper-" + std::to_string(id), "sleeper", {}, 10min);
          if (run_id.ok()) {
            started++;
          } else {
            failed_starts++;
          }
          if (++answered == count) env.sim().stop();
        });
      }
      world.run({.until = world.sim().now() + 1h});
      if (std::getenv("DURO_BENCH_PROGRESS") != nullptr && (first / kStartsInFlightMax) % 10 == 9) {
        const engine::ShardController* shards = shards_of(*cluster, cluster->servers.front());
        std::fprintf(stderr, "started %llu asleep %llu sim %.1f s wall %.1f s acquired %llu lost %llu\n",
                     static_cast<unsigned long long>(started), static_cast<unsigned long long>(asleep),
                     std::chrono::duration<double>(world.sim().now() - sim_start).count(),
                     std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start).count(),
                     static_cast<unsigned long long>(shards ? shards->stats().acquired : 0),
                     static_cast<unsigned long long>(shards ? shards->stats().lost : 0));
      }
    }
    const auto wall_started = std::chrono::steady_clock::now();
    // Until every run answered its first task (it is asleep), and then a
    // little longer for the answers to be written.
    for (int minute = 0; minute < 60 && asleep < workflows; minute++) world.run_for(1min);
    world.run_for(10s);
    const auto wall_end = std::chrono::steady_clock::now();
    const MemorySample after = sample_memory();
    if (started != workflows || asleep < workflows) {
      state.SkipWithError("not every workflow started and went to sleep");
      break;
    }
    const auto n = static_cast<double>(workflows);
    const worker::Worker* worker = cluster->worker(0);
    if (worker != nullptr) {
      state.counters["cached_runs"] = static_cast<double>(worker->cache().size());
      state.counters["wf_tasks_per_workflow"] = static_cast<double>(worker->stats().workflow_tasks) / n;
      state.counters["cache_misses_per_workflow"] = static_cast<double>(worker->stats().cache_misses) / n;
    }
    report_shards(state, *cluster);
    // What each node holds: the memory its process gives back when it
    // crashes (the store's disk, which a crash keeps, stays counted in
    // "rest": the simulated disk is memory too).
    client.reset();
    auto freed_by_crash = [&](sim::NodeId node) {
      const MemorySample up = sample_memory();
      world.sim().crash(node);
      const MemorySample down = sample_memory();
      return MemorySample{up.heap_bytes - down.heap_bytes, up.rss_bytes - down.rss_bytes};
    };
    const MemorySample worker_held = freed_by_crash(cluster->workers.front());
    const MemorySample server_held = freed_by_crash(cluster->servers.front());
    const MemorySample store_held = freed_by_crash(cluster->store);
    const MemorySample rest = sample_memory();

    state.counters["workflows"] = n;
    state.counters["rss_bytes_per_workflow"] = (after.rss_bytes - before.rss_bytes) / n;
    state.counters["heap_bytes_per_workflow"] = (after.heap_bytes - before.heap_bytes) / n;
    state.counters["rss_mib_after"] = after.rss_bytes / (1 << 20);
    state.counters["worker_rss_bytes_per_workflow"] = worker_held.rss_bytes / n;
    state.counters["worker_heap_bytes_per_workflow"] = worker_held.heap_bytes / n;
    state.counters["server_heap_bytes_per_workflow"] = server_held.heap_bytes / n;
    state.counters["store_heap_bytes_per_workflow"] = store_held.heap_bytes / n;
    state.counters["rest_heap_bytes_per_workflow"] = (rest.heap_bytes - before.heap_bytes) / n;
    state.counters["start_wall_s"] = std::chrono::duration<double>(wall_started - wall_start).count();
    state.counters["settle_wall_s"] = std::chrono::duration<double>(wall_end - wall_started).count();
    state.counters["sim_s"] = std::chrono::duration<double>(world.sim().now() - sim_start).count();
    state.counters["failed_starts"] = static_cast<double>(failed_starts);
    cluster.reset();
  }
}
BENCHMARK(BM_open_workflows_memory)
    ->Args({10'000, 10'000})
    ->Args({10'000, 0})
    ->Args({30'000, 10'000})
    ->Args({100'000, 10'000})
    ->Iterations(1)
    ->Unit(benchmark::kSecond);

}  // namespace
}  // namespace duro::sdk
