// Shard: the part of history one server node owns — a slice of the
// workflows (by workflow id hash), their state, and their task queues.
//
// A node owns a shard under a range id it took from the store
// (ShardController). Everything the shard writes is fenced by that range
// id, so when another node has taken the shard since, the write fails with
// kShardOwnershipLost and the shard stops: it never forks a history.
//
// Changing a run: update(execution, op) locks the workflow id (one change
// at a time per workflow, across all the node's fibers), loads the run's
// state (cache, else the store), runs `op` — an ExecutionMutator operation —
// on a copy, and writes the mutation: events, state and tasks in one
// conditional store write. Only when the store acknowledges does the cache
// take the new state and the task queues the new tasks. A write that fails
// on its condition reloads and retries `op`; one whose outcome is unknown
// (timeout) stops the shard: the controller takes it again (range id + 1,
// which fences the lost write) and reloads everything from the store.
//
// Task queues: transfer tasks run at once, timer tasks when this node's
// clock reaches their fire time. Both are loaded from the store when the
// shard starts (what the previous owner left), then fed by this owner's
// writes; timers further out than `timer_lookahead` stay in the store until
// a later scan. Executors run each task at least once and drop stale ones;
// completed tasks are deleted from the store in batches.
#pragma once

#include <cstdint>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "engine/history/encoded_events.h"
#include "engine/server/execution_mutator.h"
#include "engine/server/history_tasks.h"
#include "engine/server/internal_api.h"
#include "engine/server/mutable_state.h"
#include "engine/server/router.h"
#include "engine/server/server_options.h"
#include "engine/server/shard_clock.h"
#include "engine/store/key_hash.h"
#include "engine/store/store_api.h"
#include "sim/env.h"
#include "sim/mutex.h"

namespace duro::engine {

struct ShardStats {
  std::uint64_t writes = 0;
  std::uint64_t write_conflicts = 0;   // kConditionFailed: reloaded and retried.
  std::uint64_t overloaded_write_retries = 0;  // Refused at the store's bound: sent again.
  std::uint64_t transfer_tasks_done = 0;
  std::uint64_t timer_tasks_done = 0;
  std::uint64_t task_retries = 0;
  std::uint64_t cache_misses = 0;
  std::uint64_t history_reads_from_store = 0;
  std::uint64_t history_reads_from_writes = 0;  // Served from the batches this owner wrote last.
  std::uint64_t stale_rechecks = 0;  // Refusals decided again on a fresh read.
  std::uint64_t stale_timers = 0;  // Timers whose run had moved on: no update.
  std::uint64_t stale_timers_cached = 0;  // ... of them, told by the cached run at once: no fiber.
  std::uint64_t brand_new_starts = 0;  // Starts that created a run without reading the current record.
  std::uint64_t start_conflicts = 0;   // ... tried, and found a current record after all.
};

class Shard : public std::enable_shared_from_this<Shard> {
 public:
  struct Context {
    sim::Env* env;
    Router* router;
    const ServerOptions* options;
    std::string node_name;
    // Called once when the shard stops on its own (ownership lost, unknown
    // write outcome, store refused): the controller decides what next.
    std::function<void(std::uint32_t shard_id, const std::string& why)> on_stopped;
    // Warnings for the node's log (history size).
    std::function<void(const std::string& warning)> on_warning;
  };

  // A run's state as last written, and its record version in the store.
  // Shared and never changed once made: the cache and whoever loaded it
  // hold the same one, and an update changes a copy of its own.
  struct Snapshot {
    MutableState state;
    std::uint64_t version = 0;
  };
  using SnapshotPtr = std::shared_ptr<const Snapshot>;

  // `time_floor`: the shard time its previous owner last recorded (see
  // shard_clock.h).
  Shard(Context context, std::uint32_t shard_id, std::int64_t range_id, sim::TimePoint time_floor);
  ~Shard();
  Shard(const Shard&) = delete;
  Shard& operator=(const Shard&) = delete;

  std::uint32_t id() const noexcept { return shard_id_; }
  std::int64_t range_id() const noexcept { return range_id_; }
  // The shard's time: event timestamps and timer deadlines are on it.
  sim::TimePoint now() const noexcept { return clock_.now(); }
  bool active() const noexcept { return active_; }
  // The store refused a write with ShardOwnershipLost: another node took it.
  bool ownership_lost() const noexcept { return ownership_lost_; }
  const ShardStats& stats() const noexcept { return stats_; }

  // Loads the task queues and starts processing. From a fiber of the node.
  sim::Result<void> start();
  // Stops using the shard: no more writes, processors cancelled, waiters
  // woken. Idempotent. `notify`: tell the controller (on_stopped).
  void stop(const std::string& why, bool notify);

  // The run's state (the current run when execution.run_id is empty).
  sim::Result<SnapshotPtr> load(const WorkflowExecution& execution);

