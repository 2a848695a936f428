#include "cli/fuzz_command.h"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <set>

#include "cli/bad_input.h"
#include "cli/determinism_guard.h"
#include "cli/scenario_lookup.h"
#include "cli/seed_pool.h"
#include "scenarios/workflow_catalog.h"

namespace duro::cli {

namespace {

struct TypeState {
  std::string scenario;
  std::uint64_t seeds = 0;  // Seeds of its scenario run for it.
  std::optional<scenarios::FuzzFinding> finding;
  std::uint64_t found_at_seed = 0;
};

std::string guard_message(const GuardFinding& finding) {
  return fmt::format("workflow {} called {} from {}; its last command came from {}", finding.workflow_id,
                     finding.call, finding.caller, finding.last_sdk_call);
}

}  // namespace

FuzzCommand::FuzzCommand(CLI::App& app) {
  command_ = app.add_subcommand("fuzz", "hunt nondeterminism in workflow code");
  command_->add_option("types", types_, "workflow types (default: every registered one)");
  command_->add_flag("--all", all_, "every workflow type of every registered scenario");
  auto* seeds = command_->add_option("--seeds", seeds_, "seeds 1..N (default 100)")
                    ->check(CLI::Range(std::uint64_t{1}, kSeedsMax));
  command_->add_option("--seed-range", seed_range_, "seeds A..B, inclusive")->excludes(seeds);
  command_->add_option("--jobs,-j", jobs_, "processes (default: one per core)")->check(CLI::Range(1, 1024));
}

bool FuzzCommand::parsed() const { return command_->parsed(); }

int FuzzCommand::run(const scenarios::ScenarioRegistry& registry) {
  const auto start = std::chrono::steady_clock::now();
  if (all_ && !types_.empty()) throw BadInput{"give workflow types or --all, not both"};
  std::uint64_t first = 1;
  std::uint64_t last = seeds_ == 0 ? 100 : seeds_;
  if (!seed_range_.empty()) std::tie(first, last) = parse_seed_range(seed_range_);

  scenarios::WorkflowCatalog catalog(registry);
  std::map<std::string, TypeState> types;
  for (const auto& [scenario, type] : catalog.workflow_types()) {
    if (types_.empty() || std::find(types_.begin(), types_.end(), type) != types_.end()) {
      types.try_emplace(type, TypeState{scenario, 0, std::nullopt, 0});
    }
  }
  for (const std::string& type : types_) {
    if (!types.contains(type)) throw BadInput{fmt::format("no registered scenario has workflow type '{}'", type)};
  }
  if (types.empty()) throw BadInput{"no workflow type is registered"};
  // Seed-major: the first seeds of every scenario before later ones, so
  // that each type gets its early seeds early.
  std::vector<std::string> scenario_names;
  for (const auto& [type, state] : types) {
    if (std::find(scenario_names.begin(), scenario_names.end(), state.scenario) == scenario_names.end()) {
      scenario_names.push_back(state.scenario);
    }
  }
  std::vector<SeedJob> jobs;
  for (std::uint64_t seed = first; seed <= last; seed++) {
    for (const std::string& name : scenario_names) {
      jobs.push_back(SeedJob{name, seed, find_scenario(registry, name).shape.default_profile, std::nullopt});
    }
  }
  const int workers = jobs_ > 0 ? jobs_ : std::max(1, static_cast<int>(::sysconf(_SC_NPROCESSORS_ONLN)));
  fmt::print("duro fuzz: {} workflow type(s) of {} scenario(s), seeds {}..{}, {} process(es)\n", types.size(),
             scenario_names.size(), first, last, workers);
  std::fflush(stdout);

  SeedPool pool(workers, [&](const SeedJob& job) {
    scenarios::SeedOptions options;
    options.seed = job.seed;
    options.profile = find_profile(job.profile);
    options.fuzz = true;
    arm_determinism_guard(true);
    scenarios::SeedReport report = scenarios::run_seed(find_scenario(registry, job.scenario), options);
    arm_determinism_guard(false);
    // The guard's findings first: they name the call itself, where a
    // divergence only shows its consequence.
    std::vector<scenarios::FuzzFinding> findings;
    for (GuardFinding& finding : take_guard_findings()) {
      findings.push_back(scenarios::FuzzFinding{finding.workflow_type, "guard", guard_message(finding)});
    }
    findings.insert(findings.end(), report.findings.begin(), report.findings.end());
    report.findings = std::move(findings);
    return report;
  });
  auto open_types = [&](const std::string& scenario) {
    return std::any_of(types.begin(), types.end(), [&](const auto& entry) {
      return entry.second.scenario == scenario && !entry.second.finding;
    });
  };
  std::uint64_t seeds_run = 0;
  std::uint64_t failed_seeds = 0;
  pool.run(
      jobs,
      [&](const SeedJob& job, const scenarios::SeedReport& report) {
        seeds_run++;
        for (auto& [type, state] : types) {
          if (state.scenario == job.scenario && !state.finding) state.seeds++;
        }
        // A seed that failed its invariants without a finding (a crash, a
        // liveness miss) is counted and named: fuzzing is not its test,
        // `duro run` is, and this says which seed to give it.
        if (!report.passed) {
          failed_seeds++;
          fmt::print("seed {} of {} failed an invariant{}\n  reproduce: duro repro {} --seed {} --faults {} --fuzz\n",
                     job.seed, job.scenario,
                     report.violations.empty() ? std::string()
                                               : " (" + report.violations.front().invariant + ": " +
                                                     report.violations.front().message + ")",
                     job.scenario, job.seed, report.profile);
          std::fflush(stdout);
        }
        for (const scenarios::FuzzFinding& finding : report.findings) {
          auto it = types.find(finding.workflow_type);
          if (it == types.end() || it->second.finding) continue;
          it->second.finding = finding;
          it->second.found_at_seed = job.seed;
          fmt::print("FOUND {} ({}) in {} seed {}:\n  {}\n  reproduce: duro fuzz {} --seed-range {}..{}\n",
                     finding.workflow_type, finding.kind, job.scenario, job.seed, finding.message,
                     finding.workflow_type, job.seed, job.seed);
          std::fflush(stdout);
        }
      },
      [&](const SeedJob& job) { return !open_types(job.scenario); });

  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::size_t found = 0;
  fmt::print("\n{:<28} {:<24} {:>6}  {}\n", "workflow type", "scenario", "seeds", "result");
  for (const auto& [type, state] : types) {
    found += state.finding ? 1 : 0;
    fmt::print("{:<28} {:<24} {:>6}  {}\n", type, state.scenario, state.seeds,
               state.finding ? fmt::format("FOUND ({}) at seed {}", state.finding->kind, state.found_at_seed)
                             : std::string("clean"));
  }
  fmt::print("{} of {} type(s) with a finding; {} seed(s) run in {:.1f} s ({} failed an invariant)\n", found,
             types.size(), seeds_run, seconds, failed_seeds);
  return found > 0 ? kExitFailed : kExitPassed;
}

}  // namespace duro::cli
