// Frontend: the public API of a server node (api.h), for clients and
// workers. Thin on purpose: it checks the request, then forwards it to the
// history role of the workflow's shard owner, or to the matching role of
// the task queue's owner (Router), retrying while ownership moves.
#pragma once

#include "engine/server/api.h"
#include "engine/server/router.h"
#include "engine/server/server_options.h"
#include "sim/env.h"
#include "sim/rpc.h"

namespace duro::engine {

class Frontend {
 public:
  Frontend(sim::Env& env, Router& router, const ServerOptions& options);

  // Registers the methods of api.h.
  void register_methods(sim::RpcServer& server);

 private:
  sim::TimePoint deadline() const;
  template <typename Response, typename Request>
  sim::Result<Response> to_history(const std::string& workflow_id, const char* method, const Request& request);
  template <typename Response, typename Request>
  sim::Result<Response> by_token(const std::string& token_bytes, const char* method, const Request& request);

  sim::Env& env_;
  Router& router_;
  const ServerOptions& options_;
};

}  // namespace duro::engine
