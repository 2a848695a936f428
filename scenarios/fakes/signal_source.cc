#include "scenarios/fakes/signal_source.h"

#include <utility>

#include "sim/assert.h"
#include "sim/simulator.h"

namespace duro::scenarios {

const char* degradation_name(Degradation kind) noexcept {
  switch (kind) {
    case Degradation::kEmpty: return "empty";
    case Degradation::kStale: return "stale";
  }
  return "?";
}

SignalSource::SignalSource(std::string name, FailureModel failure, SignalSourceOptions options)
    : FakeService(std::move(name), failure), options_(options) {
  DURO_ASSERT(options_.lag_max >= sim::Duration{0});
}

void SignalSource::publish(const std::string& cell, sim::TimePoint at, std::int64_t generation, std::int64_t hosts) {
  DURO_ASSERT(!cell.empty());
  DURO_ASSERT(generation > 0 && hosts > 0);
  std::vector<Published>& published = cells_[cell].published;
  DURO_ASSERT(published.size() < kGenerationsPerCellMax);
  // In order: each generation one more than the last, each later.
  DURO_ASSERT(published.empty() ? generation == 1
                                : generation == published.back().generation + 1 && at > published.back().at);
  published.push_back(Published{at, generation, hosts});
}

void SignalSource::unhealthy(const std::string& cell, sim::TimePoint from, sim::TimePoint until) {
  DURO_ASSERT(!cell.empty() && from < until);
  std::vector<Episode>& episodes = cells_[cell].unhealthy;
  DURO_ASSERT(episodes.size() < kEpisodesPerCellMax);
  episodes.push_back(Episode{from, until});
}

void SignalSource::decommission(const std::string& cell, sim::TimePoint at) {
  DURO_ASSERT(!cell.empty());
  Cell& state = cells_[cell];
  DURO_ASSERT_MSG(!state.decommissioned, "a cell is decommissioned once");
  state.decommissioned = at;
}

void SignalSource::degrade(DegradedWindow window) {
  DURO_ASSERT(window.from < window.until);
  DURO_ASSERT(window.behind >= sim::Duration{0});
  DURO_ASSERT(window.kind == Degradation::kStale || window.behind == sim::Duration{0});
  DURO_ASSERT(windows_.size() < kWindowsMax);
  windows_.push_back(std::move(window));
}

CellDatum SignalSource::truth_at(const std::string& cell, sim::TimePoint at) const {
  CellDatum datum;
  datum.observed_at = at;
  auto it = cells_.find(cell);
  if (it == cells_.end()) return datum;
  for (const Published& published : it->second.published) {
    if (published.at > at) break;
    datum.generation = published.generation;
    datum.hosts = published.hosts;
  }
  for (const Episode& episode : it->second.unhealthy) {
    if (episode.from <= at && at < episode.until) datum.healthy = false;
  }
  datum.decommissioned = it->second.decommissioned && *it->second.decommissioned <= at;
  return datum;
}

bool SignalSource::unhealthy_between(const std::string& cell, sim::TimePoint from, sim::TimePoint to) const {
  DURO_ASSERT(from <= to);
  auto it = cells_.find(cell);
  if (it == cells_.end()) return false;
  for (const Episode& episode : it->second.unhealthy) {
    if (episode.from <= to && episode.until > from) return true;
  }
  return false;
}

std::optional<sim::TimePoint> SignalSource::decommissioned_at(const std::string& cell) const {
  auto it = cells_.find(cell);
  return it == cells_.end() ? std::nullopt : it->second.decommissioned;
}

std::optional<std::int64_t> SignalSource::hosts_of(const std::string& cell, std::int64_t generation) const {
  auto it = cells_.find(cell);
  if (it == cells_.end()) return std::nullopt;
  for (const Published& published : it->second.published) {
    if (published.generation == generation) return published.hosts;
  }
  return std::nullopt;
}

std::int64_t SignalSource::last_generation(const std::string& cell) const {
  auto it = cells_.find(cell);
  return it == cells_.end() || it->second.published.empty() ? 0 : it->second.published.back().generation;
}

const DegradedWindow* SignalSource::degraded(const std::string& cell, sim::TimePoint now) const {
  for (const DegradedWindow& window : windows_) {
    if ((window.cell.empty() || window.cell == cell) && window.from <= now && now < window.until) return &window;
  }
  return nullptr;
}

SignalReading SignalSource::read(const std::string& cell, sim::TimePoint now, sim::Duration lag) const {
  DURO_ASSERT(lag >= sim::Duration{0});
  SignalReading reading;
  reading.as_of = now;
  if (!cells_.contains(cell)) return reading;  // A cell it never heard of: nothing.
  const DegradedWindow* window = degraded(cell, now);
  if (window != nullptr && window->kind == Degradation::kEmpty) return reading;
  // Stale: stuck at the window's start, or a fixed time behind.
  sim::TimePoint observed = now - lag;
  if (window != nullptr) observed = window->behind == sim::Duration{0} ? window->from - lag : now - window->behind - lag;
  reading.found = true;
  reading.datum = truth_at(cell, observed);
  DURO_ASSERT(reading.datum.observed_at <= reading.as_of);
  return reading;
}

void SignalSource::register_methods(sim::RpcServer& server, sim::Env& env) {
  serve<SignalQuery, SignalReading>(
      server, env, "read", /*mutating=*/false, [this, &env](const SignalQuery& query) -> sim::Result<SignalReading> {
        const auto lag_ns = env.random().uniform_range(0, std::chrono::nanoseconds(options_.lag_max).count());
        return read(query.cell, env.sim().now(), sim::Duration{lag_ns});
      });
}

}  // namespace duro::scenarios
