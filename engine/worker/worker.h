// Worker: runs a Registry's workflows and activities on a simulated node.
//
//   sim::World world(...);
//   world.add_node("worker-1", [&](sim::Env& env) {
//     return std::make_unique<duro::worker::Worker>(env, WorkerOptions{.servers = servers}, registry);
//   });
//
// It long-polls the frontend for workflow tasks (on the normal task queue
// and on its own sticky queue) and for activity tasks, with a bounded number
// of pollers of each kind — the bound on its concurrency. Workflow tasks are
// answered from the sticky cache (WorkflowCache) when the run is there and
// continues where it stopped, else by replaying the whole history in a new
// run (workflow_run.h). A task whose code fails (nondeterminism, an
// exception) is answered with RespondWorkflowTaskFailed: the server retries
// it with backoff and the workflow stays open. Activities run on the
// poller's fiber; their exceptions become failures.
//
// A worker is a process: a crash loses the cache and any running
// activities, never a workflow — the server times the tasks out and hands
// them out again.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "engine/server/api.h"
#include "engine/sdk/frontend_caller.h"
#include "engine/sdk/registry.h"
#include "engine/worker/workflow_cache.h"
#include "sim/channel.h"
#include "sim/env.h"
#include "sim/rpc.h"
#include "sim/stack_pool.h"

namespace duro::worker {

// Eager activities a workflow task's completion asks for at most (the
// bound Temporal's Go SDK puts on one task).
inline constexpr std::size_t kEagerActivitiesPerTaskMax = 3;

struct WorkerOptions {
  std::vector<sim::Address> servers{};
  std::string task_queue = "default";
  std::size_t workflow_pollers = 2;  // On the normal queue; as many again on the sticky queue.
  // Workflow tasks handled at once: a poller hands each task to a fiber of
  // its own and polls again while a slot is free (Temporal's maximum
  // concurrent workflow task executions). A task replaying a long history
  // or fetching pages does not hold up the others.
  std::size_t workflow_task_slots = 64;
  std::size_t activity_pollers = 4;  // Activities polled and running at once.
  // Eager activity execution (Temporal's): activities this worker's own
  // workflow tasks schedule on its task queue are asked for in the task's
  // completion, at most kEagerActivitiesPerTaskMax a task and this many
  // running at once beyond the pollers' (0: never), and run as soon as the
  // server has started them: no matching, no poll, one write fewer.
  std::size_t eager_activity_slots = 100;
  // Eager workflow tasks (Duro's, the mirror of eager activities): an
  // activity's completion asks, while a workflow-task slot is free, for the
  // workflow task it schedules on this worker's sticky queue, and runs it
  // as if polled: no matching, no poll, one write fewer.
  bool eager_workflow_tasks = true;
  std::size_t cache_size = 10'000;   // Sticky cache, in runs.
  std::uint16_t port = 7400;
  sim::Duration rpc_timeout = std::chrono::seconds{5};
  sim::Duration poll_timeout = std::chrono::seconds{30};  // Above the servers' long-poll wait.
  sim::Duration sticky_schedule_to_start = std::chrono::seconds{5};
  std::string build_id = "dev";
  // `duro fuzz`: after each task, drop the run from the cache with this
  // probability, so the next task replays it from scratch in a fresh
  // coroutine (an eviction at a random point). 0 outside fuzzing.
  double fuzz_eviction_probability = 0;
};

struct WorkerStats {
  std::uint64_t workflow_tasks = 0;
  std::uint64_t activity_tasks = 0;
  std::uint64_t eager_activities = 0;  // Of activity_tasks: handed back by a workflow task's completion.
  std::uint64_t eager_workflow_tasks = 0;  // Of workflow_tasks: handed back by an activity's completion.
  std::uint64_t queries = 0;
  std::uint64_t cache_hits = 0;
  std::uint64_t cache_misses = 0;   // Full replays.
  std::uint64_t evictions = 0;      // By the cache's bound.
  std::uint64_t fuzz_evictions = 0;  // By fuzz_eviction_probability.
  std::uint64_t stale_cache_queries = 0;  // Queries that found the cached run at another task.
  std::uint64_t replayed_events = 0;
  std::uint64_t task_failures = 0;  // Answered with RespondWorkflowTaskFailed.
  std::uint64_t nondeterminism = 0;
  std::uint64_t stale_responses = 0;
  std::uint64_t call_failures = 0;
};

// Called for every workflow task answered (for tests: what the code
// produced, and which failures it reported).
struct TaskReport {
  engine::WorkflowExecution execution;
  std::string workflow_type;
  engine::EventId started_event_id = 0;
  bool cache_hit = false;
  sdk::TaskAnswer answer;
};
using TaskObserver = std::function<void(const TaskReport&)>;

class Worker final : public sim::Process {
 public:
  // `registry` must outlive the worker.
  Worker(sim::Env& env, WorkerOptions options, const sdk::Registry& registry, TaskObserver observer = {});
  ~Worker() override;

