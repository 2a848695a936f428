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

// "A..B", inclusive, A <= B.
std::pair<std::uint64_t, std::uint64_t> parse_seed_range(const std::string& text) {
  const std::size_t dots = text.find("..");
  auto number = [&](std::string_view part) -> std::uint64_t {
    std::uint64_t value = 0;
    if (part.empty() || part.size() > 19) throw BadInput{fmt::format("--seed-range '{}': expected A..B", text)};
    for (const char c : part) {
      if (c < '0' || c > '9') throw BadInput{fmt::format("--seed-range '{}': expected A..B with numbers", text)};
      value = value * 10 + static_cast<std::uint64_t>(c - '0');
    }
    return value;
  };
  if (dots == std::string::npos) throw BadInput{fmt::format("--seed-range '{}': expected A..B", text)};
  const std::uint64_t first = number(std::string_view(text).substr(0, dots));
  const std::uint64_t last = number(std::string_view(text).substr(dots + 2));
  if (first > last) throw BadInput{fmt::format("--seed-range '{}': the first seed is after the last", text)};
  if (last - first >= kSeedsMax) throw BadInput{fmt::format("--seed-range '{}': more than {} seeds", text, kSeedsMax)};
  return {first, last};
}

}  // namespace duro::cli
