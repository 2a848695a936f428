#include "sim/random.h"

#include <cmath>

namespace duro::sim {

namespace {
// __extension__: GCC and Clang have 128-bit integers; -Wpedantic wants it said.
__extension__ typedef unsigned __int128 Uint128;
}  // namespace

std::uint64_t splitmix64(std::uint64_t& state) noexcept {
  state += 0x9E3779B97F4A7C15ULL;
  std::uint64_t z = state;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

std::uint64_t hash_label(std::string_view text) noexcept {
  std::uint64_t h = 0xCBF29CE484222325ULL;
  for (const char c : text) {
    h ^= static_cast<unsigned char>(c);
    h *= 0x100000001B3ULL;
  }
  return h;
}

Random::Random(std::uint64_t seed) noexcept : seed_(seed) {
  std::uint64_t s = seed;
  for (std::uint64_t& word : state_) word = splitmix64(s);
  // splitmix64 is a bijection over a counter, so four consecutive outputs
  // are never all zero: xoshiro's one forbidden state cannot occur.
  DURO_ASSERT((state_[0] | state_[1] | state_[2] | state_[3]) != 0);
}

Random Random::fork(std::uint64_t label) const noexcept {
  // Mix identity and label through splitmix64 so that nearby labels (node 1,
  // node 2) give unrelated streams.
  std::uint64_t s = seed_ ^ 0x6A09E667F3BCC909ULL;
  const std::uint64_t a = splitmix64(s);
  s = a ^ label;
  return Random(splitmix64(s));
}

Random Random::fork(std::string_view label) const noexcept { return fork(hash_label(label)); }

std::uint64_t Random::uniform(std::uint64_t bound) noexcept {
  DURO_ASSERT(bound > 0);
  // Multiply-shift with rejection (Lemire): the 128-bit product's high word
  // is the result; its low word tells whether this draw falls in the short
  // final interval that would bias small results, and we redraw if so.
  Uint128 product = static_cast<Uint128>(next()) * bound;
  auto low = static_cast<std::uint64_t>(product);
  if (low < bound) {
    const std::uint64_t threshold = (0 - bound) % bound;
    // Each redraw is rejected with probability < bound / 2^64 <= 1/2;
    // 128 rejections in a row would be a broken generator.
    for (int attempt = 0; low < threshold; attempt++) {
      DURO_ASSERT(attempt < 128);
      product = static_cast<Uint128>(next()) * bound;
      low = static_cast<std::uint64_t>(product);
    }
  }
  return static_cast<std::uint64_t>(product >> 64);
}

std::int64_t Random::uniform_range(std::int64_t low, std::int64_t high) noexcept {
  DURO_ASSERT(low <= high);
  const std::uint64_t span = static_cast<std::uint64_t>(high) - static_cast<std::uint64_t>(low);
  const std::uint64_t offset = span == UINT64_MAX ? next() : uniform(span + 1);
  return static_cast<std::int64_t>(static_cast<std::uint64_t>(low) + offset);
}

bool Random::bernoulli(double p) noexcept {
  if (!(p > 0.0)) return false;  // Also catches NaN.
  if (p >= 1.0) return true;
  return uniform_double() < p;
}

double Random::exponential(double mean) noexcept {
  DURO_ASSERT(mean > 0.0);
  // Inverse transform on (0, 1]: 1 - u is never 0, so the log is finite.
  return -mean * deterministic_log(1.0 - uniform_double());
}

double deterministic_log(double x) noexcept {
  DURO_ASSERT(x > 0.0 && std::isfinite(x));
  // x = m * 2^e with m in [0.5, 1) (frexp is exact); move m into
  // [sqrt(1/2), sqrt(2)) so |s| below is at most 0.1716.
  int exponent = 0;
  double m = std::frexp(x, &exponent);
  if (m < 0.70710678118654752440) {
    m *= 2.0;
    exponent -= 1;
  }
  // ln(m) = 2 atanh(s), s = (m - 1) / (m + 1): an odd series in s whose
  // terms fall by s^2 <= 0.0295 each; 12 terms reach double precision.
  const double s = (m - 1.0) / (m + 1.0);
  const double s2 = s * s;
  double term = s;
  double sum = 0.0;
  for (int k = 0; k < 12; k++) {
    sum += term / static_cast<double>(2 * k + 1);
    term *= s2;
  }
  constexpr double kLn2 = 0.693147180559945309417232121458;
  return 2.0 * sum + static_cast<double>(exponent) * kLn2;
}

}  // namespace duro::sim
