// Buggify: rare paths, taken on purpose, in simulation only.
//
// Code marks a path that real life takes rarely (a retryable error, a
// timeout far shorter than usual, a cache eviction) so the simulation takes
// it often enough to test it:
//
//   if (DURO_BUGGIFY) return Error{ErrorCode::kUnavailable, "buggified"};
//   Duration timeout = DURO_BUGGIFY_WITH_PROB(0.1) ? 1ms : 30s;
//
// The idea is FoundationDB's. Outside a simulation both macros are false
// and cost one thread-local load. Inside one, with a Buggify installed on
// the thread by a Buggify::Scope:
//   - buggify is on for a fraction of seeds (enabled_probability), so other
//     seeds keep testing the common paths undisturbed;
//   - each site (a file and line) is active for a run with probability
//     site_active_probability, decided by hashing the seed with the site, so
//     it does not matter which site the run reaches first;
//   - an active site fires with probability fire_probability (or the one
//     given to DURO_BUGGIFY_WITH_PROB) each time it is evaluated, drawn from
//     the Buggify's own random stream, so buggify draws do not move any
//     other stream.
// All of it is a function of the seed: a run reproduces its buggified paths.
//
// A site is named by the last two parts of its path ("engine/store.cc:42"),
// not the whole path, so a seed activates the same sites in every checkout.
// Two evaluations on one line are one site.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <source_location>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "sim/random.h"

namespace duro::sim {

struct BuggifyOptions {
  double enabled_probability = 0.25;     // Of seeds.
  double site_active_probability = 0.25;  // Of sites, per run.
  double fire_probability = 0.25;        // Per evaluation of an active site.
  std::size_t sites_max = 4096;          // Sites counted; more are still decided.
};

// One site's story in a run, for reports.
struct BuggifySiteReport {
  std::string site;  // "engine/store.cc:42"
  bool active = false;
  std::uint64_t evaluations = 0;
  std::uint64_t fires = 0;

  bool operator==(const BuggifySiteReport&) const = default;
};

class Buggify;

namespace detail {
// The Buggify installed on this thread (see Buggify::Scope), or nullptr.
inline thread_local Buggify* current_buggify = nullptr;
bool buggify_slow(const std::source_location& location, double fire_probability) noexcept;
bool buggify_slow(const std::source_location& location) noexcept;
}  // namespace detail

class Buggify {
 public:
  explicit Buggify(std::uint64_t seed, BuggifyOptions options = {});
  Buggify(const Buggify&) = delete;
  Buggify& operator=(const Buggify&) = delete;

  // Installs a Buggify on this thread for the scope's life. Scopes nest;
  // the innermost wins. The World installs one per run, next to its
  // Simulator::Scope.
  class Scope {
   public:
    explicit Scope(Buggify& buggify) noexcept : previous_(detail::current_buggify) {
      detail::current_buggify = &buggify;
    }
    ~Scope() { detail::current_buggify = previous_; }
    Scope(const Scope&) = delete;
    Scope& operator=(const Scope&) = delete;

   private:
    Buggify* previous_;
  };

  static Buggify* current_or_null() noexcept { return detail::current_buggify; }

  std::uint64_t seed() const noexcept { return seed_; }
  const BuggifyOptions& options() const noexcept { return options_; }
  // Whether this seed buggifies at all.
  bool enabled() const noexcept { return enabled_; }

  // Whether the site at `file`:`line` is active this run: a pure function
  // of the seed, the site and site_active_probability (and false when not
  // enabled). Does not count as an evaluation.
  bool site_active(std::string_view file, std::uint32_t line) const noexcept;

  // One evaluation of a site: true if it fires. Counted for report().
  bool evaluate(std::string_view file, std::uint32_t line) noexcept {
    return evaluate(file, line, options_.fire_probability);
  }
  bool evaluate(std::string_view file, std::uint32_t line, double fire_probability) noexcept;

  // Every site evaluated while enabled, sorted by file, then line (at
  // most sites_max of them; untracked_evaluations() counts the others'
  // evaluations).
  std::vector<BuggifySiteReport> report() const;
  std::uint64_t untracked_evaluations() const noexcept { return untracked_evaluations_; }

  // "engine/store.cc": the last two parts of a path, the site's name.
  static std::string_view site_file(std::string_view path) noexcept;

 private:
  struct SiteKey {
    std::string file;  // site_file() of the path.
    std::uint32_t line;
    auto operator<=>(const SiteKey&) const = default;
  };
  struct SiteStats {
    bool active = false;
    std::uint64_t evaluations = 0;
    std::uint64_t fires = 0;
  };

  SiteStats* find_or_add(std::string_view file, std::uint32_t line);
  bool decide(SiteStats* stats, std::string_view file, std::uint32_t line, double fire_probability) noexcept;
  // The macros' path: `file` is a __FILE__-like string that lives forever.
  bool evaluate_at(const char* file, std::uint32_t line, double fire_probability) noexcept;

  std::uint64_t seed_;
  BuggifyOptions options_;
  bool enabled_;
  Random fire_random_;
  // Ordered by site name: report() iterates it.
  std::map<SiteKey, SiteStats> sites_;
  // A cache from (the address of a __FILE__ string, line) to the site, so
  // a hot site skips building its name. Only looked up, never iterated:
  // addresses do not leak into any output (DESIGN.md §2.4). Bounded at
  // four entries per site (one file may have several addresses, one per
  // translation unit that inlines it).
  struct PointerKey {
    const char* file;
    std::uint32_t line;
    bool operator==(const PointerKey&) const = default;
  };
  struct PointerKeyHash {
    std::size_t operator()(const PointerKey& key) const noexcept {
      return std::hash<const void*>()(key.file) ^ (static_cast<std::size_t>(key.line) * 0x9E3779B97F4A7C15ULL);
    }
  };
  std::unordered_map<PointerKey, SiteStats*, PointerKeyHash> by_pointer_;
  std::uint64_t untracked_evaluations_ = 0;

  friend bool detail::buggify_slow(const std::source_location& location, double fire_probability) noexcept;
  friend bool detail::buggify_slow(const std::source_location& location) noexcept;
};

}  // namespace duro::sim

// True, rarely, in simulation; always false outside it.
#define DURO_BUGGIFY                                 \
  (::duro::sim::detail::current_buggify != nullptr && \
   ::duro::sim::detail::buggify_slow(::std::source_location::current()))

// As DURO_BUGGIFY, but an active site fires with probability `p`.
#define DURO_BUGGIFY_WITH_PROB(p)                    \
  (::duro::sim::detail::current_buggify != nullptr && \
   ::duro::sim::detail::buggify_slow(::std::source_location::current(), (p)))
