#include "cli/golden_command.h"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <map>

#include "cli/bad_input.h"
#include "cli/files.h"
#include "cli/history_command.h"
#include "cli/recorded_histories.h"
#include "cli/replay_manifest.h"
#include "cli/seed_pool.h"
#include "scenarios/workflow_catalog.h"
#include "sim/nemesis.h"

namespace duro::cli {

namespace fs = std::filesystem;

namespace {

struct Candidate {
  std::string path;
  engine::HistoryFile file;
  std::vector<std::string> features;
};

std::string golden_name(const engine::HistoryFileHeader& header) {
  const std::string recorded = fs::path(recorded_history_path("", header)).filename().string();
  return fmt::format("{}-seed-{}-{}", header.scenario, header.seed.value_or(0), recorded);
}

}  // namespace

GoldenCommand::GoldenCommand(CLI::App& app) {
  command_ = app.add_subcommand("record-golden", "refresh the golden histories `duro replay` checks");
  command_->add_option("scenarios", scenarios_, "scenarios to record from (default: all)");
  command_->add_option("--out", out_, "the golden directory (default replays/golden); its histories are replaced");
  command_->add_option("--seeds", seeds_, "seeds 1..N of each scenario (default 3)")->check(CLI::Range(1, 1000));
  command_->add_option("--per-type", per_type_, "histories kept per workflow type, at most (default 3)")
      ->check(CLI::Range(1, 100));
  command_->add_option("--jobs,-j", jobs_, "processes (default: one per core)")->check(CLI::Range(1, 1024));
}

bool GoldenCommand::parsed() const { return command_->parsed(); }

int GoldenCommand::run(const scenarios::ScenarioRegistry& registry) {
  std::vector<SeedJob> jobs;
  for (const scenarios::ScenarioDefinition& definition : registry.all()) {
    if (!scenarios_.empty() && std::find(scenarios_.begin(), scenarios_.end(), definition.name) == scenarios_.end()) {
      continue;
    }
    for (std::uint64_t seed = 1; seed <= seeds_; seed++) {
      jobs.push_back(SeedJob{definition.name, seed, definition.shape.default_profile, std::nullopt});
    }
  }
  for (const std::string& name : scenarios_) {
    if (registry.find(name) == nullptr) throw BadInput{fmt::format("unknown scenario '{}'", name)};
  }
  const fs::path recording = fs::temp_directory_path() / fmt::format("duro-golden-{}", ::getpid());
  const int workers = jobs_ > 0 ? jobs_ : std::max(1, static_cast<int>(::sysconf(_SC_NPROCESSORS_ONLN)));
  fmt::print("record-golden: {} seed(s) on {} process(es), recording under {}\n", jobs.size(), workers,
             recording.string());
  std::fflush(stdout);
  std::vector<fs::path> passed_dirs;
  std::uint64_t failed = 0;
  SeedPool pool(workers, [&](const SeedJob& job) {
    const scenarios::ScenarioDefinition& definition = *registry.find(job.scenario);
    scenarios::SeedOptions options;
    options.seed = job.seed;
    options.profile = sim::fault_profile(job.profile).value();
    return run_seed_recording(definition, options, recording.string());
  });
  pool.run(jobs, [&](const SeedJob& job, const scenarios::SeedReport& report) {
    fmt::print("  {} seed {}: {}\n", job.scenario, job.seed, report.passed ? "passed" : "FAILED (not kept)");
    std::fflush(stdout);
    if (report.passed) {
      passed_dirs.push_back(recording / job.scenario / fmt::format("seed-{}", job.seed));
    } else {
      failed++;
    }
  });

  // Per workflow type, in a fixed order whatever order seeds finished in.
  std::sort(passed_dirs.begin(), passed_dirs.end());
  std::map<std::string, std::vector<Candidate>> by_type;
  for (const fs::path& dir : passed_dirs) {
    if (!fs::is_directory(dir)) continue;
    for (const std::string& path : find_files({dir.string()}, kHistoryFileExtension)) {
      engine::HistoryFile file = load_history_file(path);
      std::vector<std::string> features = history_features(file.history);
      by_type[file.header.workflow_type].push_back(Candidate{path, std::move(file), std::move(features)});
    }
  }
  Manifest manifest;
  std::vector<std::pair<std::string, const engine::HistoryFile*>> chosen;
  for (const auto& [type, candidates] : by_type) {
    std::vector<std::vector<std::string>> features;
    std::vector<std::uint64_t> events;
    for (const Candidate& candidate : candidates) {
      features.push_back(candidate.features);
      events.push_back(candidate.file.history.events.size());
    }
    for (const std::size_t index : choose_covering(features, events, per_type_)) {
      const Candidate& candidate = candidates[index];
      const engine::HistoryFileHeader& header = candidate.file.header;
      const std::string file = fmt::format("{}/{}", safe_file_name(type), golden_name(header));
      manifest.histories.push_back(ManifestEntry{file, type, header.scenario, header.seed,
                                                 candidate.file.history.events.size(), candidate.features});
      chosen.emplace_back(file, &candidate.file);
    }
  }
  // Replace the old golden set only now that the new one is ready.
  std::error_code error;
  if (fs::is_directory(out_)) {
    for (const std::string& old : find_files({out_}, kHistoryFileExtension)) fs::remove(old, error);
  }
  std::uintmax_t bytes = 0;
  for (const auto& [file, history] : chosen) {
    const std::string encoded = engine::encode_history_file(*history);
    bytes += encoded.size();
    write_file((fs::path(out_) / file).string(), encoded);
  }
  write_file((fs::path(out_) / kManifestName).string(), manifest_to_json(manifest));
  fs::remove_all(recording, error);
  fmt::print("kept {} golden histories of {} workflow types ({} bytes) in {}; {} seed(s) failed and were not used\n",
             chosen.size(), by_type.size(), bytes, out_, failed);
  // A type no seed closed a run of has no golden history: say so, so that
  // someone adds a scenario path that reaches it, or more seeds.
  scenarios::WorkflowCatalog catalog(registry);
  for (const auto& [scenario, type] : catalog.workflow_types()) {
    const bool recorded_from = scenarios_.empty() || std::find(scenarios_.begin(), scenarios_.end(), scenario) != scenarios_.end();
    if (recorded_from && !by_type.contains(type)) {
      fmt::print("  no golden history of {} ({}): no run of it closed in these seeds\n", type, scenario);
    }
  }
  return kExitPassed;
}

}  // namespace duro::cli
