// Matching: the task queues of one server node, where workers long-poll.
//
// Temporal's matching service without persistence. History hands matching
// a task (add_task) when a workflow task or an activity task is scheduled;
// a worker's poll takes the oldest task of its queue and asks history to
// record that it started (the StartWorkflowTask / StartActivityTask
// callbacks); the reply history builds is what the worker gets.
//
//   Matching matching(options, "server-1", incarnation, start_workflow_task,
//                     start_activity_task, build_query_task);
//   matching.add_task({"orders"}, MatchingTask{TaskToken::Kind::kActivity, execution, 5, 1});
//   // in a handler fiber for PollActivityTaskQueue:
//   sim::Result<PollActivityTaskQueueReply> reply = matching.poll_activity(request, deadline);
//
// Delivery. Matching holds tasks in memory only: a task lost with a crashed
// node, or refused here at a bound, is re-added by history, which keeps
// re-adding a scheduled task until it has started. So matching hands out at
// most what it was given, and at-least-once delivery comes from history.
// Within one process a task is never lost: a poll that is killed, or whose
// start fails with an error other than "stale", puts its task back at the
// head of its queue.
//
// A queue is named by the type of task it holds (workflow or activity), its
// kind and its name; a sticky queue is an ordinary queue of kind kSticky
// (history times out a sticky task nobody takes and re-adds it to the
// normal queue). Workflow queues also carry queries (query()), which take
// precedence over tasks.
//
// Fairness and determinism. Pollers of a queue are served in arrival order,
// tasks in the order added (a task put back goes to the head). When a task
// arrives and a poller waits, it is handed straight to the oldest poller
// (sync match). Every container is ordered; nothing depends on addresses or
// hash seeds.
//
// Bounds. Tasks per queue, pollers per queue, queries per queue and per
// node, and queues per node are bounded; beyond a bound the call fails at
// once with kOverloaded instead of queueing. A queue with no task, poller or
// query is dropped, so idle queues cost nothing. Every wait has a deadline.
//
// Polls, retries and lost replies. A poll that gets a task has made history
// record the task as started; if the poll's reply is then lost (a network
// fault, or the poll's deadline passed while history answered), the task
// is started but no worker has it: it times out in history (workflow task
// start-to-close, activity start-to-close or heartbeat) and history retries
// it. That is Temporal's behaviour. poll_request_id narrows the window: a
// poll carrying the id of a poll that already got a task gets that task
// again (while the last poll_replies_remembered are kept) if history still
// has it started for that poll, and nothing once it moved on — a retry
// minutes later must not run an attempt that timed out and was retried
// since (mrn-failover seed 16 ran one: a stale promote of a region, applied
// after its retries had begun); and a duplicate that arrives while its
// original still waits waits for the original's outcome instead of taking
// a second task. Workers must
// therefore use a fresh id for each poll and the same id only to retry it;
// an empty id opts out.
//
// Threading: every call runs in a fiber of the node that owns this object
// (the calls that wait must). A crash unwinds those fibers before it
// destroys the process, so waits never outlive the object; destroying it
// while a fiber waits in it is a bug and asserts.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "engine/history/event.h"
#include "engine/server/api.h"
#include "sim/clock.h"
#include "sim/codec.h"
#include "sim/result.h"
#include "sim/simulator.h"

namespace duro::engine {

// One task history hands to matching: which attempt of which workflow task
// or activity task to offer a poller. Nothing else: history builds the
// poller's reply when it records the start. Crosses the network (history
// may run on another node than the queue's owner).
struct MatchingTask {
  TaskToken::Kind kind = TaskToken::Kind::kWorkflow;  // kWorkflow or kActivity, never kQuery.
  WorkflowExecution execution;
  EventId scheduled_event_id = 0;
  std::int32_t attempt = 1;

