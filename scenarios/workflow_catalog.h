// WorkflowCatalog: the workflow code of every registered scenario, for
// replaying histories offline (`duro replay`, `duro fuzz`, golden replays).
//
// A scenario registers its workflows in setup(), next to its fakes and
// clients, so the catalog gets a scenario's code the same way a run does:
// it builds that scenario's harness and calls setup(), then never runs it.
// A history file names the scenario it was recorded from; one that names
// none (a user's own, or an import) is matched by workflow type, which must
// then belong to exactly one scenario.
//
//   WorkflowCatalog catalog(registry);
//   sim::Result<const sdk::Registry*> code = catalog.find(file.header.scenario, file.header.workflow_type);
#pragma once

#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "engine/sdk/registry.h"
#include "scenarios/registry.h"
#include "sim/result.h"

namespace duro::scenarios {

class WorkflowCatalog {
 public:
  // `registry` must outlive the catalog.
  explicit WorkflowCatalog(const ScenarioRegistry& registry);
  ~WorkflowCatalog();
  WorkflowCatalog(const WorkflowCatalog&) = delete;
  WorkflowCatalog& operator=(const WorkflowCatalog&) = delete;

  // The code registered by `scenario` when it is not empty, else by the one
  // scenario that registers `workflow_type`. Errors (kNotFound) name what
  // is missing: an unknown scenario, a type the scenario does not register,
  // a type no scenario or several register.
  sim::Result<const sdk::Registry*> find(std::string_view scenario, std::string_view workflow_type);

  // Every workflow type, with the scenario that registers it, in the
  // registry's order then by type.
  std::vector<std::pair<std::string, std::string>> workflow_types();

 private:
  struct Loaded;
  const sdk::Registry& load(const ScenarioDefinition& definition);

  const ScenarioRegistry& registry_;
  std::map<std::string, std::unique_ptr<Loaded>, std::less<>> loaded_;
};

}  // namespace duro::scenarios