  // Runs `op` on the run and writes what it changed. `op` may return an
  // error and still have changed the run (a refused workflow task is
  // written as WorkflowTaskFailed): the write happens, then the error is
  // returned. `after`, if given, receives the state as written (null if
  // nothing was).
  using Op = std::function<sim::Result<void>(ExecutionMutator&)>;
  sim::Result<void> update(const WorkflowExecution& execution, const Op& op, SnapshotPtr* after = nullptr);

  // Starts a run (or, with a signal, signals the running one), applying the
  // id reuse policy; a retried start with the same request id returns the
  // run it started.
  sim::Result<StartWorkflowExecutionReply> start_workflow(const HistoryStartRequest& request);

  // Waits until the run is closed or the deadline passes; the state then.
  sim::Result<SnapshotPtr> wait_closed(const WorkflowExecution& execution, sim::TimePoint deadline);

  // A page of a run's history: its events from some id on, in binary form
  // (decoded only by whoever needs them as structs).
  struct HistoryPage {
    std::string run_id;  // The run read (resolves an empty run id).
    EncodedEvents events;
    EventId next_event_id = 0;  // Read on from here; 0: that was the end (of the history so far).
  };

  // Reads a run's events [from, ...) from the store, at most `max_events`.
  sim::Result<HistoryPage> read_history(const WorkflowExecution& execution, EventId from_event_id,
                                        std::uint32_t max_events);
  // The same, from the batches this owner wrote last when they reach back
  // to `from_event_id` (a sticky worker's new events, an activity's
  // scheduled event), else from the store. Events never change once
  // written, but the end of history read here is this owner's last write:
  // for callers that have just written under this shard, not for clients.
  sim::Result<HistoryPage> read_written_history(const WorkflowExecution& execution, EventId from_event_id,
                                                std::uint32_t max_events);

 private:
  struct Locked;
  sim::Result<std::string> resolve_run(const std::string& workflow_id);
  // Creates the run `start` asks for, on the condition that the workflow's
  // current record is `replaces` (nullopt: there is none). kAlreadyExists:
  // the condition failed.
  sim::Result<StartWorkflowExecutionReply> create_run(const HistoryStartRequest& start,
                                                      const std::optional<std::string>& replaces);
  // `from_cache`, if given, says whether the state came from the cache (it
  // may be stale if this node lost the shard) or was just read.
  sim::Result<SnapshotPtr> load_locked(const WorkflowExecution& execution, bool* from_cache = nullptr);
  // load_locked() past the cache's fast path: a run id to resolve, or the
  // store to read. Not inlined: its frame (a decoded state, 1.7 KB, and
  // the store's reply) would sit in every update's, and a fiber's stack
  // stays resident as deep as it ever ran.
  [[gnu::noinline]] sim::Result<SnapshotPtr> load_missed(const WorkflowExecution& execution, bool* from_cache);
  // A workflow's lock, while anyone holds or waits for it.
  struct LockEntry {
    std::unique_ptr<sim::Mutex> mutex;
    std::size_t users = 0;
  };
  // Hashed: looked up twice per request (lock, unlock), and never iterated.
  using Locks = std::unordered_map<std::string, LockEntry, store::StringHash, std::equal_to<>>;
  static constexpr std::size_t kSpareLocksMax = 64;

  sim::Result<sim::Mutex*> lock(const std::string& workflow_id);
  // Drops the lock entry of a workflow nobody holds or waits for.
  void release_lock(Locks::iterator entry);
  void unlock(const std::string& workflow_id);
  // What a write of a run is conditioned on: the record version it
  // replaces (0: it creates the run) and the event id its events start at.
  struct WriteBase {
    std::uint64_t version = 0;
    std::int64_t next_event_id = 1;
  };
  static WriteBase base_of(const Snapshot& snapshot) noexcept {
    return WriteBase{snapshot.version, snapshot.state.next_event_id};
  }
  // Writes the mutation of `execution` from `before` to `after`, and on
  // success moves `after` (with its new version) into the cache: it is
  // left moved-from, and so is `execution` if it is after's own.
  // `current_condition`: for a create, the current run it replaces (nullopt:
  // none). `written`, if given, receives the cached state on success.
  sim::Result<void> write(const WorkflowExecution& execution, WriteBase before, Snapshot& after, Mutation& mutation,
                          bool create, const std::optional<std::string>& current_condition,
                          SnapshotPtr* written = nullptr);
  std::string next_request_id();
  std::int64_t next_task_id();
  // Caches `snapshot` as the run's state, and returns it; `appended`, if
  // given, is the history batch the write of it appended (moved from).
  SnapshotPtr remember(store::ExecutionKey key, Snapshot&& snapshot, store::HistoryBatch* appended = nullptr);
  void forget(const WorkflowExecution& execution);
  void notify_closed(const WorkflowExecution& execution);

