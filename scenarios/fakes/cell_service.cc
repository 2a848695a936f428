#include "scenarios/fakes/cell_service.h"

#include <fmt/format.h>

#include <utility>

#include "scenarios/fakes/service_call.h"
#include "sim/assert.h"
#include "sim/random.h"
#include "sim/simulator.h"

namespace duro::scenarios {
namespace {

// Bounds a pull loop's life: far beyond any run (a pull a second).
constexpr std::uint64_t kPullRoundsMax = 100'000'000;

}  // namespace

const char* replica_role_name(ReplicaRole role) noexcept {
  switch (role) {
    case ReplicaRole::kActive: return "active";
    case ReplicaRole::kPassive: return "passive";
    case ReplicaRole::kDraining: return "draining";
    case ReplicaRole::kRetired: return "retired";
  }
  return "unknown";
}

std::int64_t Replica::workflow_count() const noexcept {
  std::int64_t count = 0;
  for (const auto& shard : shards) count += static_cast<std::int64_t>(shard.size());
  return count;
}

CellService::CellService(std::string name, FailureModel failure, CellOptions options)
    : FakeService(std::move(name), failure), options_(options) {
  DURO_ASSERT(options_.shard_count > 0 && options_.namespaces_max > 0);
  DURO_ASSERT(options_.pull_interval > sim::Duration{0});
}

std::uint32_t CellService::shard_of(std::string_view workflow_id, std::uint32_t shard_count) noexcept {
  DURO_ASSERT(shard_count > 0);
  return static_cast<std::uint32_t>(sim::hash_label(workflow_id) % shard_count);
}

void CellService::place(const std::string& ns, const std::string& upstream) {
  DURO_ASSERT_MSG(!replicas_.contains(ns), "a namespace placed twice in one cell");
  DURO_ASSERT(replicas_.size() < options_.namespaces_max);
  DURO_ASSERT(upstream != name());
  Replica& replica = replicas_[ns];
  replica.role = upstream.empty() ? ReplicaRole::kActive : ReplicaRole::kPassive;
  replica.upstream = upstream;
  replica.epoch = 1;
  replica.shards.resize(options_.shard_count);
}

void CellService::add_peer(const std::string& cell, sim::Address address) {
  DURO_ASSERT(!cell.empty() && cell != name());
  peers_[cell] = address;
}

const Replica* CellService::replica(std::string_view ns) const {
  auto it = replicas_.find(ns);
  return it == replicas_.end() ? nullptr : &it->second;
}

std::map<std::string, std::vector<std::string>> CellService::workflows_of(const Replica& replica) {
  std::map<std::string, std::vector<std::string>> workflows;
  for (const auto& shard : replica.shards) workflows.insert(shard.begin(), shard.end());
  return workflows;
}

void CellService::register_methods(sim::RpcServer& server, sim::Env& env) {
  serve<CellWrite, CellWriteReply>(server, env, "write", /*mutating=*/true,
                                   [this](const CellWrite& request) { return write(request); });
  serve<CellAdd, CellReplicaStatus>(server, env, "add", /*mutating=*/true,
                                    [this](const CellAdd& request) { return add(request); });
  serve<CellNamespace, CellReplicaStatus>(server, env, "status", /*mutating=*/false,
                                          [this](const CellNamespace& request) -> sim::Result<CellReplicaStatus> {
                                            return status_of(request.ns);
                                          });
  serve<CellDrain, CellReplicaStatus>(server, env, "drain", /*mutating=*/true,
                                      [this, &env](const CellDrain& request) { return drain(env, request); });
  serve<CellNamespace, CellReplicaStatus>(server, env, "resume", /*mutating=*/true,
                                          [this](const CellNamespace& request) { return resume(request); });
  serve<CellHandOver, CellReplicaStatus>(server, env, "hand_over", /*mutating=*/true,
                                         [this](const CellHandOver& request) { return hand_over(request); });
  serve<CellPromote, CellReplicaStatus>(server, env, "promote", /*mutating=*/true,
                                       [this](const CellPromote& request) { return promote(request); });
  serve<CellDemote, CellReplicaStatus>(server, env, "demote", /*mutating=*/true,
                                      [this](const CellDemote& request) { return demote(request); });
  serve<CellNamespace, CellReplicaStatus>(server, env, "remove", /*mutating=*/true,
                                          [this](const CellNamespace& request) { return remove(request); });
  serve<CellNamespace, CellSnapshot>(server, env, "pull", /*mutating=*/false,
                                     [this](const CellNamespace& request) -> sim::Result<CellSnapshot> {
                                       return snapshot_of(request.ns);
                                     });
}

void CellService::start(sim::Env& env) {
  env.spawn(name() + "-replication", [this, &env] { pull_loop(env); });
}

sim::Result<CellWriteReply> CellService::write(const CellWrite& request) {
  auto it = replicas_.find(request.ns);
  if (it == replicas_.end()) return sim::Error{sim::ErrorCode::kNotFound, name() + " has no replica of " + request.ns};
  Replica& replica = it->second;
  if (!replica.accepting()) {
    return CellWriteReply{.accepted = false, .cell = name(), .version = replica.version, .duplicate = false,
                          .redirect = replica.role == ReplicaRole::kRetired ? replica.handed_to : replica.upstream};
  }
  if (replica.write_ids.contains(request.write_id)) {
    return CellWriteReply{.accepted = true, .cell = name(), .version = replica.version, .duplicate = true,
                          .redirect = ""};
  }
  auto& shard = replica.shards[shard_of(request.workflow_id, options_.shard_count)];
  auto workflow = shard.find(request.workflow_id);
  if (workflow == shard.end()) {
    if (static_cast<std::size_t>(replica.workflow_count()) >= options_.workflows_max) {
      return sim::Error{sim::ErrorCode::kNoSpace, name() + ": too many workflows in " + request.ns};
    }
    workflow = shard.emplace(request.workflow_id, std::vector<std::string>{}).first;
  }
  if (workflow->second.size() >= options_.writes_per_workflow_max) {
    return sim::Error{sim::ErrorCode::kNoSpace, name() + ": workflow history full"};
  }
  workflow->second.push_back(request.write_id);
  replica.write_ids.insert(request.write_id);
  replica.version++;
  return CellWriteReply{.accepted = true, .cell = name(), .version = replica.version, .duplicate = false,
                        .redirect = ""};
}

sim::Result<CellReplicaStatus> CellService::add(const CellAdd& request) {
  auto it = replicas_.find(request.ns);
  if (it != replicas_.end()) {
    // The same add again (a retry) is success; another role is a conflict
    // the caller must look at.
    if (it->second.role == ReplicaRole::kPassive && it->second.upstream == request.upstream) return status_of(request.ns);
    return sim::Error{sim::ErrorCode::kAlreadyExists,
                      fmt::format("{} holds {} already ({})", name(), request.ns, replica_role_name(it->second.role))};
  }
  if (!peers_.contains(request.upstream)) {
    return sim::Error{sim::ErrorCode::kInvalidArgument, name() + " knows no cell " + request.upstream};
  }
  if (replicas_.size() >= options_.namespaces_max) {
    return sim::Error{sim::ErrorCode::kNoSpace, fmt::format("{} is full ({} namespaces)", name(), replicas_.size())};
  }
  Replica& replica = replicas_[request.ns];
  replica.role = ReplicaRole::kPassive;
  replica.upstream = request.upstream;
  replica.shards.resize(options_.shard_count);
  return status_of(request.ns);
}

sim::Result<CellReplicaStatus> CellService::drain(sim::Env& env, const CellDrain& request) {
  auto it = replicas_.find(request.ns);
  if (it == replicas_.end()) return sim::Error{sim::ErrorCode::kNotFound, name() + " has no replica of " + request.ns};
  Replica& replica = it->second;
  DURO_ASSERT(request.lease > sim::Duration{0});
  if (replica.role != ReplicaRole::kActive && replica.role != ReplicaRole::kDraining) {
    return sim::Error{sim::ErrorCode::kInvalidArgument,
                      fmt::format("{} cannot drain {}: it is {}", name(), request.ns, replica_role_name(replica.role))};
  }
  replica.role = ReplicaRole::kDraining;
  replica.drain_deadline = env.sim().now() + request.lease;
  const std::uint64_t drain_id = ++replica.drain_id;
  const std::string ns = request.ns;
  env.spawn(name() + "-drain-lease", [this, &env, ns, drain_id, lease = request.lease] {
    env.sleep_for(lease);
    auto found = replicas_.find(ns);
    if (found == replicas_.end() || found->second.role != ReplicaRole::kDraining ||
        found->second.drain_id != drain_id) {
      return;
    }
    // Nobody handed the namespace over in time: it takes writes again.
    found->second.role = ReplicaRole::kActive;
    notify_changed();
  });
  return status_of(request.ns);
}

sim::Result<CellReplicaStatus> CellService::resume(const CellNamespace& request) {
  auto it = replicas_.find(request.ns);
  if (it == replicas_.end()) return sim::Error{sim::ErrorCode::kNotFound, name() + " has no replica of " + request.ns};
  Replica& replica = it->second;
  if (replica.role != ReplicaRole::kActive && replica.role != ReplicaRole::kDraining) {
    return sim::Error{sim::ErrorCode::kInvalidArgument,
                      fmt::format("{} cannot resume {}: it is {}", name(), request.ns, replica_role_name(replica.role))};
  }
  // The pending lease timer finds another role (or drain id) and does nothing.
  replica.role = ReplicaRole::kActive;
  replica.drain_id++;
  return status_of(request.ns);
}

sim::Result<CellReplicaStatus> CellService::hand_over(const CellHandOver& request) {
  auto it = replicas_.find(request.ns);
  if (it == replicas_.end()) return sim::Error{sim::ErrorCode::kNotFound, name() + " has no replica of " + request.ns};
  Replica& replica = it->second;
  if (replica.role == ReplicaRole::kRetired && replica.handed_to == request.to && replica.epoch == request.epoch) {
    return status_of(request.ns);
  }
  if (replica.role != ReplicaRole::kDraining || request.epoch <= replica.epoch || request.to == name()) {
    return sim::Error{sim::ErrorCode::kInvalidArgument,
                      fmt::format("{} cannot hand {} over to {} at epoch {}: it is {} at epoch {}", name(), request.ns,
                                  request.to, request.epoch, replica_role_name(replica.role), replica.epoch)};
  }
  replica.role = ReplicaRole::kRetired;
  replica.handed_to = request.to;
  replica.epoch = request.epoch;
  return status_of(request.ns);
}

sim::Result<CellReplicaStatus> CellService::promote(const CellPromote& request) {
  auto it = replicas_.find(request.ns);
  if (it == replicas_.end()) return sim::Error{sim::ErrorCode::kNotFound, name() + " has no replica of " + request.ns};
  Replica& replica = it->second;
  if (replica.role == ReplicaRole::kActive && replica.epoch == request.epoch) return status_of(request.ns);
  if (request.epoch <= replica.epoch) {
    return sim::Error{sim::ErrorCode::kInvalidArgument,
                      fmt::format("{} cannot promote {} at epoch {}: it is {} at epoch {}", name(), request.ns,
                                  request.epoch, replica_role_name(replica.role), replica.epoch)};
  }
  replica.role = ReplicaRole::kActive;
  replica.epoch = request.epoch;
  replica.upstream.clear();
  replica.handed_to.clear();
  replica.drain_id++;  // A pending drain lease is void.
  replica.resync = false;
  return status_of(request.ns);
}

sim::Result<CellReplicaStatus> CellService::demote(const CellDemote& request) {
  auto it = replicas_.find(request.ns);
  if (it == replicas_.end()) return sim::Error{sim::ErrorCode::kNotFound, name() + " has no replica of " + request.ns};
  Replica& replica = it->second;
  if (replica.role == ReplicaRole::kPassive && replica.upstream == request.upstream && replica.epoch == request.epoch) {
    return status_of(request.ns);
  }
  // An active replica yields only to a newer epoch; a retired one also to
  // the epoch it was handed over at.
  const bool older = request.epoch > replica.epoch ||
                     (request.epoch == replica.epoch && replica.role != ReplicaRole::kActive);
  if (!older || !peers_.contains(request.upstream) || request.upstream == name()) {
    return sim::Error{sim::ErrorCode::kInvalidArgument,
                      fmt::format("{} cannot demote {} to follow {} at epoch {}: it is {} at epoch {}", name(),
                                  request.ns, request.upstream, request.epoch, replica_role_name(replica.role),
                                  replica.epoch)};
  }
  replica.role = ReplicaRole::kPassive;
  replica.upstream = request.upstream;
  replica.epoch = request.epoch;
  replica.handed_to.clear();
  replica.resync = true;
  return status_of(request.ns);
}

sim::Result<CellReplicaStatus> CellService::remove(const CellNamespace& request) {
  CellReplicaStatus status = status_of(request.ns);
  replicas_.erase(request.ns);
  return status;
}

CellReplicaStatus CellService::status_of(std::string_view ns) const {
  const Replica* found = replica(ns);
  if (found == nullptr) return CellReplicaStatus{.found = false, .cell = name(), .role = ReplicaRole::kPassive,
                                                 .epoch = 0, .version = 0, .upstream = "", .upstream_version = 0,
                                                 .handed_to = "", .workflows = 0};
  return CellReplicaStatus{.found = true, .cell = name(), .role = found->role, .epoch = found->epoch,
                           .version = found->version, .upstream = found->upstream,
                           .upstream_version = found->upstream_version, .handed_to = found->handed_to,
                           .workflows = found->workflow_count()};
}

CellSnapshot CellService::snapshot_of(std::string_view ns) const {
  const Replica* found = replica(ns);
  if (found == nullptr) return CellSnapshot{};
  return CellSnapshot{.found = true, .role = found->role, .epoch = found->epoch, .version = found->version,
                      .handed_to = found->handed_to, .workflows = workflows_of(*found)};
}

void CellService::pull_loop(sim::Env& env) {
  for (std::uint64_t round = 0; round < kPullRoundsMax; round++) {
    env.sleep_for(options_.pull_interval);
    std::vector<std::pair<std::string, std::string>> pulls;  // (namespace, upstream)
    for (const auto& [ns, replica] : replicas_) {
      if (replica.role == ReplicaRole::kPassive) pulls.emplace_back(ns, replica.upstream);
    }
    for (const auto& [ns, upstream] : pulls) {
      auto peer = peers_.find(upstream);
      DURO_ASSERT(peer != peers_.end());
      try {
        sim::Result<CellSnapshot> snapshot = call_service<CellSnapshot>(env, peer->second, "pull", CellNamespace{ns});
        if (snapshot.ok()) apply_pull(ns, snapshot.value());
      } catch (const ServiceUnavailable&) {
        // The upstream is down or slow: the replica lags; next round.
      }
    }
  }
}

void CellService::apply_pull(const std::string& ns, const CellSnapshot& snapshot) {
  auto it = replicas_.find(ns);
  // The replica may have been removed or changed while the pull was out.
  if (it == replicas_.end() || it->second.role != ReplicaRole::kPassive || !snapshot.found) return;
  Replica& replica = it->second;
  const bool handed_here = snapshot.role == ReplicaRole::kRetired && snapshot.handed_to == name() &&
                           snapshot.epoch > replica.epoch;
  if (snapshot.version == replica.version && !handed_here && !replica.resync) {
    replica.upstream_version = snapshot.version;
    return;
  }
  fill(replica, snapshot.workflows);
  replica.resync = false;
  replica.version = snapshot.version;
  replica.upstream_version = snapshot.version;
  if (handed_here) {
    // The upstream handed the namespace to this cell, and this snapshot
    // holds its last write: take over.
    replica.role = ReplicaRole::kActive;
    replica.epoch = snapshot.epoch;
  }
  notify_changed();
}

void CellService::fill(Replica& replica, const std::map<std::string, std::vector<std::string>>& workflows) const {
  DURO_ASSERT(workflows.size() <= options_.workflows_max);
  replica.shards.assign(options_.shard_count, {});
  replica.write_ids.clear();
  for (const auto& [workflow_id, writes] : workflows) {
    replica.shards[shard_of(workflow_id, options_.shard_count)].emplace(workflow_id, writes);
    replica.write_ids.insert(writes.begin(), writes.end());
  }
}

}  // namespace duro::scenarios
