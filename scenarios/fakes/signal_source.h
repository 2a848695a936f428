// SignalSource: the monitoring and inventory feed a control plane reads to
// decide what each cell should look like — its published configuration
// (a generation and a host count), whether it is healthy, whether it has
// been decommissioned — and a feed that goes wrong the way real ones do.
//
// The truth is a timeline per cell the scenario sets up front: generations
// published at set times, unhealthy episodes, a decommission. A reading
// ("read") answers with a datum describing the cell at some instant a
// little in the past (the pipeline's lag, drawn per call), stamped with
// that instant, and the source's current time, both by the source's own
// clock (the nemesis never jumps a fake's clock). A reader judges
// freshness as `as_of - observed_at`, on one clock, so its own clock's
// jumps cannot fool it.
//
// Degradations (set by the scenario, drawn from the seed) are windows in
// which the feed, for one cell or for all, answers:
//   empty:  no datum at all ("no metrics") — found = false. Reading that as
//           "no hosts" or "the cell is gone" is the classic fail-open bug.
//   stale:  an old datum, stamped with the instant it describes: as of
//           the window's start, again and again (a stuck pipeline), or as
//           of a fixed time ago (a replica hours behind), which moves on
//           and can show an episode long over as if it were now.
// Outages from the fault plan fail the call instead (503).
//
// Ground truth for checkers: truth_at(), unhealthy_between(),
// decommissioned_at(), the generations published.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "scenarios/fakes/fake_service.h"

namespace duro::scenarios {

struct SignalQuery {
  std::string cell;
};
DURO_CODEC_FIELDS(SignalQuery, cell);

// What the source knows of one cell at one instant.
struct CellDatum {
  std::int64_t generation = 0;  // 0: nothing published yet.
  std::int64_t hosts = 0;
  bool healthy = true;
  bool decommissioned = false;
  sim::TimePoint observed_at{};  // The instant it describes (source clock).
};
DURO_CODEC_FIELDS(CellDatum, generation, hosts, healthy, decommissioned, observed_at);

struct SignalReading {
  bool found = false;     // False: the feed has nothing for the cell (empty).
  CellDatum datum;        // Meaningful only when found.
  sim::TimePoint as_of{}; // The source's time when it answered.
};
DURO_CODEC_FIELDS(SignalReading, found, datum, as_of);

enum class Degradation : std::uint8_t { kEmpty, kStale };
const char* degradation_name(Degradation kind) noexcept;

struct DegradedWindow {
  std::string cell;  // Empty: every cell.
  Degradation kind = Degradation::kEmpty;
  sim::TimePoint from{};
  sim::TimePoint until{};
  // Stale: how far behind the datum is; 0: stuck at the window's start.
  sim::Duration behind{0};
};

struct SignalSourceOptions {
  // A reading describes the cell as of a lag in [0, lag_max] ago.
  sim::Duration lag_max = std::chrono::minutes{2};
};

class SignalSource final : public FakeService {
 public:
  // Limits on the truth a scenario may set up (each a vector scanned per
  // reading).
  static constexpr std::size_t kGenerationsPerCellMax = 64;
  static constexpr std::size_t kEpisodesPerCellMax = 16;
  static constexpr std::size_t kWindowsMax = 64;

  SignalSource(std::string name, FailureModel failure, SignalSourceOptions options = {});

  // --- The truth (set before the run) ----------------------------------
  // `cell` has generation `generation` with `hosts` hosts from `at` on;
  // generations are published in order, at increasing times.
  void publish(const std::string& cell, sim::TimePoint at, std::int64_t generation, std::int64_t hosts);
  // `cell` is unhealthy during [from, until).
  void unhealthy(const std::string& cell, sim::TimePoint from, sim::TimePoint until);
  // `cell` is decommissioned from `at` on, for good.
  void decommission(const std::string& cell, sim::TimePoint at);
  void degrade(DegradedWindow window);

  // --- Ground truth for checkers ---------------------------------------
  // The cell as it really was at `at` (observed_at = at).
  CellDatum truth_at(const std::string& cell, sim::TimePoint at) const;
  // True if the cell was unhealthy at some instant of [from, to].
  bool unhealthy_between(const std::string& cell, sim::TimePoint from, sim::TimePoint to) const;
  std::optional<sim::TimePoint> decommissioned_at(const std::string& cell) const;
  // The hosts of `generation`, or nullopt if it was never published.
  std::optional<std::int64_t> hosts_of(const std::string& cell, std::int64_t generation) const;
  std::int64_t last_generation(const std::string& cell) const;
  const std::vector<DegradedWindow>& windows() const noexcept { return windows_; }

  // What a reading at `now` returns, lag drawn (for the handler and tests).
  SignalReading read(const std::string& cell, sim::TimePoint now, sim::Duration lag) const;

 private:
  struct Published {
    sim::TimePoint at{};
    std::int64_t generation = 0;
    std::int64_t hosts = 0;
  };
  struct Episode {
    sim::TimePoint from{};
    sim::TimePoint until{};
  };
  struct Cell {
    std::vector<Published> published;
    std::vector<Episode> unhealthy;
    std::optional<sim::TimePoint> decommissioned;
  };

  void register_methods(sim::RpcServer& server, sim::Env& env) override;
  // The degradation in force for `cell` at `now`, if any (the first set).
  const DegradedWindow* degraded(const std::string& cell, sim::TimePoint now) const;

  SignalSourceOptions options_;
  std::map<std::string, Cell, std::less<>> cells_;
  std::vector<DegradedWindow> windows_;
};

}  // namespace duro::scenarios