  // The identity used for deduplication, and the order of std::set.
  auto operator<=>(const MatchingTask&) const = default;
};
DURO_CODEC_FIELDS(MatchingTask, kind, execution, scheduled_event_id, attempt);

// A query waiting for a worker, as BuildQueryTask sees it.
struct PendingQuery {
  std::string query_id;  // Unique on this node across its incarnations.
  TaskQueue task_queue;
  WorkflowExecution execution;
  QueryWorkflowRequest request;
};

struct MatchingOptions {
  std::size_t queues_max = 4096;              // Live queues on this node.
  std::size_t tasks_per_queue_max = 10'000;   // Queued or being started; add_task beyond: kOverloaded.
  std::size_t pollers_per_queue_max = 1024;   // Waiting polls beyond: kOverloaded.
  std::size_t queries_per_queue_max = 256;    // Not yet handed to a worker.
  std::size_t queries_max = 4096;             // Waiting on this node, handed out or not.
  std::size_t poll_replies_remembered = 256;  // For retried and duplicated polls.
  std::size_t poll_followers_max = 8;         // Duplicates waiting on one poll_request_id.
  // Stale tasks (or failed queries) one poll may skip before it gives up
  // and returns empty: a bound on the poll loop.
  std::size_t matches_per_poll_max = 1024;
  std::size_t queue_name_bytes_max = 1000;
};

struct MatchingStats {
  std::uint64_t tasks_added = 0;             // Accepted by add_task (queued or sync-matched).
  std::uint64_t tasks_deduped = 0;           // add_task of a task already queued or being started.
  std::uint64_t tasks_rejected = 0;          // add_task refused at a bound.
  std::uint64_t tasks_sync_matched = 0;      // Handed straight to a waiting poller.
  std::uint64_t tasks_dispatched = 0;        // Started by history and returned to a poller.
  std::uint64_t tasks_dropped_stale = 0;     // History said kNotFound/kAlreadyExists.
  std::uint64_t tasks_returned = 0;          // Put back at the head (start error, poller killed).
  std::uint64_t polls = 0;
  std::uint64_t polls_empty = 0;             // Ended at the deadline (or the loop bound) with nothing.
  std::uint64_t polls_rejected = 0;          // kOverloaded or kInvalidArgument.
  std::uint64_t polls_replayed = 0;          // Retries answered from what the poll got before.
  std::uint64_t polls_replayed_stale = 0;    // Of those: the task had moved on; answered empty.
  std::uint64_t queries_added = 0;
  std::uint64_t queries_delivered = 0;
  std::uint64_t queries_answered = 0;
  std::uint64_t queries_failed = 0;          // BuildQueryTask failed.
  std::uint64_t queries_timed_out = 0;
  std::size_t queues = 0;                    // Live now.
  std::size_t tasks_queued = 0;              // Now, over all queues.
  std::size_t pollers_waiting = 0;           // Now, over all queues.
  std::size_t queries_pending = 0;           // Now: waiting for a worker or its answer.
};

// One live queue, for stats and tests.
struct MatchingQueueInfo {
  TaskToken::Kind type = TaskToken::Kind::kWorkflow;  // What it holds: kWorkflow or kActivity.
  TaskQueue task_queue;
  std::size_t tasks = 0;    // Queued.
  std::size_t pollers = 0;  // Waiting.
  std::size_t queries = 0;  // Waiting for a poller.
};

class Matching {
 public:
  // Asks history to record that the task started, for this poll. The
  // reply is what the worker gets: task_token set (matching sets has_task).
  // Errors: kNotFound or kAlreadyExists mean the task is stale (the
  // workflow or activity moved on, or another poll started it; history
  // must answer so for a task already started by a different poll): it is
  // dropped and the poll matches the next one. Any other error (history
  // unreachable, kTimeout: outcome unknown) puts the task back at the head
  // of its queue and the poll returns that error; if history did record the
  // start, the next start of the task is refused as stale and it drops.
  using StartWorkflowTask =
      std::function<sim::Result<PollWorkflowTaskQueueReply>(const MatchingTask&, const PollWorkflowTaskQueueRequest&)>;
  using StartActivityTask =
      std::function<sim::Result<PollActivityTaskQueueReply>(const MatchingTask&, const PollActivityTaskQueueRequest&)>;
  // Builds the poll reply that carries a query: execution, workflow type,
  // history and the rest. Matching sets has_task, task_token and query. An
  // error fails the query with it (query() returns it) and the poll goes on.
  using BuildQueryTask =
      std::function<sim::Result<PollWorkflowTaskQueueReply>(const PendingQuery&, const PollWorkflowTaskQueueRequest&)>;