  // Queues.
  sim::Result<void> load_transfer_tasks();
  sim::Result<void> load_timer_tasks(sim::TimePoint up_to);
  void enqueue_transfer(std::int64_t task_id, TransferTaskInfo task);
  void enqueue_timer(std::int64_t task_id, TimerTaskInfo task);
  void transfer_loop();
  void timer_loop();
  void ack_loop();
  void wake(sim::Waiter& waiter);
  void run_transfer(std::int64_t task_id, TransferTaskInfo task);
  void run_timer(std::pair<std::int64_t, std::int64_t> key, TimerTaskInfo task);
  sim::Result<void> execute_transfer(const TransferTaskInfo& task);
  sim::Result<void> execute_timer(const TimerTaskInfo& task);
  // Acks a due timer at once if its run, as cached, shows it has nothing
  // left to do (most timers: the task started, the activity completed),
  // without a fiber, a lock or a copy of the run. False otherwise.
  bool ack_if_stale(std::map<std::pair<std::int64_t, std::int64_t>, TimerTaskInfo>::iterator timer);
  sim::Result<void> execute_start_child(const WorkflowExecution& parent, EventId initiated_event_id);
  sim::Result<void> execute_external(const WorkflowExecution& source, EventId initiated_event_id);
  sim::Result<void> execute_close(const WorkflowExecution& execution);
  sim::Result<HistoryEvent> read_event(const WorkflowExecution& execution, EventId event_id);
  void cancel_fibers();
  // Moves shard time up to a run's latest event time (see shard_clock.h)
  // and lets the timer loop look again.
  void catch_up_clock(sim::TimePoint run_time);
  sim::TimePoint deadline_after(sim::Duration duration) const;

  Context context_;
  const std::uint32_t shard_id_;
  const std::int64_t range_id_;
  ShardClock clock_;
  bool active_ = false;
  bool ownership_lost_ = false;
  bool stopped_ = false;

  // A cached run: its state, and the history batches this owner appended
  // to it last, contiguous and ending at the state's next event id (at
  // most 8 of them and 16 KiB; none for a
  // closed run, or one read from the store).
  struct CachedRun {
    SnapshotPtr snapshot;  // Never null.
    bool closed = false;   // In closed_order_, else in open_order_.
    std::vector<store::HistoryBatch> recent;
    std::list<const store::ExecutionKey*>::iterator position;  // Its place in its eviction order.
  };
  // Hashed: a shard caches up to cached_runs_max runs, and looks one up for
  // every task; a tree compared run ids at every level. Looked up by a
  // WorkflowExecution as well (no key to build for a lookup). Never
  // iterated: which run to evict comes from the orders below.
  using RunCache =
      std::unordered_map<store::ExecutionKey, CachedRun, store::ExecutionKeyHash, store::ExecutionKeyEqual>;
  RunCache cache_;
  // The eviction orders, of cache_'s keys (its nodes do not move): closed
  // runs go first, in the order they closed or were last used; then open
  // runs, least recently used first.
  std::list<const store::ExecutionKey*> closed_order_;
  std::list<const store::ExecutionKey*> open_order_;
  // Moves a cached run to the back of its eviction order: used last.
  void touch(CachedRun& run);
  void evict(RunCache::iterator entry);
  // Workflow id -> current run id, as this owner wrote or read it.
  std::unordered_map<std::string, std::string, store::StringHash, std::equal_to<>> current_runs_;
  Locks locks_;
  // Entries of unlocked workflows, mutex and map node included, for the
  // next lock to reuse: a workflow takes its lock a dozen times in its life,
  // and each took two allocations. At most kSpareLocksMax.
  std::vector<Locks::node_type> spare_locks_;
  // Runs in ExecutionKey's order, for close_waiters_; looked up by a
  // WorkflowExecution as well (no key to build for a lookup).
  struct RunOrder {
    using is_transparent = void;
    template <typename A, typename B>
    bool operator()(const A& a, const B& b) const noexcept {
      const int workflow = a.workflow_id.compare(b.workflow_id);
      return workflow != 0 ? workflow < 0 : a.run_id < b.run_id;
    }
  };
  // Ordered: stop() wakes the waiters in key order.
  std::map<store::ExecutionKey, std::vector<sim::Waiter>, RunOrder> close_waiters_;

  std::int64_t task_id_next_;
  std::uint64_t request_seq_ = 0;
  std::string request_id_prefix_;  // Of next_request_id(), once built.

  std::map<std::int64_t, TransferTaskInfo> transfer_pending_;
  std::set<std::int64_t> transfer_running_;
  std::map<std::pair<std::int64_t, std::int64_t>, TimerTaskInfo> timers_pending_;  // (fire time ns, task id).
  sim::TimePoint timers_loaded_up_to_{};
  std::size_t timers_running_ = 0;
  std::vector<std::int64_t> transfer_acks_;
  std::vector<std::pair<sim::TimePoint, std::int64_t>> timer_acks_;
  sim::Waiter transfer_waiter_{};
  sim::Waiter timer_waiter_{};
  sim::Waiter ack_waiter_{};  // The ack loop, idle until a task completes.
  bool transfer_waiting_ = false;
  bool timer_waiting_ = false;
  bool ack_waiting_ = false;
  std::vector<sim::FiberHandle> fibers_;
  ShardStats stats_;
};

}  // namespace duro::engine
