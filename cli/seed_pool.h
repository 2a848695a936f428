// SeedPool: runs seeds in parallel, each in a worker process of its own.
//
// Simulations share nothing, so processes are the simplest way to run
// them side by side — and the safest: a seed that trips an assertion or
// crashes kills only its worker, and is reported as a failed seed (with the
// end of what it wrote to stderr) instead of taking the whole run down.
// The pool forks `jobs` workers, hands each one seed at a time over a pipe,
// reads back the encoded SeedReport, and replaces a worker that died.
//
//   SeedPool pool(4, [&](const SeedJob& job) { return scenarios::run_seed(...); });
//   pool.run(jobs, [&](const SeedJob& job, const scenarios::SeedReport& report) { ... });
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "scenarios/harness.h"
#include "sim/fault_plan.h"

namespace duro::cli {

struct SeedJob {
  std::string scenario;
  std::uint64_t seed = 0;
  std::string profile;  // The fault profile's name.
  // A plan to replay instead of drawing one (`duro shrink`'s candidates).
  // Workers are forked with the job list, so it never crosses a pipe.
  std::optional<sim::FaultPlan> plan{};
};

class SeedPool {
 public:
  using RunFn = std::function<scenarios::SeedReport(const SeedJob& job)>;
  using ResultFn = std::function<void(const SeedJob& job, const scenarios::SeedReport& report)>;
  // Asked just before a job would go to a worker: true skips it (no run,
  // no result). `duro fuzz` skips the seeds of a workflow type it already
  // has a finding for.
  using SkipFn = std::function<bool(const SeedJob& job)>;

  // jobs >= 1 worker processes.
  SeedPool(int jobs, RunFn run);

  // Runs every job (each in some worker) and calls `on_result` in the
  // parent as each one finishes, in the order they finish (`job` is the
  // element of `jobs`, so &job - jobs.data() is its index). A job whose
  // worker died is reported failed, with an invariant named "crash".
  void run(const std::vector<SeedJob>& jobs, const ResultFn& on_result, const SkipFn& skip = {});

 private:
  int jobs_;
  RunFn run_;
};

}  // namespace duro::cli
