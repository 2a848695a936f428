// `duro fuzz`: hunts nondeterminism in workflow code (DESIGN.md §6).
//
//   duro fuzz [WORKFLOW_TYPE...|--all] [--seeds N | --seed-range A..B] [--jobs J]
//
// Runs seeds of the scenarios that register the chosen workflow types, in
// fuzz mode (scenarios/harness.h, SeedOptions::fuzz): workers evict cached
// runs at random points and run on skewed clocks, servers hold signals,
// activity and child results, timer firings and workflow-task starts so
// that they land at every legal point around workflow tasks
// (engine/server/delivery_fuzz.h), every
// closed run is replayed again by a fresh replayer cut at each of its
// workflow-task boundaries with the heap disturbed first, and the
// determinism guard (determinism_guard.h) reports calls from workflow code
// to the real clock, randomness, threads and I/O.
//
// Each workflow type's first finding is printed with its kind, the
// divergence or the call, and the seed that reproduces it (the seed fixes
// the fault plan, the evictions, the skews and the replay cuts); a type
// with a finding is not fuzzed further. A summary table follows.
//
// Exit: 0 nothing found; 1 a finding; 2 bad usage (an unknown type).
#pragma once

#include <CLI/CLI.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "scenarios/registry.h"

namespace duro::cli {

class FuzzCommand {
 public:
  explicit FuzzCommand(CLI::App& app);
  bool parsed() const;
  int run(const scenarios::ScenarioRegistry& registry);

 private:
  CLI::App* command_ = nullptr;
  std::vector<std::string> types_;
  bool all_ = false;
  std::uint64_t seeds_ = 0;
  std::string seed_range_;
  int jobs_ = 0;
};

}  // namespace duro::cli
