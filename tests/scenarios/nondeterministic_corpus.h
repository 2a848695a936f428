// Deliberately nondeterministic workflows, one scenario each ("corpus-" +
// the type), for `duro fuzz` to find: tests/scenarios/fuzz_test.cc.
#pragma once

#include <string>
#include <vector>

#include "scenarios/registry.h"

namespace duro::testing {

void add_nondeterministic_corpus(scenarios::ScenarioRegistry& registry);
// Their workflow types.
std::vector<std::string> nondeterministic_corpus_types();

}  // namespace duro::testing
