// ScenarioRegistry: the scenarios a `duro` binary knows, by name.
//
// Duro's own binary registers the built-in ones; a user's binary registers
// its scenarios next to them and gets the whole command line (cli/cli.h):
//
//   duro::scenarios::ScenarioRegistry registry;
//   duro::scenarios::add_builtin_scenarios(registry);
//   registry.add(my_scenario_definition());
//   return duro::cli::main(argc, argv, registry);
#pragma once

#include <string_view>
#include <vector>

#include "scenarios/scenario.h"

namespace duro::scenarios {

class ScenarioRegistry {
 public:
  // Names are unique, non-empty, and valid in a repro line (letters,
  // digits, '-', '_'); the definition must be able to make its scenario.
  ScenarioRegistry& add(ScenarioDefinition definition);
  // nullptr when there is none by that name.
  const ScenarioDefinition* find(std::string_view name) const;
  // In the order they were added.
  const std::vector<ScenarioDefinition>& all() const noexcept { return definitions_; }

 private:
  std::vector<ScenarioDefinition> definitions_;
};

// The control-plane scenarios that come with Duro (CONTROL_PLANE.md).
void add_builtin_scenarios(ScenarioRegistry& registry);

// One definition per built-in scenario, each in its own file.
ScenarioDefinition namespace_provisioning_scenario();
ScenarioDefinition ring_rollout_scenario();
ScenarioDefinition entity_workflows_scenario();
ScenarioDefinition fail_static_scenario();
ScenarioDefinition cell_migration_scenario();
ScenarioDefinition mrn_failover_scenario();
ScenarioDefinition retry_storm_scenario();

}  // namespace duro::scenarios
