#include "cli/scenario_lookup.h"

#include <fmt/format.h>

#include "cli/bad_input.h"

namespace duro::cli {

std::string known_scenarios(const scenarios::ScenarioRegistry& registry) {
  std::string names;
  for (const scenarios::ScenarioDefinition& definition : registry.all()) {
    names += names.empty() ? "" : ", ";
    names += definition.name;
  }
  return names;
}

std::string known_profiles() {
  std::string names;
  for (const std::string_view name : sim::fault_profile_names()) {
    names += names.empty() ? "" : ", ";
    names += name;
  }
  return names;
}

const scenarios::ScenarioDefinition& find_scenario(const scenarios::ScenarioRegistry& registry,
                                                   const std::string& name) {
  const scenarios::ScenarioDefinition* definition = registry.find(name);
  if (definition == nullptr) {
    throw BadInput{fmt::format("unknown scenario '{}' (known: {})", name, known_scenarios(registry))};
  }
  return *definition;
}

sim::FaultProfile find_profile(const std::string& name) {
  sim::Result<sim::FaultProfile> profile = sim::fault_profile(name);
  if (!profile.ok()) throw BadInput{fmt::format("unknown fault profile '{}' (known: {})", name, known_profiles())};
  return profile.value();
}

}  // namespace duro::cli
