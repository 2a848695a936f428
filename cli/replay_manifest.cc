#include "cli/replay_manifest.h"

#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>

#include "cli/bad_input.h"
#include "cli/files.h"
#include "cli/history_command.h"
#include "sim/assert.h"

namespace duro::cli {

namespace {

using Json = nlohmann::ordered_json;

constexpr std::uint64_t kManifestFormat = 1;
constexpr const char* kRefreshCommand = "make golden";

}  // namespace

std::vector<std::string> history_features(const engine::History& history) {
  std::set<std::string> features;
  for (const engine::HistoryEvent& event : history.events) {
    features.emplace(engine::event_type_name(event.type()));
    if (const auto* scheduled = event.as<engine::ActivityTaskScheduled>()) {
      features.insert("activity " + scheduled->activity_type);
    } else if (const auto* marker = event.as<engine::MarkerRecorded>()) {
      features.insert("marker " + marker->marker_name);
    } else if (const auto* child = event.as<engine::StartChildWorkflowExecutionInitiated>()) {
      features.insert("child " + child->workflow_type);
    } else if (const auto* signaled = event.as<engine::WorkflowExecutionSignaled>()) {
      features.insert("signal " + signaled->signal_name);
    } else if (const auto* sent = event.as<engine::SignalExternalWorkflowExecutionInitiated>()) {
      features.insert("signal-external " + sent->signal_name);
    }
  }
  return {features.begin(), features.end()};
}

std::vector<std::size_t> choose_covering(const std::vector<std::vector<std::string>>& features,
                                         const std::vector<std::uint64_t>& events, std::size_t per_type_max) {
  DURO_ASSERT(features.size() == events.size());
  std::set<std::string> covered;
  std::vector<std::size_t> chosen;
  std::vector<bool> taken(features.size(), false);
  while (chosen.size() < per_type_max) {
    std::optional<std::size_t> best;
    std::size_t best_new = 0;
    for (std::size_t i = 0; i < features.size(); i++) {
      if (taken[i]) continue;
      const std::size_t fresh = static_cast<std::size_t>(
          std::count_if(features[i].begin(), features[i].end(), [&](const std::string& f) { return !covered.contains(f); }));
      if (fresh == 0) continue;
      if (!best || fresh > best_new || (fresh == best_new && events[i] < events[*best])) {
        best = i;
        best_new = fresh;
      }
    }
    if (!best) break;
    taken[*best] = true;
    chosen.push_back(*best);
    covered.insert(features[*best].begin(), features[*best].end());
  }
  return chosen;
}

std::string manifest_to_json(const Manifest& manifest) {
  Json root = Json::object();
  root["format"] = kManifestFormat;
  root["refresh"] = kRefreshCommand;
  Json histories = Json::array();
  for (const ManifestEntry& entry : manifest.histories) {
    Json json = Json::object();
    json["file"] = entry.file;
    json["workflowType"] = entry.workflow_type;
    json["scenario"] = entry.scenario;
    json["seed"] = entry.seed ? Json(*entry.seed) : Json(nullptr);
    json["events"] = entry.events;
    json["covers"] = entry.covers;
    histories.push_back(std::move(json));
  }
  root["histories"] = std::move(histories);
  return root.dump(2) + "\n";
}

Manifest manifest_from_json(const std::string& path, const std::string& text) {
  auto bad = [&](const std::string& what) { return BadInput{fmt::format("{}: {}", path, what)}; };
  Json root;
  try {
    root = Json::parse(text);
  } catch (const Json::parse_error& error) {
    throw bad(fmt::format("JSON parse error at byte {}", error.byte));
  } catch (const Json::exception& error) {  // A number out of range, say.
    throw bad(fmt::format("JSON parse error: {}", error.what()));
  }
  if (!root.is_object() || !root.contains("histories") || !root["histories"].is_array()) {
    throw bad("expected {\"format\": 1, \"histories\": [...]}");
  }
  if (!root.contains("format") || root["format"] != kManifestFormat) throw bad("expected \"format\": 1");
  Manifest manifest;
  std::size_t index = 0;
  for (const Json& json : root["histories"]) {
    const std::string where = fmt::format("histories[{}]", index++);
    if (!json.is_object() || !json.contains("file") || !json["file"].is_string() || !json.contains("workflowType") ||
        !json["workflowType"].is_string()) {
      throw bad(where + ": expected an object with \"file\" and \"workflowType\" strings");
    }
    ManifestEntry entry;
    entry.file = json["file"].get<std::string>();
    entry.workflow_type = json["workflowType"].get<std::string>();
    if (json.contains("scenario") && json["scenario"].is_string()) entry.scenario = json["scenario"].get<std::string>();
    if (json.contains("seed") && json["seed"].is_number_unsigned()) entry.seed = json["seed"].get<std::uint64_t>();
    if (json.contains("events") && json["events"].is_number_unsigned()) entry.events = json["events"].get<std::uint64_t>();
    if (json.contains("covers") && json["covers"].is_array()) {
      for (const Json& feature : json["covers"]) {
        if (feature.is_string()) entry.covers.push_back(feature.get<std::string>());
      }
    }
    if (entry.file.empty() || entry.file.starts_with('/') || entry.file.find("..") != std::string::npos) {
      throw bad(where + ": \"file\" must be a relative path inside the directory");
    }
    manifest.histories.push_back(std::move(entry));
  }
  return manifest;
}

std::vector<std::string> check_manifest(const std::string& dir, const Manifest& manifest) {
  std::vector<std::string> problems;
  std::set<std::string> listed;
  for (const ManifestEntry& entry : manifest.histories) {
    if (!listed.insert(entry.file).second) problems.push_back(fmt::format("{} is listed twice", entry.file));
    if (!std::filesystem::is_regular_file(std::filesystem::path(dir) / entry.file)) {
      problems.push_back(fmt::format("{} is in the manifest but missing", entry.file));
    }
  }
  for (const std::string& path : find_files({dir}, kHistoryFileExtension)) {
    const std::string relative = std::filesystem::relative(path, dir).generic_string();
    if (!listed.contains(relative)) {
      problems.push_back(fmt::format("{} is not in the manifest (refresh the manifest with `{}`)", relative,
                                     kRefreshCommand));
    }
  }
  return problems;
}

}  // namespace duro::cli
