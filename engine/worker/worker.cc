#include "engine/worker/worker.h"

#include <fmt/format.h>

#include <algorithm>
#include <utility>

#include "sim/assert.h"
#include "sim/simulator.h"
#include "sim/trace_slice.h"

namespace duro::worker {

using namespace duro::engine;

namespace {

constexpr int kCallAttemptsMax = 8;
constexpr std::uint32_t kHistoryPagesMax = 10'000;
constexpr std::uint32_t kHistoryPageEvents = 1000;
// Each cached run holds at least one coroutine stack; a few runs more are
// replaying or answering queries outside the cache.
constexpr std::size_t kStacksPerRunMax = 8;

Failure worker_failure(std::string type, std::string message) {
  return Failure{std::move(type), std::move(message), {}, false, TimeoutType::kNone, "worker"};
}

}  // namespace

Worker::Worker(sim::Env& env, WorkerOptions options, const sdk::Registry& registry, TaskObserver observer)
    : env_(env),
      options_(std::move(options)),
      registry_(registry),
      observer_(std::move(observer)),
      stacks_(sim::kDefaultStackSizeBytes,
              (options_.cache_size + options_.workflow_pollers * 2 + 1) * kStacksPerRunMax),
      cache_(options_.cache_size),
      workflow_slots_(std::max<std::size_t>(options_.workflow_task_slots, 1)) {
  DURO_ASSERT(!options_.servers.empty());
  DURO_ASSERT(options_.workflow_pollers > 0 && options_.activity_pollers > 0 && options_.workflow_task_slots > 0);
  for (std::size_t i = 0; i < options_.workflow_task_slots; i++) DURO_ASSERT(workflow_slots_.try_send(1));
  caller_ = std::make_unique<sdk::FrontendCaller>(env_, options_.servers, options_.port);
  // A new sticky queue per incarnation: after a restart the cache is empty,
  // and tasks still queued for the old one time out to the normal queue.
  sticky_queue_ = TaskQueue{fmt::format("{}/{}/sticky/{}", options_.task_queue, env_.name(), env_.incarnation()),
                            TaskQueueKind::kSticky};
  const TaskQueue normal{options_.task_queue, TaskQueueKind::kNormal};
  for (std::size_t i = 0; i < options_.workflow_pollers; i++) {
    env_.spawn("workflow-poller", [this, normal, i] { workflow_poller(normal, i); }, {.daemon = true});
    env_.spawn("sticky-poller", [this, i] { workflow_poller(sticky_queue_, i); }, {.daemon = true});
  }
  for (std::size_t i = 0; i < options_.activity_pollers; i++) {
    env_.spawn("activity-poller", [this, i] { activity_poller(i); }, {.daemon = true});
  }
}

Worker::~Worker() {
  // Runs unwind their coroutines; the stacks they return go to stacks_,
  // which is destroyed after cache_... so clear the cache first.
  cache_.clear();
}

sim::Result<std::string> Worker::call(std::string_view method, std::string payload, sim::Duration timeout) {
  sim::Result<std::string> reply =
      caller_->call_raw(method, payload, {.try_timeout = timeout, .deadline = sim::TimePoint::max(),
                                          .attempts_max = kCallAttemptsMax});
  stats_.call_failures = caller_->stats().failed_tries;
  return reply;
}

// --- Workflow tasks ------------------------------------------------------------------------

void Worker::workflow_poller(TaskQueue queue, std::size_t index) {
  const std::string identity = fmt::format("{}/{}-{}", env_.name(), queue.kind == TaskQueueKind::kSticky ? "sticky" : "wf", index);
  for (;;) {
    // A slot first: no task is taken from the server that nobody can run.
    if (!workflow_slots_.receive().ok()) return;
    PollWorkflowTaskQueueRequest poll{queue, identity,
                                      fmt::format("{}/{}/{}", identity, env_.incarnation(), ++poll_seq_)};
    sim::Result<PollWorkflowTaskQueueReply> task =
        call<PollWorkflowTaskQueueReply>(method::kPollWorkflowTaskQueue, poll, options_.poll_timeout);
    if (!task.ok() || !task.value().has_task) {
      DURO_ASSERT(workflow_slots_.try_send(1));
      if (!task.ok()) env_.sleep_for(std::chrono::milliseconds{200});
      continue;
    }
    run_workflow_task(std::move(task).value());
  }
}

void Worker::run_workflow_task(PollWorkflowTaskQueueReply task) {
  DURO_ASSERT(task.has_task);
  env_.spawn("workflow-task", [this, task = std::move(task)]() mutable {
    // The slot goes back however the handler ends (a crash unwinds the
    // fiber: then the whole worker, channel included, is gone).
    struct Slot {
      Worker* worker;
      ~Slot() { (void)worker->workflow_slots_.try_send(1); }
    } slot{this};
    if (task.query) {
      handle_query(task);
    } else {
      handle_workflow_task(std::move(task));
    }
  });
}

bool Worker::fetch_history(const WorkflowExecution& execution, EventId from, EventId last,
                           std::vector<HistoryEvent>& events) {
  EventId next = from;
  for (std::uint32_t page = 0; next != 0 && page < kHistoryPagesMax; page++) {
    sim::Result<GetWorkflowExecutionHistoryReply> more = call<GetWorkflowExecutionHistoryReply>(
        method::kGetWorkflowExecutionHistory, GetWorkflowExecutionHistoryRequest{execution, next, kHistoryPageEvents},
        options_.rpc_timeout);
    if (!more.ok()) return false;
    for (HistoryEvent& event : more.value().events) {
      if (last != 0 && event.event_id > last) return true;
      events.push_back(std::move(event));
    }
    next = more.value().next_event_id;
    if (last != 0 && !events.empty() && events.back().event_id >= last) return true;
  }
  return last == 0 || (!events.empty() && events.back().event_id >= last);
}

std::unique_ptr<sdk::WorkflowRun> Worker::new_run(const sdk::WorkflowDefinition* definition,
                                                  const PollWorkflowTaskQueueReply& task) {
  return std::make_unique<sdk::WorkflowRun>(definition, task.execution, task.workflow_type, stacks_);
}

void Worker::handle_workflow_task(PollWorkflowTaskQueueReply task) {
  stats_.workflow_tasks++;
  const sim::TraceSlice slice(env_.sim(), [&] {
    return fmt::format("{} {} ({})", task.query ? "query" : "workflow task", task.workflow_type,
                       task.execution.workflow_id);
  });
  const sdk::WorkflowDefinition* definition = registry_.find_workflow(task.workflow_type);
  if (definition == nullptr) {
    RespondWorkflowTaskFailedRequest failed{
        task.task_token, WorkflowTaskFailedCause::kWorkflowWorkerUnhandledFailure,
        worker_failure("UnknownWorkflowType",
                       fmt::format("worker {} has no workflow type \"{}\"", env_.name(), task.workflow_type)),
        env_.name()};
    stats_.task_failures++;
    (void)call<Ack>(method::kRespondWorkflowTaskFailed, failed, options_.rpc_timeout);
    return;
  }
  sim::Result<std::vector<HistoryEvent>> decoded = decode_events(task.history);
  if (!decoded.ok()) {
    // Bytes the server sent that do not decode: a bug there, not ours to
    // mend. The task times out and comes again, maybe to a better server.
    env_.sim().trace("worker", fmt::format("workflow task {}: history does not decode: {}", task.execution.workflow_id,
                                           sim::to_string(decoded.error())));
    return;
  }
  std::vector<HistoryEvent> events = std::move(decoded).value();
  if (task.next_page_event_id != 0 && !fetch_history(task.execution, task.next_page_event_id, task.started_event_id, events)) {
    return;  // The task times out and comes again.
  }
  // The cached run, if it continues exactly where this task's events start.
  std::unique_ptr<sdk::WorkflowRun> run = cache_.take(task.execution.run_id);
  const bool hit = run != nullptr && !events.empty() && run->last_started_event_id() == task.previous_started_event_id &&
                   run->continues_with(events.front());
  if (hit) {
    stats_.cache_hits++;
  } else {
    stats_.cache_misses++;
    run = new_run(definition, task);
    if (events.empty() || events.front().event_id != 1) {
      // A sticky task's events continue a run this worker no longer has:
      // fetch the whole history and replay it.
      std::vector<HistoryEvent> full;
      if (!fetch_history(task.execution, 1, task.started_event_id, full)) return;
      // Keep what the task brought past the fetched page, if anything.
      for (HistoryEvent& event : events) {
        if (full.empty() || event.event_id > full.back().event_id) full.push_back(std::move(event));
      }
      events = std::move(full);
    }
    stats_.replayed_events += events.size();
  }
  std::optional<sdk::TaskAnswer> answer = run->apply(events);
  if (!answer) {
    // The events did not end with a task to answer: a history this worker
    // cannot use. Let the task time out and come again.
    return;
  }
  if (observer_) {
    observer_(TaskReport{task.execution, task.workflow_type, task.started_event_id, hit, *answer});
  }
  if (answer->divergence) stats_.nondeterminism++;  // Also when it failed the workflow instead of the task.
  if (answer->failed) {
    stats_.task_failures++;
    (void)call<Ack>(method::kRespondWorkflowTaskFailed,
                    RespondWorkflowTaskFailedRequest{task.task_token, answer->cause, answer->failure, env_.name()},
                    options_.rpc_timeout);
    return;  // The run is poisoned: the retry replays from scratch.
  }
  RespondWorkflowTaskCompletedRequest completed;
  completed.task_token = task.task_token;
  completed.commands = std::move(answer->commands);
  completed.identity = env_.name();
  completed.build_id = options_.build_id;
  bool keep = !run->finished() && !run->poisoned() && options_.cache_size > 0;
  if (keep && options_.fuzz_eviction_probability > 0 && env_.random().bernoulli(options_.fuzz_eviction_probability)) {
    keep = false;
    stats_.fuzz_evictions++;
  }
  if (keep) {
    completed.sticky_task_queue = sticky_queue_;
    completed.sticky_schedule_to_start_timeout = options_.sticky_schedule_to_start;
  }
  const std::size_t asked = ask_for_eager_activities(completed);
  sim::Result<RespondWorkflowTaskCompletedReply> done = call<RespondWorkflowTaskCompletedReply>(
      method::kRespondWorkflowTaskCompleted, completed, options_.rpc_timeout);
  if (!done.ok()) {
    run_eager_activities({}, asked);  // Any the server started end at their start-to-close timeout.
    if (done.error().code == sim::ErrorCode::kNotFound) stats_.stale_responses++;
    return;  // Whether the server took it is unknown: the run cannot be trusted.
  }
  run_eager_activities(std::move(done.value().activity_tasks), asked);
  if (keep) stats_.evictions += cache_.put(task.execution.run_id, std::move(run));
}

std::size_t Worker::ask_for_eager_activities(RespondWorkflowTaskCompletedRequest& completed) {
  // A task that closes the run gets none (the server would refuse).
  const bool closes = std::any_of(completed.commands.begin(), completed.commands.end(),
                                  [](const Command& command) { return is_close_command(command_type(command)); });
  if (closes) return 0;
  std::size_t asked = 0;
  for (const Command& command : completed.commands) {
    if (asked == kEagerActivitiesPerTaskMax || eager_activities_held_ >= options_.eager_activity_slots) break;
    const auto* schedule = std::get_if<ScheduleActivityTask>(&command);
    if (schedule == nullptr) continue;
    // The server starts only activities on the run's own task queue, which
    // is the one this worker polls.
    const bool own_queue = schedule->task_queue.name.empty() || schedule->task_queue.name == options_.task_queue;
    if (!own_queue || registry_.find_activity(schedule->activity_type) == nullptr) continue;
    completed.eager_activity_ids.push_back(schedule->activity_id);
    eager_activities_held_++;
    asked++;
  }
  DURO_ASSERT(asked <= kEagerActivitiesPerTaskMax);
  DURO_ASSERT(asked == 0 || eager_activities_held_ <= options_.eager_activity_slots);
  return asked;
}

void Worker::run_eager_activities(std::vector<PollActivityTaskQueueReply> tasks, std::size_t asked) {
  DURO_ASSERT_MSG(tasks.size() <= asked, "the server started eager activities the worker did not ask for");
  DURO_ASSERT(eager_activities_held_ >= asked);
  eager_activities_held_ -= asked - tasks.size();
  for (PollActivityTaskQueueReply& task : tasks) {
    stats_.eager_activities++;
    env_.spawn("eager-activity", [this, task = std::move(task)] {
      // The slot goes back however the activity ends (a crash unwinds the
      // fiber, and the worker with it).
      struct Slot {
        Worker* worker;
        ~Slot() { worker->eager_activities_held_--; }
      } slot{this};
      handle_activity_task(task);
    });
  }
}

void Worker::handle_query(const PollWorkflowTaskQueueReply& task) {
  stats_.queries++;
  const sim::TraceSlice slice(env_.sim(), [&] {
    return fmt::format("query {} {} ({})", task.query->query_type, task.workflow_type, task.execution.workflow_id);
  });
  RespondQueryTaskCompletedRequest answer;
  answer.task_token = task.task_token;
  const sdk::WorkflowDefinition* definition = registry_.find_workflow(task.workflow_type);
  if (definition == nullptr) {
    answer.failure = worker_failure("UnknownWorkflowType", "no workflow type \"" + task.workflow_type + "\"");
    (void)call<Ack>(method::kRespondQueryTaskCompleted, answer, options_.rpc_timeout);
    return;
  }
  // A query reads the state after the last completed task, wherever it is
  // answered — else one client could see the state go back from one query
  // to the next (the entity-workflows scenario found it). The cache has it
  // only if its run is at exactly that task: a worker that lost the
  // workflow's stickiness keeps an older copy, and one whose last answer
  // was not recorded holds a newer one. So the history says which task is
  // the last completed, and anything else is replayed up to it (and not
  // cached: the workflow task in flight, if any, belongs to whoever holds it).
  std::vector<HistoryEvent> events;
  if (!fetch_history(task.execution, 1, 0, events)) return;
  EventId last_completed_started = 0;
  for (auto event = events.rbegin(); event != events.rend(); ++event) {
    if (const auto* completed = event->as<WorkflowTaskCompleted>()) {
      last_completed_started = completed->started_event_id;
      break;
    }
  }
  std::unique_ptr<sdk::WorkflowRun> cached = cache_.take(task.execution.run_id);
  if (cached != nullptr && cached->last_started_event_id() != last_completed_started) {
    stats_.stale_cache_queries++;
    if (cached->last_started_event_id() > last_completed_started) {
      // Ahead: its task's completion was recorded after this read. Keep it
      // for the next task; answer from a replay.
      stats_.evictions += cache_.put(task.execution.run_id, std::move(cached));
    }
    cached.reset();  // Behind: the next workflow task replays anyway.
  }
  sdk::QueryAnswer result;
  if (cached != nullptr) {
    result = cached->query(task.query->query_type, task.query->args);
    stats_.evictions += cache_.put(task.execution.run_id, std::move(cached));
  } else if (last_completed_started == 0) {
    result.failure = worker_failure("QueryNotReady", "the workflow has not completed a workflow task yet");
  } else {
    // The same state the cache would hold: history up to the last
    // completed task and the command events it produced (written right
    // after its WorkflowTaskCompleted), replayed — so side effects and
    // patches read their markers, never run again. Signals recorded after
    // it are not in the answer yet (the next task will see them), as they
    // are not in a cached run's.
    auto completed = std::find_if(events.rbegin(), events.rend(),
                                  [](const HistoryEvent& event) { return event.is<WorkflowTaskCompleted>(); });
    DURO_ASSERT(completed != events.rend());
    auto end = completed.base();  // Just after the WorkflowTaskCompleted.
    while (end != events.end() && is_command_event(end->type())) ++end;
    events.erase(end, events.end());
    std::unique_ptr<sdk::WorkflowRun> run = new_run(definition, task);
    std::optional<sdk::TaskAnswer> failed = run->apply(events, /*run_last_task=*/false);
    if (failed && failed->failed) {
      result.failure = failed->failure;
    } else {
      result = run->query(task.query->query_type, task.query->args);
    }
  }
  answer.result = std::move(result.result);
  answer.failure = std::move(result.failure);
  (void)call<Ack>(method::kRespondQueryTaskCompleted, answer, options_.rpc_timeout);
}

// --- Activity tasks ------------------------------------------------------------------------

sim::Result<void> Worker::complete_activity(const std::string& task_token, Payload result) {
  RespondActivityTaskCompletedRequest completed{task_token, std::move(result), env_.name(), {}, {}};
  // A slot first, as a poller takes one: no task is taken that nobody can run.
  const bool slot = options_.eager_workflow_tasks && workflow_slots_.try_receive().has_value();
  if (slot) {
    completed.eager_sticky_queue = sticky_queue_;
    completed.eager_poll_request_id = fmt::format("{}/eager/{}/{}", env_.name(), env_.incarnation(), ++poll_seq_);
  }
  sim::Result<RespondActivityTaskCompletedReply> reply = call<RespondActivityTaskCompletedReply>(
      method::kRespondActivityTaskCompleted, completed, options_.rpc_timeout);
  if (reply.ok() && reply.value().workflow_task.has_task) {
    DURO_ASSERT_MSG(slot, "the server started an eager workflow task the worker did not ask for");
    DURO_ASSERT(!reply.value().workflow_task.query);
    stats_.eager_workflow_tasks++;
    run_workflow_task(std::move(reply.value().workflow_task));
    return {};
  }
  // None: the task, if any, goes through matching. One the server started
  // for a reply that was lost ends at its start-to-close timeout.
  if (slot) DURO_ASSERT(workflow_slots_.try_send(1));
  if (!reply.ok()) return reply.error();
  return {};
}

void Worker::activity_poller(std::size_t index) {
  const std::string identity = fmt::format("{}/act-{}", env_.name(), index);
  for (;;) {
    PollActivityTaskQueueRequest poll{TaskQueue{options_.task_queue, TaskQueueKind::kNormal}, identity,
                                      fmt::format("{}/{}/{}", identity, env_.incarnation(), ++poll_seq_)};
    sim::Result<PollActivityTaskQueueReply> task =
        call<PollActivityTaskQueueReply>(method::kPollActivityTaskQueue, poll, options_.poll_timeout);
    if (!task.ok()) {
      env_.sleep_for(std::chrono::milliseconds{200});
      continue;
    }
    if (!task.value().has_task) continue;
    handle_activity_task(task.value());
  }
}

void Worker::handle_activity_task(const PollActivityTaskQueueReply& task) {
  stats_.activity_tasks++;
  const sim::TraceSlice slice(env_.sim(), [&] {
    return fmt::format("activity {} ({} #{})", task.activity_type, task.execution.workflow_id, task.attempt);
  });
  const sdk::ActivityDefinition* definition = registry_.find_activity(task.activity_type);
  sim::Result<Ack> done = sim::Error{sim::ErrorCode::kUnavailable, ""};
  auto fail = [&](Failure failure, const Payload& details) {
    failure.source = "activity";
    done = call<Ack>(method::kRespondActivityTaskFailed,
                     RespondActivityTaskFailedRequest{task.task_token, std::move(failure), env_.name(), details},
                     options_.rpc_timeout);
  };
  if (definition == nullptr) {
    Failure failure = worker_failure("UnknownActivityType",
                                     fmt::format("worker {} has no activity type \"{}\"", env_.name(), task.activity_type));
    failure.non_retryable = false;  // Another worker may have it.
    fail(std::move(failure), {});
  } else {
    sdk::ActivityInfo info{task.execution,
                           task.workflow_type,
                           task.activity_id,
                           task.activity_type,
                           task.attempt,
                           task.scheduled_time,
                           task.current_attempt_scheduled_time,
                           task.started_time,
                           task.schedule_to_close_timeout,
                           task.start_to_close_timeout,
                           task.heartbeat_timeout};
    const std::string token = task.task_token;
    sdk::ActivityContext context(env_, std::move(info), task.heartbeat_details, [this, token](const Payload& details) {
      sim::Result<RecordActivityTaskHeartbeatReply> reply = call<RecordActivityTaskHeartbeatReply>(
          method::kRecordActivityTaskHeartbeat, RecordActivityTaskHeartbeatRequest{token, details, env_.name()},
          options_.rpc_timeout);
      // NotFound: the attempt is over (timed out, or the activity was
      // cancelled and closed): stop as if cancelled.
      if (!reply.ok()) return reply.error().code == sim::ErrorCode::kNotFound;
      return reply.value().cancel_requested;
    });
    // Only the activity's own failures are caught: FiberUnwind (the node
    // crashed) passes through.
    try {
      Payload result = definition->body(context, task.input);
      sim::Result<void> completed = complete_activity(task.task_token, std::move(result));
      done = completed.ok() ? sim::Result<Ack>{Ack{}} : sim::Result<Ack>{completed.error()};
    } catch (const sdk::CanceledError& error) {
      done = call<Ack>(method::kRespondActivityTaskCanceled,
                       RespondActivityTaskCanceledRequest{task.task_token, context.latest_details(), env_.name()},
                       options_.rpc_timeout);
    } catch (const sdk::WorkflowError& error) {
      fail(error.failure(), context.latest_details());
    } catch (const std::exception& error) {
      fail(Failure{"Error", error.what(), {}, false, TimeoutType::kNone, "activity"}, context.latest_details());
    }
  }
  if (!done.ok() && done.error().code == sim::ErrorCode::kNotFound) stats_.stale_responses++;
}

}  // namespace duro::worker
