// SuiteReport: what `duro run` found over many seeds — per scenario and in
// total — as the summary table, the JSON report and the JUnit XML.
//
// Each failed seed carries the one line that reproduces it:
//   duro repro namespace-provisioning --seed 17 --faults swarm
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "scenarios/harness.h"

namespace duro::cli {

struct ScenarioTotals {
  std::string scenario;
  std::uint64_t seeds = 0;
  std::uint64_t passed = 0;
  std::vector<scenarios::SeedReport> failures;  // In seed order.
  double simulated_seconds = 0;
  double wall_seconds = 0;  // Summed over seeds (CPU-ish time, not elapsed).
};

class SuiteReport {
 public:
  // `program` starts the repro lines; `profile` is what the suite asked
  // for (empty: each scenario's own), for the JSON report.
  SuiteReport(std::string program, std::string profile);

  void add(const scenarios::SeedReport& report);

  std::string repro_line(const scenarios::SeedReport& report) const;
  // One per failed seed, by scenario then seed.
  std::vector<std::string> repro_lines() const;
  bool passed() const noexcept;
  std::uint64_t seeds() const noexcept;
  std::uint64_t failed() const noexcept;

  // The table, for people; `elapsed_seconds` is the suite's wall time.
  std::string summary_table(double elapsed_seconds) const;
  std::string json(double elapsed_seconds) const;
  std::string junit(double elapsed_seconds) const;

 private:
  std::string program_;
  std::string profile_;
  std::map<std::string, ScenarioTotals> totals_;  // By scenario name.
  std::vector<std::string> order_;                // First seen first.
};

}  // namespace duro::cli
