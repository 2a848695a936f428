// A console reporter that also remembers each benchmark's time per
// iteration, so main() can print ratios between benchmarks of the same run
// once they have all finished.
#pragma once

#include <benchmark/benchmark.h>

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace duro::bench {

class RatioReporter : public benchmark::ConsoleReporter {
 public:
  using ConsoleReporter::ConsoleReporter;

  // Prints the runs as ConsoleReporter does, and records the time per
  // iteration of every successful run (and the "median" aggregate, which is
  // all there is under --benchmark_display_aggregates_only).
  void ReportRuns(const std::vector<Run>& runs) override;

  // Seconds per iteration of the benchmark named `name` (its family name,
  // e.g. "BM_sim_yield"): the median over its repetitions, or nullopt if it
  // did not run (filtered out, or it failed).
  std::optional<double> cpu_seconds_per_iteration(std::string_view name) const;

 private:
  struct Samples {
    std::vector<double> cpu_seconds;   // One per repetition.
    std::optional<double> median_cpu_seconds;  // From the aggregate.
  };

  std::map<std::string, Samples, std::less<>> samples_;
};

}  // namespace duro::bench
