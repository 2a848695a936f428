// Router: sends a call to the node that owns what it is about.
//
// A workflow belongs to a shard (a hash of its id), and a shard to the live
// server whose rendezvous weight for it is highest (Membership::owner_of);
// a task queue belongs to a server the same way. The router resolves the
// owner from this node's membership view and calls it over RPC (itself
// included: one path for every call). Views differ for a moment after a
// node joins or leaves, so the called node may not own the shard yet, or
// any more: it answers kUnavailable and the router tries again, with
// backoff, until the deadline. The store is reached the same way, at its
// fixed address.
//
// Retrying is safe because every call the router makes is idempotent on
// the other side (request ids, task tokens); calls that are not (a task
// queue poll, which may be handed a task) are made with retries off. Each
// try lasts rpc_timeout, or `try_timeout` for a call that waits on purpose
// (a result long poll): otherwise the router would give up on a waiting
// call and send another, which waits beside it. A try at this node itself
// runs the handler in the calling fiber (RpcServerOptions::
// local_calls_inline, set by ServerNode) and lasts as long as the handler,
// whose own deadlines bound it.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "engine/history/event.h"
#include "engine/server/membership.h"
#include "engine/server/server_options.h"
#include "sim/codec.h"
#include "sim/env.h"
#include "sim/rpc.h"

namespace duro::engine {

class Router {
 public:
  Router(sim::Env& env, sim::RpcClient& rpc, const Membership& membership, const ServerOptions& options);

  std::uint32_t shard_for(std::string_view workflow_id) const;
  // The node that should own `shard` in this node's view; "" if none.
  std::string shard_owner(std::uint32_t shard) const;
  static std::string shard_key(std::uint32_t shard);
  static std::string task_queue_key(const TaskQueue& task_queue);

  // Calls `method` on the owner of the workflow's shard. `try_timeout`: how
  // long one try may take (zero: options' rpc_timeout).
  template <typename Response, typename Request>
  sim::Result<Response> history(std::string_view workflow_id, std::string_view method, const Request& request,
                                sim::TimePoint deadline, bool retry = true, sim::Duration try_timeout = {}) {
    return decoded<Response>(
        call(shard_key(shard_for(workflow_id)), method, sim::encode(request), deadline, retry, try_timeout));
  }
  // As history(), with the request and the reply encoded: for a frontend
  // that forwards a request as it came.
  sim::Result<std::string> history_bytes(std::string_view workflow_id, std::string_view method, std::string_view payload,
                                         sim::TimePoint deadline) {
    return call(shard_key(shard_for(workflow_id)), method, payload, deadline, true, {});
  }
  // Calls `method` on the owner of the task queue.
  template <typename Response, typename Request>
  sim::Result<Response> matching(const TaskQueue& task_queue, std::string_view method, const Request& request,
                                 sim::TimePoint deadline, bool retry = true) {
    return decoded<Response>(call(task_queue_key(task_queue), method, sim::encode(request), deadline, retry, {}));
  }
  // Calls `method` on the named node.
  template <typename Response, typename Request>
  sim::Result<Response> node(std::string_view node_name, std::string_view method, const Request& request,
                             sim::TimePoint deadline) {
    return decoded<Response>(call_node(node_name, method, sim::encode(request), deadline));
  }
  // Calls the store once (no retries: the caller decides what an unknown
  // outcome means).
  template <typename Response, typename Request>
  sim::Result<Response> store(std::string_view method, const Request& request) {
    return decoded<Response>(rpc_.call_raw(store_endpoint(), method, sim::encode(request), options_.store_timeout));
  }
  sim::Endpoint store_endpoint() const;

 private:
  template <typename Response>
  static sim::Result<Response> decoded(sim::Result<std::string> bytes) {
    if (!bytes.ok()) return bytes.error();
    return sim::decode<Response>(bytes.value());
  }
  sim::Result<std::string> call(const std::string& key, std::string_view method, std::string_view payload,
                                sim::TimePoint deadline, bool retry, sim::Duration try_timeout);
  sim::Result<std::string> call_node(std::string_view node_name, std::string_view method, std::string_view payload,
                                     sim::TimePoint deadline);

  sim::Env& env_;
  sim::RpcClient& rpc_;
  const Membership& membership_;
  const ServerOptions& options_;
};

}  // namespace duro::engine
