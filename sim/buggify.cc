#include "sim/buggify.h"

#include <fmt/format.h>

#include "sim/assert.h"

namespace duro::sim {

namespace {

bool is_probability(double p) noexcept { return p >= 0.0 && p <= 1.0; }  // False for NaN.

std::uint64_t mix(std::uint64_t value) noexcept {
  std::uint64_t state = value;
  return splitmix64(state);
}

}  // namespace

Buggify::Buggify(std::uint64_t seed, BuggifyOptions options)
    : seed_(seed),
      options_(options),
      enabled_(Random(seed).fork("buggify/enabled").bernoulli(options.enabled_probability)),
      fire_random_(Random(seed).fork("buggify/fires")) {
  DURO_ASSERT(is_probability(options.enabled_probability));
  DURO_ASSERT(is_probability(options.site_active_probability));
  DURO_ASSERT(is_probability(options.fire_probability));
}

std::string_view Buggify::site_file(std::string_view path) noexcept {
  const std::size_t last = path.rfind('/');
  if (last == std::string_view::npos || last == 0) return path;
  const std::size_t before = path.rfind('/', last - 1);
  return before == std::string_view::npos ? path : path.substr(before + 1);
}

bool Buggify::site_active(std::string_view file, std::uint32_t line) const noexcept {
  if (!enabled_) return false;
  // A hash of (seed, site), not a draw: the answer for a site cannot depend
  // on which sites were asked about before it.
  const std::uint64_t site = mix(hash_label(site_file(file)) ^ mix(line));
  const std::uint64_t bits = mix(mix(seed_ ^ 0xB0661F1EDB0661F1ULL) ^ site);
  return static_cast<double>(bits >> 11) * 0x1.0p-53 < options_.site_active_probability;
}

Buggify::SiteStats* Buggify::find_or_add(std::string_view file, std::uint32_t line) {
  SiteKey key{std::string(site_file(file)), line};
  if (const auto it = sites_.find(key); it != sites_.end()) return &it->second;
  if (sites_.size() >= options_.sites_max) return nullptr;
  const bool active = site_active(file, line);
  return &sites_.emplace(std::move(key), SiteStats{.active = active}).first->second;
}

bool Buggify::evaluate(std::string_view file, std::uint32_t line, double fire_probability) noexcept {
  DURO_ASSERT(is_probability(fire_probability));
  if (!enabled_) return false;
  SiteStats* stats = find_or_add(file, line);
  return decide(stats, file, line, fire_probability);
}

bool Buggify::decide(SiteStats* stats, std::string_view file, std::uint32_t line, double fire_probability) noexcept {
  bool active = false;
  if (stats != nullptr) {
    stats->evaluations++;
    active = stats->active;
  } else {
    untracked_evaluations_++;
    active = site_active(file, line);
  }
  if (!active) return false;
  const bool fire = fire_random_.bernoulli(fire_probability);
  if (fire && stats != nullptr) stats->fires++;
  return fire;
}

bool Buggify::evaluate_at(const char* file, std::uint32_t line, double fire_probability) noexcept {
  DURO_ASSERT(is_probability(fire_probability));
  if (!enabled_) return false;
  const PointerKey pointer{file, line};
  SiteStats* stats = nullptr;
  if (const auto it = by_pointer_.find(pointer); it != by_pointer_.end()) {
    stats = it->second;
  } else {
    stats = find_or_add(file, line);
    if (stats != nullptr && by_pointer_.size() < 4 * options_.sites_max) by_pointer_.emplace(pointer, stats);
  }
  return decide(stats, file, line, fire_probability);
}

std::vector<BuggifySiteReport> Buggify::report() const {
  std::vector<BuggifySiteReport> out;
  out.reserve(sites_.size());
  for (const auto& [key, stats] : sites_) {
    out.push_back(BuggifySiteReport{.site = fmt::format("{}:{}", key.file, key.line),
                                    .active = stats.active,
                                    .evaluations = stats.evaluations,
                                    .fires = stats.fires});
  }
  return out;
}

namespace detail {

bool buggify_slow(const std::source_location& location, double fire_probability) noexcept {
  Buggify* buggify = current_buggify;
  DURO_ASSERT(buggify != nullptr);
  return buggify->evaluate_at(location.file_name(), location.line(), fire_probability);
}

bool buggify_slow(const std::source_location& location) noexcept {
  Buggify* buggify = current_buggify;
  DURO_ASSERT(buggify != nullptr);
  return buggify->evaluate_at(location.file_name(), location.line(), buggify->options().fire_probability);
}

}  // namespace detail

}  // namespace duro::sim
