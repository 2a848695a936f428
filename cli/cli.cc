#include "cli/cli.h"

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "cli/bad_input.h"
#include "cli/files.h"
#include "cli/fuzz_command.h"
#include "cli/golden_command.h"
#include "cli/history_command.h"
#include "cli/progress.h"
#include "cli/recorded_histories.h"
#include "cli/scenario_lookup.h"
#include "cli/regress_command.h"
#include "cli/replay_command.h"
#include "cli/seed_pool.h"
#include "cli/shrink_command.h"
#include "cli/suite_report.h"
#include "cli/trace_divergence.h"
#include "scenarios/harness.h"
#include "sim/chrome_trace_log.h"
#include "sim/fault_plan.h"
#include "sim/nemesis.h"
#include "sim/trace.h"

namespace duro::cli {
namespace {


std::vector<const scenarios::ScenarioDefinition*> select(const scenarios::ScenarioRegistry& registry,
                                                         const std::vector<std::string>& names, bool all) {
  if (all && !names.empty()) throw BadInput{"give scenario names or --all, not both"};
  std::vector<const scenarios::ScenarioDefinition*> selected;
  if (all || names.empty()) {
    for (const scenarios::ScenarioDefinition& definition : registry.all()) selected.push_back(&definition);
  } else {
    for (const std::string& name : names) selected.push_back(&find_scenario(registry, name));
  }
  if (selected.empty()) throw BadInput{"no scenario is registered"};
  return selected;
}

std::string profile_for(const scenarios::ScenarioDefinition& definition, const std::string& faults) {
  return faults.empty() ? definition.shape.default_profile : faults;
}


// --- list -----------------------------------------------------------------------------

int list(const scenarios::ScenarioRegistry& registry) {
  fmt::print("scenarios:\n");
  for (const scenarios::ScenarioDefinition& definition : registry.all()) {
    fmt::print("  {}  (default faults: {}; chaos {}, liveness bound {})\n    {}\n", definition.name,
               definition.shape.default_profile, sim::format_duration(definition.shape.chaos),
               sim::format_duration(definition.shape.liveness_bound), definition.summary);
    for (const std::string& invariant : definition.invariants) fmt::print("      - {}\n", invariant);
  }
  fmt::print("fault profiles: {}\n", known_profiles());
  return kExitPassed;
}

// --- run ------------------------------------------------------------------------------

struct RunArgs {
  std::vector<std::string> scenarios;
  bool all = false;
  std::uint64_t seeds = 0;
  std::string seed_range;
  std::string faults;
  int jobs = 0;
  std::string report;
  std::string junit;
  std::string record_histories;
};

std::vector<SeedJob> make_jobs(const std::vector<const scenarios::ScenarioDefinition*>& selected,
                               std::uint64_t seeds, const std::string& seed_range, const std::string& faults) {
  std::uint64_t first = 1;
  std::uint64_t last = seeds == 0 ? 10 : seeds;
  if (!seed_range.empty()) {
    if (seeds != 0) throw BadInput{"give --seeds or --seed-range, not both"};
    std::tie(first, last) = parse_seed_range(seed_range);
  }
  std::vector<SeedJob> jobs;
  for (const scenarios::ScenarioDefinition* definition : selected) {
    for (std::uint64_t seed = first; seed <= last; seed++) jobs.push_back(SeedJob{definition->name, seed, profile_for(*definition, faults), std::nullopt});
  }
  return jobs;
}

int run(const scenarios::ScenarioRegistry& registry, const RunArgs& args, const std::string& program) {
  const std::vector<const scenarios::ScenarioDefinition*> selected = select(registry, args.scenarios, args.all);
  for (const scenarios::ScenarioDefinition* definition : selected) find_profile(profile_for(*definition, args.faults));
  const std::vector<SeedJob> jobs = make_jobs(selected, args.seeds, args.seed_range, args.faults);
  const int workers = args.jobs > 0 ? args.jobs : std::max(1, static_cast<int>(::sysconf(_SC_NPROCESSORS_ONLN)));

  fmt::print("duro run: {} scenario(s), {} seed(s), faults {}, {} process(es)\n", selected.size(), jobs.size(),
             args.faults.empty() ? "per scenario" : args.faults, workers);
  std::fflush(stdout);
  const auto start = std::chrono::steady_clock::now();
  SuiteReport suite(program, args.faults);
  Progress progress(stdout, jobs.size(), ::isatty(STDOUT_FILENO) != 0);
  SeedPool pool(workers, [&](const SeedJob& job) {
    const scenarios::ScenarioDefinition& definition = find_scenario(registry, job.scenario);
    scenarios::SeedOptions options;
    options.seed = job.seed;
    options.profile = find_profile(job.profile);
    return run_seed_recording(definition, options, args.record_histories);
  });
  pool.run(jobs, [&](const SeedJob&, const scenarios::SeedReport& report) {
    suite.add(report);
    if (!report.passed) {
      const std::string first = report.violations.empty()
                                    ? std::string("no detail")
                                    : report.violations.front().invariant + ": " + report.violations.front().message;
      progress.note(fmt::format("FAILED {} seed {}: {}\n  {}", report.scenario, report.seed, first,
                                suite.repro_line(report)));
    }
    progress.seed_done(report.passed);
  });
  progress.finish();
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  fmt::print("\n{}", suite.summary_table(elapsed));
  if (!suite.passed()) {
    // The repro lines again, together, where a reader of a CI log looks last.
    fmt::print("\n{} seed(s) failed; reproduce each with:\n", suite.failed());
    for (const std::string& line : suite.repro_lines()) fmt::print("  {}\n", line);
  }
  if (!args.report.empty()) write_file(args.report, suite.json(elapsed));
  if (!args.junit.empty()) write_file(args.junit, suite.junit(elapsed));
  return suite.passed() ? kExitPassed : kExitFailed;
}

// --- repro ----------------------------------------------------------------------------

struct ReproArgs {
  std::string scenario;
  std::uint64_t seed = 0;
  std::string faults;
  std::string fault_plan;
  bool trace = false;
  std::string trace_out;
  std::string write_plan;
  bool fuzz = false;
};

int repro(const scenarios::ScenarioRegistry& registry, const ReproArgs& args) {
  const scenarios::ScenarioDefinition& definition = find_scenario(registry, args.scenario);
  scenarios::SeedOptions options;
  options.seed = args.seed;
  options.profile = find_profile(profile_for(definition, args.faults));
  options.fuzz = args.fuzz;
  if (!args.fault_plan.empty()) {
    sim::Result<sim::FaultPlan> plan = sim::read_fault_plan_file(args.fault_plan);
    if (!plan.ok()) throw BadInput{fmt::format("{}: {}", args.fault_plan, sim::to_string(plan.error()))};
    options.plan = std::move(plan.value());
  }
  if (args.trace && !args.trace_out.empty()) throw BadInput{"give --trace or --trace-out, not both"};
  // The file outlives the log, which ends the JSON when destroyed.
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> trace_file(nullptr, &std::fclose);
  std::unique_ptr<sim::TraceLog> trace;
  if (args.trace) trace = std::make_unique<sim::FileTraceLog>(stderr, sim::kDefaultStartTime);
  if (!args.trace_out.empty()) {
    trace_file.reset(std::fopen(args.trace_out.c_str(), "w"));
    if (trace_file == nullptr) throw BadInput{fmt::format("cannot write '{}'", args.trace_out)};
    trace = std::make_unique<sim::ChromeTraceLog>(trace_file.get(), sim::kDefaultStartTime);
  }
  options.trace = trace.get();
  const scenarios::SeedReport report = scenarios::run_seed(definition, options);
  trace.reset();  // Ends the JSON before the file closes.
  for (const scenarios::Violation& violation : report.violations) {
    if (violation.invariant == "fault-plan") throw BadInput{fmt::format("{}: {}", args.fault_plan, violation.message)};
  }
  fmt::print("{} seed {} (faults {})\n\nfault plan:\n{}\n", report.scenario, report.seed, report.profile,
             report.fault_plan);
  fmt::print("checks: {} made, {} violation(s); {} workflow(s) checked, {} run(s) replayed, {} fault(s) applied\n",
             report.checks, report.violations_total, report.workflows, report.runs_replayed, report.faults_applied);
  for (const scenarios::Violation& violation : report.violations) {
    fmt::print("  VIOLATION at {} {}: {}\n", sim::format_duration(violation.at - sim::kDefaultStartTime),
               violation.invariant, violation.message);
  }
  if (report.violations_total > report.violations.size()) {
    fmt::print("  ... and {} more\n", report.violations_total - report.violations.size());
  }
  const double simulated = static_cast<double>(report.simulated_ns) / 1e9;
  fmt::print("simulated {} in {:.3f} s wall ({:.0f}x), {} events\n",
             sim::format_duration(sim::Duration{report.simulated_ns}), report.wall_seconds,
             report.wall_seconds > 0 ? simulated / report.wall_seconds : 0.0, report.events);
  fmt::print("trace hash {:016x}\n{}\n", report.trace_hash, report.passed ? "PASSED" : "FAILED");
  if (!args.write_plan.empty()) write_file(args.write_plan, report.fault_plan);
  if (!args.trace_out.empty()) {
    fmt::print("trace written to {} (open it in https://ui.perfetto.dev)\n", args.trace_out);
  }
  return report.passed ? kExitPassed : kExitFailed;
}

// --- check-determinism ----------------------------------------------------------------

struct DeterminismArgs {
  std::vector<std::string> scenarios;
  std::uint64_t seeds = 0;
  std::string seed_range;
  std::string faults;
  int jobs = 0;
};

// How many differing seeds get their first divergent record looked for:
// each costs four more runs.
constexpr std::size_t kDivergencesShownMax = 3;

// Runs `job` in a fresh process with `make_log(file)` as its trace sink,
// writing to `path`.
template <typename MakeLog>
void run_traced(const scenarios::ScenarioRegistry& registry, const SeedJob& job, const std::string& path,
                MakeLog make_log) {
  SeedPool(1, [&](const SeedJob& seed_job) {
    std::unique_ptr<std::FILE, int (*)(std::FILE*)> file(std::fopen(path.c_str(), "wb"), &std::fclose);
    if (file == nullptr) throw std::runtime_error("cannot write " + path);
    auto log = make_log(file.get());
    scenarios::SeedOptions options;
    options.seed = seed_job.seed;
    options.profile = find_profile(seed_job.profile);
    options.trace = log.get();
    scenarios::SeedReport report = scenarios::run_seed(find_scenario(registry, seed_job.scenario), options);
    if constexpr (requires { log->finish(); }) log->finish();
    return report;
  }).run({job}, [](const SeedJob&, const scenarios::SeedReport&) {});
}

// Runs a seed whose trace hash differed two more times, twice, to show the
// first trace record where its runs part (trace_divergence.h).
void show_first_divergence(const scenarios::ScenarioRegistry& registry, const SeedJob& job) {
  const std::string stem = (std::filesystem::temp_directory_path() /
                            fmt::format("duro-determinism-{}-{}-{}", ::getpid(), job.scenario, job.seed))
                               .string();
  const std::string digests[2] = {stem + "-1.digest", stem + "-2.digest"};
  const std::string texts[2] = {stem + "-1.trace", stem + "-2.trace"};
  for (const std::string& path : digests) {
    run_traced(registry, job, path, [](std::FILE* file) { return std::make_unique<BlockDigestLog>(file); });
  }
  sim::Result<std::optional<std::uint64_t>> block = first_differing_block(digests[0], digests[1]);
  if (!block.ok()) {
    fmt::print("  (could not trace it: {})\n", block.error().message);
  } else if (!block.value()) {
    fmt::print("  (two more traced runs agreed: the difference did not show again, or lies in event data the\n"
               "  trace text leaves out)\n");
  } else {
    const std::uint64_t first_record = *block.value() * kTraceBlockRecords;
    for (const std::string& path : texts) {
      run_traced(registry, job, path, [first_record](std::FILE* file) {
        return std::make_unique<WindowTraceLog>(file, sim::kDefaultStartTime, first_record, kTraceBlockRecords);
      });
    }
    sim::Result<TraceDivergence> divergence = first_trace_divergence(texts[0], texts[1]);
    if (!divergence.ok()) {
      fmt::print("  (could not trace it: {})\n", divergence.error().message);
    } else if (!divergence.value().differs) {
      fmt::print("  (records {}..{} differed in digest but agreed as text in two more runs)\n", first_record + 1,
                 first_record + kTraceBlockRecords);
    } else {
      const TraceDivergence& found = divergence.value();
      fmt::print("  first divergent trace event: record {}\n", first_record + found.line);
      if (!found.before.empty()) fmt::print("    both:  {}\n", found.before);
      fmt::print("    run 1: {}\n    run 2: {}\n", found.first, found.second);
    }
  }
  std::error_code ignored;
  for (const std::string& path : digests) std::filesystem::remove(path, ignored);
  for (const std::string& path : texts) std::filesystem::remove(path, ignored);
}

int check_determinism(const scenarios::ScenarioRegistry& registry, const DeterminismArgs& args,
                      const std::string& program) {
  const std::vector<const scenarios::ScenarioDefinition*> selected = select(registry, args.scenarios, false);
  for (const scenarios::ScenarioDefinition* definition : selected) find_profile(profile_for(*definition, args.faults));
  const std::vector<SeedJob> jobs = make_jobs(selected, args.seeds, args.seed_range, args.faults);
  const int workers = args.jobs > 0 ? args.jobs : std::max(1, static_cast<int>(::sysconf(_SC_NPROCESSORS_ONLN)));
  auto run_one = [&](const SeedJob& job) {
    const scenarios::ScenarioDefinition& definition = find_scenario(registry, job.scenario);
    scenarios::SeedOptions options;
    options.seed = job.seed;
    options.profile = find_profile(job.profile);
    return scenarios::run_seed(definition, options);
  };
  // Two pools: each seed's two runs happen in two different processes,
  // forked afresh, so nothing one run left in memory can reach the other.
  std::map<std::pair<std::string, std::uint64_t>, std::uint64_t> first;
  fmt::print("duro check-determinism: {} seed(s), each run twice in separate processes\n", jobs.size());
  // A seed whose process died has no trace hash: it is a failure, not a
  // match (two crashes would otherwise compare equal).
  auto crashed = [](const scenarios::SeedReport& report) {
    return std::any_of(report.violations.begin(), report.violations.end(),
                       [](const scenarios::Violation& violation) { return violation.invariant == "crash"; });
  };
  std::uint64_t differing = 0;
  std::vector<SeedJob> differed;
  SeedPool(workers, run_one).run(jobs, [&](const SeedJob& job, const scenarios::SeedReport& report) {
    first[{job.scenario, job.seed}] = report.trace_hash;
    if (crashed(report)) {
      differing++;
      fmt::print("CRASHED {} seed {}: {}\n", job.scenario, job.seed, report.violations.front().message);
    }
  });
  SeedPool(workers, run_one).run(jobs, [&](const SeedJob& job, const scenarios::SeedReport& report) {
    const std::uint64_t hash = first.at({job.scenario, job.seed});
    if (crashed(report)) {
      differing++;
      fmt::print("CRASHED {} seed {}: {}\n", job.scenario, job.seed, report.violations.front().message);
      return;
    }
    if (hash == report.trace_hash) return;
    differing++;
    fmt::print("NONDETERMINISTIC {} seed {}: trace hash {:016x} then {:016x}\n  {} repro {} --seed {}{}{} --trace\n",
               job.scenario, job.seed, hash, report.trace_hash, program, job.scenario, job.seed,
               args.faults.empty() ? "" : " --faults ", args.faults);
    if (differed.size() < kDivergencesShownMax) differed.push_back(job);
  });
  for (const SeedJob& job : differed) {
    fmt::print("{} seed {}: looking for the first divergent trace event (four more runs)\n", job.scenario, job.seed);
    show_first_divergence(registry, job);
  }
  fmt::print("{} of {} seed(s) gave the same trace hash twice\n", jobs.size() - std::min<std::uint64_t>(differing, jobs.size()),
             jobs.size());
  return differing == 0 ? kExitPassed : kExitFailed;
}

}  // namespace

int main(int argc, char** argv, const scenarios::ScenarioRegistry& registry) {
  CLI::App app{"duro: deterministic simulation of durable workflows under faults"};
  app.require_subcommand(1);
  const std::string program = "duro";

  CLI::App* list_command = app.add_subcommand("list", "the scenarios, their invariants, and the fault profiles");

  RunArgs run_args;
  CLI::App* run_command = app.add_subcommand("run", "run seeds of scenarios in parallel and summarize");
  run_command->add_option("scenarios", run_args.scenarios, "scenarios to run (default: all)");
  run_command->add_flag("--all", run_args.all, "every registered scenario");
  auto* seeds_option =
      run_command->add_option("--seeds", run_args.seeds, "seeds 1..N (default 10)")->check(CLI::Range(std::uint64_t{1}, kSeedsMax));
  run_command->add_option("--seed-range", run_args.seed_range, "seeds A..B, inclusive")->excludes(seeds_option);
  run_command->add_option("--faults", run_args.faults, "fault profile (default: each scenario's own)");
  run_command->add_option("--jobs,-j", run_args.jobs, "processes running seeds (default: one per core)")
      ->check(CLI::Range(1, 1024));
  run_command->add_option("--report", run_args.report, "write a JSON report here");
  run_command->add_option("--junit", run_args.junit, "write JUnit XML here");
  run_command->add_option("--record-histories", run_args.record_histories,
                          "write the history of every closed run under this directory");

  ReproArgs repro_args;
  CLI::App* repro_command = app.add_subcommand("repro", "rerun exactly one seed and show what happened");
  repro_command->add_option("scenario", repro_args.scenario, "the scenario")->required();
  repro_command->add_option("--seed", repro_args.seed, "the seed")->required();
  repro_command->add_option("--faults", repro_args.faults, "fault profile (default: the scenario's own)");
  repro_command->add_option("--fault-plan", repro_args.fault_plan, "replay this fault plan file instead of drawing one");
  repro_command->add_flag("--trace", repro_args.trace, "write the simulator's trace log to stderr");
  repro_command->add_option("--trace-out", repro_args.trace_out,
                            "write a Chrome/Perfetto trace (one track per node) to this JSON file");
  repro_command->add_option("--write-plan", repro_args.write_plan, "write the run's fault plan to this file");
  repro_command->add_flag("--fuzz", repro_args.fuzz,
                          "run the seed as `duro fuzz` does (random evictions, held deliveries)");

  DeterminismArgs determinism_args;
  CLI::App* determinism_command = app.add_subcommand(
      "check-determinism", "run each seed twice, in two separate processes, and compare trace hashes");
  determinism_command->add_option("scenarios", determinism_args.scenarios, "scenarios (default: all)");
  auto* determinism_seeds = determinism_command->add_option("--seeds", determinism_args.seeds, "seeds 1..N (default 10)")
                                ->check(CLI::Range(std::uint64_t{1}, kSeedsMax));
  determinism_command->add_option("--seed-range", determinism_args.seed_range, "seeds A..B, inclusive")
      ->excludes(determinism_seeds);
  determinism_command->add_option("--faults", determinism_args.faults, "fault profile (default: each scenario's own)");
  determinism_command->add_option("--jobs,-j", determinism_args.jobs, "processes (default: one per core)")
      ->check(CLI::Range(1, 1024));

  HistoryCommand history_command(app);
  ReplayCommand replay_command(app);
  GoldenCommand golden_command(app);
  ShrinkCommand shrink_command(app);
  RegressCommand regress_command(app);
  FuzzCommand fuzz_command(app);

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return kExitBadInput;
  }
  try {
    if (list_command->parsed()) return list(registry);
    if (run_command->parsed()) return run(registry, run_args, program);
    if (repro_command->parsed()) return repro(registry, repro_args);
    if (determinism_command->parsed()) return check_determinism(registry, determinism_args, program);
    if (history_command.parsed()) return history_command.run();
    if (replay_command.parsed()) return replay_command.run(registry);
    if (golden_command.parsed()) return golden_command.run(registry);
    if (shrink_command.parsed()) return shrink_command.run(registry);
    if (regress_command.parsed()) return regress_command.run(registry);
    if (fuzz_command.parsed()) return fuzz_command.run(registry);
  } catch (const BadInput& bad) {
    fmt::print(stderr, "duro: {}\n", bad.message);
    return kExitBadInput;
  }
  return kExitBadInput;
}

}  // namespace duro::cli
