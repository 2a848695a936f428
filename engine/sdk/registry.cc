#include "engine/sdk/registry.h"

#include <stdexcept>

#include "sim/assert.h"

namespace duro::sdk {

void Registry::add_workflow(std::string name, WorkflowDefinition definition) {
  DURO_ASSERT_MSG(!name.empty(), "a workflow type needs a name");
  if (!workflows_.emplace(name, std::move(definition)).second) {
    throw std::invalid_argument("workflow type \"" + name + "\" registered twice");
  }
}

void Registry::add_activity(std::string name, ActivityDefinition definition) {
  DURO_ASSERT_MSG(!name.empty(), "an activity type needs a name");
  if (!activities_.emplace(name, std::move(definition)).second) {
    throw std::invalid_argument("activity type \"" + name + "\" registered twice");
  }
}

const WorkflowDefinition* Registry::find_workflow(std::string_view type) const {
  auto it = workflows_.find(type);
  return it == workflows_.end() ? nullptr : &it->second;
}

const ActivityDefinition* Registry::find_activity(std::string_view type) const {
  auto it = activities_.find(type);
  return it == activities_.end() ? nullptr : &it->second;
}

std::vector<std::string> Registry::workflow_types() const {
  std::vector<std::string> types;
  for (const auto& [name, definition] : workflows_) types.push_back(name);
  return types;
}

std::vector<std::string> Registry::activity_types() const {
  std::vector<std::string> types;
  for (const auto& [name, definition] : activities_) types.push_back(name);
  return types;
}

}  // namespace duro::sdk
