#include "scenarios/fakes/cell_deployer.h"

#include <algorithm>
#include <utility>

#include "sim/assert.h"
#include "sim/simulator.h"

namespace duro::scenarios {

const char* deploy_state_name(DeployState state) noexcept {
  switch (state) {
    case DeployState::kRunning: return "running";
    case DeployState::kSucceeded: return "succeeded";
    case DeployState::kFailed: return "failed";
    case DeployState::kSuperseded: return "superseded";
  }
  return "?";
}

CellDeployer::CellDeployer(std::string name, FailureModel failure, CellDeployerOptions options,
                           std::map<std::string, std::string> initial_versions)
    : FakeService(std::move(name), failure), options_(options), versions_(std::move(initial_versions)) {
  DURO_ASSERT(options_.deploy_min > sim::Duration{0} && options_.deploy_min <= options_.deploy_max);
}

void CellDeployer::register_methods(sim::RpcServer& server, sim::Env& env) {
  serve<DeployRequest, DeployReply>(server, env, "deploy", /*mutating=*/true,
                                    [this, &env](const DeployRequest& request) { return deploy(env, request); });
  serve<DeployStatusRequest, DeployStatus>(
      server, env, "status", /*mutating=*/false, [this](const DeployStatusRequest& request) -> sim::Result<DeployStatus> {
        if (request.operation == 0 || request.operation > operations_.size()) {
          return sim::Error{sim::ErrorCode::kNotFound, "no such operation"};
        }
        return DeployStatus{operations_[request.operation - 1].state};
      });
  serve<BakeQuery, BakeReply>(server, env, "baked", /*mutating=*/false,
                              [this, &env](const BakeQuery& query) -> sim::Result<BakeReply> {
                                return baked(env.sim().now(), query);
                              });
  serve<FenceRequest, FenceReply>(server, env, "fence", /*mutating=*/true,
                                  [this, &env](const FenceRequest& request) -> sim::Result<FenceReply> {
                                    if (fenced_.contains(request.release) != request.halted) {
                                      fence_log_.push_back(FenceChange{env.sim().now(), request.release, request.halted});
                                    }
                                    if (request.halted) {
                                      fenced_[request.release] = true;
                                    } else {
                                      fenced_.erase(request.release);
                                    }
                                    return FenceReply{request.halted};
                                  });
}

sim::Result<DeployReply> CellDeployer::deploy(sim::Env& env, const DeployRequest& request) {
  if (auto it = answers_.find(request.idempotency_key); it != answers_.end() && !request.idempotency_key.empty()) {
    return DeployReply{it->second};
  }
  if (!versions_.contains(request.cell)) return sim::Error{sim::ErrorCode::kNotFound, "no cell " + request.cell};
  if (!request.activity.empty()) {
    std::int32_t& latest = attempts_[request.activity];
    if (request.attempt < latest) {
      return sim::Error{sim::ErrorCode::kAlreadyExists,
                        "attempt " + std::to_string(request.attempt) + " is stale (attempt " + std::to_string(latest) +
                            " was seen)"};
    }
    latest = request.attempt;
  }
  // Rollbacks are how a halted release is taken back: the fence stops the
  // release going forward only.
  if (!request.rollback && fenced_.contains(request.release)) {
    return sim::Error{sim::ErrorCode::kAlreadyExists, request.release + " is halted"};
  }
  const sim::TimePoint now = env.sim().now();
  // One change in flight per cell: a new one for the same release replaces
  // the old (a retry after a hang); one for another release must wait.
  for (DeployOperation& operation : operations_) {
    if (operation.cell != request.cell || operation.state != DeployState::kRunning) continue;
    if (operation.release != request.release || operation.rollback != request.rollback) {
      return sim::Error{sim::ErrorCode::kUnavailable, request.cell + " is busy with " + operation.release};
    }
    operation.state = DeployState::kSuperseded;
    operation.finished = now;
  }
  DeployOperation operation;
  operation.id = operations_.size() + 1;
  operation.cell = request.cell;
  operation.release = request.release;
  operation.rollout = request.rollout;
  operation.rollback = request.rollback;
  operation.started = now;
  operation.fails = env.random().bernoulli(options_.failure_probability);
  operation.hangs = !operation.fails && env.random().bernoulli(options_.hang_probability);
  const sim::Duration takes{env.random().uniform_range(std::chrono::nanoseconds(options_.deploy_min).count(),
                                                       std::chrono::nanoseconds(options_.deploy_max).count())};
  operations_.push_back(operation);
  if (!request.idempotency_key.empty()) answers_[request.idempotency_key] = operation.id;
  if (!operation.hangs) {
    env.spawn("deploy-operation", [this, &env, id = operation.id, takes] {
      env.sleep_for(takes);
      complete(id, env.sim().now());
    });
  }
  return DeployReply{operation.id};
}

BakeReply CellDeployer::baked(sim::TimePoint now, const BakeQuery& query) const {
  sim::TimePoint last_landed{};
  for (const std::string& cell : query.cells) {
    auto version = versions_.find(cell);
    if (version == versions_.end() || version->second != query.release) return BakeReply{false, query.bake};
    // The operation that put it there: the last that succeeded.
    sim::TimePoint landed{};
    for (const DeployOperation& operation : operations_) {
      if (operation.cell == cell && operation.release == query.release && operation.state == DeployState::kSucceeded) {
        landed = std::max(landed, operation.finished);
      }
    }
    last_landed = std::max(last_landed, landed);
  }
  const sim::Duration since = now - last_landed;
  return BakeReply{true, since >= query.bake ? sim::Duration{0} : query.bake - since};
}

void CellDeployer::complete(std::uint64_t id, sim::TimePoint now) {
  DURO_ASSERT(id >= 1 && id <= operations_.size());
  DeployOperation& operation = operations_[id - 1];
  if (operation.state != DeployState::kRunning) return;
  operation.state = operation.fails ? DeployState::kFailed : DeployState::kSucceeded;
  operation.finished = now;
  if (!operation.fails) versions_[operation.cell] = operation.release;
  notify_changed();
}

}  // namespace duro::scenarios
