#include "engine/server/shard.h"

#include <algorithm>
#include <optional>
#include <span>
#include <utility>

#include "engine/history/history.h"
#include "sim/assert.h"

namespace duro::engine {
namespace {

using sim::Error;
using sim::ErrorCode;

Error not_owned(std::uint32_t shard) {
  return Error{ErrorCode::kUnavailable, "ShardNotOwned: shard " + std::to_string(shard) + " is not active here"};
}

constexpr std::size_t kCloseWaitersPerRunMax = 1024;
constexpr std::size_t kLockWaitersMax = 4096;
constexpr int kUpdateAttemptsMax = 3;
// A write the store's RPC server refused at its concurrency bound is sent
// again, up to this many times, after a pause that doubles (with jitter:
// the writes refused together do not come back together).
constexpr int kOverloadedWriteRetriesMax = 8;
constexpr sim::Duration kOverloadedWriteBackoffInitial = std::chrono::milliseconds{5};
constexpr sim::Duration kOverloadedWriteBackoffMax = std::chrono::milliseconds{500};
constexpr std::uint32_t kReadBatchesMax = 256;
// What a cached run keeps of the history batches it last appended: enough
// for the events since a sticky worker's previous workflow task in the
// common case (a few batches of a few hundred bytes), bounded so that a
// full cache holds at most cached_runs_max x 16 KiB (16 MiB a shard by
// default) of them.
constexpr std::size_t kRecentBatchesMax = 8;
constexpr std::size_t kRecentBytesMax = 16 * 1024;

// A page of history stops growing past this many bytes (it may pass it by
// one batch, which a store write bounds): far below what a message may
// carry, however large the events' payloads.
constexpr std::size_t kHistoryPageBytesMax = std::size_t{4} << 20;

// Appends the events of `batches` (whole, contiguous, in order) from
// `from_event_id` on, while `out`
// holds fewer than `max_events` and kHistoryPageBytesMax; returns the id
// after the last appended (`from_event_id` if none). Whole batches are
// copied as bytes; only one that starts before `from_event_id` or does not
// fit is decoded.
EventId collect_events(std::span<const store::HistoryBatch> batches, EventId from_event_id, std::uint32_t max_events,
                       EncodedEventsWriter& out) {
  EventId next = from_event_id;
  const auto full = [&] { return out.count() >= max_events || out.bytes() >= kHistoryPageBytesMax; };
  for (const store::HistoryBatch& batch : batches) {
    if (full()) break;
    const EventId end = batch.first_event_id + batch.event_count;
    if (end <= from_event_id) continue;
    DURO_ASSERT(batch.event_count > 0);
    if (batch.first_event_id >= from_event_id &&
        out.count() + static_cast<std::uint64_t>(batch.event_count) <= max_events) {
      out.append_batch(batch.events, static_cast<std::uint64_t>(batch.event_count));
      next = end;
      continue;
    }
    sim::Result<std::vector<HistoryEvent>> events = decode_events(std::string_view{batch.events});
    // The store checksums what it keeps, and this owner wrote the rest:
    // bytes that do not decode are a bug in this code, not a disk fault.
    DURO_ASSERT_MSG(events.ok(), "a stored history batch does not decode");
    for (const HistoryEvent& event : events.value()) {
      if (event.event_id < from_event_id) continue;
      if (full()) break;
      out.append(event);
      next = event.event_id + 1;
    }
  }
  return next;
}

store::ExecutionKey key_of(const WorkflowExecution& execution) {
  DURO_ASSERT(!execution.run_id.empty());
  return store::ExecutionKey{execution.workflow_id, execution.run_id};
}

}  // namespace

// Holds a workflow id's lock for a scope.
struct Shard::Locked {
  Shard* shard;
  std::string workflow_id;
  ~Locked() { shard->unlock(workflow_id); }
};

Shard::Shard(Context context, std::uint32_t shard_id, std::int64_t range_id, sim::TimePoint time_floor)
    : context_(std::move(context)),
      shard_id_(shard_id),
      range_id_(range_id),
      clock_(context_.env->clock(), time_floor) {
  DURO_ASSERT(range_id > 0);
  DURO_ASSERT(shard_id < context_.options->shard_count);
  DURO_ASSERT(context_.options->cached_runs_max > 0);  // remember() evicts one to make room.
  // Task ids rise across owners: each range id owns its own block.
  DURO_ASSERT(range_id < (std::int64_t{1} << 30));
  task_id_next_ = range_id << 32;
}

Shard::~Shard() { cancel_fibers(); }

void Shard::cancel_fibers() {
  // The last reference may be dropped by one of the shard's own fibers, and
  // stop() may be called from one: that one ends by itself.
  const sim::Simulator* sim = sim::Simulator::current_or_null();
  const std::uint64_t self = sim != nullptr && sim->in_fiber() ? sim::this_fiber::id() : 0;
  for (const sim::FiberHandle& fiber : fibers_) {
    if (fiber.valid() && !fiber.done() && fiber.id() != self) fiber.cancel();
  }
}

void Shard::catch_up_clock(sim::TimePoint run_time) {
  if (run_time <= now()) return;
  clock_.advance_to(run_time);
  // Timers may be due now that were not: the loop waits on the old time.
  if (timer_waiting_) context_.env->sim().notify(timer_waiter_);
}

sim::TimePoint Shard::deadline_after(sim::Duration duration) const { return context_.env->sim().deadline_after(duration); }

std::string Shard::next_request_id() {
  // "shard/range/seq". A (shard, range id) pair names one owner in the whole
  // cluster and its whole life: the store hands out each range id once, to
  // the one take that raised it (ShardController), and a Shard lives for
  // one range id. No node name or incarnation, then: short ids fit a
  // std::string's inline buffer, and the store copies and hashes each one.
  if (request_id_prefix_.empty()) {
    request_id_prefix_ = std::to_string(shard_id_) + "/" + std::to_string(range_id_) + "/";
  }
  return request_id_prefix_ + std::to_string(++request_seq_);
}

std::int64_t Shard::next_task_id() {
  DURO_ASSERT_MSG(task_id_next_ < ((range_id_ + 1) << 32), "a range id's block of task ids is used up");
  return task_id_next_++;
}

// --- Life ----------------------------------------------------------------------------------------------

sim::Result<void> Shard::start() {
  DURO_ASSERT(!active_ && !stopped_);
  if (sim::Result<void> loaded = load_transfer_tasks(); !loaded.ok()) return loaded;
  if (sim::Result<void> loaded = load_timer_tasks(now() + context_.options->timer_lookahead); !loaded.ok()) {
    return loaded;
  }
  active_ = true;
  std::shared_ptr<Shard> self = shared_from_this();
  const std::string prefix = "shard-" + std::to_string(shard_id_) + "/";
  fibers_.push_back(context_.env->spawn(prefix + "transfer", [self] { self->transfer_loop(); }, {.daemon = true}));
  fibers_.push_back(context_.env->spawn(prefix + "timers", [self] { self->timer_loop(); }, {.daemon = true}));
  fibers_.push_back(context_.env->spawn(prefix + "acks", [self] { self->ack_loop(); }, {.daemon = true}));
  return {};
}

void Shard::stop(const std::string& why, bool notify) {
  if (stopped_) return;
  stopped_ = true;
  active_ = false;
  cancel_fibers();
  for (auto& [key, waiters] : close_waiters_) {
    for (const sim::Waiter& waiter : waiters) context_.env->sim().notify(waiter);
  }
  close_waiters_.clear();
  cache_.clear();
  closed_order_.clear();
  open_order_.clear();
  current_runs_.clear();
  if (transfer_waiting_) context_.env->sim().notify(transfer_waiter_);
  if (timer_waiting_) context_.env->sim().notify(timer_waiter_);
  if (ack_waiting_) context_.env->sim().notify(ack_waiter_);
  if (notify && context_.on_stopped) context_.on_stopped(shard_id_, why);
}

// --- Locks and cache -------------------------------------------------------------------------------------

sim::Result<sim::Mutex*> Shard::lock(const std::string& workflow_id) {
  auto it = locks_.find(workflow_id);
  if (it == locks_.end()) {
    if (spare_locks_.empty()) {
      it = locks_.emplace(workflow_id, LockEntry{std::make_unique<sim::Mutex>(), 0}).first;
    } else {
      Locks::node_type spare = std::move(spare_locks_.back());
      spare_locks_.pop_back();
      spare.key() = workflow_id;
      it = locks_.insert(std::move(spare)).position;
    }
  }
  LockEntry& entry = it->second;
  DURO_ASSERT(entry.mutex != nullptr);
  if (entry.mutex->waiting() >= kLockWaitersMax) {
    if (entry.users == 0) release_lock(it);
    return Error{ErrorCode::kOverloaded, "too many requests waiting on workflow " + workflow_id};
  }
  entry.users++;
  sim::Mutex* mutex = entry.mutex.get();
  sim::Result<void> locked = mutex->lock(deadline_after(context_.options->rpc_timeout));
  if (!locked.ok()) {
    auto again = locks_.find(workflow_id);
    DURO_ASSERT(again != locks_.end() && again->second.users > 0);
    if (--again->second.users == 0) release_lock(again);
    return locked.error();
  }
  return mutex;
}

void Shard::unlock(const std::string& workflow_id) {
  auto it = locks_.find(workflow_id);
  DURO_ASSERT(it != locks_.end() && it->second.users > 0);
  it->second.mutex->unlock();
  if (--it->second.users == 0) release_lock(it);
}

void Shard::release_lock(Locks::iterator entry) {
  DURO_ASSERT(entry->second.users == 0);
  // Nobody holds it or waits on it: the mutex is as new.
  DURO_ASSERT(!entry->second.mutex->locked() && entry->second.mutex->waiting() == 0);
  if (spare_locks_.size() >= kSpareLocksMax) {
    locks_.erase(entry);
    return;
  }
  spare_locks_.push_back(locks_.extract(entry));
}

Shard::SnapshotPtr Shard::remember(store::ExecutionKey key, Snapshot&& snapshot, store::HistoryBatch* appended) {
  auto entry = cache_.find(key);
  if (entry == cache_.end()) {
    if (cache_.size() >= context_.options->cached_runs_max) {
      // A closed run first (it takes no more tasks), else the open run
      // used least recently: deterministic, and what a cache should drop.
      const store::ExecutionKey* victim = !closed_order_.empty() ? closed_order_.front() : open_order_.front();
      evict(cache_.find(*victim));
    }
    entry = cache_.emplace(std::move(key), CachedRun{}).first;
    entry->second.position = open_order_.insert(open_order_.end(), &entry->first);
  }
  CachedRun& cached = entry->second;
  // Only a run that opens or closes here moves between the orders.
  if (const bool closed = !snapshot.state.running(); closed != cached.closed) {
    std::list<const store::ExecutionKey*>& from = cached.closed ? closed_order_ : open_order_;
    std::list<const store::ExecutionKey*>& to = closed ? closed_order_ : open_order_;
    to.splice(to.end(), from, cached.position);
    cached.closed = closed;
  } else {
    touch(cached);
  }
  std::vector<store::HistoryBatch>& recent = cached.recent;
  // A write without events (an activity's start) keeps the batches; one
  // that does not continue them starts them again.
  if (appended != nullptr) {
    const bool contiguous = !recent.empty() && recent.back().first_event_id + recent.back().event_count ==
                                                   appended->first_event_id;
    if (!contiguous) recent.clear();
    recent.push_back(std::move(*appended));
  }
  std::size_t bytes = 0;
  for (const store::HistoryBatch& batch : recent) bytes += batch.events.size();
  std::size_t dropped = 0;
  while (dropped < recent.size() && (recent.size() - dropped > kRecentBatchesMax || bytes > kRecentBytesMax)) {
    bytes -= recent[dropped++].events.size();
  }
  recent.erase(recent.begin(), recent.begin() + static_cast<std::ptrdiff_t>(dropped));
  // The batches end where the state does, or there are none.
  if (!snapshot.state.running() ||
      (!recent.empty() && recent.back().first_event_id + recent.back().event_count != snapshot.state.next_event_id)) {
    recent.clear();
  }
  cached.snapshot = std::make_shared<const Snapshot>(std::move(snapshot));
  DURO_ASSERT(recent.size() <= kRecentBatchesMax);
  DURO_ASSERT(closed_order_.size() + open_order_.size() == cache_.size());
  DURO_ASSERT(cache_.size() <= context_.options->cached_runs_max);
  return cached.snapshot;
}

void Shard::touch(CachedRun& run) {
  std::list<const store::ExecutionKey*>& order = run.closed ? closed_order_ : open_order_;
  order.splice(order.end(), order, run.position);
}

void Shard::evict(RunCache::iterator entry) {
  DURO_ASSERT(entry != cache_.end());
  (entry->second.closed ? closed_order_ : open_order_).erase(entry->second.position);
  cache_.erase(entry);
}

void Shard::forget(const WorkflowExecution& execution) {
  if (!execution.run_id.empty()) {
    if (auto cached = cache_.find(execution); cached != cache_.end()) evict(cached);
  }
  current_runs_.erase(execution.workflow_id);
}

sim::Result<std::string> Shard::resolve_run(const std::string& workflow_id) {
  if (auto it = current_runs_.find(workflow_id); it != current_runs_.end()) return it->second;
  sim::Result<store::GetCurrentReply> current =
      context_.router->store<store::GetCurrentReply>(store::kGetCurrentMethod, store::GetCurrentRequest{workflow_id});
  if (!current.ok()) return Error{ErrorCode::kUnavailable, "store: " + sim::to_string(current.error())};
  if (!current.value().found) return Error{ErrorCode::kNotFound, "NotFound: workflow " + workflow_id};
  current_runs_[workflow_id] = current.value().record.run_id;
  return current.value().record.run_id;
}

sim::Result<Shard::SnapshotPtr> Shard::load_locked(const WorkflowExecution& execution, bool* from_cache) {
  if (!active_) return not_owned(shard_id_);
  if (from_cache != nullptr) *from_cache = true;
  if (!execution.run_id.empty()) {
    // The common case: a task's run, looked up as it is.
    if (auto it = cache_.find(execution); it != cache_.end()) {
      touch(it->second);
      return it->second.snapshot;
    }
  }
  return load_missed(execution, from_cache);
}

sim::Result<Shard::SnapshotPtr> Shard::load_missed(const WorkflowExecution& execution, bool* from_cache) {
  WorkflowExecution resolved = execution;
  if (resolved.run_id.empty()) {
    if (from_cache != nullptr && !current_runs_.contains(execution.workflow_id)) *from_cache = false;
    sim::Result<std::string> run = resolve_run(execution.workflow_id);
    if (!run.ok()) return run.error();
    resolved.run_id = run.value();
    if (auto it = cache_.find(resolved); it != cache_.end()) {
      touch(it->second);
      return it->second.snapshot;
    }
  }
  if (from_cache != nullptr) *from_cache = false;
  stats_.cache_misses++;
  sim::Result<store::GetExecutionReply> reply = context_.router->store<store::GetExecutionReply>(
      store::kGetExecutionMethod, store::GetExecutionRequest{key_of(resolved)});
  if (!reply.ok()) return Error{ErrorCode::kUnavailable, "store: " + sim::to_string(reply.error())};
  if (!active_) return not_owned(shard_id_);
  if (!reply.value().found) {
    return Error{ErrorCode::kNotFound, "NotFound: workflow " + resolved.workflow_id + " run " + resolved.run_id};
  }
  DURO_ASSERT_MSG(reply.value().shard_id == shard_id_, "the store holds a run under another shard");
  sim::Result<MutableState> state = sim::decode<MutableState>(reply.value().mutable_state);
  // The store checksums what it keeps: bytes that do not decode here are a
  // bug in this code, not a disk fault.
  DURO_ASSERT_MSG(state.ok(), "a stored mutable state does not decode");
  Snapshot snapshot{std::move(state).value(), reply.value().version};
  DURO_ASSERT(snapshot.state.execution == resolved);
  DURO_ASSERT(snapshot.state.next_event_id == reply.value().next_event_id);
  return remember(key_of(resolved), std::move(snapshot));
}

sim::Result<Shard::SnapshotPtr> Shard::load(const WorkflowExecution& execution) {
  if (!active_) return not_owned(shard_id_);
  sim::Result<sim::Mutex*> locked = lock(execution.workflow_id);
  if (!locked.ok()) return locked.error();
  Locked guard{this, execution.workflow_id};
  return load_locked(execution);
}

// --- Writes -----------------------------------------------------------------------------------------------

sim::Result<void> Shard::update(const WorkflowExecution& execution, const Op& op, SnapshotPtr* after_out) {
  if (!active_) return not_owned(shard_id_);
  sim::Result<sim::Mutex*> locked = lock(execution.workflow_id);
  if (!locked.ok()) return locked.error();
  Locked guard{this, execution.workflow_id};
  bool rechecked = false;
  for (int attempt = 0; attempt < kUpdateAttemptsMax; attempt++) {
    bool from_cache = false;
    sim::Result<SnapshotPtr> loaded = load_locked(execution, &from_cache);
    if (!loaded.ok()) return loaded.error();
    // The mutator changes a copy: the cache keeps the run as it was until
    // the store takes the change.
    const WriteBase base = base_of(*loaded.value());
    Snapshot after = *loaded.value();
    catch_up_clock(after.state.last_event_time);
    ExecutionMutator mutator(after.state, now(), context_.options->limits, &loaded.value()->state);
    sim::Result<void> result = op(mutator);
    Mutation mutation = mutator.take_mutation();
    if (mutation.empty()) {
      // A refusal, or a no-op because the target is missing, decided on a
      // cached copy may only mean the copy is stale: this node lost the
      // shard for a while and the run moved on under another owner. Writes
      // are fenced; decisions that write nothing are not, so they are made
      // again on what the store holds before anyone is told.
      const bool refused = mutation.stale_reference || (!result.ok() && result.error().code == ErrorCode::kNotFound);
      if (refused && from_cache && !rechecked) {
        rechecked = true;
        stats_.stale_rechecks++;
        forget(after.state.execution);
        forget(execution);
        continue;
      }
      return result;
    }
    for (const std::string& warning : mutation.warnings) {
      if (context_.on_warning) context_.on_warning(warning);
    }
    sim::Result<void> written = write(after.state.execution, base, after, mutation, false, std::nullopt, after_out);
    if (written.ok()) return result;
    if (written.error().code != ErrorCode::kAlreadyExists) return written.error();
    // The stored run moved on under us (another write of ours that timed
    // out and landed, or a previous owner's): read it again and redo.
    stats_.write_conflicts++;
    forget(after.state.execution);
  }
  return Error{ErrorCode::kUnavailable, "workflow " + execution.workflow_id + " kept changing under the update"};
}

sim::Result<void> Shard::write(const WorkflowExecution& execution, WriteBase before, Snapshot& after,
                               Mutation& mutation, bool create, const std::optional<std::string>& current_condition,
                               SnapshotPtr* written_out) {
  DURO_ASSERT(active_);
  DURO_ASSERT(execution == after.state.execution);
  DURO_ASSERT(create == (before.version == 0));
  store::WriteRequest request;
  request.request_id = next_request_id();
  request.shard_id = shard_id_;
  request.range_id = range_id_;

  store::ExecutionWrite& run = request.executions.emplace_back();
  run.workflow_id = execution.workflow_id;
  run.run_id = execution.run_id;
  run.expected_version = before.version;
  if (!mutation.events.empty()) {
    DURO_ASSERT(mutation.events.front().event_id == (create ? 1 : before.next_event_id));
    DURO_ASSERT(mutation.events.back().event_id + 1 == after.state.next_event_id);
    run.append = store::HistoryBatch{mutation.events.front().event_id,
                                     static_cast<std::int64_t>(mutation.events.size()), encode_events(mutation.events)};
  }
  run.mutable_state = sim::encode(after.state);
  run.closed = !after.state.running();

  if (create) {
    request.currents.push_back(store::CurrentWrite{
        current_condition,
        store::CurrentRecord{execution.workflow_id, execution.run_id, true, after.state.start_request_id, 0}});
  } else if (mutation.closed && !mutation.new_run) {
    request.currents.push_back(store::CurrentWrite{
        execution.run_id, store::CurrentRecord{execution.workflow_id, execution.run_id, false,
                                               after.state.start_request_id,
                                               static_cast<std::uint8_t>(after.state.status)}});
  }
  std::vector<std::pair<std::int64_t, TransferTaskInfo>> transfer;
  std::vector<std::pair<std::int64_t, TimerTaskInfo>> timers;
  auto add_tasks = [&](std::vector<TransferTaskInfo>& new_transfer, std::vector<TimerTaskInfo>& new_timers) {
    for (TransferTaskInfo& task : new_transfer) {
      const std::int64_t id = next_task_id();
      request.transfer_tasks.push_back(store::TransferTask{id, sim::encode(task)});
      transfer.emplace_back(id, std::move(task));
    }
    for (TimerTaskInfo& task : new_timers) {
      const std::int64_t id = next_task_id();
      request.timer_tasks.push_back(store::TimerTask{task.fire_time, id, sim::encode(task)});
      timers.emplace_back(id, std::move(task));
    }
  };
  add_tasks(mutation.transfer, mutation.timers);
  if (mutation.new_run) {
    NewRun& next = *mutation.new_run;
    const WorkflowExecution& next_execution = next.state.execution;
    DURO_ASSERT(next_execution.workflow_id == execution.workflow_id);
    store::ExecutionWrite& created = request.executions.emplace_back();
    created.workflow_id = next_execution.workflow_id;
    created.run_id = next_execution.run_id;
    created.expected_version = 0;
    created.append = store::HistoryBatch{1, static_cast<std::int64_t>(next.events.size()), encode_events(next.events)};
    created.mutable_state = sim::encode(next.state);
    request.currents.push_back(store::CurrentWrite{
        execution.run_id, store::CurrentRecord{execution.workflow_id, next_execution.run_id, true,
                                               next.state.start_request_id, 0}});
    add_tasks(next.transfer, next.timers);
  }

  stats_.writes++;
  sim::Result<store::WriteReply> reply = context_.router->store<store::WriteReply>(store::kWriteMethod, request);
  // The store's server refuses a request at its bound before running it
  // (kOverloaded): under load that is no reason to reload the shard, as an
  // unknown outcome is. The same request again is safe whatever became of
  // other copies of it (the network may duplicate one, and a copy may have
  // run): the store answers a request id it has seen with what it recorded.
  sim::Duration backoff = kOverloadedWriteBackoffInitial;
  for (int retry = 0; retry < kOverloadedWriteRetriesMax && !stopped_ && !reply.ok() &&
                      reply.error().code == ErrorCode::kOverloaded;
       retry++) {
    stats_.overloaded_write_retries++;
    const auto half_ns = static_cast<std::uint64_t>(backoff.count() / 2);
    sim::this_fiber::sleep_for(sim::Duration{static_cast<std::int64_t>(half_ns + context_.env->random().uniform(half_ns + 1))});
    backoff = std::min(backoff * 2, kOverloadedWriteBackoffMax);
    if (stopped_) break;
    reply = context_.router->store<store::WriteReply>(store::kWriteMethod, request);
  }
  if (stopped_) return not_owned(shard_id_);
  if (!reply.ok()) {
    // Written or not, nobody can say: fence it off by taking the shard
    // again (range id + 1) and read everything back.
    stop("store write outcome unknown: " + sim::to_string(reply.error()), true);
    return Error{ErrorCode::kUnavailable, "store write outcome unknown; shard reloading"};
  }
  switch (reply.value().status) {
    case store::WriteStatus::kOk:
      break;
    case store::WriteStatus::kShardOwnershipLost:
      ownership_lost_ = true;
      stop("ShardOwnershipLost: " + reply.value().detail, true);
      return Error{ErrorCode::kUnavailable, "ShardOwnershipLost: shard " + std::to_string(shard_id_)};
    case store::WriteStatus::kConditionFailed:
      return Error{ErrorCode::kAlreadyExists, "WriteConflict: " + reply.value().detail};
    case store::WriteStatus::kInvalid:
      DURO_ASSERT_MSG(false, "the store refused a write as malformed");
      return Error{ErrorCode::kInvalidArgument, reply.value().detail};
  }
  after.version = before.version + 1;
  // `execution` may be after's own: copied before `after` moves into the
  // cache (a run's names cost less to copy than its state).
  const WorkflowExecution written = execution;
  // The batches the store took stay with the cached runs (request.executions
  // is not read again).
  std::optional<store::HistoryBatch>& appended = request.executions.front().append;
  SnapshotPtr cached = remember(key_of(written), std::move(after), appended.has_value() ? &*appended : nullptr);
  if (written_out != nullptr) *written_out = std::move(cached);
  if (create) current_runs_[written.workflow_id] = written.run_id;
  if (mutation.new_run) {
    DURO_ASSERT(request.executions.size() == 2 && request.executions.back().append.has_value());
    const WorkflowExecution next_execution = mutation.new_run->state.execution;
    current_runs_[written.workflow_id] = next_execution.run_id;
    remember(key_of(next_execution), Snapshot{std::move(mutation.new_run->state), 1},
             &*request.executions.back().append);
  }
  for (auto& [id, task] : transfer) enqueue_transfer(id, std::move(task));
  for (auto& [id, task] : timers) enqueue_timer(id, std::move(task));
  if (mutation.closed) notify_closed(written);
  return {};
}

sim::Result<StartWorkflowExecutionReply> Shard::start_workflow(const HistoryStartRequest& start) {
  const StartWorkflowExecutionRequest& request = start.request;
  if (!active_) return not_owned(shard_id_);
  if (request.workflow_id.empty()) return Error{ErrorCode::kInvalidArgument, "BadRequest: workflow id is empty"};
  if (request.request_id.empty()) return Error{ErrorCode::kInvalidArgument, "BadRequest: request id is empty"};
  sim::Result<sim::Mutex*> locked = lock(request.workflow_id);
  if (!locked.ok()) return locked.error();
  Locked guard{this, request.workflow_id};
  // An id this owner has no run of is most likely new: create the run on
  // the condition that the id has no current record at all (Temporal's
  // brand-new mode), and read the record only if it turns out to have one.
  // A new workflow costs one store call, not two.
  if (!current_runs_.contains(request.workflow_id)) {
    sim::Result<StartWorkflowExecutionReply> created = create_run(start, std::nullopt);
    if (created.ok()) stats_.brand_new_starts++;
    if (created.ok() || created.error().code != ErrorCode::kAlreadyExists) return created;
    stats_.start_conflicts++;
  }
  sim::Result<store::GetCurrentReply> current = context_.router->store<store::GetCurrentReply>(
      store::kGetCurrentMethod, store::GetCurrentRequest{request.workflow_id});
  if (!current.ok()) return Error{ErrorCode::kUnavailable, "store: " + sim::to_string(current.error())};
  if (!active_) return not_owned(shard_id_);
  std::optional<std::string> replaces;
  if (current.value().found) {
    const store::CurrentRecord& record = current.value().record;
    // Known from here on: the next start of this id reads the record
    // first, without trying it as new.
    current_runs_[request.workflow_id] = record.run_id;
    replaces = record.run_id;
    if (record.start_request_id == request.request_id) return StartWorkflowExecutionReply{record.run_id, true};
    if (record.running) {
      if (!request.signal_name) {
        return Error{ErrorCode::kAlreadyExists,
                     "WorkflowExecutionAlreadyStarted: workflow " + request.workflow_id + " is running as run " +
                         record.run_id};
      }
      // Signal-with-start of a running workflow: a signal. Still under the
      // lock, so nothing starts or closes it in between.
      const WorkflowExecution running{request.workflow_id, record.run_id};
      for (int attempt = 0; attempt < kUpdateAttemptsMax; attempt++) {
        sim::Result<SnapshotPtr> loaded = load_locked(running);
        if (!loaded.ok()) return loaded.error();
        const WriteBase base = base_of(*loaded.value());
        Snapshot after = *loaded.value();
        catch_up_clock(after.state.last_event_time);
        ExecutionMutator mutator(after.state, now(), context_.options->limits);
        sim::Result<void> signalled =
            mutator.signal(*request.signal_name, request.signal_input, request.identity, request.request_id);
        if (!signalled.ok()) return signalled.error();
        Mutation mutation = mutator.take_mutation();
        if (mutation.empty()) return StartWorkflowExecutionReply{record.run_id, false};
        sim::Result<void> written = write(running, base, after, mutation, false, std::nullopt);
        if (written.ok()) return StartWorkflowExecutionReply{record.run_id, false};
        if (written.error().code != ErrorCode::kAlreadyExists) return written.error();
        forget(running);
      }
      return Error{ErrorCode::kUnavailable, "workflow " + request.workflow_id + " kept changing"};
    }
    const auto status = static_cast<WorkflowStatus>(record.close_status);
    switch (request.workflow_id_reuse_policy) {
      case WorkflowIdReusePolicy::kAllowDuplicate:
        break;
      case WorkflowIdReusePolicy::kAllowDuplicateFailedOnly:
        if (status == WorkflowStatus::kCompleted) {
          return Error{ErrorCode::kAlreadyExists, "WorkflowExecutionAlreadyStarted: workflow " + request.workflow_id +
                                                      " completed and the reuse policy allows failed runs only"};
        }
        break;
      case WorkflowIdReusePolicy::kRejectDuplicate:
        return Error{ErrorCode::kAlreadyExists, "WorkflowExecutionAlreadyStarted: workflow " + request.workflow_id +
                                                    " ran before and the reuse policy rejects duplicates"};
    }
  }
  sim::Result<StartWorkflowExecutionReply> created = create_run(start, replaces);
  if (!created.ok() && created.error().code == ErrorCode::kAlreadyExists) {
    // Someone changed the current run since we read it: the caller retries.
    current_runs_.erase(request.workflow_id);
    return Error{ErrorCode::kUnavailable, "workflow " + request.workflow_id + " changed during the start; retry"};
  }
  return created;
}

sim::Result<StartWorkflowExecutionReply> Shard::create_run(const HistoryStartRequest& start,
                                                           const std::optional<std::string>& replaces) {
  const StartWorkflowExecutionRequest& request = start.request;
  // The caller may have waited (for the workflow's lock, for the store).
  if (!active_) return not_owned(shard_id_);
  StartArgs args;
  args.execution = WorkflowExecution{request.workflow_id, {}};
  // From this incarnation's random stream: unique, and reproducible.
  args.execution.run_id = make_run_id(context_.env->random());
  args.workflow_type = request.workflow_type;
  args.task_queue = request.task_queue;
  args.input = request.input;
  args.workflow_execution_timeout = request.workflow_execution_timeout;
  args.workflow_run_timeout = request.workflow_run_timeout;
  args.workflow_task_timeout = request.workflow_task_timeout;
  args.retry_policy = request.retry_policy;
  args.parent = start.parent;
  args.parent_close_policy = start.parent_close_policy;
  args.identity = request.identity;
  args.request_id = request.request_id;
  args.signal_name = request.signal_name;
  args.signal_input = request.signal_input;
  args.signal_request_id = request.signal_name ? request.request_id : std::string{};
  sim::Result<std::unique_ptr<NewRun>> run = ExecutionMutator::start(args, now(), context_.options->limits);
  if (!run.ok()) return run.error();
  NewRun& started = *run.value();
  Snapshot after{std::move(started.state), 0};
  Mutation mutation;
  mutation.events = std::move(started.events);
  mutation.transfer = std::move(started.transfer);
  mutation.timers = std::move(started.timers);
  sim::Result<void> written = write(args.execution, WriteBase{}, after, mutation, true, replaces);
  if (!written.ok()) return written.error();
  return StartWorkflowExecutionReply{args.execution.run_id, true};
}

void Shard::notify_closed(const WorkflowExecution& execution) {
  auto it = close_waiters_.find(execution);
  if (it == close_waiters_.end()) return;
  for (const sim::Waiter& waiter : it->second) context_.env->sim().notify(waiter);
  close_waiters_.erase(it);
}

sim::Result<Shard::SnapshotPtr> Shard::wait_closed(const WorkflowExecution& execution, sim::TimePoint deadline) {
  for (int round = 0; round < 4; round++) {
    sim::Result<SnapshotPtr> snapshot = load(execution);
    if (!snapshot.ok()) return snapshot;
    if (!snapshot.value()->state.running() || context_.env->sim().now() >= deadline) return snapshot;
    std::vector<sim::Waiter>& waiters = close_waiters_[key_of(snapshot.value()->state.execution)];
    if (waiters.size() >= kCloseWaitersPerRunMax) return Error{ErrorCode::kOverloaded, "too many result waiters"};
    sim::Simulator& sim = context_.env->sim();
    const sim::Waiter waiter = sim.begin_wait();
    waiters.push_back(waiter);
    const sim::WakeReason reason = sim.suspend(waiter, "workflow result", deadline);
    if (!active_) return not_owned(shard_id_);
    if (reason == sim::WakeReason::kTimeout) {
      auto it = close_waiters_.find(snapshot.value()->state.execution);
      if (it != close_waiters_.end()) {
        std::erase_if(it->second, [&](const sim::Waiter& w) { return w.slot == waiter.slot && w.token == waiter.token; });
        if (it->second.empty()) close_waiters_.erase(it);
      }
      return load(execution);
    }
  }
  return load(execution);
}

sim::Result<Shard::HistoryPage> Shard::read_history(const WorkflowExecution& execution, EventId from_event_id,
                                                   std::uint32_t max_events) {
  HistoryPage page;
  WorkflowExecution resolved = execution;
  if (resolved.run_id.empty()) {
    sim::Result<SnapshotPtr> snapshot = load(execution);
    if (!snapshot.ok()) return snapshot.error();
    resolved.run_id = snapshot.value()->state.execution.run_id;
  }
  page.run_id = resolved.run_id;
  stats_.history_reads_from_store++;
  const std::uint32_t batches = std::clamp<std::uint32_t>(max_events, 1, kReadBatchesMax);
  sim::Result<store::ReadHistoryReply> read = context_.router->store<store::ReadHistoryReply>(
      store::kReadHistoryMethod, store::ReadHistoryRequest{key_of(resolved), std::max<EventId>(from_event_id, 1), batches});
  if (!read.ok()) return Error{ErrorCode::kUnavailable, "store: " + sim::to_string(read.error())};
  if (!read.value().found) return Error{ErrorCode::kNotFound, "NotFound: workflow " + resolved.workflow_id};
  EncodedEventsWriter writer;
  const EventId next = collect_events(read.value().batches, from_event_id, max_events, writer);
  page.events = std::move(writer).finish();
  page.next_event_id = next < read.value().next_event_id ? next : 0;
  return page;
}

sim::Result<Shard::HistoryPage> Shard::read_written_history(const WorkflowExecution& execution, EventId from_event_id,
                                                           std::uint32_t max_events) {
  DURO_ASSERT(max_events > 0);
  if (!active_ || execution.run_id.empty()) return read_history(execution, from_event_id, max_events);
  const auto cached = cache_.find(execution);
  if (cached == cache_.end() || cached->second.recent.empty() ||
      cached->second.recent.front().first_event_id > from_event_id) {
    return read_history(execution, from_event_id, max_events);
  }
  const std::vector<store::HistoryBatch>& recent = cached->second.recent;
  const EventId end = recent.back().first_event_id + recent.back().event_count;
  DURO_ASSERT(end == cached->second.snapshot->state.next_event_id);
  stats_.history_reads_from_writes++;
  HistoryPage page;
  page.run_id = execution.run_id;
  EncodedEventsWriter writer;
  const EventId next = collect_events(recent, from_event_id, max_events, writer);
  page.events = std::move(writer).finish();
  page.next_event_id = next < end ? next : 0;
  return page;
}

sim::Result<HistoryEvent> Shard::read_event(const WorkflowExecution& execution, EventId event_id) {
  sim::Result<HistoryPage> read = read_written_history(execution, event_id, 1);
  if (!read.ok()) return read.error();
  sim::Result<std::vector<HistoryEvent>> events = decode_events(read.value().events);
  DURO_ASSERT_MSG(events.ok(), "history read back does not decode");
  if (events.value().empty() || events.value().front().event_id != event_id) {
    return Error{ErrorCode::kNotFound, "event " + std::to_string(event_id) + " is not in history"};
  }
  return std::move(events.value().front());
}

}  // namespace duro::engine
