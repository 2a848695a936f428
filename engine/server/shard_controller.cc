#include "engine/server/shard_controller.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "sim/assert.h"

namespace duro::engine {
namespace {

std::string record_data(const Shard& shard) {
  return sim::encode(ShardRecordData{shard.now().time_since_epoch().count()});
}

}  // namespace

ShardController::ShardController(sim::Env& env, Router& router, Membership& membership, const ServerOptions& options,
                                 std::string node_name, std::function<void(const std::string&)> log)
    : env_(env),
      router_(router),
      membership_(membership),
      options_(options),
      node_name_(std::move(node_name)),
      log_(std::move(log)) {
  DURO_ASSERT(options.renew_interval < options.lease);
}

ShardController::~ShardController() {
  for (auto& [id, held] : shards_) held.shard->stop("node shutting down", false);
}

void ShardController::start() {
  fiber_ = env_.spawn("shard-controller", [this] { loop(); }, {.daemon = true});
}

std::shared_ptr<Shard> ShardController::shard(std::uint32_t shard_id) const {
  auto it = shards_.find(shard_id);
  if (it == shards_.end() || !it->second.shard->active()) return nullptr;
  return it->second.shard;
}

std::shared_ptr<Shard> ShardController::shard_for_workflow(std::string_view workflow_id) const {
  return shard(router_.shard_for(workflow_id));
}

std::string ShardController::request_id() {
  return node_name_ + "/" + std::to_string(env_.incarnation()) + "/shard-controller/" + std::to_string(++request_seq_);
}

void ShardController::loop() {
  for (;;) {
    const bool settled = reconcile();
    // Reconcile again soon after the view changes (a node joined or left).
    // Settled (holding exactly the shards it should), nothing is due before
    // the next renewal: an idle cluster's controllers wake once a round.
    sim::Duration wait = options_.controller_interval;
    if (settled) {
      wait = options_.renew_interval;
      for (const auto& [id, held] : shards_) {
        wait = std::min(wait, held.renewed_at + options_.renew_interval - env_.now());
      }
      wait = std::max(wait, options_.controller_interval);
    }
    membership_.wait_for_change(env_.sim().deadline_after(wait));
  }
}

bool ShardController::reconcile() {
  if (!membership_.has_view()) {
    // Cut off from the store: leases cannot be renewed; drop what expires.
    for (auto it = shards_.begin(); it != shards_.end();) {
      const auto next = std::next(it);
      if (env_.now() - it->second.renewed_at >= options_.lease) drop(it->first, "lease expired without a store");
      it = next;
    }
    return false;
  }
  bool settled = true;
  bool renewal_due = false;
  for (std::uint32_t shard_id = 0; shard_id < options_.shard_count; shard_id++) {
    const bool mine = router_.shard_owner(shard_id) == node_name_;
    auto held = shards_.find(shard_id);
    if (held != shards_.end() && !held->second.shard->active()) {
      // It stopped on its own (lost, or a write of unknown outcome): take
      // it again if it is still ours, which fences whatever was in flight.
      if (held->second.shard->ownership_lost()) stats_.lost++;
      drop(shard_id, "stopped");
      held = shards_.end();
    }
    if (held == shards_.end()) {
      if (mine) {
        acquire(shard_id);
        settled = settled && shards_.contains(shard_id);
      }
      continue;
    }
    if (!mine) {
      release(shard_id);
      continue;
    }
    if (env_.now() - held->second.renewed_at >= options_.renew_interval) renewal_due = true;
  }
  if (renewal_due) renew_all();
  return settled;
}

void ShardController::renew_all() {
  // Every shard it holds, due or not: after one round they all fall due
  // together.
  std::vector<std::uint32_t> shard_ids;
  for (const auto& [shard_id, held] : shards_) {
    if (held.shard->active()) shard_ids.push_back(shard_id);
  }
  renew(shard_ids);
}

void ShardController::renew(const std::vector<std::uint32_t>& shard_ids) {
  store::RenewShardsRequest request{request_id(), {}};
  std::vector<std::pair<std::uint32_t, std::int64_t>> renewing;  // Shard id, range id.
  for (const std::uint32_t shard_id : shard_ids) {
    const Held& held = shards_.at(shard_id);
    const std::int64_t range_id = held.shard->range_id();
    request.records.push_back(
        store::ShardRecord{shard_id, range_id, node_name_, held.lease_epoch + 1, record_data(*held.shard)});
    renewing.emplace_back(shard_id, range_id);
  }
  if (renewing.empty()) return;
  DURO_ASSERT(renewing.size() <= store::kRenewShardsMax);
  const sim::TimePoint sent_at = env_.now();
  sim::Result<store::WriteReply> reply = router_.store<store::WriteReply>(store::kRenewShardsMethod, request);
  for (const auto& [shard_id, range_id] : renewing) {
    auto it = shards_.find(shard_id);
    if (it == shards_.end() || it->second.shard->range_id() != range_id) continue;  // Dropped meanwhile.
    if (!reply.ok()) {
      if (env_.now() - it->second.renewed_at >= options_.lease) drop(shard_id, "lease expired: store unreachable");
      continue;
    }
    if (reply.value().status != store::WriteStatus::kOk) {
      if (renewing.size() == 1) {
        drop(shard_id, "ShardOwnershipLost: " + reply.value().detail);
        stats_.lost++;
      } else {
        // Some shard moved on, and with it the whole renewal: one by one
        // tells which (rare: only after a takeover).
        renew({shard_id});
      }
      continue;
    }
    it->second.renewed_at = sent_at;
    it->second.lease_epoch++;
    stats_.renewals++;
  }
}

void ShardController::acquire(std::uint32_t shard_id) {
  sim::Result<store::ShardRecord> record =
      router_.store<store::ShardRecord>(store::kGetShardMethod, store::GetShardRequest{shard_id});
  if (!record.ok()) return;
  const store::ShardRecord& current = record.value();
  bool free = current.owner.empty() || current.owner == node_name_;
  if (!free && !membership_.alive(current.owner)) {
    // Missing from a view the store built for less than a ttl (it
    // restarted) is no evidence: the owner may be alive and not heard yet.
    if (!membership_.complete()) return;
    free = true;
  }
  if (!free) {
    // The recorded owner is in the view: take it only if it stopped
    // renewing it (alive, yet not serving this shard) for 3 leases.
    Watched& watched = watched_[shard_id];
    if (watched.since == sim::TimePoint{} || watched.lease_epoch != current.lease_epoch) {
      watched = Watched{current.lease_epoch, env_.now()};
      return;
    }
    if (env_.now() - watched.since < 3 * options_.lease) return;
    free = true;
  }
  sim::Result<ShardRecordData> data = decode_shard_record_data(current.data);
  // The store checksums what it keeps: bytes that do not decode are a bug here.
  DURO_ASSERT_MSG(data.ok(), "a shard record's data does not decode");
  const sim::TimePoint time_floor{sim::Duration{data.value().shard_time_ns}};
  const sim::TimePoint sent_at = env_.now();
  store::UpdateShardRequest update{request_id(), current.range_id,
                                   store::ShardRecord{shard_id, current.range_id + 1, node_name_, 0, current.data}};
  sim::Result<store::UpdateShardReply> reply =
      router_.store<store::UpdateShardReply>(store::kUpdateShardMethod, update);
  if (!reply.ok() || reply.value().status != store::WriteStatus::kOk) return;
  const std::int64_t range_id = reply.value().current.range_id;
  DURO_ASSERT(range_id == current.range_id + 1);
  watched_.erase(shard_id);
  Shard::Context context{&env_, &router_, &options_, node_name_,
                         [this](std::uint32_t id, const std::string& why) {
                           log_("shard " + std::to_string(id) + " stopped: " + why);
                         },
                         log_};
  auto shard = std::make_shared<Shard>(std::move(context), shard_id, range_id, time_floor);
  Held& held = shards_[shard_id];
  held.shard = shard;
  held.renewed_at = sent_at;
  held.lease_epoch = 0;
  sim::Result<void> started = shard->start();
  if (!started.ok()) {
    // Loading failed (store unreachable): drop it; the next round retries
    // with a new range id.
    drop(shard_id, "could not load: " + sim::to_string(started.error()));
    return;
  }
  stats_.acquired++;
  log_("acquired shard " + std::to_string(shard_id) + " at range " + std::to_string(range_id));
}

void ShardController::release(std::uint32_t shard_id) {
  auto it = shards_.find(shard_id);
  DURO_ASSERT(it != shards_.end());
  const std::int64_t range_id = it->second.shard->range_id();
  const std::string data = record_data(*it->second.shard);
  drop(shard_id, "released to its new owner");
  stats_.released++;
  // Best effort: if this fails, the new owner waits for our membership
  // entry to lapse or the lease epoch to stall.
  store::UpdateShardRequest update{request_id(), range_id, store::ShardRecord{shard_id, range_id, "", 0, data}};
  (void)router_.store<store::UpdateShardReply>(store::kUpdateShardMethod, update);
}

void ShardController::drop(std::uint32_t shard_id, const std::string& why) {
  auto it = shards_.find(shard_id);
  if (it == shards_.end()) return;
  it->second.shard->stop(why, false);
  shards_.erase(it);
}

}  // namespace duro::engine
