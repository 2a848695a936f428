#include "cli/recorded_histories.h"

#include <fmt/format.h>

#include <filesystem>

#include "cli/bad_input.h"
#include "cli/build_id.h"
#include "cli/files.h"
#include "cli/history_command.h"

namespace duro::cli {

namespace {

// File names stay well under every file system's 255-byte limit.
constexpr std::size_t kNamePartBytesMax = 100;

}  // namespace

std::string safe_file_name(std::string_view text) {
  std::string part;
  for (const char c : text.substr(0, kNamePartBytesMax)) {
    const bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                       c == '_' || c == '-';
    part.push_back(plain ? c : '_');
  }
  // "." and ".." are not names a file may have.
  if (part.empty() || part.find_first_not_of('.') == std::string::npos) part.insert(0, "_");
  return part;
}

std::string recorded_history_path(const std::string& dir, const engine::HistoryFileHeader& header) {
  std::filesystem::path path(dir);
  path /= header.scenario.empty() ? std::string("no-scenario") : safe_file_name(header.scenario);
  if (header.seed) path /= fmt::format("seed-{}", *header.seed);
  path /= safe_file_name(header.workflow_id) + "@" + safe_file_name(header.run_id) + kHistoryFileExtension;
  return path.string();
}

std::size_t write_recorded_histories(const std::string& dir, std::vector<engine::HistoryFile>& files) {
  for (engine::HistoryFile& file : files) {
    file.header.build_id = std::string(build_id());
    write_file(recorded_history_path(dir, file.header), engine::encode_history_file(file));
  }
  return files.size();
}

scenarios::SeedReport run_seed_recording(const scenarios::ScenarioDefinition& definition,
                                         scenarios::SeedOptions options, const std::string& dir) {
  std::vector<engine::HistoryFile> histories;
  if (!dir.empty()) options.histories = &histories;
  scenarios::SeedReport report = scenarios::run_seed(definition, options);
  try {
    write_recorded_histories(dir, histories);
  } catch (const BadInput& bad) {
    report.passed = false;
    report.violations_total++;
    report.violations.push_back(scenarios::Violation{sim::TimePoint{}, "record-histories", bad.message});
  }
  return report;
}

}  // namespace duro::cli
