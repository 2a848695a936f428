// The shard's task queues: loading what the store holds, running transfer
// tasks at once and timer tasks at their time, deleting completed ones.
// (Part of Shard; see shard.h.)
#include <algorithm>
#include <utility>

#include "engine/history/history.h"
#include "engine/server/delivery_fuzz.h"
#include "engine/server/shard.h"
#include "sim/assert.h"

namespace duro::engine {
namespace {

using sim::Error;
using sim::ErrorCode;

constexpr sim::Duration kTaskBackoffInitial = std::chrono::milliseconds{100};
constexpr sim::Duration kTaskBackoffMax = std::chrono::seconds{10};
constexpr std::size_t kAcksPerCallMax = 4096;
constexpr std::uint32_t kTasksPerRead = 256;
constexpr sim::Duration kStoreRetry = std::chrono::seconds{1};

std::pair<std::int64_t, std::int64_t> timer_key(sim::TimePoint fire_time, std::int64_t task_id) {
  return {fire_time.time_since_epoch().count(), task_id};
}

}  // namespace

// --- Loading -------------------------------------------------------------------------------------------

sim::Result<void> Shard::load_transfer_tasks() {
  std::int64_t after = 0;
  // Bounded: each round reads a page; the in-memory bound ends it too.
  for (std::size_t round = 0; round < context_.options->tasks_in_memory_max / kTasksPerRead + 1; round++) {
    sim::Result<store::ReadTransferTasksReply> read = context_.router->store<store::ReadTransferTasksReply>(
        store::kReadTransferTasksMethod, store::ReadTransferTasksRequest{shard_id_, after, kTasksPerRead});
    if (!read.ok()) return Error{ErrorCode::kUnavailable, "store: " + sim::to_string(read.error())};
    for (const store::TransferTask& stored : read.value().tasks) {
      sim::Result<TransferTaskInfo> task = sim::decode<TransferTaskInfo>(stored.task);
      DURO_ASSERT_MSG(task.ok(), "a stored transfer task does not decode");
      DURO_ASSERT(stored.task_id > after);
      after = stored.task_id;
      transfer_pending_.emplace(stored.task_id, std::move(task).value());
    }
    if (!read.value().more) return {};
  }
  return Error{ErrorCode::kOverloaded, "shard " + std::to_string(shard_id_) + " holds more transfer tasks than " +
                                           std::to_string(context_.options->tasks_in_memory_max)};
}

sim::Result<void> Shard::load_timer_tasks(sim::TimePoint up_to) {
  sim::TimePoint after_time = timers_loaded_up_to_;
  std::int64_t after_id = timers_loaded_up_to_ == sim::TimePoint{} ? 0 : INT64_MAX;
  for (std::size_t round = 0; round < context_.options->tasks_in_memory_max / kTasksPerRead + 1; round++) {
    sim::Result<store::ReadTimerTasksReply> read = context_.router->store<store::ReadTimerTasksReply>(
        store::kReadTimerTasksMethod,
        store::ReadTimerTasksRequest{shard_id_, after_time, after_id, up_to, kTasksPerRead});
    if (!read.ok()) return Error{ErrorCode::kUnavailable, "store: " + sim::to_string(read.error())};
    for (const store::TimerTask& stored : read.value().tasks) {
      sim::Result<TimerTaskInfo> task = sim::decode<TimerTaskInfo>(stored.task);
      DURO_ASSERT_MSG(task.ok(), "a stored timer task does not decode");
      DURO_ASSERT(stored.fire_time <= up_to);
      after_time = stored.fire_time;
      after_id = stored.task_id;
      timers_pending_.emplace(timer_key(stored.fire_time, stored.task_id), std::move(task).value());
    }
    if (!read.value().more) {
      timers_loaded_up_to_ = up_to;
      return {};
    }
  }
  return Error{ErrorCode::kOverloaded, "shard " + std::to_string(shard_id_) + " holds more timers than " +
                                           std::to_string(context_.options->tasks_in_memory_max)};
}

void Shard::wake(sim::Waiter& waiter) { context_.env->sim().notify(waiter); }

void Shard::enqueue_transfer(std::int64_t task_id, TransferTaskInfo task) {
  if (!active_) return;
  transfer_pending_.emplace(task_id, std::move(task));
  if (transfer_waiting_) wake(transfer_waiter_);
}

void Shard::enqueue_timer(std::int64_t task_id, TimerTaskInfo task) {
  if (!active_) return;
  // Beyond what is loaded it stays in the store: the next scan reads it.
  if (task.fire_time > timers_loaded_up_to_) return;
  const sim::TimePoint fire_time = task.fire_time;
  timers_pending_.emplace(timer_key(fire_time, task_id), std::move(task));
  if (timer_waiting_) wake(timer_waiter_);
}

// --- Processing ----------------------------------------------------------------------------------------

void Shard::transfer_loop() {
  sim::Simulator& sim = context_.env->sim();
  while (active_) {
    auto next = std::find_if(transfer_pending_.begin(), transfer_pending_.end(),
                             [&](const auto& entry) { return !transfer_running_.contains(entry.first); });
    if (next != transfer_pending_.end() && transfer_running_.size() < context_.options->transfer_concurrency) {
      const std::int64_t id = next->first;
      transfer_running_.insert(id);
      std::shared_ptr<Shard> self = shared_from_this();
      TransferTaskInfo task = next->second;
      fibers_.push_back(context_.env->spawn("shard-" + std::to_string(shard_id_) + "/transfer-task",
                                            [self, id, task = std::move(task)]() mutable {
                                              self->run_transfer(id, std::move(task));
                                            }));
      continue;
    }
    // Finished fibers need no handle.
    std::erase_if(fibers_, [](const sim::FiberHandle& fiber) { return fiber.done(); });
    transfer_waiter_ = sim.begin_wait();
    transfer_waiting_ = true;
    sim.suspend(transfer_waiter_, "transfer tasks");
    transfer_waiting_ = false;
  }
}

void Shard::run_transfer(std::int64_t task_id, TransferTaskInfo task) {
  sim::Duration backoff = kTaskBackoffInitial;
  while (active_) {
    sim::Result<void> done = execute_transfer(task);
    if (done.ok() || !active_) break;
    stats_.task_retries++;
    sim::this_fiber::sleep_for(backoff);
    backoff = std::min(backoff * 2, kTaskBackoffMax);
  }
  transfer_running_.erase(task_id);
  if (!active_) return;
  transfer_pending_.erase(task_id);
  transfer_acks_.push_back(task_id);
  if (ack_waiting_) wake(ack_waiter_);
  stats_.transfer_tasks_done++;
  if (transfer_waiting_) wake(transfer_waiter_);
}

void Shard::timer_loop() {
  sim::Simulator& sim = context_.env->sim();
  const sim::Duration lookahead = context_.options->timer_lookahead;
  while (active_) {
    const sim::TimePoint now = this->now();
    if (timers_loaded_up_to_ - now < lookahead / 2) {
      sim::Result<void> loaded = load_timer_tasks(now + lookahead);
      if (!loaded.ok()) {
        if (!active_) return;
        sim::this_fiber::sleep_for(kStoreRetry);
        continue;
      }
    }
    sim::TimePoint wake_at = timers_loaded_up_to_ - lookahead / 2;
    if (!timers_pending_.empty()) {
      const auto& [key, task] = *timers_pending_.begin();
      if (task.fire_time <= now) {
        if (ack_if_stale(timers_pending_.begin())) continue;
        if (timers_running_ < context_.options->timer_concurrency) {
          auto first = timers_pending_.begin();
          const auto task_key = first->first;
          TimerTaskInfo due = std::move(first->second);
          timers_pending_.erase(first);
          timers_running_++;
          std::shared_ptr<Shard> self = shared_from_this();
          fibers_.push_back(context_.env->spawn("shard-" + std::to_string(shard_id_) + "/timer-task",
                                                [self, task_key, due = std::move(due)]() mutable {
                                                  self->run_timer(task_key, std::move(due));
                                                }));
          continue;
        }
        wake_at = sim::TimePoint::max();  // An executor finishing wakes us.
      } else {
        wake_at = std::min(wake_at, task.fire_time);
      }
    }
    std::erase_if(fibers_, [](const sim::FiberHandle& fiber) { return fiber.done(); });
    timer_waiter_ = sim.begin_wait();
    timer_waiting_ = true;
    sim::TimePoint deadline = wake_at == sim::TimePoint::max() ? wake_at : clock_.true_at(wake_at);
    // true_at rounds: waking a nanosecond early would find nothing due and
    // wait for the same instant again, forever. Always move time forward.
    if (deadline <= sim.now()) deadline = sim.now() + sim::Duration{1};
    sim.suspend(timer_waiter_, "timer tasks", deadline);
    timer_waiting_ = false;
  }
}

bool Shard::ack_if_stale(std::map<std::pair<std::int64_t, std::int64_t>, TimerTaskInfo>::iterator timer) {
  DURO_ASSERT(timer != timers_pending_.end());
  const TimerTaskInfo& task = timer->second;
  const auto cached = cache_.find(task.execution);
  if (cached == cache_.end()) return false;
  DURO_ASSERT(cached->second.snapshot != nullptr);
  const MutableState& state = cached->second.snapshot->state;
  // The run as cached is the last state the store took: the cache changes
  // only after the store answers ok (and before the write's timers are
  // queued), and a write of unknown outcome stops the shard, cache and all.
  // Neither that state nor any later one can need this timer: what a timer
  // timed (a task or activity attempt, a user timer's start event, the run)
  // does not come back once gone. The one flag that can, a workflow task's
  // backoff, is set only by a write that queues a backoff timer of its own.
  // The ack itself is fenced by this owner's range id, like any other.
  if (ExecutionMutator::timer_may_act(state, task.kind)) return false;
  catch_up_clock(state.last_event_time);  // As an update would have.
  stats_.stale_timers++;
  stats_.stale_timers_cached++;
  stats_.timer_tasks_done++;
  timer_acks_.emplace_back(sim::TimePoint{sim::Duration{timer->first.first}}, timer->first.second);
  timers_pending_.erase(timer);
  if (ack_waiting_) wake(ack_waiter_);
  return true;
}

void Shard::run_timer(std::pair<std::int64_t, std::int64_t> key, TimerTaskInfo task) {
  // A timer fires at its time or after it, never before.
  hold_delivery_for_fuzz(*context_.env, context_.options->fuzz_delivery_hold_max);
  sim::Duration backoff = kTaskBackoffInitial;
  bool done = false;
  while (active_) {
    if (execute_timer(task).ok()) {
      done = true;
      break;
    }
    if (!active_) break;
    stats_.task_retries++;
    sim::this_fiber::sleep_for(backoff);
    backoff = std::min(backoff * 2, kTaskBackoffMax);
  }
  timers_running_--;
  if (!active_) return;
  if (done) {
    timer_acks_.emplace_back(sim::TimePoint{sim::Duration{key.first}}, key.second);
    if (ack_waiting_) wake(ack_waiter_);
    stats_.timer_tasks_done++;
  }
  if (timer_waiting_) wake(timer_waiter_);
}

void Shard::ack_loop() {
  sim::Simulator& sim = context_.env->sim();
  while (active_) {
    if (transfer_acks_.empty() && timer_acks_.empty()) {
      // Idle until a task completes: an idle shard's loop costs nothing
      // (polling every ack_interval was a tenth of an idle cluster's events).
      ack_waiter_ = sim.begin_wait();
      ack_waiting_ = true;
      sim.suspend(ack_waiter_, "completed tasks", sim::TimePoint::max());
      ack_waiting_ = false;
      if (!active_) return;
    }
    // Then gather for ack_interval: one call deletes many tasks.
    sim::this_fiber::sleep_for(context_.options->ack_interval);
    if (!active_) return;
    store::CompleteTasksRequest request;
    request.request_id = next_request_id();
    request.shard_id = shard_id_;
    request.range_id = range_id_;
    const std::size_t transfer_count = std::min(transfer_acks_.size(), kAcksPerCallMax);
    const std::size_t timer_count = std::min(timer_acks_.size(), kAcksPerCallMax);
    request.transfer_task_ids.assign(transfer_acks_.begin(), transfer_acks_.begin() + static_cast<std::ptrdiff_t>(transfer_count));
    request.timer_tasks.assign(timer_acks_.begin(), timer_acks_.begin() + static_cast<std::ptrdiff_t>(timer_count));
    sim::Result<store::WriteReply> reply =
        context_.router->store<store::WriteReply>(store::kCompleteTasksMethod, request);
    if (!active_) return;
    if (!reply.ok()) continue;  // Deleted or not, the ids stay listed: deleting twice is harmless.
    if (reply.value().status == store::WriteStatus::kShardOwnershipLost) {
      ownership_lost_ = true;
      stop("ShardOwnershipLost while deleting completed tasks", true);
      return;
    }
    transfer_acks_.erase(transfer_acks_.begin(), transfer_acks_.begin() + static_cast<std::ptrdiff_t>(transfer_count));
    timer_acks_.erase(timer_acks_.begin(), timer_acks_.begin() + static_cast<std::ptrdiff_t>(timer_count));
  }
}

// --- Executors -----------------------------------------------------------------------------------------

sim::Result<void> Shard::execute_transfer(const TransferTaskInfo& task) {
  const sim::TimePoint deadline = deadline_after(2 * context_.options->rpc_timeout);
  if (const auto* t = std::get_if<WorkflowTaskTransfer>(&task.kind)) {
    const AddTaskRequest add{t->task_queue,
                             MatchingTask{TaskToken::Kind::kWorkflow, task.execution, t->scheduled_event_id, t->attempt}};
    sim::Result<Ack> added = context_.router->matching<Ack>(t->task_queue, method::kMatchingAddTask, add, deadline);
    return added.ok() ? sim::Result<void>{} : sim::Result<void>{added.error()};
  }
  if (const auto* t = std::get_if<ActivityTaskTransfer>(&task.kind)) {
    const AddTaskRequest add{t->task_queue,
                             MatchingTask{TaskToken::Kind::kActivity, task.execution, t->scheduled_event_id, t->attempt}};
    sim::Result<Ack> added = context_.router->matching<Ack>(t->task_queue, method::kMatchingAddTask, add, deadline);
    return added.ok() ? sim::Result<void>{} : sim::Result<void>{added.error()};
  }
  if (const auto* t = std::get_if<StartChildTransfer>(&task.kind)) {
    return execute_start_child(task.execution, t->initiated_event_id);
  }
  if (const auto* t = std::get_if<ExternalTransfer>(&task.kind)) {
    return execute_external(task.execution, t->initiated_event_id);
  }
  DURO_ASSERT(std::holds_alternative<CloseTransfer>(task.kind));
  return execute_close(task.execution);
}

sim::Result<void> Shard::execute_start_child(const WorkflowExecution& parent, EventId initiated_event_id) {
  sim::Result<SnapshotPtr> snapshot = load(parent);
  if (!snapshot.ok()) return snapshot.error().code == ErrorCode::kNotFound ? sim::Result<void>{} : snapshot.error();
  const MutableState& state = snapshot.value()->state;
  auto child = state.children.find(initiated_event_id);
  if (!state.running() || child == state.children.end() || !child->second.run_id.empty()) return {};
  sim::Result<HistoryEvent> event = read_event(parent, initiated_event_id);
  if (!event.ok()) return event.error();
  const auto* initiated = event.value().as<StartChildWorkflowExecutionInitiated>();
  DURO_ASSERT_MSG(initiated != nullptr, "a pending child's initiated event is of another type");
  HistoryStartRequest start;
  StartWorkflowExecutionRequest& request = start.request;
  // The same id on every retry: the child starts once.
  request.request_id = parent.workflow_id + "/" + parent.run_id + "/child/" + std::to_string(initiated_event_id);
  request.workflow_id = initiated->workflow_id;
  request.workflow_type = initiated->workflow_type;
  request.task_queue = initiated->task_queue;
  request.input = initiated->input;
  request.workflow_execution_timeout = initiated->workflow_execution_timeout;
  request.workflow_run_timeout = initiated->workflow_run_timeout;
  request.workflow_task_timeout = initiated->workflow_task_timeout;
  request.retry_policy = initiated->retry_policy;
  request.workflow_id_reuse_policy = initiated->workflow_id_reuse_policy;
  request.identity = "parent:" + parent.workflow_id;
  start.parent = ParentInfo{parent, initiated_event_id};
  start.parent_close_policy = initiated->parent_close_policy;
  sim::Result<StartWorkflowExecutionReply> started = context_.router->history<StartWorkflowExecutionReply>(
      request.workflow_id, method::kHistoryStart, start, deadline_after(2 * context_.options->rpc_timeout));
  if (started.ok()) {
    const std::string run_id = started.value().run_id;
    return update(parent, [&](ExecutionMutator& mutator) {
      mutator.child_started(initiated_event_id, run_id);
      return sim::Result<void>{};
    });
  }
  if (started.error().code == ErrorCode::kAlreadyExists) {
    return update(parent, [&](ExecutionMutator& mutator) {
      mutator.child_start_failed(initiated_event_id, StartChildFailedCause::kWorkflowAlreadyExists);
      return sim::Result<void>{};
    });
  }
  return started.error();
}

sim::Result<void> Shard::execute_external(const WorkflowExecution& source, EventId initiated_event_id) {
  sim::Result<SnapshotPtr> snapshot = load(source);
  if (!snapshot.ok()) return snapshot.error().code == ErrorCode::kNotFound ? sim::Result<void>{} : snapshot.error();
  const MutableState& state = snapshot.value()->state;
  auto external = state.externals.find(initiated_event_id);
  if (!state.running() || external == state.externals.end()) return {};
  const ExternalInfo info = external->second;
  const std::string request_id =
      source.workflow_id + "/" + source.run_id + "/external/" + std::to_string(initiated_event_id);
  const sim::TimePoint deadline = deadline_after(2 * context_.options->rpc_timeout);
  sim::Result<Ack> delivered = sim::Error{ErrorCode::kUnavailable, ""};
  if (info.cancel) {
    const RequestCancelWorkflowExecutionRequest request{request_id, info.target, "requested by " + source.workflow_id,
                                                        "workflow:" + source.workflow_id};
    delivered = context_.router->history<Ack>(info.target.workflow_id, method::kHistoryRequestCancel, request, deadline);
  } else {
    sim::Result<HistoryEvent> event = read_event(source, initiated_event_id);
    if (!event.ok()) return event.error();
    const auto* initiated = event.value().as<SignalExternalWorkflowExecutionInitiated>();
    DURO_ASSERT_MSG(initiated != nullptr, "a pending signal's initiated event is of another type");
    const SignalWorkflowExecutionRequest request{request_id, info.target, initiated->signal_name, initiated->input,
                                                 "workflow:" + source.workflow_id};
    delivered = context_.router->history<Ack>(info.target.workflow_id, method::kHistorySignal, request, deadline);
  }
  if (delivered.ok()) {
    return update(source, [&](ExecutionMutator& mutator) {
      mutator.external_delivered(initiated_event_id);
      return sim::Result<void>{};
    });
  }
  if (delivered.error().code == ErrorCode::kNotFound) {
    return update(source, [&](ExecutionMutator& mutator) {
      mutator.external_failed(initiated_event_id, ExternalFailedCause::kExternalWorkflowNotFound);
      return sim::Result<void>{};
    });
  }
  return delivered.error();
}

sim::Result<void> Shard::execute_close(const WorkflowExecution& execution) {
  sim::Result<SnapshotPtr> snapshot = load(execution);
  if (!snapshot.ok()) return snapshot.error().code == ErrorCode::kNotFound ? sim::Result<void>{} : snapshot.error();
  const MutableState& state = snapshot.value()->state;
  DURO_ASSERT_MSG(!state.running(), "a close task for a running run");
  DURO_ASSERT(state.close_event.has_value());
  const sim::TimePoint deadline = deadline_after(2 * context_.options->rpc_timeout);
  // The parent hears of the chain's final close only: continue-as-new and
  // retries keep the child running, as one workflow, under a new run.
  if (state.parent && state.new_execution_run_id.empty()) {
    const ChildClosedRequest request{state.parent->execution, state.parent->initiated_event_id, execution,
                                     *state.close_event};
    sim::Result<Ack> told = context_.router->history<Ack>(state.parent->execution.workflow_id,
                                                          method::kHistoryChildClosed, request, deadline);
    if (!told.ok() && told.error().code != ErrorCode::kNotFound) return told.error();
  }
  for (const auto& [initiated, child] : state.children) {
    if (child.run_id.empty() || child.parent_close_policy == ParentClosePolicy::kAbandon) continue;
    const std::string request_id =
        execution.workflow_id + "/" + execution.run_id + "/parent-close/" + std::to_string(initiated);
    const WorkflowExecution target{child.workflow_id, child.run_id};
    sim::Result<Ack> applied = sim::Error{ErrorCode::kUnavailable, ""};
    if (child.parent_close_policy == ParentClosePolicy::kTerminate) {
      applied = context_.router->history<Ack>(
          child.workflow_id, method::kHistoryTerminate,
          TerminateWorkflowExecutionRequest{request_id, target, "parent closed", {}, "parent:" + execution.workflow_id},
          deadline);
    } else {
      applied = context_.router->history<Ack>(
          child.workflow_id, method::kHistoryRequestCancel,
          RequestCancelWorkflowExecutionRequest{request_id, target, "parent closed", "parent:" + execution.workflow_id},
          deadline);
    }
    if (!applied.ok() && applied.error().code != ErrorCode::kNotFound) return applied.error();
  }
  return {};
}

sim::Result<void> Shard::execute_timer(const TimerTaskInfo& task) {
  // Most timers find what they timed already done (a task started, an
  // activity completed): decided on the run as cached, such a timer costs
  // no copy of the run for an update that would write nothing. The update
  // below makes the same check again, on the state it changes.
  sim::Result<SnapshotPtr> run = load(task.execution);
  if (!run.ok()) return run.error().code == ErrorCode::kNotFound ? sim::Result<void>{} : run.error();
  if (!ExecutionMutator::timer_may_act(run.value()->state, task.kind)) {
    // As an update would have: shard time moves up to the run's.
    catch_up_clock(run.value()->state.last_event_time);
    stats_.stale_timers++;
    return {};
  }
  sim::Random& random = context_.env->random();
  sim::Result<void> result = update(task.execution, [&](ExecutionMutator& mutator) {
    mutator.fire_timer(task.kind, random);
    return sim::Result<void>{};
  });
  // A run that is gone (deleted) has nothing left to time out.
  if (!result.ok() && result.error().code == ErrorCode::kNotFound) return {};
  return result;
}

}  // namespace duro::engine