  const WorkerStats& stats() const noexcept { return stats_; }
  const WorkflowCache& cache() const noexcept { return cache_; }
  const engine::TaskQueue& sticky_queue() const noexcept { return sticky_queue_; }

 private:
  void workflow_poller(engine::TaskQueue queue, std::size_t index);
  void activity_poller(std::size_t index);
  // Runs `task` in a fiber of its own, which gives back the workflow-task
  // slot the caller holds for it when it ends.
  void run_workflow_task(engine::PollWorkflowTaskQueueReply task);
  void handle_workflow_task(engine::PollWorkflowTaskQueueReply task);
  // Reports an activity's result; with a free workflow-task slot, asks for
  // the workflow task it schedules (eager_workflow_tasks) and runs it.
  sim::Result<void> complete_activity(const std::string& task_token, engine::Payload result);
  void handle_query(const engine::PollWorkflowTaskQueueReply& task);
  void handle_activity_task(const engine::PollActivityTaskQueueReply& task);
  // Asks for the activities `completed`'s commands schedule that this
  // worker can run eagerly, holding a slot for each; returns how many.
  std::size_t ask_for_eager_activities(engine::RespondWorkflowTaskCompletedRequest& completed);
  // Runs the activities the server started eagerly, each in a fiber of its
  // own, and gives back the slots of the `asked` it did not start.
  void run_eager_activities(std::vector<engine::PollActivityTaskQueueReply> tasks, std::size_t asked);
  // The run's events from `from` up to and including `last` (0: all).
  bool fetch_history(const engine::WorkflowExecution& execution, engine::EventId from, engine::EventId last,
                     std::vector<engine::HistoryEvent>& events);
  std::unique_ptr<sdk::WorkflowRun> new_run(const sdk::WorkflowDefinition* definition,
                                            const engine::PollWorkflowTaskQueueReply& task);
  sim::Result<std::string> call(std::string_view method, std::string payload, sim::Duration timeout);
  template <typename Response, typename Request>
  sim::Result<Response> call(std::string_view method, const Request& request, sim::Duration timeout) {
    sim::Result<std::string> bytes = call(method, sim::encode(request), timeout);
    if (!bytes.ok()) return bytes.error();
    return sim::decode<Response>(bytes.value());
  }

  sim::Env& env_;
  WorkerOptions options_;
  const sdk::Registry& registry_;
  TaskObserver observer_;
  std::unique_ptr<sdk::FrontendCaller> caller_;
  sim::StackPool stacks_;
  WorkflowCache cache_;
  sim::Channel<int> workflow_slots_;  // Holds a token per free slot.
  std::size_t eager_activities_held_ = 0;  // Asked for or running; at most options_.eager_activity_slots.
  engine::TaskQueue sticky_queue_;
  std::uint64_t poll_seq_ = 0;
  WorkerStats stats_;
};

}  // namespace duro::worker
