// Where two runs of one seed part ways: the first trace record that
// differs, for `duro check-determinism` to show next to a seed whose trace
// hash differed.
//
// A run's trace can hold tens of millions of records, so the search goes
// in two steps, each a fresh pair of runs in separate processes:
//   1. BlockDigestLog writes a digest of the records so far after every
//      kTraceBlockRecords records (8 bytes a block): comparing the two
//      files names the first block that differs;
//   2. WindowTraceLog writes that block's records as text (FileTraceLog's
//      lines); first_trace_divergence() finds the first differing line.
// Nondeterminism that depends on the process (addresses, the real clock)
// may strike elsewhere in the second pair; the report then says so.
//
// Only the CLI uses these, outside any simulation's logic: they write and
// read files.
#pragma once

#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>

#include "sim/result.h"
#include "sim/trace.h"

namespace duro::cli {

inline constexpr std::uint64_t kTraceBlockRecords = 4096;
// Lines longer than this are compared by their first kTraceLineBytesMax bytes.
inline constexpr std::size_t kTraceLineBytesMax = 64 * 1024;

// Step 1: a running digest of every record, written after each block and
// once more at the end (by finish()).
class BlockDigestLog final : public sim::TraceLog {
 public:
  explicit BlockDigestLog(std::FILE* file) noexcept : file_(file) {}
  void record(const sim::TraceRecord& record) override;
  void finish();

 private:
  std::FILE* file_;
  sim::TraceHash digest_;
  std::uint64_t records_ = 0;
};

// Step 2: the text of records [first, first + count) (0-based).
class WindowTraceLog final : public sim::TraceLog {
 public:
  WindowTraceLog(std::FILE* file, sim::TimePoint start_time, std::uint64_t first, std::uint64_t count) noexcept
      : text_(file, start_time), first_(first), count_(count) {}
  void record(const sim::TraceRecord& record) override;

 private:
  sim::FileTraceLog text_;
  std::uint64_t first_;
  std::uint64_t count_;
  std::uint64_t records_ = 0;
};

// The first block whose digest differs between two BlockDigestLog files
// (0-based), or nullopt if they are equal. kNotFound if a file cannot be
// opened.
sim::Result<std::optional<std::uint64_t>> first_differing_block(const std::string& first_path,
                                                               const std::string& second_path);

struct TraceDivergence {
  bool differs = false;
  std::uint64_t line = 0;  // 1-based: the first line that differs.
  std::string first;       // That line in each file; "(end of trace)"
  std::string second;      // where one is shorter.
  std::string before;      // The last line both share, for context.
};

// The first differing line of two text traces. kNotFound if a file cannot
// be opened.
sim::Result<TraceDivergence> first_trace_divergence(const std::string& first_path, const std::string& second_path);

}  // namespace duro::cli
