// Finding what a command names — a scenario, a fault profile — with
// BadInput (exit 2) listing what is known when it is not.
#pragma once

#include <cstdint>
#include <string>
#include <utility>

#include "scenarios/registry.h"
#include "sim/nemesis.h"

namespace duro::cli {

// "a, b, c": the registered scenarios, the fault profiles.
std::string known_scenarios(const scenarios::ScenarioRegistry& registry);
std::string known_profiles();

const scenarios::ScenarioDefinition& find_scenario(const scenarios::ScenarioRegistry& registry,
                                                   const std::string& name);
sim::FaultProfile find_profile(const std::string& name);

// The most seeds one command runs.
inline constexpr std::uint64_t kSeedsMax = 10'000'000;

// "A..B", inclusive, A <= B, at most kSeedsMax seeds; BadInput otherwise.
std::pair<std::uint64_t, std::uint64_t> parse_seed_range(const std::string& text);

}  // namespace duro::cli
