// Fault plans: what goes wrong in a run, and when.
//
// A FaultPlan is a list of timed actions (crash this node at 12.5 s,
// partition these nodes from those at 40 s, heal at 60 s, ...) that the
// world applies during a run's chaos phase. The nemesis (sim/nemesis.h)
// draws one from a seed; a person may also write or edit one. Its text form
// is the unit of shrinking: a failing run prints its plan, someone deletes
// lines and changes times until the failure needs only a few faults, and
// the edited file replays exactly, because the text round-trips to the
// nanosecond and to the last bit of every probability.
//
//   # duro fault plan v1
//   seed 42
//   profile chaos
//   chaos 10m
//   at 12.5s crash store-0
//   at 30s restart store-0
//   at 40s partition server-0,server-1 | server-2
//   at 41s partition worker-1 -> store-0
//   at 60s heal
//   at 70s clog worker-1 for 5s
//   at 80s clock-jump worker-2 -30s
//   at 90s disk-errors store-0 for 10s p=0.05
//   at 100s disk-corruption store-0 for 10s p=0.01
//   at 110s outage cloud-api for 30s
//
// The grammar is in docs/faults.md. parse() never crashes on bad input: it
// returns Error{kInvalidArgument, "line N: <reason>"} for the first problem.
//
// Files are read and written only by the CLI, outside any simulation; the
// simulation itself never touches files (DESIGN.md §1).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sim/clock.h"
#include "sim/result.h"

namespace duro::sim {

enum class FaultKind : std::uint8_t {
  kCrash,           // Destroy a node's process; its unsynced writes may be lost.
  kRestart,         // Boot a crashed node again from its disk.
  kPartition,       // Cut traffic between two sets of nodes.
  kHeal,            // Heal every partition.
  kClog,            // Hold a node's traffic (both ways) for a while.
  kClockJump,       // Step a node's local clock forward or back.
  kDiskErrors,      // A node's disk fails operations with some probability.
  kDiskCorruption,  // A node's disk corrupts data with some probability.
  kOutage,          // An external service fails every call for a while.
};
inline constexpr std::size_t kFaultKindCount = 9;

// "crash", "restart", "partition", "heal", "clog", "clock-jump",
// "disk-errors", "disk-corruption", "outage": the verbs of the text form.
const char* fault_kind_name(FaultKind kind) noexcept;
std::optional<FaultKind> fault_kind_from_name(std::string_view name) noexcept;

// Limits on what a plan may hold. A plan is input a person edits, so each
// is checked on parse and reported, never trusted.
inline constexpr std::size_t kFaultPlanActionsMax = 10'000;
inline constexpr std::size_t kFaultPlanLineBytesMax = 1024;
inline constexpr std::size_t kFaultPlanLinesMax = 100'000;
inline constexpr std::size_t kFaultPlanTextBytesMax = 16 << 20;  // For files.
inline constexpr std::size_t kFaultPlanSideNodesMax = 256;       // Per partition side.
inline constexpr std::size_t kFaultPlanNameBytesMax = 64;        // Node, service, profile.
// 10,000 days: far past any run, and small enough that a time plus a
// duration can never overflow an int64 count of nanoseconds.
inline constexpr Duration kFaultPlanDurationMax = std::chrono::hours{24 * 10'000};

struct FaultAction {
  Duration at{};                      // since the start of the run
  FaultKind kind{};
  std::vector<std::string> nodes{};   // crash/restart/clog/clock-jump/disk-*: exactly one node; partition: side A
  std::vector<std::string> others{};  // partition: side B; empty means "every node not in side A"
  bool one_way = false;               // partition: only traffic from A to B is cut
  Duration duration{};                // clog, disk-errors, disk-corruption, outage: how long it lasts (> 0)
  Duration clock_delta{};             // clock-jump: forward or back (non-zero)
  double probability = 0;             // disk-errors, disk-corruption: per operation, in (0, 1]
  std::string service{};              // outage: the external service's name

  // Empty if this action is well formed for its kind; otherwise why not
  // ("clog needs a duration > 0"). Fields a kind does not use must hold
  // their defaults, so that the text form, which omits them, round-trips.
  std::string invalid_reason() const;

  bool operator==(const FaultAction&) const = default;
};

struct FaultPlan {
  std::uint64_t seed = 0;
  std::string profile{};              // the profile it was drawn from, or "manual"
  Duration chaos{};                   // chaos phase length; the quiet phase follows
  std::vector<FaultAction> actions{}; // sorted by `at` (stable)

  // The text form; asserts validate().ok(), so whatever it prints parses.
  std::string to_text() const;
  static Result<FaultPlan> parse(std::string_view text);  // Error{kInvalidArgument, "line N: reason"}

  // Everything parse() checks, for plans built in code: a valid profile
  // name, chaos and every time in range, actions sorted, each inside the
  // chaos phase [0, chaos) and well formed. Error{kInvalidArgument,
  // "action N: reason"} (N counts from 1) or "profile: ..." / "chaos: ...".
  Result<void> validate() const;

  bool operator==(const FaultPlan&) const = default;
};

// Durations as the text form writes them: "0s", "250ms", "1.5us", "12.5s",
// "1m30s", "1h", "2d3h0.5s": days, hours and minutes as whole components,
// then seconds with a decimal fraction (or, under a second, the largest of
// ms, us, ns that is at least one), exact to the nanosecond. Negative
// durations get a leading '-'.
std::string format_plan_duration(Duration duration);
// Reads "<number><unit>" components in strictly descending units (d, h, m,
// s, ms, us, ns); only the last may have a decimal fraction, which must come
// to a whole number of nanoseconds ("1.5h" is fine, "0.1ns" is not). A
// leading '+' or '-' is accepted only when `signed_ok`. The result is at
// most kFaultPlanDurationMax in magnitude. The error message is the reason
// alone, without a line number.
Result<Duration> parse_plan_duration(std::string_view text, bool signed_ok = false);

// Node, service and profile names: 1 to kFaultPlanNameBytesMax bytes of
// [A-Za-z0-9._-], starting with a letter or digit. Empty if `name` is one;
// otherwise why not.
std::string invalid_name_reason(std::string_view name);

// For the CLI. Errors: kNotFound (cannot open), kInvalidArgument
// ("<path>: line N: reason", or too large), kIoError (write failed).
Result<FaultPlan> read_fault_plan_file(const std::string& path);
Result<void> write_fault_plan_file(const std::string& path, const FaultPlan& plan);

}  // namespace duro::sim
