// Deterministic randomness.
//
// Every random choice in a simulation comes from a Random: xoshiro256**
// seeded through splitmix64, with distributions written here rather than
// taken from <random>, whose distributions differ between standard library
// implementations. The same seed gives the same stream on every platform and
// compiler (the arithmetic is integer, or IEEE double with only correctly
// rounded operations; the build disables FMA contraction).
//
// Streams fork: `fork(label)` derives an independent stream from this
// stream's identity and the label, without drawing from it. Each node and
// subsystem forks its own stream from the root, so adding a draw in one
// place does not reshuffle every other (DESIGN.md §2.3). Forking the same
// label twice from the same stream gives the same stream, by design: label
// forks with what makes them unique (node name, incarnation).
#pragma once

#include <cstdint>
#include <span>
#include <string_view>
#include <utility>

#include "sim/assert.h"

namespace duro::sim {

// One step of splitmix64: advances `state` and returns the next output.
std::uint64_t splitmix64(std::uint64_t& state) noexcept;

// FNV-1a over the bytes of `text`: a stable 64-bit digest of a label.
std::uint64_t hash_label(std::string_view text) noexcept;

class Random {
 public:
  explicit Random(std::uint64_t seed) noexcept;

  // A stream starting from an explicit xoshiro256** state (not all zero):
  // for known-answer tests against the reference generator.
  static Random from_state(std::uint64_t s0, std::uint64_t s1, std::uint64_t s2, std::uint64_t s3) noexcept {
    DURO_ASSERT((s0 | s1 | s2 | s3) != 0);
    Random random(0);
    random.state_[0] = s0;
    random.state_[1] = s1;
    random.state_[2] = s2;
    random.state_[3] = s3;
    return random;
  }

  // The seed this stream was built from (its identity for fork()).
  std::uint64_t seed() const noexcept { return seed_; }

  // An independent stream named by `label`; does not advance this stream.
  Random fork(std::string_view label) const noexcept;
  Random fork(std::uint64_t label) const noexcept;

  // 64 uniformly random bits.
  std::uint64_t next() noexcept {
    const std::uint64_t result = rotl(state_[1] * 5, 7) * 9;
    const std::uint64_t t = state_[1] << 17;
    state_[2] ^= state_[0];
    state_[3] ^= state_[1];
    state_[1] ^= state_[2];
    state_[0] ^= state_[3];
    state_[2] ^= t;
    state_[3] = rotl(state_[3], 45);
    return result;
  }

  // Uniform in [0, bound), without modulo bias. bound > 0.
  std::uint64_t uniform(std::uint64_t bound) noexcept;

  // Uniform in [low, high], both inclusive. low <= high.
  std::int64_t uniform_range(std::int64_t low, std::int64_t high) noexcept;

  // Uniform in [0, 1), with 53 random bits.
  double uniform_double() noexcept {
    return static_cast<double>(next() >> 11) * 0x1.0p-53;
  }

  // True with probability p (p outside [0, 1] is clamped).
  bool bernoulli(double p) noexcept;

  // True with probability numerator / denominator, in exact integer math.
  bool chance(std::uint64_t numerator, std::uint64_t denominator) noexcept {
    DURO_ASSERT(denominator > 0);
    return uniform(denominator) < numerator;
  }

  // Exponentially distributed with the given mean (> 0).
  double exponential(double mean) noexcept;

  // A uniformly chosen element. The span must not be empty.
  template <typename T>
  T& pick(std::span<T> items) noexcept {
    DURO_ASSERT(!items.empty());
    return items[uniform(items.size())];
  }

  // Uniform permutation (Fisher-Yates).
  template <typename T>
  void shuffle(std::span<T> items) noexcept {
    for (std::size_t i = items.size(); i > 1; i--) {
      const std::size_t j = uniform(i);
      using std::swap;
      swap(items[i - 1], items[j]);
    }
  }

 private:
  static constexpr std::uint64_t rotl(std::uint64_t x, int k) noexcept {
    return (x << k) | (x >> (64 - k));
  }

  std::uint64_t seed_;
  std::uint64_t state_[4];
};

// Natural logarithm of x > 0 computed with IEEE add, multiply and divide
// only, so it is bit-identical everywhere (std::log is not guaranteed to be).
double deterministic_log(double x) noexcept;

}  // namespace duro::sim
