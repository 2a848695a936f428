// What a run did, in two forms.
//
// TraceHash: a running 64-bit digest of every event scheduled and executed
// (time, kind, node, payload digest). Always on and a few multiplies per
// event; two runs with equal hashes scheduled and ran the same events at the
// same times in the same order. `duro repro` prints it, and the determinism
// checks compare it across runs and processes (DESIGN.md §2.6).
//
// TraceLog: a structured log of (time, node, fiber, kind, detail) records,
// compiled in but off unless a sink is installed; the simulator builds a
// record's text only when a sink is present.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string_view>

#include "sim/clock.h"

namespace duro::sim {

class TraceHash {
 public:
  std::uint64_t value() const noexcept { return hash_; }

  void mix(std::uint64_t word) noexcept {
    // Multiply-xorshift: every input bit reaches every output bit within a
    // couple of words, and order matters (mix(a), mix(b) != mix(b), mix(a)).
    hash_ = (hash_ ^ word) * 0x9E3779B97F4A7C15ULL;
    hash_ ^= hash_ >> 32;
  }

  // One event: two steps on the running hash instead of four, since this
  // runs twice per event. (kind, node) fold into one word off the chain.
  void mix_event(std::uint64_t time_ns, std::uint64_t kind, std::uint64_t node, std::uint64_t payload) noexcept {
    const std::uint64_t tag = payload ^ ((node << 8 | kind) * 0xC2B2AE3D27D4EB4FULL);
    hash_ = (hash_ ^ time_ns) * 0x9E3779B97F4A7C15ULL;
    hash_ = (hash_ ^ tag) * 0xFF51AFD7ED558CCDULL;
    hash_ ^= hash_ >> 32;
  }

  void mix(std::uint64_t a, std::uint64_t b, std::uint64_t c, std::uint64_t d) noexcept {
    mix(a);
    mix(b);
    mix(c);
    mix(d);
  }

 private:
  std::uint64_t hash_ = 0x243F6A8885A308D3ULL;
};

struct TraceRecord {
  TimePoint time;
  std::string_view node;  // Empty outside any node (the scheduler itself).
  std::uint64_t fiber;    // 0 outside any fiber.
  std::string_view kind;
  std::string_view detail;
};

class TraceLog {
 public:
  virtual ~TraceLog() = default;
  virtual void record(const TraceRecord& record) = 0;
};

// Writes one line per record: "<elapsed> <node> f<fiber> <kind> <detail>".
class FileTraceLog final : public TraceLog {
 public:
  FileTraceLog(std::FILE* file, TimePoint start_time) noexcept : file_(file), start_time_(start_time) {}
  void record(const TraceRecord& record) override;

 private:
  std::FILE* file_;
  TimePoint start_time_;
};

}  // namespace duro::sim
