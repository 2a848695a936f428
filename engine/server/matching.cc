#include "engine/server/matching.h"

#include <algorithm>
#include <type_traits>
#include <utility>

namespace duro::engine {

namespace {

using sim::Error;
using sim::ErrorCode;

// History's word that a task is no longer to be handed out: the workflow or
// activity moved on, or another poll started it.
bool is_stale(const Error& error) {
  return error.code == ErrorCode::kNotFound || error.code == ErrorCode::kAlreadyExists;
}

bool is_task_kind(TaskToken::Kind kind) {
  return kind == TaskToken::Kind::kWorkflow || kind == TaskToken::Kind::kActivity;
}

}  // namespace

// --- Scopes -------------------------------------------------------------------

// Everything a poll registers, undone however the poll ends (an unwinding
// fiber included): the queue's count of active polls, which keeps the
// queue alive under the poll's references, and the poll_request_id that
// duplicates wait on.
class Matching::PollScope {
 public:
  PollScope(Matching& matching, const QueueKey& key, Queue& queue, const std::string& poll_request_id)
      : matching_(matching), key_(key), queue_(queue), poll_request_id_(poll_request_id) {
    queue_.polls_active++;
    if (!poll_request_id_.empty()) {
      const bool inserted = matching_.polls_in_flight_.try_emplace(poll_request_id_).second;
      DURO_ASSERT_MSG(inserted, "two polls in flight with one poll_request_id");
    }
  }
  ~PollScope() {
    if (!poll_request_id_.empty()) {
      auto it = matching_.polls_in_flight_.find(poll_request_id_);
      DURO_ASSERT(it != matching_.polls_in_flight_.end());
      sim::Simulator& sim = sim::Simulator::current();
      for (const auto& [seq, waiter] : it->second.followers) sim.notify(waiter);
      matching_.polls_in_flight_.erase(it);
    }
    DURO_ASSERT(queue_.polls_active > 0);
    queue_.polls_active--;
    matching_.close_if_idle(key_);
  }
  PollScope(const PollScope&) = delete;
  PollScope& operator=(const PollScope&) = delete;

 private:
  Matching& matching_;
  const QueueKey& key_;
  Queue& queue_;
  const std::string& poll_request_id_;
};

// An offer a poll holds. Unless the poll consumes it (release()), it goes
// back to the head of its queue when the holder goes away: a start that
// failed, or a poll killed in the middle of one.
class Matching::HeldOffer {
 public:
  HeldOffer(Matching& matching, Queue& queue, Offer offer)
      : matching_(matching), queue_(queue), offer_(std::move(offer)) {}
  ~HeldOffer() {
    if (offer_) matching_.give_back(queue_, std::move(*offer_));
  }
  HeldOffer(const HeldOffer&) = delete;
  HeldOffer& operator=(const HeldOffer&) = delete;

  const Offer& offer() const {
    DURO_ASSERT(offer_.has_value());
    return *offer_;
  }
  void release() noexcept { offer_.reset(); }

