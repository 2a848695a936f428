// `duro replay PATH...`: replays recorded histories against the current
// workflow code — the check that a change does not break workflows already
// running (DESIGN.md §6).
//
// Each PATH is a history file or a directory searched for *.dhist. Each
// history is replayed by a fresh replayer (engine/sdk/replayer.h) against
// the code of the scenario it was recorded from (scenarios/
// workflow_catalog.h); a divergence is reported with the run, the event,
// what history holds and what the code produced, the source line of the
// SDK call, and the commands around it. Every directory under the paths
// with a manifest.json (cli/replay_manifest.h) must agree with it.
//
// Exit: 0 every history replays; 1 one diverged, its workflow type is
// gone, or a manifest disagrees; 2 a file could not be read or decoded
// (the others are still replayed and reported).
#pragma once

#include <CLI/CLI.hpp>

#include <string>
#include <vector>

#include "scenarios/registry.h"

namespace duro::cli {

class ReplayCommand {
 public:
  explicit ReplayCommand(CLI::App& app);
  bool parsed() const;
  int run(const scenarios::ScenarioRegistry& registry);

 private:
  CLI::App* command_ = nullptr;
  std::vector<std::string> paths_;
  bool verbose_ = false;
};

}  // namespace duro::cli
