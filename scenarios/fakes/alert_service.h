// AlertService: the monitoring a rollout consults after each bake.
//
// A bad release makes the cells it lands on alert, from some ring on, a
// while after it lands (ground truth the scenario sets with mark_bad()).
// "firing" answers which cells alert for a release now. When the service
// is down the call fails — it never answers "no alerts" for "no data",
// and a rollout must not read it so (fail static).
#pragma once

#include <map>
#include <set>
#include <string>
#include <vector>

#include "scenarios/fakes/cell_deployer.h"
#include "scenarios/fakes/fake_service.h"

namespace duro::scenarios {

struct AlertQuery {
  std::string release;
};
DURO_CODEC_FIELDS(AlertQuery, release);

struct AlertReply {
  std::vector<std::string> cells;  // Alerting, in name order.
};
DURO_CODEC_FIELDS(AlertReply, cells);

class AlertService final : public FakeService {
 public:
  AlertService(std::string name, FailureModel failure, const CellDeployer& deployer);

  // `release` alerts on `cells` (those its bad change reaches), starting
  // `delay` after it lands on each.
  void mark_bad(std::string release, std::set<std::string> cells, sim::Duration delay);
  std::vector<std::string> firing(const std::string& release, sim::TimePoint now) const;

 private:
  struct Bad {
    std::set<std::string> cells;
    sim::Duration delay;
  };
  void register_methods(sim::RpcServer& server, sim::Env& env) override;

  const CellDeployer& deployer_;
  std::map<std::string, Bad> bad_;
};

}  // namespace duro::scenarios
