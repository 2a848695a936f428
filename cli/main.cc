// duro: Duro's own runner, with the built-in scenarios.
#include "cli/cli.h"
#include "scenarios/registry.h"

int main(int argc, char** argv) {
  duro::scenarios::ScenarioRegistry registry;
  duro::scenarios::add_builtin_scenarios(registry);
  return duro::cli::main(argc, argv, registry);
}
