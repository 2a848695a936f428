#include "scenarios/fakes/alert_service.h"

#include <utility>

#include "sim/simulator.h"

namespace duro::scenarios {

AlertService::AlertService(std::string name, FailureModel failure, const CellDeployer& deployer)
    : FakeService(std::move(name), failure), deployer_(deployer) {}

void AlertService::mark_bad(std::string release, std::set<std::string> cells, sim::Duration delay) {
  bad_[std::move(release)] = Bad{std::move(cells), delay};
}

std::vector<std::string> AlertService::firing(const std::string& release, sim::TimePoint now) const {
  std::vector<std::string> cells;
  auto bad = bad_.find(release);
  if (bad == bad_.end()) return cells;
  // A cell alerts while it runs the release, once the delay has passed
  // since the operation that put it there finished.
  std::map<std::string, sim::TimePoint> landed;
  for (const DeployOperation& operation : deployer_.operations()) {
    if (operation.release == release && operation.state == DeployState::kSucceeded) {
      landed[operation.cell] = operation.finished;
    }
  }
  for (const auto& [cell, version] : deployer_.versions()) {
    if (version != release || !bad->second.cells.contains(cell)) continue;
    auto at = landed.find(cell);
    if (at != landed.end() && now - at->second >= bad->second.delay) cells.push_back(cell);
  }
  return cells;
}

void AlertService::register_methods(sim::RpcServer& server, sim::Env& env) {
  serve<AlertQuery, AlertReply>(server, env, "firing", /*mutating=*/false,
                                [this, &env](const AlertQuery& query) -> sim::Result<AlertReply> {
                                  return AlertReply{firing(query.release, env.sim().now())};
                                });
}

}  // namespace duro::scenarios
