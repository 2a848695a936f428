// CellService: one cell of the data plane, as the control plane sees it —
// the namespaces it holds a replica of, and the tenants' workflows in them.
//
// A replica of a namespace has a role:
//   active    accepts the tenants' writes (exactly one cell should);
//   passive   a copy that pulls the namespace from its upstream cell about
//             once a second (asynchronous replication: it lags);
//   draining  was active and stopped accepting writes for a lease; when
//             the lease runs out without a handover it is active again, so
//             a control plane that stalls mid-migration cannot leave the
//             namespace without a writer for long;
//   retired   handed over to another cell; it refuses writes and tells the
//             caller where the namespace went.
// A passive replica that pulls its upstream's handover to itself (retired,
// handed to this cell, at a newer epoch) takes over: it becomes active at
// that epoch, with the upstream's last writes, which it now holds. So the
// data plane finishes a handover the control plane started even while the
// control plane is down, and the window with no writer is about one pull.
//
// Workflows live in shards: shard = hash(workflow id) mod the cell's shard
// count, so a namespace that moves to a cell with another shard count has
// every workflow re-mapped. A write appends one event to a workflow (the
// first creates it) and carries a write id: a repeated id is applied once,
// in whichever cell it lands after the namespace moved.
//
// Methods (each request names the namespace):
//   "write"     CellWrite -> CellWriteReply: accepted, or not (the replica
//               is not active) with the cell to try instead; kNotFound when
//               there is no replica.
//   "add"       CellAdd -> CellReplicaStatus: a passive replica pulling
//               from `upstream`; kNoSpace at the namespace capacity.
//   "status"    CellNamespace -> CellReplicaStatus (found = false if none).
//   "drain"     CellDrain -> status: active -> draining for `lease`
//               (draining: the lease is extended); else kInvalidArgument.
//   "resume"    CellNamespace -> status: draining -> active (a drain given
//               up before its lease ends); active is success already;
//               anything else is kInvalidArgument.
//   "hand_over" CellHandOver -> status: draining -> retired, handed to
//               `to` at `epoch`; the same hand-over again is success;
//               anything else (the lease ran out: active again) is
//               kInvalidArgument.
//   "promote"   CellPromote -> status: a forced failover: any role -> active
//               at `epoch`, if newer than its own, whatever its upstream
//               says; the same promotion again is success. Two cells may
//               then both be active (split brain) until the old one is
//               demoted.
//   "demote"    CellDemote -> status: any role at an older epoch (or, not
//               active, at the same one: a retired replica) -> passive,
//               pulling from `upstream` at `epoch`; its next pull replaces
//               its content with the upstream's (conflict resolution: the
//               newer epoch wins; writes only the loser took are dropped).
//   "remove"    CellNamespace -> status: drops the replica, whatever its
//               role (the control plane must know it is safe).
//   "pull"      CellNamespace -> CellSnapshot: what replication reads.
//
// Ground truth for the checkers: replicas(), replica(), and the changes
// hook after every change (writes, roles, pulls that applied).
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "scenarios/fakes/fake_service.h"

