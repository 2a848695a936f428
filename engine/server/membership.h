// Membership: which server nodes are alive, as the store sees them.
//
// Each server node heartbeats the store every `interval` (jittered) with a
// time to live; the store answers with every member it heard from within
// that member's ttl, judged by the store's own clock (store_api.h,
// "Membership"). The reply is this node's view of the cluster: who is
// alive, where they listen, and who owns what.
//
//   Membership membership(env, "server-1", [&](const store::HeartbeatRequest& request) {
//     return store_client.call<store::HeartbeatReply>(store_endpoint, store::kHeartbeatMethod, request, 500ms);
//   });
//   membership.start();
//   std::string owner = membership.owner_of("task-queue/orders");
//
// Ownership is rendezvous hashing (highest random weight): a key belongs to
// the live member whose (member, key) weight is highest. Every node with
// the same view computes the same owner; when a member leaves, only its own
// keys move (each to the member with its second-highest weight), and when
// one joins, it takes only keys it now wins. Weights are our own hash of the
// names (never std::hash), so they are the same in every build and run.
//
// The view is soft: views of different nodes may differ for a moment (they
// heartbeat at different instants), so ownership by membership is a routing
// hint, never a lock. What must be exclusive is fenced in the store
// (shards' range_id). A node that cannot reach the store for a whole ttl
// drops its view (has_view() turns false, members() empties): by then the
// store counts it gone, and others may have taken what it had.
//
// A store keeps members in memory only, so a store that restarted less
// than a ttl ago may not have heard yet from members that are alive: the
// first server to reach it sees itself alone. complete() tells: a node
// missing from an incomplete view is unknown, not gone, and nothing may be
// taken from it on that evidence (shard_controller.h). Without this every
// store restart moved shards to whoever heartbeat first, and back seconds
// later.
//
// Threading: one fiber of the node runs the heartbeats (start()); the
// accessors read the last view and never wait.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/store/store_api.h"
#include "sim/env.h"
#include "sim/result.h"

namespace duro::engine {

struct MembershipOptions {
  sim::Duration interval = std::chrono::seconds{1};  // Between heartbeats, ±25% jitter.
  sim::Duration ttl = std::chrono::seconds{5};       // Sent to the store; also how long a view lasts unrefreshed.
  std::size_t members_max = 1024;                    // A reply beyond this is cut (and counted).
  std::size_t change_waiters_max = 4096;             // Fibers in wait_for_change() at once.
};

struct MembershipStats {
  std::uint64_t heartbeats_ok = 0;
  std::uint64_t heartbeats_failed = 0;
  std::uint64_t replies_stale = 0;     // Overtaken by a later heartbeat's reply; not applied.
  std::uint64_t members_cut = 0;       // Beyond members_max, or duplicates.
  std::uint64_t views_expired = 0;     // Dropped after a ttl without a heartbeat.
  std::uint64_t changes = 0;           // Version bumps.
};

// The rendezvous weight of `node` for `key`: a 64-bit mix of both names'
// hashes. Deterministic everywhere.
std::uint64_t rendezvous_weight(std::string_view node, std::string_view key) noexcept;

// The member with the highest weight for `key` (ties, vanishingly rare, go
// to the smaller node name); "" when there are no members.
std::string rendezvous_owner(const std::vector<store::Member>& members, std::string_view key);

class Membership {
 public:
  using Heartbeat = std::function<sim::Result<store::HeartbeatReply>(const store::HeartbeatRequest&)>;

  // `heartbeat` sends one heartbeat to the store and returns its reply; it
  // runs in this node's fibers and should give up within about `interval`
  // (a heartbeat stuck longer delays the next one and the view's expiry).
  Membership(sim::Env& env, std::string node_name, Heartbeat heartbeat, MembershipOptions options = {});
  ~Membership();
  Membership(const Membership&) = delete;
  Membership& operator=(const Membership&) = delete;

  // Starts the heartbeat fiber (a daemon on this node): one heartbeat at
  // once, then one per interval, jittered from env.random() so that nodes
  // booted together do not beat in step. Call once.
  void start();

  // One heartbeat now, in the calling fiber; updates the view on success.
  // The daemon calls this; others may, to refresh sooner. A reply that
  // arrives after a later heartbeat's reply is ignored.
  sim::Result<void> refresh();

  // False until the first successful heartbeat, and again after a ttl
  // with none.
  bool has_view() const noexcept { return has_view_; }
  // True once the store has listened for heartbeats for a whole ttl of
  // this node's own (servers share one ttl): then every member missing
  // from the view has been silent for that long. False without a view.
  bool complete() const;
  // The live members, sorted by node name, ages as the store reported them.
  const std::vector<store::Member>& members() const noexcept { return members_; }
  // Bumps whenever the set of live members changes: a node joins, leaves,
  // restarts (new incarnation) or moves (new address), or the view appears
  // or expires. Ages alone do not count.
  std::uint64_t version() const noexcept { return version_; }
  bool alive(std::string_view node) const;
  std::optional<std::string> address_of(std::string_view node) const;
  // rendezvous_owner() over members(): "" if there are none.
  std::string owner_of(std::string_view key) const;

  // Suspends the calling fiber until version() changes or the deadline (a
  // simulator instant); true if it changed.
  bool wait_for_change(sim::TimePoint deadline);

  const MembershipStats& stats() const noexcept { return stats_; }
  const std::string& node_name() const noexcept { return node_name_; }

 private:
  const store::Member* find(std::string_view node) const;
  void apply(store::HeartbeatReply reply);
  void expire_if_stale();
  void bump();

  sim::Env& env_;
  std::string node_name_;
  Heartbeat heartbeat_;
  MembershipOptions options_;
  std::vector<store::Member> members_;
  std::uint64_t version_ = 0;
  bool has_view_ = false;
  sim::TimePoint last_ok_{};              // Simulator time of the last applied reply.
  sim::TimePoint complete_at_{};          // Simulator time from which the view is complete.
  std::uint64_t heartbeat_seq_next_ = 1;  // Orders heartbeats that overlap.
  std::uint64_t heartbeat_seq_applied_ = 0;
  std::map<std::uint64_t, sim::Waiter> change_waiters_;
  std::uint64_t change_waiter_seq_next_ = 0;
  sim::FiberHandle daemon_;
  MembershipStats stats_;
};

}  // namespace duro::engine
