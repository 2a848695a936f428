#include "engine/server/membership.h"

#include <algorithm>
#include <utility>

#include "sim/random.h"

namespace duro::engine {

std::uint64_t rendezvous_weight(std::string_view node, std::string_view key) noexcept {
  // Mix the node's hash before combining, so that weights of one key under
  // different nodes (and of nearby keys under one node) are unrelated: FNV
  // alone leaves similar names with similar low bits.
  std::uint64_t state = sim::hash_label(node);
  state = sim::splitmix64(state) ^ sim::hash_label(key);
  return sim::splitmix64(state);
}

std::string rendezvous_owner(const std::vector<store::Member>& members, std::string_view key) {
  const store::Member* best = nullptr;
  std::uint64_t best_weight = 0;
  for (const store::Member& member : members) {
    const std::uint64_t weight = rendezvous_weight(member.node, key);
    if (best == nullptr || weight > best_weight || (weight == best_weight && member.node < best->node)) {
      best = &member;
      best_weight = weight;
    }
  }
  return best == nullptr ? std::string() : best->node;
}

Membership::Membership(sim::Env& env, std::string node_name, Heartbeat heartbeat, MembershipOptions options)
    : env_(env), node_name_(std::move(node_name)), heartbeat_(std::move(heartbeat)), options_(options) {
  DURO_ASSERT(!node_name_.empty());
  DURO_ASSERT(heartbeat_ != nullptr);
  DURO_ASSERT(options_.interval.count() > 0);
  DURO_ASSERT(options_.ttl.count() > 0);
  DURO_ASSERT(options_.members_max > 0 && options_.change_waiters_max > 0);
}

Membership::~Membership() {
  // A crash unwinds the node's fibers before it destroys the process, so no
  // fiber can still wait here; one that did would wake into freed memory.
  DURO_ASSERT_MSG(change_waiters_.empty(), "Membership destroyed while a fiber waits for a change");
  // Destroyed with its node still up: stop the heartbeats. The daemon's
  // unwinding touches nothing of this object.
  if (daemon_.valid() && !daemon_.done()) daemon_.cancel();
}

void Membership::start() {
  DURO_ASSERT_MSG(!daemon_.valid(), "Membership::start() called twice");
  daemon_ = env_.spawn(
      "membership",
      [this] {
        // A daemon: runs for the life of the node's process.
        for (;;) {
          (void)refresh();
          expire_if_stale();
          const std::int64_t interval_ns = options_.interval.count();
          const std::int64_t quarter_ns = interval_ns / 4;
          const std::int64_t sleep_ns =
              interval_ns - quarter_ns + static_cast<std::int64_t>(env_.random().uniform(
                                             static_cast<std::uint64_t>(2 * quarter_ns) + 1));
          DURO_ASSERT(sleep_ns > 0);
          env_.sleep_for(sim::Duration{sleep_ns});
        }
      },
      sim::SpawnOptions{.daemon = true});
}

sim::Result<void> Membership::refresh() {
  const std::uint64_t seq = heartbeat_seq_next_++;
  // The view is as fresh as this instant at best: the ttl runs from here.
  const sim::TimePoint sent_at = env_.sim().now();
  const store::HeartbeatRequest request{
      .node = node_name_,
      .address = sim::to_string(env_.address()),
      .incarnation = env_.incarnation(),
      .ttl = options_.ttl,
  };
  sim::Result<store::HeartbeatReply> reply = heartbeat_(request);
  if (!reply.ok()) {
    stats_.heartbeats_failed++;
    expire_if_stale();
    return reply.error();
  }
  stats_.heartbeats_ok++;
  if (seq < heartbeat_seq_applied_) {
    stats_.replies_stale++;
    return {};
  }
  heartbeat_seq_applied_ = seq;
  last_ok_ = sent_at;
  apply(std::move(reply).value());
  return {};
}

void Membership::apply(store::HeartbeatReply reply) {
  // The store had listened for `listening` when it answered, some time
  // before now: counting the rest of the ttl from now errs late, never
  // early.
  const sim::Duration unheard = std::max(sim::Duration{0}, options_.ttl - reply.listening);
  complete_at_ = env_.sim().now() + unheard;
  std::vector<store::Member> members = std::move(reply.members);
  // The store sends them sorted and unique; normalize anyway, since the
  // lookups below depend on it and the bytes came over a network.
  std::sort(members.begin(), members.end(), [](const store::Member& a, const store::Member& b) {
    if (a.node != b.node) return a.node < b.node;
    return a.incarnation > b.incarnation;  // The newest incarnation of a node first...
  });
  const std::size_t before = members.size();
  members.erase(std::unique(members.begin(), members.end(),  // ...and kept.
                            [](const store::Member& a, const store::Member& b) { return a.node == b.node; }),
                members.end());
  if (members.size() > options_.members_max) members.resize(options_.members_max);
  stats_.members_cut += before - members.size();

  auto same_member = [](const store::Member& a, const store::Member& b) {
    return a.node == b.node && a.address == b.address && a.incarnation == b.incarnation;
  };
  const bool changed = !has_view_ || !std::equal(members.begin(), members.end(), members_.begin(),
                                                 members_.end(), same_member);
  members_ = std::move(members);
  has_view_ = true;
  if (changed) bump();
}

void Membership::expire_if_stale() {
  if (!has_view_ || env_.sim().now() - last_ok_ < options_.ttl) return;
  has_view_ = false;
  members_.clear();
  stats_.views_expired++;
  bump();
}

void Membership::bump() {
  version_++;
  stats_.changes++;
  sim::Simulator& sim = env_.sim();
  for (const auto& [seq, waiter] : change_waiters_) sim.notify(waiter);
  change_waiters_.clear();
}

const store::Member* Membership::find(std::string_view node) const {
  auto it = std::lower_bound(members_.begin(), members_.end(), node,
                             [](const store::Member& member, std::string_view name) { return member.node < name; });
  if (it == members_.end() || it->node != node) return nullptr;
  return &*it;
}

bool Membership::alive(std::string_view node) const { return find(node) != nullptr; }

bool Membership::complete() const { return has_view_ && env_.sim().now() >= complete_at_; }

std::optional<std::string> Membership::address_of(std::string_view node) const {
  const store::Member* member = find(node);
  if (member == nullptr) return std::nullopt;
  return member->address;
}

std::string Membership::owner_of(std::string_view key) const { return rendezvous_owner(members_, key); }

bool Membership::wait_for_change(sim::TimePoint deadline) {
  const std::uint64_t version_at_start = version_;
  sim::Simulator& sim = env_.sim();
  // Bounded by the deadline: every pass waits, and only a bump notifies.
  for (;;) {
    if (version_ != version_at_start) return true;
    DURO_ASSERT_MSG(change_waiters_.size() < options_.change_waiters_max, "too many fibers wait for a membership change");
    const std::uint64_t seq = change_waiter_seq_next_++;
    const sim::Waiter waiter = sim.begin_wait();
    change_waiters_.emplace(seq, waiter);
    struct Unregister {
      std::map<std::uint64_t, sim::Waiter>* waiters;
      std::uint64_t seq;
      ~Unregister() { waiters->erase(seq); }
    } unregister{&change_waiters_, seq};
    const sim::WakeReason reason = sim.suspend(waiter, "membership change", deadline);
    if (version_ != version_at_start) return true;
    if (reason != sim::WakeReason::kNotified) return false;
  }
}

}  // namespace duro::engine
