// ShardController: which shards this node owns, taken and kept under
// leases from the store.
//
// Every controller_interval the controller compares the shards it holds
// with the ones its membership view says it should (rendezvous hashing of
// "shard/N" over the live servers):
//   - a shard it should own and does not: it reads the shard record and
//     takes it — compare-and-set range_id R -> R + 1 — when the recorded
//     owner is itself (a previous incarnation), nobody, a node missing from
//     a complete view (Membership::complete(): not one a restarted store
//     is still filling), or an owner that has not renewed it for 3 leases.
//     Then it
//     loads the shard (Shard::start).
//   - a shard it holds: it renews it every renew_interval, a CAS that keeps
//     R and bumps lease_epoch; all of them in one store mutation
//     (RenewShards), all or nothing. A renewal refused (the range moved on)
//     loses the shard at once: when the joint one is refused, the shards are
//     renewed one by one to tell which. One not renewed within
//     `lease` of this node's own clock is dropped too: by then another node
//     may have it.
// Settled (holding exactly what it should), the controller wakes only for
// the next renewal or a change of the view.
//   - a shard it holds but should not (a node joined): it releases it —
//     CAS to owner "" — so the new owner need not wait out the lease.
// None of this is needed for safety: every write is fenced by the range
// id, so a node that believes too long that it owns a shard (paused,
// partitioned, its clock skewed) has its writes refused and stops. Leases
// keep the stale period short, so reads (queries, results) stay fresh.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "engine/server/membership.h"
#include "engine/server/router.h"
#include "engine/server/server_options.h"
#include "engine/server/shard.h"
#include "sim/env.h"

namespace duro::engine {

struct ShardControllerStats {
  std::uint64_t acquired = 0;
  std::uint64_t lost = 0;  // A renewal or a write was refused: another node took the shard.
  std::uint64_t released = 0;
  std::uint64_t renewals = 0;
};

class ShardController {
 public:
  ShardController(sim::Env& env, Router& router, Membership& membership, const ServerOptions& options,
                  std::string node_name, std::function<void(const std::string&)> log);
  ~ShardController();
  ShardController(const ShardController&) = delete;
  ShardController& operator=(const ShardController&) = delete;

  // Starts the control loop (a daemon fiber).
  void start();

  // The active shard for a workflow id, or nullptr if this node does not
  // own it right now.
  std::shared_ptr<Shard> shard_for_workflow(std::string_view workflow_id) const;
  std::shared_ptr<Shard> shard(std::uint32_t shard_id) const;
  std::size_t owned() const noexcept { return shards_.size(); }
  const ShardControllerStats& stats() const noexcept { return stats_; }

 private:
  struct Held {
    std::shared_ptr<Shard> shard;
    sim::TimePoint renewed_at{};  // This node's clock, when the last renewal was sent.
    std::uint64_t lease_epoch = 0;
  };
  // What this node knows of shards it does not hold: when it first saw
  // their lease epoch at its current value (to tell a dead owner).
  struct Watched {
    std::uint64_t lease_epoch = 0;
    sim::TimePoint since{};
  };

  void loop();
  // True when it holds exactly the shards the view gives it.
  bool reconcile();
  void acquire(std::uint32_t shard_id);
  void renew_all();
  // Renews these held shards in one mutation; when it is refused, each on
  // its own, and a shard whose own renewal is refused is lost.
  void renew(const std::vector<std::uint32_t>& shard_ids);
  void release(std::uint32_t shard_id);
  void drop(std::uint32_t shard_id, const std::string& why);
  std::string request_id();

  sim::Env& env_;
  Router& router_;
  Membership& membership_;
  const ServerOptions& options_;
  std::string node_name_;
  std::function<void(const std::string&)> log_;
  std::map<std::uint32_t, Held> shards_;
  std::map<std::uint32_t, Watched> watched_;
  std::uint64_t request_seq_ = 0;
  sim::FiberHandle fiber_;
  ShardControllerStats stats_;
};

}  // namespace duro::engine