  // `node_name` goes into query task tokens (TaskToken::owner) so answers
  // find their way back here; `incarnation` (the node's boot count) keeps
  // query ids unique across restarts, so a late answer to a query of an
  // earlier incarnation never answers a new one.
  Matching(MatchingOptions options, std::string node_name, std::uint32_t incarnation,
           StartWorkflowTask start_workflow_task, StartActivityTask start_activity_task,
           BuildQueryTask build_query_task);
  ~Matching();
  Matching(const Matching&) = delete;
  Matching& operator=(const Matching&) = delete;

  // Offers `task` on `task_queue`: to the oldest waiting poller if there is
  // one, else at the tail of the queue. Does not wait. A task already queued
  // (or being started by a poll) is not added twice: ok, counted as a
  // dedupe. kOverloaded when the queue is full or no queue can be created;
  // kInvalidArgument for a malformed task.
  sim::Result<void> add_task(const TaskQueue& task_queue, MatchingTask task);

  // Long polls for a workflow task or a query on request.task_queue: returns
  // the first one that history starts (queries first), or {has_task=false}
  // exactly at `deadline` (a simulator instant) if none came. kOverloaded
  // when too many pollers already wait on the queue; the start's error when
  // history fails it (see StartWorkflowTask).
  sim::Result<PollWorkflowTaskQueueReply> poll_workflow(const PollWorkflowTaskQueueRequest& request,
                                                        sim::TimePoint deadline);
  // The same for activity tasks.
  sim::Result<PollActivityTaskQueueReply> poll_activity(const PollActivityTaskQueueRequest& request,
                                                        sim::TimePoint deadline);

  // Queues a query for `execution` on the workflow queue `task_queue` and
  // waits for a worker's answer (answer_query) until `deadline`: kTimeout
  // then, whether or not a worker took it. kOverloaded at the query bounds;
  // a BuildQueryTask error as is.
  sim::Result<QueryWorkflowReply> query(const TaskQueue& task_queue, WorkflowExecution execution,
                                        QueryWorkflowRequest request, sim::TimePoint deadline);

  // Delivers a worker's answer to the query named by `token` (a kQuery
  // token this node issued). kNotFound if nobody waits for it any more (it
  // timed out, was answered, or was issued before this node restarted);
  // kInvalidArgument for a token that is not a query token of this node.
  sim::Result<void> answer_query(const TaskToken& token, QueryWorkflowReply reply);

  MatchingStats stats() const;
  // Every live queue, in (type, kind, name) order.
  std::vector<MatchingQueueInfo> queues() const;
  // Tasks queued on one queue (0 if it does not exist).
  std::size_t queue_size(TaskToken::Kind type, const TaskQueue& task_queue) const;
  const std::string& node_name() const noexcept { return node_name_; }

 private:
  struct QueueKey {
    TaskToken::Kind type = TaskToken::Kind::kWorkflow;
    TaskQueueKind kind = TaskQueueKind::kNormal;
    std::string name;

    auto operator<=>(const QueueKey&) const = default;
  };

  // What a poll holds once matched: a task to start, or a query to deliver.
  struct Offer {
    std::optional<MatchingTask> task;
    std::string query_id;  // Set for a query.
  };

  // A poll waiting for an offer. Lives on the polling fiber's stack; the
  // queue points to it while it waits.
  struct Poller {
    sim::Waiter waiter;
    sim::Simulator* sim = nullptr;
    std::optional<Offer> offer;  // Set (then the poller notified) by whoever hands one over.
  };

