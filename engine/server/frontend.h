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

// The task token a worker's response leads with (every request that
// carries one has it as its first field: api.h), as encoded; empty if the
// payload does not start with a string.
std::string_view leading_task_token(std::string_view payload);

class Frontend {
 public:
  Frontend(sim::Env& env, Router& router, const ServerOptions& options);

  // Registers the methods of api.h.
  void register_methods(sim::RpcServer& server);

 private:
  sim::TimePoint deadline() const;
  template <typename Response, typename Request>
  sim::Result<Response> to_history(const std::string& workflow_id, const char* method, const Request& request);
  // Registers `method`, whose requests lead with a task token, to be
  // forwarded to `history_method` on the owner of the token's workflow as
  // they came: only the token is decoded here, history decodes the rest,
  // and its reply goes back as it came. A decode and an encode fewer, each
  // way, on every worker response.
  void forward_by_token(sim::RpcServer& server, const char* method, const char* history_method);

  sim::Env& env_;
  Router& router_;
  const ServerOptions& options_;
};

}  // namespace duro::engine
