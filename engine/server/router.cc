#include "engine/server/router.h"

#include <algorithm>
#include <optional>

#include "engine/server/api.h"
#include "engine/store/store_api.h"
#include "sim/assert.h"

namespace duro::engine {
namespace {

// Whether another try may succeed where this one failed: the owner moved or
// is busy, or the call timed out (every routed call is idempotent).
bool retryable(const sim::Error& error) {
  return error.code == sim::ErrorCode::kUnavailable || error.code == sim::ErrorCode::kTimeout ||
         error.code == sim::ErrorCode::kOverloaded;
}

constexpr int kAttemptsMax = 64;  // A bound on the loop; the deadline usually ends it first.
constexpr sim::Duration kBackoffInitial = std::chrono::milliseconds{50};
constexpr sim::Duration kBackoffMax = std::chrono::seconds{1};

}  // namespace

Router::Router(sim::Env& env, sim::RpcClient& rpc, const Membership& membership, const ServerOptions& options)
    : env_(env), rpc_(rpc), membership_(membership), options_(options) {
  DURO_ASSERT(options.shard_count > 0);
}

std::uint32_t Router::shard_for(std::string_view workflow_id) const {
  return static_cast<std::uint32_t>(sim::hash_label(workflow_id) % options_.shard_count);
}

std::string Router::shard_key(std::uint32_t shard) { return "shard/" + std::to_string(shard); }

std::string Router::task_queue_key(const TaskQueue& task_queue) { return "task-queue/" + task_queue.name; }

std::string Router::shard_owner(std::uint32_t shard) const { return membership_.owner_of(shard_key(shard)); }

sim::Endpoint Router::store_endpoint() const { return sim::Endpoint{options_.store_address, store::kStorePort}; }

sim::Result<std::string> Router::call_node(std::string_view node_name, std::string_view method,
                                           std::string_view payload, sim::TimePoint deadline) {
  const std::optional<std::string> address_text = membership_.address_of(node_name);
  if (!address_text) return sim::Error{sim::ErrorCode::kUnavailable, "node " + std::string(node_name) + " is not live"};
  const std::optional<sim::Address> address = sim::parse_address(*address_text);
  if (!address) return sim::Error{sim::ErrorCode::kUnavailable, "node " + std::string(node_name) + " has a bad address"};
  const sim::TimePoint now = env_.sim().now();
  if (deadline <= now) return sim::Error{sim::ErrorCode::kTimeout, "deadline passed before the call"};
  return rpc_.call_raw(sim::Endpoint{*address, kFrontendPort}, method, payload, deadline - now);
}

sim::Result<std::string> Router::call(const std::string& key, std::string_view method, std::string_view payload,
                                      sim::TimePoint deadline, bool retry, sim::Duration try_timeout) {
  if (try_timeout <= sim::Duration{0}) try_timeout = options_.rpc_timeout;
  sim::Duration backoff = kBackoffInitial;
  // The last try's error; none yet means no server owned the key. Built
  // only when returned: most calls succeed at once.
  std::optional<sim::Error> last;
  const auto unowned = [&] { return sim::Error{sim::ErrorCode::kUnavailable, "no live server owns " + key}; };
  for (int attempt = 0; attempt < kAttemptsMax; attempt++) {
    const sim::TimePoint now = env_.sim().now();
    if (now >= deadline) break;
    const std::string owner = membership_.owner_of(key);
    if (!owner.empty()) {
      // Each try leaves time for another, unless it is a long poll.
      const sim::TimePoint try_deadline = retry ? std::min(deadline, now + try_timeout) : deadline;
      sim::Result<std::string> reply = call_node(owner, method, payload, try_deadline);
      if (reply.ok() || !retry || !retryable(reply.error())) return reply;
      last = std::move(reply.error());
    } else if (!retry) {
      return unowned();
    }
    const sim::TimePoint wake = std::min(deadline, env_.sim().now() + backoff);
    if (wake <= env_.sim().now()) break;
    sim::this_fiber::sleep_until(wake);
    backoff = std::min(backoff * 2, kBackoffMax);
  }
  return last.has_value() ? std::move(*last) : unowned();
}

}  // namespace duro::engine
