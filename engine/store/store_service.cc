#include "engine/store/store_service.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <utility>

namespace duro::engine::store {

const char* store_status_name(StoreStatus status) noexcept {
  switch (status) {
    case StoreStatus::kRecovering: return "recovering";
    case StoreStatus::kServing: return "serving";
    case StoreStatus::kStopping: return "stopping";
    case StoreStatus::kFailed: return "failed";
  }
  return "unknown";
}

StoreService::StoreService(sim::Env& env, StoreOptions options)
    : env_(env),
      options_(std::move(options)),
      state_(options_.request_ids_max),
      pending_(state_),
      log_(env.disk(), StoreLogOptions{.compact_log_bytes = options_.compact_log_bytes,
                                       .compact_snapshot_ratio = options_.compact_snapshot_ratio,
                                       .read_attempts_max = options_.read_attempts_max,
                                       .request_ids_max = options_.request_ids_max,
                                       .test_point = options_.test_point}),
      started_at_(env.sim().now()) {
  DURO_ASSERT(options_.requests_concurrent_max > 0);
  DURO_ASSERT(options_.batch_records_max > 0 && options_.batch_bytes_max > 0);
  DURO_ASSERT(options_.members_max > 0);
  server_ = std::make_unique<sim::RpcServer>(
      env.network(), env.node(), kStorePort,
      sim::RpcServerOptions{.concurrent_max = options_.requests_concurrent_max});
  register_methods();
  server_->start();
  env_.spawn("store/boot", [this] { boot(); });
}

StoreService::~StoreService() {
  // Queued writes hold answers, which count as the server's running
  // requests: they go (unsent: the store died with them) before it does.
  queue_.clear();
}

void StoreService::boot() {
  DURO_ASSERT(status_ == StoreStatus::kRecovering);
  LogStatus recovered = log_.recover(state_);
  if (recovered.kind == LogStatus::Kind::kCorrupt) return refuse(std::move(recovered.message));
  if (!recovered.ok()) restart_self("recovery: " + recovered.message);
  // A compaction that failed last time left the log past its bound.
  if (log_.compaction_due()) {
    if (LogStatus compacted = log_.compact(state_); !compacted.ok()) restart_self(std::move(compacted.message));
  }
  next_sequence_ = log_.next_sequence();
  status_ = StoreStatus::kServing;
  if (env_.sim().tracing()) {
    env_.sim().trace("store", fmt::format("serving: log generation {}, {} mutations, {} bytes of log",
                                          log_.generation(), state_.last_sequence(), log_.log_bytes()));
  }
  env_.spawn("store/committer", [this] { commit_loop(); }, sim::SpawnOptions{.daemon = true});
}

sim::Result<void> StoreService::check_serving() const {
  switch (status_) {
    case StoreStatus::kServing: return {};
    case StoreStatus::kRecovering: return sim::Error{sim::ErrorCode::kUnavailable, "store is recovering"};
    case StoreStatus::kStopping: return sim::Error{sim::ErrorCode::kUnavailable, "store is restarting: " + failure_};
    case StoreStatus::kFailed: return sim::Error{sim::ErrorCode::kUnavailable, failure_};
  }
  return sim::Error{sim::ErrorCode::kUnavailable, "store is in an unknown state"};
}

// --- Writes ----------------------------------------------------------------------

void StoreService::send_outcome(sim::RpcServer::Answer& answer, const Outcome& outcome, bool shard_reply) {
  if (shard_reply) {
    answer.reply(outcome.update_shard_reply());
  } else {
    answer.reply(outcome.write_reply());
  }
}

void StoreService::submit(StoreMutation mutation, std::string_view encoded, sim::RpcServer::Answer answer) {
  if (sim::Result<void> serving = check_serving(); !serving.ok()) return answer.fail(serving.error());
  const bool shard_reply = std::holds_alternative<UpdateShardRequest>(mutation);
  Outcome outcome = evaluate(pending_, mutation);
  const bool logged = outcome.applies();
  if (outcome.duplicate) {
    stats_.duplicates++;
  } else if (!logged) {
    stats_.write_failures++;
  }
  // Nothing pending: nothing this answer could rest on is still volatile.
  if (!logged && queue_.empty() && in_flight_ == 0) return send_outcome(answer, outcome, shard_reply);

  if (spare_writes_.empty()) {
    queue_.emplace_back();
  } else {
    queue_.splice(queue_.end(), spare_writes_, spare_writes_.begin());
  }
  QueuedWrite& entry = queue_.back();
  // Each queued write holds its request's answer, which counts as running:
  // the RPC server's bound is the queue's. Placed first: an entry in the
  // queue always has one to send.
  DURO_ASSERT(!entry.answer.has_value());
  entry.answer.emplace(std::move(answer));
  DURO_ASSERT_MSG(queue_.size() + in_flight_ <= options_.requests_concurrent_max,
                  "more queued writes than requests running");
  if (logged) {
    entry.sequence = next_sequence_++;
    pending_.add(mutation, outcome, entry.sequence);
    if (encoded.empty()) {
      encode_mutation(entry.record, mutation);
    } else {
      encode_mutation(entry.record, mutation, encoded);
    }
    entry.mutation = std::move(mutation);
    stats_.writes++;
  }
  entry.outcome = std::move(outcome);
  entry.shard_reply = shard_reply;
  (void)doorbell_.try_send(true);  // Full: already rung.
}

void StoreService::commit_loop() {
  // The store's main loop: one pass per batch, for as long as the process lives.
  for (;;) {
    if (queue_.empty()) {
      if (!doorbell_.receive().ok()) return;  // Closed: the process is going away.
      continue;
    }
    if (options_.batch_delay.count() > 0) env_.sleep_for(options_.batch_delay);
    commit_batch();
  }
}

void StoreService::commit_batch() {
  DURO_ASSERT(in_flight_ == 0 && !queue_.empty());
  std::string payload;
  std::uint32_t records = 0;
  // The batch: a prefix of the queue. Bounded by the queue, itself bounded
  // by requests_concurrent_max.
  auto end = queue_.begin();
  std::size_t entries = 0;
  for (; end != queue_.end(); ++end, ++entries) {
    const QueuedWrite& next = *end;
    if (next.mutation.has_value() && records > 0 &&
        (records >= options_.batch_records_max || payload.size() + next.record.size() > options_.batch_bytes_max)) {
      break;
    }
    if (next.mutation.has_value()) {
      payload += next.record;
      records++;
    }
  }
  WriteQueue batch;
  batch.splice(batch.end(), queue_, queue_.begin(), end);
  in_flight_ = entries;

  if (records > 0) {
    LogStatus committed = log_.commit(payload, records);
    if (!committed.ok()) restart_self(std::move(committed.message));
    // Durable: now the state may show it, in log order.
    for (QueuedWrite& write : batch) {
      if (!write.mutation.has_value()) continue;
      // Judged again, conditions and all, as an assertion that the pending
      // overlay judged it right; its request id is not looked up but
      // asserted new once remembered: submit() found it in neither the
      // state nor the overlay, and the overlay holds the id of every write
      // queued since, so none can have taken it.
      const Outcome applied = state_.apply(std::move(*write.mutation), DuplicateCheck::kAssertFresh);
      DURO_ASSERT_MSG(applied.applies() && state_.last_sequence() == write.sequence,
                      "a durable write judged differently than when it arrived");
    }
    pending_.retire(state_.last_sequence());
    DURO_ASSERT(log_.next_sequence() == state_.last_sequence() + 1);
    stats_.batches++;
  }
  in_flight_ = 0;
  for (QueuedWrite& write : batch) {
    DURO_ASSERT(write.answer.has_value());
    send_outcome(*write.answer, write.outcome, write.shard_reply);
    write.answer.reset();
    // Reset for reuse, keeping the record's buffer for the next encoding
    // unless a large write left it large.
    write.mutation.reset();
    write.sequence = 0;
    write.record.clear();
    if (write.record.capacity() > kSpareRecordBytesMax) write.record.shrink_to_fit();
    write.outcome = Outcome{};
  }
  const std::size_t spare_room = kSpareWritesMax - std::min(kSpareWritesMax, spare_writes_.size());
  auto kept_end = batch.begin();
  std::advance(kept_end, std::min(spare_room, entries));
  spare_writes_.splice(spare_writes_.end(), batch, batch.begin(), kept_end);

  if (log_.compaction_due()) {
    // Writes queue meanwhile; reads go on from the state, which does not change.
    if (LogStatus compacted = log_.compact(state_); !compacted.ok()) restart_self(std::move(compacted.message));
  }
}

// --- Faults ----------------------------------------------------------------------

void StoreService::restart_self(std::string why) {
  status_ = StoreStatus::kStopping;
  failure_ = std::move(why);
  sim::Simulator& sim = env_.sim();
  const sim::NodeId node = env_.node();
  const std::uint32_t incarnation = env_.incarnation();
  sim.trace("store", fmt::format("I/O error, restarting from what is durable: {}", failure_));
  // The supervisor: restarts this incarnation's node once, unless someone
  // else (the nemesis, the quiet phase) already has. A callback with no
  // owner node, so the crash does not drop it.
  sim.schedule_after(options_.restart_delay, [&sim, node, incarnation] {
    if (!sim.is_up(node) && sim.incarnation(node) == incarnation) sim.restart(node);
  });
  sim.crash(node);  // The calling fiber dies in the call.
  sim::assert_fail("sim.crash(node)", __FILE__, __LINE__, "a store that crashed itself went on running");
}

void StoreService::refuse(std::string why) {
  status_ = StoreStatus::kFailed;
  failure_ = "store refused to start: " + why;
  // Loud: an operator must look. Nothing is served from here on.
  std::fprintf(stderr, "duro: %s: %s\n", env_.name().c_str(), failure_.c_str());
  env_.sim().trace("store", failure_);
}

// --- Membership ------------------------------------------------------------------

sim::Result<HeartbeatReply> StoreService::heartbeat(const HeartbeatRequest& request) {
  // Soft state: no disk involved, so it is served while recovering too.
  if (status_ == StoreStatus::kStopping || status_ == StoreStatus::kFailed) return check_serving().error();
  if (request.node.empty() || request.ttl.count() <= 0) {
    return sim::Error{sim::ErrorCode::kInvalidArgument, "a heartbeat needs a node name and a positive ttl"};
  }
  stats_.heartbeats++;
  const sim::TimePoint now = env_.now();
  // A clock stepped back makes ages negative: count them as zero.
  auto age_of = [now](const MemberEntry& entry) { return std::max(sim::Duration{0}, now - entry.last_seen); };
  std::erase_if(members_, [&](const auto& member) { return age_of(member.second) > member.second.ttl; });
  auto found = members_.find(request.node);
  if (found == members_.end()) {
    if (members_.size() >= options_.members_max) {
      return sim::Error{sim::ErrorCode::kOverloaded, "membership table is full"};
    }
    found = members_.emplace(request.node, MemberEntry{}).first;
  }
  // A delayed heartbeat of an earlier incarnation must not hide the newer one.
  if (request.incarnation >= found->second.incarnation) {
    found->second = MemberEntry{request.address, request.incarnation, now, request.ttl};
  }
  HeartbeatReply reply;
  // On the machine's monotonic time, like the members' own view expiry: a
  // jump of this node's wall clock must not make a young table look old,
  // nor keep an old one looking young for as long as the jump.
  reply.listening = env_.sim().now() - started_at_;
  DURO_ASSERT(reply.listening >= sim::Duration{0});
  reply.members.reserve(members_.size());
  for (const auto& [name, entry] : members_) {
    reply.members.push_back(Member{name, entry.address, entry.incarnation, age_of(entry)});
  }
  return reply;
}

// --- Methods ---------------------------------------------------------------------

template <typename Request>
void StoreService::handle_write(const char* method, bool log_as_received) {
  // Decoded where it arrives; what the write needs is moved into the queue.
  server_->handle_deferred(method, [this, log_as_received](std::string_view payload, sim::RpcServer::Answer answer) {
    sim::Result<Request> request = sim::decode<Request>(payload);
    if (!request.ok()) return answer.fail(request.error());
    submit(std::move(request).value(), log_as_received ? payload : std::string_view{}, std::move(answer));
  });
}

void StoreService::register_methods() {
  sim::RpcServer& server = *server_;
  server.handle<GetShardRequest, ShardRecord>(kGetShardMethod,
                                              [this](const GetShardRequest& request) -> sim::Result<ShardRecord> {
                                                if (auto serving = check_serving(); !serving.ok()) return serving.error();
                                                stats_.reads++;
                                                return state_.get_shard(request.shard_id);
                                              });
  // Writes answer once their batch is durable: a queued write keeps its
  // request's answer, not a waiting fiber (a thousand in flight were a
  // thousand stacks). A write carries the run's whole state; its bytes, as
  // received, are its log record: not encoded again.
  handle_write<UpdateShardRequest>(kUpdateShardMethod, false);
  handle_write<WriteRequest>(kWriteMethod, true);
  handle_write<RenewShardsRequest>(kRenewShardsMethod, false);
  handle_write<CompleteTasksRequest>(kCompleteTasksMethod, false);
  server.handle<GetExecutionRequest, GetExecutionReply>(
      kGetExecutionMethod, [this](const GetExecutionRequest& request) -> sim::Result<GetExecutionReply> {
        if (auto serving = check_serving(); !serving.ok()) return serving.error();
        stats_.reads++;
        return state_.get_execution(request.key);
      });
  server.handle<GetCurrentRequest, GetCurrentReply>(
      kGetCurrentMethod, [this](const GetCurrentRequest& request) -> sim::Result<GetCurrentReply> {
        if (auto serving = check_serving(); !serving.ok()) return serving.error();
        stats_.reads++;
        return state_.get_current(request.workflow_id);
      });
  server.handle<ReadHistoryRequest, ReadHistoryReply>(
      kReadHistoryMethod, [this](const ReadHistoryRequest& request) -> sim::Result<ReadHistoryReply> {
        if (auto serving = check_serving(); !serving.ok()) return serving.error();
        stats_.reads++;
        return state_.read_history(request, options_.read_limits);
      });
  server.handle<ReadTransferTasksRequest, ReadTransferTasksReply>(
      kReadTransferTasksMethod,
      [this](const ReadTransferTasksRequest& request) -> sim::Result<ReadTransferTasksReply> {
        if (auto serving = check_serving(); !serving.ok()) return serving.error();
        stats_.reads++;
        return state_.read_transfer_tasks(request, options_.read_limits);
      });
  server.handle<ReadTimerTasksRequest, ReadTimerTasksReply>(
      kReadTimerTasksMethod, [this](const ReadTimerTasksRequest& request) -> sim::Result<ReadTimerTasksReply> {
        if (auto serving = check_serving(); !serving.ok()) return serving.error();
        stats_.reads++;
        return state_.read_timer_tasks(request, options_.read_limits);
      });
  server.handle<HeartbeatRequest, HeartbeatReply>(
      kHeartbeatMethod, [this](const HeartbeatRequest& request) { return heartbeat(request); });
}

std::unique_ptr<sim::Process> boot_store(sim::Env& env, StoreOptions options) {
  return std::make_unique<StoreService>(env, std::move(options));
}

}  // namespace duro::engine::store
