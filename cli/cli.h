// The `duro` command line, for Duro's own binary and for users' binaries
// that register their scenarios next to the built-in ones (DESIGN.md §1):
//
//   int main(int argc, char** argv) {
//     duro::scenarios::ScenarioRegistry registry;
//     duro::scenarios::add_builtin_scenarios(registry);
//     registry.add(my_scenario());
//     return duro::cli::main(argc, argv, registry);
//   }
//
// Commands (docs/scenarios.md has the guide):
//   duro list                      scenarios, their invariants, fault profiles
//   duro run [SCENARIO...|--all]   seeds in parallel, a progress line, a summary,
//                                  a repro line per failure; --report, --junit
//   duro repro SCENARIO --seed S   one seed again: plan, verdicts, trace hash
//   duro check-determinism         each seed twice, in two processes: same hash?
//
// Exit codes: 0 everything passed, 1 a seed failed, 2 bad usage or input
// (an unknown scenario or profile, a malformed range or fault plan file).
#pragma once

#include <cstdio>

#include "scenarios/registry.h"

namespace duro::cli {

int main(int argc, char** argv, const scenarios::ScenarioRegistry& registry);

}  // namespace duro::cli
