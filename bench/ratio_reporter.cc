#include "bench/ratio_reporter.h"

#include <algorithm>
#include <cstddef>

namespace duro::bench {

namespace {

std::optional<double> median(std::vector<double> values) {
  if (values.empty()) return std::nullopt;
  const auto middle = values.begin() + static_cast<std::ptrdiff_t>(values.size() / 2);
  std::nth_element(values.begin(), middle, values.end());
  if (values.size() % 2 == 1) return *middle;
  const double lower = *std::max_element(values.begin(), middle);
  return (lower + *middle) / 2;
}

}  // namespace

void RatioReporter::ReportRuns(const std::vector<Run>& runs) {
  ConsoleReporter::ReportRuns(runs);
  for (const Run& run : runs) {
    if (run.error_occurred || run.iterations <= 0) continue;
    // GetAdjusted*Time() is the figure the console prints: per iteration,
    // in the run's display unit, for plain runs and aggregates alike (an
    // aggregate's `iterations` counts repetitions, so dividing the
    // accumulated time by it would be wrong). Convert it back to seconds.
    const double unit_per_second = benchmark::GetTimeUnitMultiplier(run.time_unit);
    const double cpu_seconds = run.GetAdjustedCPUTime() / unit_per_second;
    Samples& samples = samples_[run.run_name.function_name];
    if (run.run_type == Run::RT_Iteration) {
      samples.cpu_seconds.push_back(cpu_seconds);
    } else if (run.aggregate_name == "median") {
      samples.median_cpu_seconds = cpu_seconds;
    }
  }
}

std::optional<double> RatioReporter::cpu_seconds_per_iteration(std::string_view name) const {
  const auto found = samples_.find(name);
  if (found == samples_.end()) return std::nullopt;
  const Samples& samples = found->second;
  return samples.cpu_seconds.empty() ? samples.median_cpu_seconds : median(samples.cpu_seconds);
}

}  // namespace duro::bench
