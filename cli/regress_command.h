// `duro regress PATH...`: reruns failures kept as regression cases
// (cli/kept_failure.h; PATH is a *.failure file or a directory of them),
// each with its scenario, seed and fault plan, and requires each to pass:
// the bug it caught stays fixed. ctest runs it over replays/failures/.
//
// Exit: 0 every case passes (or there are none: an empty directory is a
// project without a kept failure yet); 1 one fails again; 2 a file cannot
// be read, or names a scenario this binary does not have.
#pragma once

#include <CLI/CLI.hpp>

#include <string>
#include <vector>

#include "scenarios/registry.h"

namespace duro::cli {

class RegressCommand {
 public:
  explicit RegressCommand(CLI::App& app);
  bool parsed() const;
  int run(const scenarios::ScenarioRegistry& registry);

 private:
  CLI::App* command_ = nullptr;
  std::vector<std::string> paths_;
  int jobs_ = 0;
};

}  // namespace duro::cli
