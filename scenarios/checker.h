// Checker: where a scenario's invariants report what they found.
//
// Checkers hold the ground truth outside the system under test (the fakes'
// state, what clients were told) and compare. A violation is recorded with
// the simulated time it was seen and the invariant it breaks; the run goes
// on (later violations are often the clue to the first), and the seed fails.
//
//   checker.check(records.size() <= 1, "one-record-per-namespace",
//                 "namespace {} has records in cells {}", name, cells);
#pragma once

#include <fmt/format.h>

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "sim/clock.h"
#include "sim/codec.h"
#include "sim/simulator.h"

namespace duro::scenarios {

struct Violation {
  sim::TimePoint at{};
  std::string invariant;  // A short name, as the scenario lists it.
  std::string message;

  bool operator==(const Violation&) const = default;
};
DURO_CODEC_FIELDS(Violation, at, invariant, message);

class Checker {
 public:
  // Keeps the first kKeptMax violations in full; counts the rest.
  static constexpr std::size_t kKeptMax = 32;

  // `sim` gives the time of each violation (nullptr: none, for tests).
  explicit Checker(const sim::Simulator* sim) noexcept : sim_(sim) {}

  template <typename... Args>
  bool check(bool holds, std::string_view invariant, fmt::format_string<Args...> format, Args&&... args) {
    checks_++;
    if (holds) return true;
    violate(invariant, fmt::format(format, std::forward<Args>(args)...));
    return false;
  }
  void violate(std::string_view invariant, std::string message);

  bool passed() const noexcept { return violations_total_ == 0; }
  const std::vector<Violation>& violations() const noexcept { return violations_; }
  std::size_t violations_total() const noexcept { return violations_total_; }
  std::size_t checks() const noexcept { return checks_; }

 private:
  const sim::Simulator* sim_;
  std::vector<Violation> violations_;
  std::size_t violations_total_ = 0;
  std::size_t checks_ = 0;
};

}  // namespace duro::scenarios
