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
//   duro history show|export|import   read a history file, convert it to and from JSON
//   duro replay PATH...            recorded histories against the current code
//   duro record-golden             refresh replays/golden (make golden)
//   duro shrink SCENARIO --seed S  the smallest fault plan that still fails
//   duro regress PATH...           kept failures (replays/failures) must pass
//   duro fuzz [TYPE...|--all]      hunt nondeterminism in workflow code
//
// Exit codes: 0 everything passed, 1 a seed failed, 2 bad usage or input
// (an unknown scenario or profile, a malformed range, fault plan or history
// file).
#pragma once

#include <cstdio>

#include "scenarios/registry.h"

namespace duro::cli {

int main(int argc, char** argv, const scenarios::ScenarioRegistry& registry);

}  // namespace duro::cli
