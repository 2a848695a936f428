#include "cli/shrink_command.h"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>

#include "cli/bad_input.h"
#include "cli/build_id.h"
#include "cli/files.h"
#include "cli/kept_failure.h"
#include "cli/plan_shrinker.h"
#include "cli/recorded_histories.h"
#include "cli/scenario_lookup.h"
#include "cli/seed_pool.h"

namespace duro::cli {

namespace {

bool fails_with(const scenarios::SeedReport& report, const std::string& invariant) {
  return !report.passed && std::any_of(report.violations.begin(), report.violations.end(),
                                       [&](const scenarios::Violation& v) { return v.invariant == invariant; });
}

}  // namespace

ShrinkCommand::ShrinkCommand(CLI::App& app) {
  command_ = app.add_subcommand("shrink", "shrink a failing seed's fault plan to the smallest that still fails");
  command_->add_option("scenario", scenario_, "the scenario")->required();
  command_->add_option("--seed", seed_, "the failing seed")->required();
  command_->add_option("--faults", faults_, "fault profile (default: the scenario's own)");
  command_->add_option("--fault-plan", fault_plan_, "start from this plan instead of the seed's drawn one");
  command_->add_option("--out", out_, "write the shrunk plan here (default: SCENARIO-seed-S.plan)");
  command_->add_option("--runs", runs_, "at most this many runs (default 300)")->check(CLI::Range(1, 100'000));
  command_->add_option("--jobs,-j", jobs_, "processes (default: one per core)")->check(CLI::Range(1, 1024));
  command_->add_option("--keep", keep_, "also keep the failure as a regression case in this directory");
}

bool ShrinkCommand::parsed() const { return command_->parsed(); }

int ShrinkCommand::run(const scenarios::ScenarioRegistry& registry) {
  const auto start = std::chrono::steady_clock::now();
  const scenarios::ScenarioDefinition& definition = find_scenario(registry, scenario_);
  const std::string profile = faults_.empty() ? definition.shape.default_profile : faults_;
  find_profile(profile);
  std::optional<sim::FaultPlan> given;
  if (!fault_plan_.empty()) {
    sim::Result<sim::FaultPlan> plan = sim::read_fault_plan_file(fault_plan_);
    if (!plan.ok()) throw BadInput{fmt::format("{}: {}", fault_plan_, sim::to_string(plan.error()))};
    given = std::move(plan.value());
  }
  const std::string out = out_.empty() ? fmt::format("{}-seed-{}.plan", safe_file_name(scenario_), seed_) : out_;
  const int workers = jobs_ > 0 ? jobs_ : std::max(1, static_cast<int>(::sysconf(_SC_NPROCESSORS_ONLN)));
  auto run_one = [&](const SeedJob& job) {
    scenarios::SeedOptions options;
    options.seed = job.seed;
    options.profile = find_profile(job.profile);
    options.plan = job.plan;
    return scenarios::run_seed(find_scenario(registry, job.scenario), options);
  };
  auto run_batch = [&](const std::vector<std::optional<sim::FaultPlan>>& plans) {
    std::vector<SeedJob> jobs;
    for (const auto& plan : plans) jobs.push_back(SeedJob{scenario_, seed_, profile, plan});
    std::vector<scenarios::SeedReport> reports(jobs.size());
    SeedPool pool(std::min<int>(workers, static_cast<int>(jobs.size())), run_one);
    pool.run(jobs, [&](const SeedJob& job, const scenarios::SeedReport& report) {
      reports[static_cast<std::size_t>(&job - jobs.data())] = report;
    });
    return reports;
  };

  const scenarios::SeedReport original = run_batch({given}).front();
  if (original.passed) {
    throw BadInput{fmt::format("{} seed {} passes under {}: nothing to shrink", scenario_, seed_,
                               given ? fault_plan_ : "faults " + profile)};
  }
  const scenarios::Violation& first = original.violations.front();
  sim::Result<sim::FaultPlan> parsed = sim::FaultPlan::parse(original.fault_plan);
  DURO_ASSERT_MSG(parsed.ok(), "a run's printed plan parses");
  const sim::FaultPlan plan = std::move(parsed.value());
  fmt::print("shrink {} seed {}: fails '{}' under {} fault(s): {}\n", scenario_, seed_, first.invariant,
             plan.actions.size(), first.message);
  std::fflush(stdout);

  ShrinkOptions options;
  options.runs_max = runs_;
  options.batch = static_cast<std::size_t>(workers);
  options.on_smaller = [](const sim::FaultPlan& smaller, std::size_t runs) {
    fmt::print("  {} fault(s) after {} run(s)\n", smaller.actions.size(), runs);
    std::fflush(stdout);
  };
  const ShrinkResult result = shrink_plan(
      plan,
      [&](const std::vector<sim::FaultPlan>& batch) {
        std::vector<std::optional<sim::FaultPlan>> plans(batch.begin(), batch.end());
        std::vector<bool> fails;
        for (const scenarios::SeedReport& report : run_batch(plans)) fails.push_back(fails_with(report, first.invariant));
        return fails;
      },
      options);

  const scenarios::SeedReport last = run_batch({result.plan}).front();
  const std::string text = result.plan.to_text();
  write_file(out, text);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  fmt::print("\nsmallest plan: {} fault(s), from {}, after {} run(s) in {:.1f} s{}:\n{}\n", result.plan.actions.size(),
             plan.actions.size(), result.runs + 2, seconds, result.budget_spent ? " (the run budget ran out)" : "",
             text);
  const auto still = std::find_if(last.violations.begin(), last.violations.end(),
                                  [&](const scenarios::Violation& v) { return v.invariant == first.invariant; });
  if (still != last.violations.end()) fmt::print("it fails '{}': {}\n", still->invariant, still->message);
  fmt::print("written to {}\nreproduce with:\n  duro repro {} --seed {} --fault-plan {}\n", out, scenario_, seed_, out);
  if (!keep_.empty()) {
    KeptFailure kept{scenario_, seed_, std::string(build_id()), first.invariant,
                     still != last.violations.end() ? still->message : first.message, result.plan};
    const std::string path = (std::filesystem::path(keep_) /
                              fmt::format("{}-seed-{}{}", safe_file_name(scenario_), seed_, kFailureExtension))
                                 .string();
    write_file(path, kept_failure_to_json(kept));
    fmt::print("kept as a regression case: {} (`duro regress` reruns it; it must pass once fixed)\n", path);
  }
  return result.budget_spent ? kExitFailed : kExitPassed;
}

}  // namespace duro::cli
