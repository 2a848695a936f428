#include "scenarios/workflow_catalog.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <utility>
#include <vector>

#include "scenarios/harness.h"
#include "sim/assert.h"

namespace duro::scenarios {

// A scenario set up and never run: its harness owns the registry (and the
// fakes and clients setup() added, which nothing here starts).
struct WorkflowCatalog::Loaded {
  std::unique_ptr<Scenario> scenario;
  std::unique_ptr<Harness> harness;
};

WorkflowCatalog::WorkflowCatalog(const ScenarioRegistry& registry) : registry_(registry) {}

WorkflowCatalog::~WorkflowCatalog() = default;

const sdk::Registry& WorkflowCatalog::load(const ScenarioDefinition& definition) {
  auto it = loaded_.find(definition.name);
  if (it == loaded_.end()) {
    auto loaded = std::make_unique<Loaded>();
    loaded->scenario = definition.make();
    DURO_ASSERT(loaded->scenario != nullptr);
    // Seed 1: setup() may draw the workload's shape from the seed, never
    // which workflows exist.
    loaded->harness = std::make_unique<Harness>(definition, 1);
    loaded->harness->set_up_only(*loaded->scenario);
    it = loaded_.emplace(definition.name, std::move(loaded)).first;
  }
  return it->second->harness->registry();
}

sim::Result<const sdk::Registry*> WorkflowCatalog::find(std::string_view scenario, std::string_view workflow_type) {
  auto not_found = [](std::string message) { return sim::Error{sim::ErrorCode::kNotFound, std::move(message)}; };
  if (!scenario.empty()) {
    const ScenarioDefinition* definition = registry_.find(scenario);
    if (definition == nullptr) return not_found(fmt::format("no scenario '{}' is registered", scenario));
    const sdk::Registry& code = load(*definition);
    if (code.find_workflow(workflow_type) == nullptr) {
      return not_found(fmt::format("scenario '{}' registers no workflow type '{}'", scenario, workflow_type));
    }
    return &code;
  }
  const sdk::Registry* found = nullptr;
  std::vector<std::string> owners;
  for (const ScenarioDefinition& definition : registry_.all()) {
    const sdk::Registry& code = load(definition);
    if (code.find_workflow(workflow_type) == nullptr) continue;
    found = &code;
    owners.push_back(definition.name);
  }
  if (owners.empty()) return not_found(fmt::format("no registered scenario has workflow type '{}'", workflow_type));
  if (owners.size() > 1) {
    return not_found(fmt::format("workflow type '{}' is registered by {} scenarios ({}); the history names none",
                                 workflow_type, owners.size(), fmt::join(owners, ", ")));
  }
  return found;
}

std::vector<std::pair<std::string, std::string>> WorkflowCatalog::workflow_types() {
  std::vector<std::pair<std::string, std::string>> types;
  for (const ScenarioDefinition& definition : registry_.all()) {
    for (std::string& type : load(definition).workflow_types()) types.emplace_back(definition.name, std::move(type));
  }
  return types;
}

}  // namespace duro::scenarios