namespace duro::scenarios {

enum class ReplicaRole : std::uint8_t { kActive, kPassive, kDraining, kRetired };
const char* replica_role_name(ReplicaRole role) noexcept;

struct CellWrite {
  std::string ns;
  std::string workflow_id;
  std::string write_id;
};
DURO_CODEC_FIELDS(CellWrite, ns, workflow_id, write_id);

struct CellWriteReply {
  bool accepted = false;
  std::string cell;
  std::int64_t version = 0;  // The namespace's version after the write.
  bool duplicate = false;    // The write id was applied before.
  std::string redirect;      // Not accepted: where the namespace went (or comes from).
};
DURO_CODEC_FIELDS(CellWriteReply, accepted, cell, version, duplicate, redirect);

struct CellNamespace {
  std::string ns;
};
DURO_CODEC_FIELDS(CellNamespace, ns);

struct CellAdd {
  std::string ns;
  std::string upstream;
};
DURO_CODEC_FIELDS(CellAdd, ns, upstream);

struct CellDrain {
  std::string ns;
  sim::Duration lease{};
};
DURO_CODEC_FIELDS(CellDrain, ns, lease);

struct CellHandOver {
  std::string ns;
  std::string to;
  std::int64_t epoch = 0;
};
DURO_CODEC_FIELDS(CellHandOver, ns, to, epoch);

struct CellPromote {
  std::string ns;
  std::int64_t epoch = 0;
};
DURO_CODEC_FIELDS(CellPromote, ns, epoch);

struct CellDemote {
  std::string ns;
  std::string upstream;
  std::int64_t epoch = 0;
};
DURO_CODEC_FIELDS(CellDemote, ns, upstream, epoch);

struct CellReplicaStatus {
  bool found = false;
  std::string cell;
  ReplicaRole role = ReplicaRole::kPassive;
  std::int64_t epoch = 0;
  std::int64_t version = 0;           // Writes applied (or pulled).
  std::string upstream;               // passive: where it pulls from.
  std::int64_t upstream_version = 0;  // passive: the upstream's version at the last pull.
  std::string handed_to;              // retired: the new owner.
  std::int64_t workflows = 0;
};
DURO_CODEC_FIELDS(CellReplicaStatus, found, cell, role, epoch, version, upstream, upstream_version, handed_to,
                  workflows);

// A replica's whole content, as replication ships it: workflow id -> the
// write ids applied to it, in order.
struct CellSnapshot {
  bool found = false;
  ReplicaRole role = ReplicaRole::kPassive;
  std::int64_t epoch = 0;
  std::int64_t version = 0;
  std::string handed_to;
  std::map<std::string, std::vector<std::string>> workflows;
};
DURO_CODEC_FIELDS(CellSnapshot, found, role, epoch, version, handed_to, workflows);

struct CellOptions {
  std::uint32_t shard_count = 4;
  std::size_t namespaces_max = 8;  // Replicas of any role.
  sim::Duration pull_interval = std::chrono::seconds{1};
  std::size_t workflows_max = 10'000;    // Per namespace.
  std::size_t writes_per_workflow_max = 10'000;
};

struct Replica {
  ReplicaRole role = ReplicaRole::kPassive;
  std::int64_t epoch = 0;
  std::int64_t version = 0;
  std::string upstream;
  std::int64_t upstream_version = 0;
  std::string handed_to;
  sim::TimePoint drain_deadline{};
  std::uint64_t drain_id = 0;  // Which drain a lease timer belongs to.
  bool resync = false;         // Demoted: the next pull replaces everything.
  // shards[hash(workflow id) % shard_count]: workflow id -> its write ids.
  std::vector<std::map<std::string, std::vector<std::string>>> shards;
  std::set<std::string> write_ids;

  bool accepting() const noexcept { return role == ReplicaRole::kActive; }
  std::int64_t workflow_count() const noexcept;
};

class CellService final : public FakeService {
 public:
  CellService(std::string name, FailureModel failure, CellOptions options);

  // The shard a workflow lives in, in a cell of `shard_count` shards.
  static std::uint32_t shard_of(std::string_view workflow_id, std::uint32_t shard_count) noexcept;

  // Places a namespace here before the run (it was provisioned earlier):
  // active at epoch 1, or passive at epoch 1 pulling from `upstream`.
  void place(const std::string& ns, const std::string& upstream = "");
  // Where another cell is, for replication from it.
  void add_peer(const std::string& cell, sim::Address address);

  const CellOptions& options() const noexcept { return options_; }
  const std::map<std::string, Replica, std::less<>>& replicas() const noexcept { return replicas_; }
  const Replica* replica(std::string_view ns) const;
  // Every workflow of a replica, merged over its shards.
  static std::map<std::string, std::vector<std::string>> workflows_of(const Replica& replica);

 protected:
  void register_methods(sim::RpcServer& server, sim::Env& env) override;
  void start(sim::Env& env) override;

 private:
  sim::Result<CellWriteReply> write(const CellWrite& request);
  sim::Result<CellReplicaStatus> add(const CellAdd& request);
  sim::Result<CellReplicaStatus> drain(sim::Env& env, const CellDrain& request);
  sim::Result<CellReplicaStatus> resume(const CellNamespace& request);
  sim::Result<CellReplicaStatus> hand_over(const CellHandOver& request);
  sim::Result<CellReplicaStatus> promote(const CellPromote& request);
  sim::Result<CellReplicaStatus> demote(const CellDemote& request);
  sim::Result<CellReplicaStatus> remove(const CellNamespace& request);
  CellReplicaStatus status_of(std::string_view ns) const;
  CellSnapshot snapshot_of(std::string_view ns) const;
  // Replication: each passive replica pulls its upstream.
  void pull_loop(sim::Env& env);
  void apply_pull(const std::string& ns, const CellSnapshot& snapshot);
  void fill(Replica& replica, const std::map<std::string, std::vector<std::string>>& workflows) const;

  CellOptions options_;
  std::map<std::string, Replica, std::less<>> replicas_;
  std::map<std::string, sim::Address, std::less<>> peers_;
};

}  // namespace duro::scenarios
