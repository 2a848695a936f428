// `duro history`: read, convert and write history files
// (engine/history/history_file.h).
//
//   duro history show FILE                      the header, then one line per event
//   duro history export --json FILE [-o OUT]    the JSON form, to stdout or OUT
//   duro history import FILE.json [-o OUT]      JSON back to a history file
//                                               (default OUT: FILE with .dhist)
//
// A truncated, corrupted, wrong-version or foreign file is BadInput (exit
// 2) with the reader's message: what is wrong and, where it helps, where.
#pragma once

#include <CLI/CLI.hpp>

#include <string>

#include "engine/history/history_file.h"

namespace duro::cli {

// The extension of history files.
inline constexpr const char* kHistoryFileExtension = ".dhist";

// Reads and decodes a history file; BadInput naming the path and the problem.
engine::HistoryFile load_history_file(const std::string& path);

class HistoryCommand {
 public:
  // Adds `history` and its subcommands to `app`.
  explicit HistoryCommand(CLI::App& app);

  bool parsed() const;
  // Runs the parsed subcommand; an exit code, or BadInput.
  int run();

 private:
  CLI::App* show_ = nullptr;
  CLI::App* export_ = nullptr;
  CLI::App* import_ = nullptr;
  CLI::App* history_ = nullptr;
  std::string file_;
  std::string output_;
  bool json_ = false;
};

}  // namespace duro::cli
