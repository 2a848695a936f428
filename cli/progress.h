// Progress: the line `duro run` keeps up to date while seeds finish.
//
// On a terminal it is one line redrawn in place (at most ten times a
// second): done/total, passed, failed, seeds per second and the time left.
// Anywhere else (a CI log) it prints a plain line at every tenth of the way,
// so logs stay short. note() prints a line of its own (a failure) without
// tearing the progress line.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string_view>

namespace duro::cli {

class Progress {
 public:
  Progress(std::FILE* out, std::uint64_t total, bool terminal);

  void seed_done(bool passed);
  void note(std::string_view line);
  // Draws the final state and ends the line.
  void finish();

 private:
  void draw(bool force);
  std::string line() const;

  std::FILE* out_;
  std::uint64_t total_;
  bool terminal_;
  std::uint64_t done_ = 0;
  std::uint64_t failed_ = 0;
  std::uint64_t last_tenth_ = 0;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point drawn_{};
  bool line_open_ = false;
};

}  // namespace duro::cli