 private:
  Matching& matching_;
  Queue& queue_;
  std::optional<Offer> offer_;
};

// --- Construction -------------------------------------------------------------

Matching::Matching(MatchingOptions options, std::string node_name, std::uint32_t incarnation,
                   StartWorkflowTask start_workflow_task, StartActivityTask start_activity_task,
                   BuildQueryTask build_query_task)
    : options_(options),
      node_name_(std::move(node_name)),
      incarnation_(incarnation),
      start_workflow_task_(std::move(start_workflow_task)),
      start_activity_task_(std::move(start_activity_task)),
      build_query_task_(std::move(build_query_task)) {
  DURO_ASSERT(!node_name_.empty());
  DURO_ASSERT(start_workflow_task_ && start_activity_task_ && build_query_task_);
  DURO_ASSERT(options_.queues_max > 0 && options_.tasks_per_queue_max > 0);
  DURO_ASSERT(options_.pollers_per_queue_max > 0 && options_.queries_per_queue_max > 0);
  DURO_ASSERT(options_.queries_max > 0 && options_.matches_per_poll_max > 0);
  DURO_ASSERT(options_.queue_name_bytes_max > 0);
}

Matching::~Matching() {
  // A crash unwinds the node's fibers before it destroys the process, so
  // nothing may be waiting in here now; something that is would wake into
  // freed memory.
  for (const auto& [key, queue] : queues_) {
    DURO_ASSERT_MSG(queue.polls_active == 0 && queue.pollers.empty(), "Matching destroyed while a poll runs in it");
  }
  DURO_ASSERT_MSG(queries_.empty(), "Matching destroyed while a query waits in it");
  DURO_ASSERT_MSG(polls_in_flight_.empty(), "Matching destroyed while a poll runs in it");
}

// --- Queues -------------------------------------------------------------------

sim::Result<Matching::QueueKey> Matching::key_of(TaskToken::Kind type, const TaskQueue& task_queue) const {
  DURO_ASSERT(is_task_kind(type));
  if (task_queue.name.empty()) return Error{ErrorCode::kInvalidArgument, "BadRequest: task queue name is empty"};
  if (task_queue.name.size() > options_.queue_name_bytes_max) {
    return Error{ErrorCode::kInvalidArgument, "BadRequest: task queue name too long"};
  }
  // Decoding does not check enumerators (sim/codec.h): the receiver does.
  if (task_queue.kind != TaskQueueKind::kNormal && task_queue.kind != TaskQueueKind::kSticky) {
    return Error{ErrorCode::kInvalidArgument, "BadRequest: unknown task queue kind"};
  }
  return QueueKey{type, task_queue.kind, task_queue.name};
}

Matching::Queue* Matching::find_queue(const QueueKey& key) {
  auto it = queues_.find(key);
  return it == queues_.end() ? nullptr : &it->second;
}

const Matching::Queue* Matching::find_queue(const QueueKey& key) const {
  auto it = queues_.find(key);
  return it == queues_.end() ? nullptr : &it->second;
}

sim::Result<Matching::Queue*> Matching::open_queue(const QueueKey& key) {
  if (Queue* queue = find_queue(key)) return queue;
  if (queues_.size() >= options_.queues_max) {
    return Error{ErrorCode::kOverloaded, "too many task queues on " + node_name_};
  }
  return &queues_[key];
}

void Matching::close_if_idle(const QueueKey& key) {
  auto it = queues_.find(key);
  if (it == queues_.end()) return;
  const Queue& queue = it->second;
  check_queue(queue);
  if (queue.polls_active == 0 && queue.tasks.empty() && queue.queries.empty() && queue.held.empty()) {
    DURO_ASSERT(queue.pollers.empty());
    queues_.erase(it);
  }
}

void Matching::check_queue(const Queue& queue) const {
  // A waiting poller and a waiting task (or query) on one queue would be a
  // match that did not happen.
  DURO_ASSERT(queue.pollers.empty() || (queue.tasks.empty() && queue.queries.empty()));
  // Every queued task is held; so is each task a poll is starting.
  DURO_ASSERT(queue.held.size() >= queue.tasks.size());
  DURO_ASSERT(queue.held.size() <= options_.tasks_per_queue_max);
  DURO_ASSERT(queue.pollers.size() <= queue.polls_active);
  DURO_ASSERT(queue.pollers.size() <= options_.pollers_per_queue_max);
}

void Matching::offer_task(Queue& queue, MatchingTask task, bool at_head) {
  DURO_ASSERT(queue.held.contains(task));
  if (!queue.pollers.empty()) {
    DURO_ASSERT(queue.tasks.empty() && queue.queries.empty());
    auto oldest = queue.pollers.begin();
    Poller* poller = oldest->second;
    queue.pollers.erase(oldest);
    DURO_ASSERT(!poller->offer.has_value());
    poller->offer = Offer{std::move(task), {}};
    poller->sim->notify(poller->waiter);
    return;
  }
  if (at_head) {
    queue.tasks.push_front(std::move(task));
  } else {
    queue.tasks.push_back(std::move(task));
  }
}

void Matching::offer_query(Queue& queue, std::string query_id, bool at_head) {
  DURO_ASSERT(queries_.contains(query_id));
  if (!queue.pollers.empty()) {
    DURO_ASSERT(queue.tasks.empty() && queue.queries.empty());
    auto oldest = queue.pollers.begin();
    Poller* poller = oldest->second;
    queue.pollers.erase(oldest);
    DURO_ASSERT(!poller->offer.has_value());
    poller->offer = Offer{std::nullopt, std::move(query_id)};
    poller->sim->notify(poller->waiter);
    return;
  }
  if (at_head) {
    queue.queries.push_front(std::move(query_id));
  } else {
    queue.queries.push_back(std::move(query_id));
  }
}

std::optional<Matching::Offer> Matching::take(Queue& queue) {
  // Bounded: each pass removes one id. Ids of queries that ended are
  // removed by query() itself; the check is for safety.
  while (!queue.queries.empty()) {
    std::string query_id = std::move(queue.queries.front());
    queue.queries.pop_front();
    auto it = queries_.find(query_id);
    if (it == queries_.end() || it->second.delivered || it->second.answer.has_value()) continue;
    return Offer{std::nullopt, std::move(query_id)};
  }
  if (!queue.tasks.empty()) {
    MatchingTask task = std::move(queue.tasks.front());
    queue.tasks.pop_front();
    return Offer{std::move(task), {}};
  }
  return std::nullopt;
}

std::optional<Matching::Offer> Matching::wait_for_offer(Queue& queue, sim::TimePoint deadline) {
  DURO_ASSERT(queue.tasks.empty() && queue.queries.empty());
  DURO_ASSERT(queue.pollers.size() < options_.pollers_per_queue_max);
  sim::Simulator& sim = sim::Simulator::current();
  Poller poller;
  poller.sim = &sim;
  poller.waiter = sim.begin_wait();
  const std::uint64_t seq = poller_seq_next_++;
  queue.pollers.emplace(seq, &poller);
  sim::WakeReason reason;
  try {
    reason = sim.suspend(poller.waiter, "matching poll", deadline);
  } catch (const sim::FiberUnwind&) {
    // Killed, perhaps after being handed something: pass it on, or it
    // would be lost with this stack.
    queue.pollers.erase(seq);
    if (poller.offer) give_back(queue, std::move(*poller.offer));
    throw;
  }
  queue.pollers.erase(seq);  // Already gone if an offer woke us.
  if (poller.offer) return std::move(poller.offer);
  // Only an offer notifies a poller.
  DURO_ASSERT_MSG(reason != sim::WakeReason::kNotified, "a poller woke with nothing offered");
  return std::nullopt;  // The deadline (or a dying fiber's wait, which returns at once).
}

void Matching::give_back(Queue& queue, Offer offer) {
  if (offer.task) {
    stats_.tasks_returned++;
    offer_task(queue, std::move(*offer.task), /*at_head=*/true);
    return;
  }
  auto it = queries_.find(offer.query_id);
  if (it == queries_.end() || it->second.delivered || it->second.answer.has_value()) return;
  offer_query(queue, std::move(offer.query_id), /*at_head=*/true);
}

// --- Tasks --------------------------------------------------------------------

sim::Result<void> Matching::add_task(const TaskQueue& task_queue, MatchingTask task) {
  if (!is_task_kind(task.kind)) return Error{ErrorCode::kInvalidArgument, "BadRequest: not a task kind"};
  if (task.execution.workflow_id.empty() || task.scheduled_event_id <= 0 || task.attempt < 1) {
    return Error{ErrorCode::kInvalidArgument, "BadRequest: malformed matching task"};
  }
  sim::Result<QueueKey> key = key_of(task.kind, task_queue);
  if (!key.ok()) return key.error();
  if (const Queue* existing = find_queue(key.value()); existing != nullptr && existing->held.contains(task)) {
    stats_.tasks_deduped++;
    return {};
  }
  sim::Result<Queue*> opened = open_queue(key.value());
  if (!opened.ok()) {
    stats_.tasks_rejected++;
    return opened.error();
  }
  Queue& queue = *opened.value();
  // The bound counts the tasks polls are starting too, so a task put back
  // never takes the queue over it.
  if (queue.held.size() >= options_.tasks_per_queue_max) {
    stats_.tasks_rejected++;
    close_if_idle(key.value());
    return Error{ErrorCode::kOverloaded, "task queue " + task_queue.name + " is full"};
  }
  stats_.tasks_added++;
  if (!queue.pollers.empty()) stats_.tasks_sync_matched++;
  queue.held.insert(task);
  offer_task(queue, std::move(task), /*at_head=*/false);
  check_queue(queue);
  return {};
}

void Matching::remember(const std::string& poll_request_id, RememberedPoll remembered) {
  if (poll_request_id.empty() || options_.poll_replies_remembered == 0) return;
  DURO_ASSERT(remembered.task.has_value() != remembered.query.has_value());
  auto [it, inserted] = replies_.insert_or_assign(poll_request_id, std::move(remembered));
  if (inserted) replies_order_.push_back(poll_request_id);
  // Bounded: each pass removes one.
  while (replies_.size() > options_.poll_replies_remembered) {
    DURO_ASSERT(!replies_order_.empty());
    replies_.erase(replies_order_.front());
    replies_order_.pop_front();
  }
  DURO_ASSERT(replies_.size() == replies_order_.size());
}

template <typename Reply, typename Request, typename Start>
std::optional<sim::Result<Reply>> Matching::replay(const QueueKey& key, const Request& request, const Start& start) {
  auto it = replies_.find(request.poll_request_id);
  if (it == replies_.end() || it->second.queue != key) return std::nullopt;
  stats_.polls_replayed++;
  if (it->second.query) {
    if constexpr (std::is_same_v<Reply, PollWorkflowTaskQueueReply>) {
      return sim::Result<Reply>(*it->second.query);
    } else {
      DURO_ASSERT_MSG(false, "a query remembered on an activity queue");
    }
  }
  // A copy: history's answer may wait (on the store), and the entry may be
  // evicted meanwhile.
  const MatchingTask task = *it->second.task;
  sim::Result<Reply> started = start(task, request);
  if (started.ok()) {
    DURO_ASSERT_MSG(!started.value().task_token.empty(), "history started a task but gave no task token");
    started.value().has_task = true;
    return started;
  }
  if (is_stale(started.error())) {
    stats_.polls_replayed_stale++;
    return sim::Result<Reply>(Reply{});
  }
  return started;
}

template <typename Reply, typename Request, typename Start>
sim::Result<Reply> Matching::follow(const QueueKey& key, const Request& request, sim::TimePoint deadline,
                                    const Start& start) {
  const std::string& poll_request_id = request.poll_request_id;
  auto in_flight = polls_in_flight_.find(poll_request_id);
  DURO_ASSERT(in_flight != polls_in_flight_.end());
  if (in_flight->second.followers.size() >= options_.poll_followers_max) {
    stats_.polls_rejected++;
    return Error{ErrorCode::kOverloaded, "too many duplicates of one poll"};
  }
  sim::Simulator& sim = sim::Simulator::current();
  const std::uint64_t seq = poller_seq_next_++;
  // Bounded by the deadline: every pass waits, and the original's end
  // (which notifies) removes the entry the loop looks for.
  for (;;) {
    auto it = polls_in_flight_.find(poll_request_id);
    if (it == polls_in_flight_.end()) break;
    const sim::Waiter waiter = sim.begin_wait();
    it->second.followers[seq] = waiter;
    struct Unregister {
      Matching* matching;
      const std::string* poll_request_id;
      std::uint64_t seq;
      ~Unregister() {
        auto entry = matching->polls_in_flight_.find(*poll_request_id);
        if (entry != matching->polls_in_flight_.end()) entry->second.followers.erase(seq);
      }
    } unregister{this, &poll_request_id, seq};
    if (sim.suspend(waiter, "matching duplicate poll", deadline) != sim::WakeReason::kNotified) break;
  }
  if (std::optional<sim::Result<Reply>> replayed = replay<Reply>(key, request, start)) return std::move(*replayed);
  stats_.polls_empty++;
  return Reply{};
}

template <typename Reply, typename Request, typename Start>
sim::Result<Reply> Matching::poll(TaskToken::Kind type, const Request& request, sim::TimePoint deadline,
                                  const Start& start) {
  constexpr bool kWorkflowPoll = std::is_same_v<Reply, PollWorkflowTaskQueueReply>;
  stats_.polls++;
  sim::Result<QueueKey> key_result = key_of(type, request.task_queue);
  if (!key_result.ok()) {
    stats_.polls_rejected++;
    return key_result.error();
  }
  const QueueKey key = std::move(key_result).value();
  const std::string& poll_request_id = request.poll_request_id;
  if (!poll_request_id.empty()) {
    // A retry of a poll whose reply was lost, or a duplicate of it.
    if (std::optional<sim::Result<Reply>> replayed = replay<Reply>(key, request, start)) return std::move(*replayed);
    if (polls_in_flight_.contains(poll_request_id)) return follow<Reply>(key, request, deadline, start);
  }
  sim::Result<Queue*> opened = open_queue(key);
  if (!opened.ok()) {
    stats_.polls_rejected++;
    return opened.error();
  }
  Queue& queue = *opened.value();
  PollScope scope(*this, key, queue, poll_request_id);
  sim::Simulator& sim = sim::Simulator::current();

  for (std::size_t match = 0; match < options_.matches_per_poll_max; match++) {
    check_queue(queue);
    // A poll whose deadline passed while history answered stops: its
    // caller has gone, and a task started now would time out unseen.
    if (match > 0 && sim.now() >= deadline) break;
    std::optional<Offer> offer = take(queue);
    if (!offer) {
      if (sim.now() >= deadline) break;
      if (queue.pollers.size() >= options_.pollers_per_queue_max) {
        stats_.polls_rejected++;
        return Error{ErrorCode::kOverloaded, "too many pollers on task queue " + key.name};
      }
      offer = wait_for_offer(queue, deadline);
      if (!offer) break;
    }
    HeldOffer held(*this, queue, std::move(*offer));

    if (!held.offer().task) {
      if constexpr (kWorkflowPoll) {
        const std::string query_id = held.offer().query_id;
        auto it = queries_.find(query_id);
        if (it == queries_.end() || it->second.delivered || it->second.answer.has_value()) {
          held.release();  // It ended while offered.
          continue;
        }
        // A copy: the query may end (its deadline) while history builds.
        const PendingQuery pending = it->second.query;
        sim::Result<PollWorkflowTaskQueueReply> built = build_query_task_(pending, request);
        // From here this poll settles the query, whatever the outcome.
        held.release();
        it = queries_.find(query_id);
        if (it == queries_.end() || it->second.answer.has_value()) continue;  // Nobody waits for it now.
        QueryState& state = it->second;
        DURO_ASSERT(!state.delivered);
        if (!built.ok()) {
          stats_.queries_failed++;
          state.answer.emplace(built.error());
          wake_query(state);
          continue;
        }
        PollWorkflowTaskQueueReply reply = std::move(built).value();
        const TaskToken token{.kind = TaskToken::Kind::kQuery,
                              .execution = pending.execution,
                              .query_id = query_id,
                              .owner = node_name_};
        reply.has_task = true;
        reply.task_token = sim::encode(token);
        reply.query = QueryTask{pending.request.query_type, pending.request.args};
        if (reply.execution.workflow_id.empty()) reply.execution = pending.execution;
        state.delivered = true;
        stats_.queries_delivered++;
        remember(poll_request_id, RememberedPoll{key, std::nullopt, reply});
        return reply;
      } else {
        DURO_ASSERT_MSG(false, "a query offered on an activity queue");
      }
    }

    const MatchingTask task = *held.offer().task;
    DURO_ASSERT(task.kind == type);
    DURO_ASSERT(queue.held.contains(task));
    sim::Result<Reply> started = start(task, request);
    if (started.ok()) {
      Reply reply = std::move(started).value();
      DURO_ASSERT_MSG(!reply.task_token.empty(), "history started a task but gave no task token");
      reply.has_task = true;
      held.release();
      queue.held.erase(task);
      stats_.tasks_dispatched++;
      remember(poll_request_id, RememberedPoll{key, task, std::nullopt});
      return reply;
    }
    if (is_stale(started.error())) {
      held.release();
      queue.held.erase(task);
      stats_.tasks_dropped_stale++;
      continue;
    }
    // Not lost: `held` puts the task back at the head as it goes. The
    // poller hears the error (and backs off) rather than spinning on it.
    return started.error();
  }
  stats_.polls_empty++;
  return Reply{};
}

sim::Result<PollWorkflowTaskQueueReply> Matching::poll_workflow(const PollWorkflowTaskQueueRequest& request,
                                                                sim::TimePoint deadline) {
  return poll<PollWorkflowTaskQueueReply>(TaskToken::Kind::kWorkflow, request, deadline, start_workflow_task_);
}

sim::Result<PollActivityTaskQueueReply> Matching::poll_activity(const PollActivityTaskQueueRequest& request,
                                                                sim::TimePoint deadline) {
  return poll<PollActivityTaskQueueReply>(TaskToken::Kind::kActivity, request, deadline, start_activity_task_);
}

// --- Queries ------------------------------------------------------------------

void Matching::wake_query(QueryState& state) {
  if (!state.waiting) return;
  state.waiting = false;
  state.sim->notify(state.waiter);
}

sim::Result<QueryWorkflowReply> Matching::query(const TaskQueue& task_queue, WorkflowExecution execution,
                                                QueryWorkflowRequest request, sim::TimePoint deadline) {
  sim::Result<QueueKey> key_result = key_of(TaskToken::Kind::kWorkflow, task_queue);
  if (!key_result.ok()) return key_result.error();
  if (execution.workflow_id.empty()) return Error{ErrorCode::kInvalidArgument, "BadRequest: no workflow id"};
  const QueueKey key = std::move(key_result).value();
  if (queries_.size() >= options_.queries_max) {
    return Error{ErrorCode::kOverloaded, "too many queries waiting on " + node_name_};
  }
  sim::Result<Queue*> opened = open_queue(key);
  if (!opened.ok()) return opened.error();
  if (opened.value()->queries.size() >= options_.queries_per_queue_max) {
    close_if_idle(key);
    return Error{ErrorCode::kOverloaded, "too many queries waiting on task queue " + task_queue.name};
  }

  std::string query_id = std::to_string(incarnation_) + "-" + std::to_string(query_seq_next_++);
  sim::Simulator& sim = sim::Simulator::current();
  auto [it, inserted] = queries_.try_emplace(query_id);
  DURO_ASSERT(inserted);
  QueryState& state = it->second;
  state.query = PendingQuery{query_id, task_queue, std::move(execution), std::move(request)};
  state.queue = key;
  state.sim = &sim;
  stats_.queries_added++;

  // Only this fiber removes the state, however it leaves (an unwinding
  // fiber included), so `state` stays valid across its waits.
  struct Forget {
    Matching* matching;
    const std::string* query_id;
    const QueueKey* key;
    ~Forget() {
      if (Queue* queue = matching->find_queue(*key)) {
        auto& ids = queue->queries;
        ids.erase(std::remove(ids.begin(), ids.end(), *query_id), ids.end());
      }
      matching->queries_.erase(*query_id);
      matching->close_if_idle(*key);
    }
  } forget{this, &query_id, &key};

  offer_query(*opened.value(), query_id, /*at_head=*/false);
  // Bounded by the deadline: only an answer notifies.
  while (!state.answer.has_value()) {
    state.waiter = sim.begin_wait();
    state.waiting = true;
    const sim::WakeReason reason = sim.suspend(state.waiter, "matching query", deadline);
    state.waiting = false;
    if (state.answer.has_value()) break;
    if (reason == sim::WakeReason::kKilled) return Error{ErrorCode::kKilled, "the querying fiber is being unwound"};
    if (reason == sim::WakeReason::kTimeout) {
      stats_.queries_timed_out++;
      return Error{ErrorCode::kTimeout, state.delivered ? "a worker took the query but did not answer in time"
                                                        : "no worker took the query in time"};
    }
  }
  sim::Result<QueryWorkflowReply> answer = std::move(*state.answer);
  return answer;
}

sim::Result<void> Matching::answer_query(const TaskToken& token, QueryWorkflowReply reply) {
  if (token.kind != TaskToken::Kind::kQuery) return Error{ErrorCode::kInvalidArgument, "BadRequest: not a query task token"};
  if (token.owner != node_name_) {
    return Error{ErrorCode::kInvalidArgument, "BadRequest: query task token of " + token.owner + ", not " + node_name_};
  }
  auto it = queries_.find(token.query_id);
  if (it == queries_.end() || !it->second.delivered || it->second.answer.has_value()) {
    return Error{ErrorCode::kNotFound, "NotFound: query " + token.query_id + " is no longer awaited"};
  }
  QueryState& state = it->second;
  if (state.query.execution != token.execution) {
    return Error{ErrorCode::kInvalidArgument, "BadRequest: query task token names another workflow"};
  }
  state.answer.emplace(std::move(reply));
  stats_.queries_answered++;
  wake_query(state);
  return {};
}

// --- Introspection ---------------------------------------------------------------

MatchingStats Matching::stats() const {
  MatchingStats stats = stats_;
  stats.queues = queues_.size();
  stats.queries_pending = queries_.size();
  for (const auto& [key, queue] : queues_) {
    stats.tasks_queued += queue.tasks.size();
    stats.pollers_waiting += queue.pollers.size();
  }
  return stats;
}

std::vector<MatchingQueueInfo> Matching::queues() const {
  std::vector<MatchingQueueInfo> infos;
  infos.reserve(queues_.size());
  for (const auto& [key, queue] : queues_) {
    infos.push_back(MatchingQueueInfo{.type = key.type,
                                      .task_queue = TaskQueue{key.name, key.kind},
                                      .tasks = queue.tasks.size(),
                                      .pollers = queue.pollers.size(),
                                      .queries = queue.queries.size()});
  }
  return infos;
}

std::size_t Matching::queue_size(TaskToken::Kind type, const TaskQueue& task_queue) const {
  const Queue* queue = find_queue(QueueKey{type, task_queue.kind, task_queue.name});
  return queue == nullptr ? 0 : queue->tasks.size();
}

}  // namespace duro::engine
