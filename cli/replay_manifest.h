// The manifest of a directory of golden histories (replays/golden/
// manifest.json): which history covers what, written by `duro
// record-golden` and checked by `duro replay`, so that a golden file
// deleted or added by hand fails the replay instead of passing unseen.
//
//   {"format": 1,
//    "refresh": "make golden",
//    "histories": [
//      {"file": "create_namespace/namespace-provisioning-seed-3-ns-1@r.dhist",
//       "workflowType": "create_namespace", "scenario": "namespace-provisioning", "seed": 3,
//       "events": 57, "covers": ["WorkflowExecutionCompleted", "activity reserve_name", "timer", ...]},
//      ...]}
//
// "covers" is what the selection maximized (history_features below): the
// event types a history holds, and the activity, child, marker and signal
// names in it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "engine/history/history.h"

namespace duro::cli {

inline constexpr const char* kManifestName = "manifest.json";

struct ManifestEntry {
  std::string file;  // Relative to the manifest's directory, '/'-separated.
  std::string workflow_type;
  std::string scenario;
  std::optional<std::uint64_t> seed;
  std::uint64_t events = 0;
  std::vector<std::string> covers;
};

struct Manifest {
  std::vector<ManifestEntry> histories;
};

// What a history exercises, sorted, each once.
std::vector<std::string> history_features(const engine::History& history);

// Greedy cover: up to `per_type_max` of `candidates` (indices into
// `features`), each adding the most features not yet covered, ties to the
// fewest events then the lowest index; stops when nothing new is added.
std::vector<std::size_t> choose_covering(const std::vector<std::vector<std::string>>& features,
                                         const std::vector<std::uint64_t>& events, std::size_t per_type_max);

std::string manifest_to_json(const Manifest& manifest);
// BadInput naming the path and the problem for a malformed manifest.
Manifest manifest_from_json(const std::string& path, const std::string& json);

// The problems of `dir` against its manifest: files listed but missing,
// history files present but not listed. Empty when they agree.
std::vector<std::string> check_manifest(const std::string& dir, const Manifest& manifest);

}  // namespace duro::cli