  struct Queue {
    std::deque<MatchingTask> tasks;     // Oldest first.
    std::set<MatchingTask> held;        // Queued or being started: the dedupe set.
    std::map<std::uint64_t, Poller*> pollers;  // Waiting with no offer, by arrival.
    std::deque<std::string> queries;    // Query ids waiting for a poller, oldest first.
    std::size_t polls_active = 0;       // Polls inside poll_*() on this queue: keep it alive.
  };

  struct QueryState {
    PendingQuery query;
    QueueKey queue;
    sim::Simulator* sim = nullptr;  // Of the waiting fiber.
    sim::Waiter waiter;
    bool waiting = false;
    bool delivered = false;  // A worker has its token.
    std::optional<sim::Result<QueryWorkflowReply>> answer;
  };

  // A poll carrying a poll_request_id, while it runs: duplicates wait here.
  struct PollInFlight {
    std::map<std::uint64_t, sim::Waiter> followers;
  };

  // What a poll with a poll_request_id got. A task is remembered, not its
  // reply: a retry asks history to start it again, which answers the same
  // while the task is still the one this poll started and kNotFound once it
  // moved on (timed out, retried) — then the retry gets nothing rather than
  // a dead attempt to run. A query is remembered as it was handed out.
  struct RememberedPoll {
    QueueKey queue;
    std::optional<MatchingTask> task;
    std::optional<PollWorkflowTaskQueueReply> query;
  };

  class PollScope;
  class HeldOffer;

  template <typename Reply, typename Request, typename Start>
  sim::Result<Reply> poll(TaskToken::Kind type, const Request& request, sim::TimePoint deadline, const Start& start);
  // A duplicate of a poll still in flight: waits for it to end, then
  // answers as replay() does.
  template <typename Reply, typename Request, typename Start>
  sim::Result<Reply> follow(const QueueKey& key, const Request& request, sim::TimePoint deadline, const Start& start);
  void remember(const std::string& poll_request_id, RememberedPoll remembered);
  // The answer to a retry of a poll that got something (nullopt: none
  // remembered): the query again, or the task again if history still has
  // it started for this poll, else an empty reply.
  template <typename Reply, typename Request, typename Start>
  std::optional<sim::Result<Reply>> replay(const QueueKey& key, const Request& request, const Start& start);

  sim::Result<QueueKey> key_of(TaskToken::Kind type, const TaskQueue& task_queue) const;
  Queue* find_queue(const QueueKey& key);
  const Queue* find_queue(const QueueKey& key) const;
  sim::Result<Queue*> open_queue(const QueueKey& key);
  void close_if_idle(const QueueKey& key);

  // Hands a task to the oldest waiting poller, or queues it (at the head
  // for a task put back). The task's key must already be in queue.held.
  void offer_task(Queue& queue, MatchingTask task, bool at_head);
  void offer_query(Queue& queue, std::string query_id, bool at_head);
  // Takes what a poll should get now: a live query first, then a task.
  std::optional<Offer> take(Queue& queue);
  // Waits as a poller until offered something or the deadline.
  std::optional<Offer> wait_for_offer(Queue& queue, sim::TimePoint deadline);
  // An offer a poll could not use: back to the head of its queue.
  void give_back(Queue& queue, Offer offer);
  void check_queue(const Queue& queue) const;
  void wake_query(QueryState& state);

  MatchingOptions options_;
  std::string node_name_;
  std::uint32_t incarnation_;
  StartWorkflowTask start_workflow_task_;
  StartActivityTask start_activity_task_;
  BuildQueryTask build_query_task_;

  std::map<QueueKey, Queue> queues_;
  std::map<std::string, QueryState> queries_;
  std::map<std::string, PollInFlight> polls_in_flight_;
  std::map<std::string, RememberedPoll> replies_;
  std::deque<std::string> replies_order_;  // Oldest first: the eviction order.
  std::uint64_t poller_seq_next_ = 0;
  std::uint64_t query_seq_next_ = 0;
  MatchingStats stats_;
};

}  // namespace duro::engine
