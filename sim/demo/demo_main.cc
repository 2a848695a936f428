// duro_sim_demo: runs the message storm over a range of seeds under a fault
// profile, checks each run, and (optionally) runs every seed twice to prove
// it deterministic.
//
//   duro_sim_demo --seeds 20                      # seeds 1..20, profile chaos
//   duro_sim_demo --seed 7 --profile partitions   # one seed
//   duro_sim_demo --seed 7 --print-plan           # and the faults it drew
//   duro_sim_demo --seed 7 --trace 2> trace.log   # with a structured trace
//
// Exit codes: 0 all seeds passed, 1 a seed failed, 2 bad command line.
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <chrono>
#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "sim/demo/message_storm.h"
#include "sim/fault_plan.h"
#include "sim/nemesis.h"

namespace {

using duro::sim::demo::StormOptions;
using duro::sim::demo::StormReport;

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Duro simulator demo: a message storm under injected faults, checked and hashed per seed"};
  std::uint64_t seed_first = 1;
  std::uint64_t seeds = 1;
  StormOptions options;
  int chaos_s = 120;
  int quiet_s = 40;
  bool trace = false;
  bool print_plan = false;
  bool check_determinism = false;
  std::string profiles;
  for (const std::string_view name : duro::sim::fault_profile_names()) {
    profiles += profiles.empty() ? "" : ", ";
    profiles += name;
  }
  app.add_option("--seed", seed_first, "first seed")->capture_default_str();
  app.add_option("--seeds", seeds, "how many consecutive seeds to run")->capture_default_str()->check(CLI::Range(1, 1000000));
  std::string profile_list = options.profile;
  app.add_option("--profile", profile_list, "fault profile, or a comma-separated list to run each seed under each: " + profiles)
      ->capture_default_str();
  app.add_option("--nodes", options.nodes, "worker nodes")->capture_default_str()->check(CLI::Range(1, 200));
  app.add_option("--clients", options.clients_per_node, "client fibers per node")->capture_default_str()->check(CLI::Range(0, 10000));
  app.add_option("--chaos", chaos_s, "simulated seconds of chaos")->capture_default_str()->check(CLI::Range(1, 10000000));
  app.add_option("--quiet", quiet_s, "simulated seconds of quiet after it")->capture_default_str()->check(CLI::Range(20, 10000000));
  app.add_flag("--shuffle-ties", options.shuffle_ties, "order equal-time events by the seed");
  app.add_flag("--trace", trace, "write a structured trace log to stderr");
  app.add_flag("--print-plan", print_plan, "print each seed's fault plan");
  std::string plan_in;
  std::string plan_out;
  app.add_option("--plan", plan_in, "replay this fault plan file instead of drawing one (to shrink a failure)");
  app.add_option("--write-plan", plan_out, "write the (last) run's fault plan to this file");
  app.add_flag("--check-determinism", check_determinism, "run every seed twice and compare trace hashes");
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return 2;
  }
  std::vector<std::string> run_profiles;
  for (std::size_t begin = 0; begin <= profile_list.size();) {
    const std::size_t end = std::min(profile_list.find(',', begin), profile_list.size());
    run_profiles.push_back(profile_list.substr(begin, end - begin));
    begin = end + 1;
  }
  for (const std::string& name : run_profiles) {
    if (plan_in.empty() && !duro::sim::fault_profile(name).ok()) {
      fmt::print(stderr, "duro_sim_demo: unknown fault profile '{}' (known: {})\n", name, profiles);
      return 2;
    }
  }
  options.chaos = std::chrono::seconds{chaos_s};
  if (!plan_in.empty()) {
    duro::sim::Result<duro::sim::FaultPlan> plan = duro::sim::read_fault_plan_file(plan_in);
    if (!plan.ok()) {
      fmt::print(stderr, "duro_sim_demo: {}: {}\n", plan_in, duro::sim::to_string(plan.error()));
      return 2;
    }
    // Names the storm's world does not have are bad input, not a failed run.
    for (const duro::sim::FaultAction& action : plan.value().actions) {
      for (const auto* names : {&action.nodes, &action.others}) {
        for (const std::string& name : *names) {
          int index = -1;
          if (std::sscanf(name.c_str(), "n%d", &index) != 1 || fmt::format("n{}", index) != name || index < 0 ||
              index >= options.nodes) {
            fmt::print(stderr, "duro_sim_demo: {}: no node named '{}' (the storm has n0..n{})\n", plan_in, name,
                       options.nodes - 1);
            return 2;
          }
        }
      }
    }
    options.plan = std::move(plan.value());
    run_profiles = {options.plan->profile};
  }
  options.quiet = std::chrono::seconds{quiet_s};

  std::uint64_t failed = 0;
  std::uint64_t events_total = 0;
  std::uint64_t calls_total = 0;
  std::uint64_t faults_total = 0;
  const auto wall_start = std::chrono::steady_clock::now();
  const std::uint64_t runs = seeds * run_profiles.size();
  for (std::uint64_t i = 0; i < runs; i++) {
    options.seed = seed_first + i / run_profiles.size();
    options.profile = run_profiles[i % run_profiles.size()];
    std::unique_ptr<duro::sim::FileTraceLog> trace_log;
    if (trace) trace_log = std::make_unique<duro::sim::FileTraceLog>(stderr, duro::sim::kDefaultStartTime);
    options.trace_log = trace_log.get();
    const auto seed_start = std::chrono::steady_clock::now();
    const StormReport report = duro::sim::demo::run_message_storm(options);
    std::string failure = report.failure;
    if (check_determinism && failure.empty()) {
      options.trace_log = nullptr;
      const StormReport again = duro::sim::demo::run_message_storm(options);
      if (again.run.trace_hash != report.run.trace_hash) {
        failure = fmt::format("nondeterministic: trace hash {:016x} then {:016x}", report.run.trace_hash,
                              again.run.trace_hash);
      }
    }
    events_total += report.run.events_executed;
    calls_total += report.calls;
    faults_total += report.faults;
    fmt::print("[{}/{}] seed {} {} {}: {} faults ({} crashes), {} calls ({} ok, {} timeout, {} rejected, "
               "{} abandoned), {} messages, {} fsyncs, {} events, sim {}, wall {:.2f}s, trace {:016x}\n",
               i + 1, runs, options.seed, options.profile, failure.empty() ? "ok" : "FAILED", report.faults,
               report.crashes, report.calls, report.replies, report.timeouts, report.rejected, report.abandoned,
               report.messages, report.fsyncs, report.run.events_executed,
               duro::sim::format_duration(report.run.time - duro::sim::kDefaultStartTime), seconds_since(seed_start),
               report.run.trace_hash);
    if (print_plan || !failure.empty()) fmt::print("{}", report.plan_text);
    if (!plan_out.empty()) {
      duro::sim::Result<duro::sim::FaultPlan> plan = duro::sim::FaultPlan::parse(report.plan_text);
      DURO_ASSERT(plan.ok());
      if (duro::sim::Result<void> written = duro::sim::write_fault_plan_file(plan_out, plan.value()); !written.ok()) {
        fmt::print(stderr, "duro_sim_demo: {}: {}\n", plan_out, duro::sim::to_string(written.error()));
        return 2;
      }
    }
    if (!failure.empty()) {
      failed++;
      fmt::print("  failure: {}\n  reproduce: duro_sim_demo --seed {} --profile {} --nodes {} --clients {} "
                 "--chaos {} --quiet {}{}{}{}\n",
                 failure, options.seed, options.profile, options.nodes, options.clients_per_node, chaos_s, quiet_s,
                 options.shuffle_ties ? " --shuffle-ties" : "", plan_in.empty() ? "" : " --plan ", plan_in);
    }
    std::fflush(stdout);
  }
  const double wall_s = seconds_since(wall_start);
  fmt::print("summary: {} runs ({} seeds x {} profiles), {} passed, {} failed; {} faults, {} calls, {} events; "
             "wall {:.2f}s ({:.0f} events/s)\n",
             runs, seeds, run_profiles.size(), runs - failed, failed, faults_total, calls_total, events_total, wall_s,
             wall_s > 0 ? static_cast<double>(events_total) / wall_s : 0.0);
  return failed == 0 ? 0 : 1;
}
