// A server node's configuration: where the store is, how shards are split
// and leased, the timeouts of its calls, and the bounds on its queues.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>

#include "engine/server/matching.h"
#include "engine/server/membership.h"
#include "engine/server/server_limits.h"
#include "sim/clock.h"
#include "sim/node.h"

namespace duro::engine {

struct ServerOptions {
  sim::Address store_address;  // The store node's address (its port is store::kStorePort).
  // Workflow ids hash to this many shards. Fixed for the cluster's life:
  // every node must agree, and changing it moves every workflow.
  std::uint32_t shard_count = 16;

  // Calls to the store and between server nodes. A store write that times
  // out has an unknown outcome: the shard is taken again and reloaded.
  sim::Duration store_timeout = std::chrono::seconds{3};
  sim::Duration rpc_timeout = std::chrono::seconds{3};
  // How long a poll waits for a task before it returns empty. Workers call
  // with a longer RPC timeout than this.
  sim::Duration long_poll_wait = std::chrono::seconds{20};

  // Shard leases, on this node's own clock. The owner renews every
  // renew_interval; a shard it has not renewed for `lease` it stops using
  // (another may have it by then). Others take a shard whose owner left
  // the membership view, or that nobody renewed for 3 leases.
  sim::Duration lease = std::chrono::seconds{10};
  sim::Duration renew_interval = std::chrono::seconds{2};
  sim::Duration controller_interval = std::chrono::seconds{1};
  MembershipOptions membership{};

  // Task processing per shard.
  std::size_t transfer_concurrency = 16;
  std::size_t timer_concurrency = 16;
  std::size_t tasks_in_memory_max = 100'000;  // Per queue of a shard; beyond, tasks wait in the store.
  sim::Duration timer_lookahead = std::chrono::hours{1};
  sim::Duration ack_interval = std::chrono::seconds{1};
  std::size_t cached_runs_max = 1'000;  // Mutable states kept per shard.

  MatchingOptions matching{};
  ServerLimits limits{};

  // `duro fuzz` only (delivery_fuzz.h): the longest a server holds a
  // signal, an activity or child result, a timer firing or a workflow
  // task's start before applying it. 0: never held.
  sim::Duration fuzz_delivery_hold_max{0};
};

}  // namespace duro::engine
