// `duro record-golden`: refreshes the golden histories that `duro replay`
// checks in CI (replays/golden/, with its manifest.json).
//
// Runs seeds 1..N of each scenario under its own fault profile, recording
// every closed run, then keeps, per workflow type, the few histories that
// together cover the most of what the type does (history_features in
// cli/replay_manifest.h: its event types, activities, children, markers,
// signals), preferring shorter ones. The old golden files are replaced:
// refreshing is deliberate — done when a workflow changes on purpose, in a
// commit of its own, after `duro replay` showed what the change breaks.
//
//   make golden          # = duro record-golden --out replays/golden
#pragma once

#include <CLI/CLI.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "scenarios/registry.h"

namespace duro::cli {

class GoldenCommand {
 public:
  explicit GoldenCommand(CLI::App& app);
  bool parsed() const;
  int run(const scenarios::ScenarioRegistry& registry);

 private:
  CLI::App* command_ = nullptr;
  std::vector<std::string> scenarios_;
  std::string out_ = "replays/golden";
  std::uint64_t seeds_ = 3;
  std::size_t per_type_ = 3;
  int jobs_ = 0;
};

}  // namespace duro::cli
