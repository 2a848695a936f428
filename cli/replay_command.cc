#include "cli/replay_command.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <memory>

#include "cli/bad_input.h"
#include "cli/files.h"
#include "cli/history_command.h"
#include "cli/replay_manifest.h"
#include "engine/sdk/replayer.h"
#include "scenarios/workflow_catalog.h"

namespace duro::cli {

namespace {

// Indents every line of a multi-line report under its file's line.
std::string indented(std::string_view text) {
  while (text.ends_with('\n')) text.remove_suffix(1);
  std::string out = "    ";
  for (const char c : text) {
    out.push_back(c);
    if (c == '\n') out += "    ";
  }
  return out;
}

}  // namespace

ReplayCommand::ReplayCommand(CLI::App& app) {
  command_ = app.add_subcommand("replay", "replay recorded histories against the current workflow code");
  command_->add_option("paths", paths_, "history files, or directories searched for *.dhist")->required();
  command_->add_flag("--verbose,-v", verbose_, "a line for every history, not only the failures");
}

bool ReplayCommand::parsed() const { return command_->parsed(); }

int ReplayCommand::run(const scenarios::ScenarioRegistry& registry) {
  const auto start = std::chrono::steady_clock::now();
  std::uint64_t failed = 0;
  std::uint64_t unreadable = 0;
  // Every manifest under the paths: `duro replay replays` checks
  // replays/golden's.
  for (const std::string& manifest_path : find_files(paths_, kManifestName)) {
    if (std::filesystem::path(manifest_path).filename() != kManifestName) continue;
    const Manifest manifest = manifest_from_json(manifest_path, read_file(manifest_path, 16 << 20));
    const std::string dir = std::filesystem::path(manifest_path).parent_path().string();
    for (const std::string& problem : check_manifest(dir, manifest)) {
      fmt::print("FAILED {}: {}\n", manifest_path, problem);
      failed++;
    }
  }
  const std::vector<std::string> files = find_files(paths_, ".dhist");
  if (files.empty() && failed == 0) throw BadInput{fmt::format("no history files (*.dhist) under {}", fmt::join(paths_, ", "))};

  scenarios::WorkflowCatalog catalog(registry);
  std::map<const sdk::Registry*, std::unique_ptr<sdk::Replayer>> replayers;
  std::uint64_t passed = 0;
  std::uint64_t events = 0;
  for (const std::string& path : files) {
    engine::HistoryFile file;
    try {
      file = load_history_file(path);
    } catch (const BadInput& bad) {
      fmt::print("UNREADABLE {}\n", bad.message);
      unreadable++;
      continue;
    }
    const engine::HistoryFileHeader& header = file.header;
    sim::Result<const sdk::Registry*> code = catalog.find(header.scenario, header.workflow_type);
    if (!code.ok()) {
      fmt::print("FAILED {}: {}\n", path, code.error().message);
      failed++;
      continue;
    }
    std::unique_ptr<sdk::Replayer>& replayer = replayers[code.value()];
    if (replayer == nullptr) replayer = std::make_unique<sdk::Replayer>(*code.value());
    const sdk::ReplayResult result = replayer->replay(file.history.events, header.workflow_id, header.run_id);
    events += file.history.events.size();
    if (result.ok) {
      passed++;
      if (verbose_) fmt::print("ok {} ({}, {} events)\n", path, header.workflow_type, file.history.events.size());
      continue;
    }
    failed++;
    fmt::print("FAILED {} ({} {}/{}{}):\n{}\n", path, header.workflow_type, header.workflow_id, header.run_id,
               header.scenario.empty() ? std::string()
                                       : fmt::format(", recorded from {} seed {} by build {}", header.scenario,
                                                     header.seed.value_or(0), header.build_id),
               indented(result.message));
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  fmt::print("replayed {} history file(s), {} events, in {:.2f} s: {} passed, {} failed, {} unreadable\n",
             files.size(), events, seconds, passed, failed, unreadable);
  if (unreadable > 0) return kExitBadInput;
  return failed > 0 ? kExitFailed : kExitPassed;
}

}  // namespace duro::cli
