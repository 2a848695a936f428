#include "scenarios/registry.h"

#include <algorithm>
#include <cctype>
#include <utility>

#include "sim/assert.h"

namespace duro::scenarios {

ScenarioRegistry& ScenarioRegistry::add(ScenarioDefinition definition) {
  DURO_ASSERT_MSG(!definition.name.empty(), "a scenario needs a name");
  DURO_ASSERT_MSG(std::all_of(definition.name.begin(), definition.name.end(),
                              [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_'; }),
                  "scenario names are letters, digits, '-' and '_'");
  DURO_ASSERT_MSG(find(definition.name) == nullptr, "two scenarios with one name");
  DURO_ASSERT_MSG(static_cast<bool>(definition.make), "a scenario definition needs make()");
  definitions_.push_back(std::move(definition));
  return *this;
}

const ScenarioDefinition* ScenarioRegistry::find(std::string_view name) const {
  for (const ScenarioDefinition& definition : definitions_) {
    if (definition.name == name) return &definition;
  }
  return nullptr;
}

void add_builtin_scenarios(ScenarioRegistry& registry) {
  registry.add(namespace_provisioning_scenario());
  registry.add(ring_rollout_scenario());
  registry.add(entity_workflows_scenario());
  registry.add(fail_static_scenario());
  registry.add(cell_migration_scenario());
  registry.add(mrn_failover_scenario());
  registry.add(retry_storm_scenario());
}

}  // namespace duro::scenarios
