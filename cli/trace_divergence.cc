#include "cli/trace_divergence.h"

#include <memory>
#include <vector>

#include "sim/assert.h"
#include "sim/random.h"

namespace duro::cli {
namespace {

// Far beyond any run's records or blocks: bounds the comparison loops.
constexpr std::uint64_t kLinesMax = std::uint64_t{1} << 40;

struct FileCloser {
  void operator()(std::FILE* file) const noexcept { std::fclose(file); }
};
using File = std::unique_ptr<std::FILE, FileCloser>;

// The next line without its newline; false at the end of the file. A line
// beyond `buffer`'s size is cut there (the rest is skipped).
bool next_line(std::FILE* file, std::vector<char>& buffer, std::string& line) {
  line.clear();
  if (std::fgets(buffer.data(), static_cast<int>(buffer.size()), file) == nullptr) return false;
  line.assign(buffer.data());
  if (!line.empty() && line.back() == '\n') {
    line.pop_back();
    return true;
  }
  for (int c = std::fgetc(file); c != EOF && c != '\n'; c = std::fgetc(file)) {
  }
  return true;
}

void write_word(std::FILE* file, std::uint64_t word) {
  unsigned char bytes[8];
  for (int i = 0; i < 8; i++) bytes[i] = static_cast<unsigned char>(word >> (8 * i));
  std::fwrite(bytes, 1, sizeof bytes, file);
}

bool read_word(std::FILE* file, std::uint64_t& word) {
  unsigned char bytes[8];
  if (std::fread(bytes, 1, sizeof bytes, file) != sizeof bytes) return false;
  word = 0;
  for (int i = 0; i < 8; i++) word |= static_cast<std::uint64_t>(bytes[i]) << (8 * i);
  return true;
}

}  // namespace

void BlockDigestLog::record(const sim::TraceRecord& record) {
  digest_.mix(static_cast<std::uint64_t>(record.time.time_since_epoch().count()), sim::hash_label(record.node),
              record.fiber, sim::hash_label(record.kind));
  digest_.mix(sim::hash_label(record.detail));
  records_++;
  if (records_ % kTraceBlockRecords == 0) write_word(file_, digest_.value());
}

void BlockDigestLog::finish() {
  // The tail: a partial block, and the count, so that a run that stopped
  // early differs from one that went on.
  digest_.mix(records_);
  write_word(file_, digest_.value());
}

void WindowTraceLog::record(const sim::TraceRecord& record) {
  if (records_ >= first_ && records_ - first_ < count_) text_.record(record);
  records_++;
}

sim::Result<std::optional<std::uint64_t>> first_differing_block(const std::string& first_path,
                                                               const std::string& second_path) {
  File first(std::fopen(first_path.c_str(), "rb"));
  if (first == nullptr) return sim::Error{sim::ErrorCode::kNotFound, "cannot open " + first_path};
  File second(std::fopen(second_path.c_str(), "rb"));
  if (second == nullptr) return sim::Error{sim::ErrorCode::kNotFound, "cannot open " + second_path};
  for (std::uint64_t block = 0; block < kLinesMax; block++) {
    std::uint64_t a = 0;
    std::uint64_t b = 0;
    const bool has_a = read_word(first.get(), a);
    const bool has_b = read_word(second.get(), b);
    if (!has_a && !has_b) return std::optional<std::uint64_t>{};
    if (has_a != has_b || a != b) return std::optional<std::uint64_t>{block};
  }
  return std::optional<std::uint64_t>{};
}

sim::Result<TraceDivergence> first_trace_divergence(const std::string& first_path, const std::string& second_path) {
  File first(std::fopen(first_path.c_str(), "r"));
  if (first == nullptr) return sim::Error{sim::ErrorCode::kNotFound, "cannot open " + first_path};
  File second(std::fopen(second_path.c_str(), "r"));
  if (second == nullptr) return sim::Error{sim::ErrorCode::kNotFound, "cannot open " + second_path};
  std::vector<char> buffer(kTraceLineBytesMax + 2);
  std::string a;
  std::string b;
  TraceDivergence divergence;
  for (std::uint64_t line = 1; line < kLinesMax; line++) {
    const bool has_a = next_line(first.get(), buffer, a);
    const bool has_b = next_line(second.get(), buffer, b);
    if (!has_a && !has_b) return divergence;
    if (has_a && has_b && a == b) {
      divergence.before = a;
      continue;
    }
    divergence.differs = true;
    divergence.line = line;
    divergence.first = has_a ? a : "(end of trace)";
    divergence.second = has_b ? b : "(end of trace)";
    return divergence;
  }
  return divergence;
}

}  // namespace duro::cli
