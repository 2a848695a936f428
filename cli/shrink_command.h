// `duro shrink SCENARIO --seed S`: turns a failing seed into the smallest
// fault plan that still fails the same way (cli/plan_shrinker.h), writes it
// to a file and prints the `duro repro ... --fault-plan FILE` line that
// reproduces it.
//
// "The same way": the first invariant the original run violated is
// violated again; a candidate that fails some other invariant does not
// count, so the shrink cannot wander off to a different bug. Candidates
// run in parallel (--jobs), each in its own process; the result does not
// depend on --jobs.
//
//   duro shrink SCENARIO --seed S [--faults P | --fault-plan FILE] [--out FILE]
//               [--runs N] [--jobs J] [--keep DIR]
//
// --keep DIR also writes the shrunk failure as a regression case
// (cli/kept_failure.h). Exit 0 with a plan written; 1 if the budget ran
// out first (the smallest plan so far is still written); 2 bad input,
// including a seed that does not fail.
#pragma once

#include <CLI/CLI.hpp>

#include <cstddef>
#include <cstdint>
#include <string>

#include "scenarios/registry.h"

namespace duro::cli {

class ShrinkCommand {
 public:
  explicit ShrinkCommand(CLI::App& app);
  bool parsed() const;
  int run(const scenarios::ScenarioRegistry& registry);

 private:
  CLI::App* command_ = nullptr;
  std::string scenario_;
  std::uint64_t seed_ = 0;
  std::string faults_;
  std::string fault_plan_;
  std::string out_;
  std::size_t runs_ = 300;
  int jobs_ = 0;
  std::string keep_;
};

}  // namespace duro::cli
