// ServerNode: the process of a server node — frontend, history and
// matching in one (Temporal's three roles, one binary), as a simulated
// node that crashes and restarts.
//
//   world.add_node("server-1", engine::server_boot(options));
//
// At boot it binds kFrontendPort (clients, workers and other servers all
// call it there), starts heartbeating the store for membership, and
// starts taking the shards rendezvous hashing gives it. All of its state
// is soft: what it must not lose is in the store before it acknowledges
// anything, so a crash loses only work in flight, which the callers' and
// the shards' retries redo.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "engine/server/frontend.h"
#include "engine/server/history_service.h"
#include "engine/server/matching.h"
#include "engine/server/membership.h"
#include "engine/server/router.h"
#include "engine/server/server_options.h"
#include "engine/server/shard_controller.h"
#include "sim/env.h"
#include "sim/node.h"
#include "sim/rpc.h"

namespace duro::engine {

// The port a server node's outgoing calls receive their replies on.
inline constexpr std::uint16_t kServerClientPort = 7201;

class ServerNode final : public sim::Process {
 public:
  ServerNode(sim::Env& env, ServerOptions options);
  ~ServerNode() override;

  const std::string& name() const noexcept { return name_; }
  ShardController& shards() noexcept { return *shards_; }
  Matching& matching() noexcept { return *matching_; }
  Membership& membership() noexcept { return *membership_; }
  // Recent log lines (bounded), for tests and failure reports.
  const std::vector<std::string>& log() const noexcept { return log_; }

 private:
  void write_log(const std::string& line);
  void register_matching_methods();

  sim::Env& env_;
  ServerOptions options_;
  std::string name_;
  std::vector<std::string> log_;
  std::unique_ptr<sim::RpcClient> rpc_;
  std::unique_ptr<Membership> membership_;
  std::unique_ptr<Router> router_;
  std::unique_ptr<Matching> matching_;
  std::unique_ptr<ShardController> shards_;
  std::unique_ptr<HistoryService> history_;
  std::unique_ptr<Frontend> frontend_;
  std::unique_ptr<sim::RpcServer> server_;
};

// A boot function for sim::World::add_node.
std::function<std::unique_ptr<sim::Process>(sim::Env&)> server_boot(ServerOptions options);

}  // namespace duro::engine
