// Recording the histories of a run (`duro run --record-histories DIR`,
// `duro record-golden`): every closed run the checks read, one history
// file each, stamped with this binary's build id.
//
// Layout: DIR/<scenario>/seed-<seed>/<workflow id>@<run id>.dhist, with
// every character of the ids outside [A-Za-z0-9._-] written as '_' (ids
// are any text; file names are not), so a directory of recordings reads
// as a tree of scenarios and seeds.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "engine/history/history_file.h"
#include "scenarios/harness.h"

namespace duro::cli {

// `text` as a file name: characters outside [A-Za-z0-9._-] as '_', at
// most 100 bytes, never "." or "..".
std::string safe_file_name(std::string_view text);

// Where `header`'s history goes under `dir`.
std::string recorded_history_path(const std::string& dir, const engine::HistoryFileHeader& header);

// Stamps each file with build_id() and writes it under `dir`; the number
// written. BadInput if a file cannot be written.
std::size_t write_recorded_histories(const std::string& dir, std::vector<engine::HistoryFile>& files);

// run_seed(), then its closed runs' histories written under `dir` (none
// when `dir` is empty). A history that cannot be written fails the seed,
// as a violation named "record-histories".
scenarios::SeedReport run_seed_recording(const scenarios::ScenarioDefinition& definition,
                                         scenarios::SeedOptions options, const std::string& dir);

}  // namespace duro::cli
