#include "cli/regress_command.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <unistd.h>

#include <algorithm>

#include "cli/bad_input.h"
#include "cli/files.h"
#include "cli/kept_failure.h"
#include "cli/scenario_lookup.h"
#include "cli/seed_pool.h"

namespace duro::cli {

namespace {

// A kept failure is a few hundred bytes of JSON and a plan.
constexpr std::size_t kFailureFileBytesMax = 16 << 20;

}  // namespace

RegressCommand::RegressCommand(CLI::App& app) {
  command_ = app.add_subcommand("regress", "rerun kept failures (replays/failures); each must pass now");
  command_->add_option("paths", paths_, "*.failure files, or directories of them")->required();
  command_->add_option("--jobs,-j", jobs_, "processes (default: one per core)")->check(CLI::Range(1, 1024));
}

bool RegressCommand::parsed() const { return command_->parsed(); }

int RegressCommand::run(const scenarios::ScenarioRegistry& registry) {
  const std::vector<std::string> files = find_files(paths_, kFailureExtension);
  std::vector<KeptFailure> failures;
  std::vector<SeedJob> jobs;
  for (const std::string& path : files) {
    KeptFailure failure = kept_failure_from_json(path, read_file(path, kFailureFileBytesMax));
    const scenarios::ScenarioDefinition& definition = find_scenario(registry, failure.scenario);
    jobs.push_back(SeedJob{failure.scenario, failure.seed, definition.shape.default_profile, failure.plan});
    failures.push_back(std::move(failure));
  }
  if (jobs.empty()) {
    fmt::print("no kept failures under {}\n", fmt::format("{}", fmt::join(paths_, ", ")));
    return kExitPassed;
  }
  const int workers = jobs_ > 0 ? jobs_ : std::max(1, static_cast<int>(::sysconf(_SC_NPROCESSORS_ONLN)));
  std::size_t failed = 0;
  SeedPool pool(std::min<int>(workers, static_cast<int>(jobs.size())), [&](const SeedJob& job) {
    scenarios::SeedOptions options;
    options.seed = job.seed;
    options.plan = job.plan;
    return scenarios::run_seed(find_scenario(registry, job.scenario), options);
  });
  pool.run(jobs, [&](const SeedJob& job, const scenarios::SeedReport& report) {
    const std::size_t index = static_cast<std::size_t>(&job - jobs.data());
    const KeptFailure& failure = failures[index];
    if (report.passed) {
      fmt::print("ok {} ({} seed {}, once failed '{}' on build {})\n", files[index], failure.scenario, failure.seed,
                 failure.invariant, failure.build_id);
      return;
    }
    failed++;
    const std::string what = report.violations.empty() ? std::string("no detail")
                                                       : report.violations.front().invariant + ": " +
                                                             report.violations.front().message;
    fmt::print("FAILED {} ({} seed {}): {}\n  it failed '{}' on build {} too; reproduce with duro repro {} --seed {} "
               "--fault-plan <the plan in the file>\n",
               files[index], failure.scenario, failure.seed, what, failure.invariant, failure.build_id,
               failure.scenario, failure.seed);
  });
  fmt::print("{} kept failure(s): {} pass, {} fail\n", jobs.size(), jobs.size() - failed, failed);
  return failed > 0 ? kExitFailed : kExitPassed;
}

}  // namespace duro::cli
