#include "sim/nemesis.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <optional>

#include "sim/assert.h"
#include "sim/random.h"

namespace duro::sim {

namespace {

using std::chrono::milliseconds;
using std::chrono::minutes;
using std::chrono::seconds;

// Plans are drawn in whole milliseconds so their text reads "12.345s"
// rather than "12.345678901s"; nothing in a run is finer-grained than that
// on purpose.
constexpr std::int64_t kTickNs = 1'000'000;
// Disk fault probabilities are drawn in steps of 1/10,000 for the same
// reason: "p=0.0372" rather than seventeen digits.
constexpr std::int64_t kProbabilitySteps = 10'000;

std::int64_t ceil_ticks(Duration d) noexcept {
  DURO_ASSERT(d >= Duration::zero());
  return (d.count() + kTickNs - 1) / kTickNs;
}
std::int64_t floor_ticks(Duration d) noexcept {
  DURO_ASSERT(d >= Duration::zero());
  return d.count() / kTickNs;
}
Duration ticks(std::int64_t count) noexcept { return Duration{count * kTickNs}; }

std::int64_t probability_steps_low(double probability) noexcept {
  return std::max<std::int64_t>(1, static_cast<std::int64_t>(std::ceil(probability * kProbabilitySteps)));
}
std::int64_t probability_steps_high(double probability) noexcept {
  return static_cast<std::int64_t>(std::floor(probability * kProbabilitySteps));
}

// The profile's rates by kind, in a fixed order: swarm draws and the
// order of actions with equal times both follow it.
struct RateSlot {
  std::string_view name;
  FaultRate FaultProfile::*rate;
  bool disk;  // Draws a probability.
};
constexpr std::array<RateSlot, 7> kRateSlots{{
    {"crash", &FaultProfile::crash, false},
    {"partition", &FaultProfile::partition, false},
    {"clog", &FaultProfile::clog, false},
    {"clock-jump", &FaultProfile::clock_jump, false},
    {"disk-errors", &FaultProfile::disk_errors, true},
    {"disk-corruption", &FaultProfile::disk_corruption, true},
    {"outage", &FaultProfile::outage, false},
}};

std::string rate_invalid_reason(const FaultRate& rate, bool disk) {
  if (!rate.enabled) return {};
  if (rate.interval_mean <= Duration::zero() || rate.interval_mean > kFaultPlanDurationMax) {
    return fmt::format("interval_mean {} is outside (0, {}]", format_plan_duration(rate.interval_mean),
                       format_plan_duration(kFaultPlanDurationMax));
  }
  if (rate.duration_min <= Duration::zero() || rate.duration_max > kFaultPlanDurationMax ||
      rate.duration_min > rate.duration_max) {
    return fmt::format("durations [{}, {}] are not a range inside (0, {}]", format_plan_duration(rate.duration_min),
                       format_plan_duration(rate.duration_max), format_plan_duration(kFaultPlanDurationMax));
  }
  if (ceil_ticks(rate.duration_min) > floor_ticks(rate.duration_max)) {
    return fmt::format("durations [{}, {}] hold no whole millisecond", format_plan_duration(rate.duration_min),
                       format_plan_duration(rate.duration_max));
  }
  if (disk) {
    if (!(rate.probability_min > 0.0 && rate.probability_min <= rate.probability_max && rate.probability_max <= 1.0)) {
      return fmt::format("probabilities [{}, {}] are not a range inside (0, 1]", rate.probability_min,
                         rate.probability_max);
    }
    if (probability_steps_low(rate.probability_min) > probability_steps_high(rate.probability_max)) {
      return fmt::format("probabilities [{}, {}] hold no multiple of 1/{}", rate.probability_min,
                         rate.probability_max, kProbabilitySteps);
    }
  } else if (rate.probability_min != 0.0 || rate.probability_max != 0.0) {
    return "probabilities are only for disk faults";
  }
  return {};
}

std::string topology_invalid_reason(const FaultTopology& topology) {
  if (topology.chaos < Duration::zero() || topology.chaos > kFaultPlanDurationMax) {
    return fmt::format("chaos {} is outside [0, {}]", format_plan_duration(topology.chaos),
                       format_plan_duration(kFaultPlanDurationMax));
  }
  for (const std::vector<std::string>* list : {&topology.crashable, &topology.with_disks, &topology.services}) {
    if (list->size() > kFaultPlanSideNodesMax) return fmt::format("more than {} names", kFaultPlanSideNodesMax);
    for (const std::string& name : *list) {
      if (std::string reason = invalid_name_reason(name); !reason.empty()) return reason;
    }
    std::vector<std::string> sorted = *list;
    std::sort(sorted.begin(), sorted.end());
    if (const auto twice = std::adjacent_find(sorted.begin(), sorted.end()); twice != sorted.end()) {
      return fmt::format("'{}' is listed twice", *twice);
    }
  }
  return {};
}

// The instants at which faults of one kind strike: a Poisson process over
// the chaos phase, in whole milliseconds, at most kNemesisFaultsPerKindMax
// of them.
class Arrivals {
 public:
  Arrivals(Random random, Duration interval_mean, Duration chaos) noexcept
      : random_(random), interval_mean_ticks_(static_cast<double>(interval_mean.count()) / kTickNs), chaos_(chaos) {
    DURO_ASSERT(interval_mean > Duration::zero());
  }

  std::optional<Duration> next() noexcept {
    if (drawn_ == kNemesisFaultsPerKindMax) return std::nullopt;
    const double gap = random_.exponential(interval_mean_ticks_);
    // Compare before converting: a gap from a long mean can exceed int64.
    const double remaining = static_cast<double>((chaos_ - now_).count()) / kTickNs;
    if (!(gap < remaining)) return std::nullopt;
    // At least a tick apart, so no two faults of a kind share an instant.
    now_ += ticks(std::max<std::int64_t>(1, static_cast<std::int64_t>(gap)));
    if (now_ >= chaos_) return std::nullopt;
    drawn_++;
    return now_;
  }

 private:
  Random random_;
  double interval_mean_ticks_;
  Duration chaos_;
  Duration now_{};
  std::size_t drawn_ = 0;
};

Duration draw_duration(Random& random, const FaultRate& rate) noexcept {
  return ticks(random.uniform_range(ceil_ticks(rate.duration_min), floor_ticks(rate.duration_max)));
}

double draw_probability(Random& random, const FaultRate& rate) noexcept {
  const std::int64_t steps = random.uniform_range(probability_steps_low(rate.probability_min),
                                                  probability_steps_high(rate.probability_max));
  return static_cast<double>(steps) / static_cast<double>(kProbabilitySteps);
}

FaultAction one_node_action(Duration at, FaultKind kind, const std::string& node) {
  FaultAction action;
  action.at = at;
  action.kind = kind;
  action.nodes = {node};
  return action;
}

// Crashes with their restarts. `timing` places the crashes; `choice`
// picks victims and downtimes, so the topology's size does not move the
// times.
void draw_crashes(const Random& stream, const FaultRate& rate, std::size_t down_max,
                  const std::vector<std::string>& nodes, Duration chaos, std::vector<FaultAction>& out) {
  if (nodes.empty()) return;
  Arrivals arrivals(stream.fork("timing"), rate.interval_mean, chaos);
  Random choice = stream.fork("choice");
  // Per node: when it comes back up; absent while up. A node whose restart
  // falls after the chaos phase stays down until the quiet phase.
  std::vector<std::optional<Duration>> back_up_at(nodes.size());
  std::vector<std::size_t> up;
  while (const std::optional<Duration> at = arrivals.next()) {
    up.clear();
    for (std::size_t i = 0; i < nodes.size(); i++) {
      // Strictly before: a node just restarted gets at least a tick up.
      if (back_up_at[i] && *back_up_at[i] < *at) back_up_at[i].reset();
      if (!back_up_at[i]) up.push_back(i);
    }
    const std::size_t down = nodes.size() - up.size();
    if (up.empty() || down >= down_max) continue;  // This strike finds nothing it may take down.
    const std::size_t victim = up[choice.uniform(up.size())];
    const Duration restart_at = *at + draw_duration(choice, rate);
    out.push_back(one_node_action(*at, FaultKind::kCrash, nodes[victim]));
    if (restart_at < chaos) {
      out.push_back(one_node_action(restart_at, FaultKind::kRestart, nodes[victim]));
      back_up_at[victim] = restart_at;
    } else {
      back_up_at[victim] = Duration::max();
    }
  }
}

// Partitions, each healed before the next begins and before the chaos
// phase ends.
void draw_partitions(const Random& stream, const FaultRate& rate, double one_way_probability,
                     const std::vector<std::string>& universe, Duration chaos, std::vector<FaultAction>& out) {
  if (universe.empty() || chaos <= Duration::zero()) return;
  Arrivals arrivals(stream.fork("timing"), rate.interval_mean, chaos);
  Random choice = stream.fork("choice");
  // The last whole-millisecond instant strictly inside the chaos phase:
  // the latest a heal may come.
  const Duration heal_last = ticks(ceil_ticks(chaos) - 1);
  Duration healed_at{-1};
  std::vector<std::size_t> order(universe.size());
  while (const std::optional<Duration> at = arrivals.next()) {
    if (*at <= healed_at) continue;  // A partition still stands.
    if (*at >= heal_last) break;     // No room left to heal one.
    FaultAction partition;
    partition.at = *at;
    partition.kind = FaultKind::kPartition;
    // A third of partitions isolate one node from everyone; the rest split
    // the nodes in two, the first side never the larger.
    if (universe.size() == 1 || choice.chance(1, 3)) {
      partition.nodes = {universe[choice.uniform(universe.size())]};
    } else {
      for (std::size_t i = 0; i < order.size(); i++) order[i] = i;
      choice.shuffle(std::span(order));
      const std::size_t side_a = 1 + choice.uniform(universe.size() / 2);
      // Each side in topology order, so the plan reads predictably.
      std::sort(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(side_a));
      std::sort(order.begin() + static_cast<std::ptrdiff_t>(side_a), order.end());
      for (std::size_t i = 0; i < order.size(); i++) {
        (i < side_a ? partition.nodes : partition.others).push_back(universe[order[i]]);
      }
    }
    partition.one_way = choice.bernoulli(one_way_probability);
    healed_at = std::min(*at + draw_duration(choice, rate), heal_last);
    DURO_ASSERT(healed_at > *at);
    FaultAction heal;
    heal.at = healed_at;
    heal.kind = FaultKind::kHeal;
    out.push_back(std::move(partition));
    out.push_back(std::move(heal));
  }
}

// Faults that last a while on one target (a node, or a service for
// outages): clogs, disk errors, disk corruption, outages. A target has at
// most one of a kind at a time, and each ends inside the chaos phase.
void draw_episodes(const Random& stream, const FaultRate& rate, FaultKind kind,
                   const std::vector<std::string>& targets, Duration chaos, std::vector<FaultAction>& out) {
  if (targets.empty()) return;
  Arrivals arrivals(stream.fork("timing"), rate.interval_mean, chaos);
  Random choice = stream.fork("choice");
  std::vector<Duration> busy_until(targets.size(), Duration::zero());
  std::vector<std::size_t> free;
  while (const std::optional<Duration> at = arrivals.next()) {
    free.clear();
    for (std::size_t i = 0; i < targets.size(); i++) {
      if (busy_until[i] <= *at) free.push_back(i);
    }
    if (free.empty()) continue;
    const std::size_t target = free[choice.uniform(free.size())];
    FaultAction action;
    action.at = *at;
    action.kind = kind;
    action.duration = std::min(draw_duration(choice, rate), chaos - *at);
    if (kind == FaultKind::kOutage) {
      action.service = targets[target];
    } else {
      action.nodes = {targets[target]};
    }
    if (kind == FaultKind::kDiskErrors || kind == FaultKind::kDiskCorruption) {
      action.probability = draw_probability(choice, rate);
    }
    busy_until[target] = *at + action.duration;
    out.push_back(std::move(action));
  }
}

void draw_clock_jumps(const Random& stream, const FaultRate& rate, const std::vector<std::string>& nodes,
                      Duration chaos, std::vector<FaultAction>& out) {
  if (nodes.empty()) return;
  Arrivals arrivals(stream.fork("timing"), rate.interval_mean, chaos);
  Random choice = stream.fork("choice");
  while (const std::optional<Duration> at = arrivals.next()) {
    FaultAction action = one_node_action(*at, FaultKind::kClockJump, nodes[choice.uniform(nodes.size())]);
    const Duration size = draw_duration(choice, rate);
    action.clock_delta = choice.chance(1, 2) ? size : -size;
    out.push_back(std::move(action));
  }
}

FaultRate rate(Duration interval_mean, Duration duration_min, Duration duration_max, double probability_min = 0,
               double probability_max = 0) {
  return FaultRate{.enabled = true,
                   .interval_mean = interval_mean,
                   .duration_min = duration_min,
                   .duration_max = duration_max,
                   .probability_min = probability_min,
                   .probability_max = probability_max};
}

FaultProfile chaos_profile() {
  FaultProfile profile;
  profile.name = "chaos";
  profile.crash = rate(seconds{30}, milliseconds{100}, seconds{30});
  profile.partition = rate(seconds{30}, seconds{1}, seconds{30});
  profile.clog = rate(seconds{30}, milliseconds{100}, seconds{5});
  profile.clock_jump = rate(seconds{60}, milliseconds{100}, minutes{5});
  profile.disk_errors = rate(seconds{45}, seconds{1}, seconds{20}, 0.01, 0.1);
  profile.disk_corruption = rate(seconds{90}, seconds{1}, seconds{20}, 0.001, 0.02);
  profile.outage = rate(seconds{45}, seconds{1}, seconds{60});
  profile.down_max = 2;
  profile.one_way_probability = 0.3;
  return profile;
}

constexpr std::array<std::string_view, 7> kProfileNames{"none",  "mild",  "partitions", "crashes",
                                                         "disk",  "chaos", "swarm"};

}  // namespace

std::string FaultProfile::invalid_reason() const {
  if (std::string reason = invalid_name_reason(name); !reason.empty()) return fmt::format("profile {}", reason);
  for (const RateSlot& slot : kRateSlots) {
    if (std::string reason = rate_invalid_reason(this->*slot.rate, slot.disk); !reason.empty()) {
      return fmt::format("{}: {}", slot.name, reason);
    }
  }
  if (crash.enabled && down_max == 0) return "crash: down_max must be at least 1";
  if (!(one_way_probability >= 0.0 && one_way_probability <= 1.0)) {
    return fmt::format("one_way_probability {} is outside [0, 1]", one_way_probability);
  }
  return {};
}

std::vector<std::string_view> fault_profile_names() { return {kProfileNames.begin(), kProfileNames.end()}; }

Result<FaultProfile> fault_profile(std::string_view name) {
  FaultProfile profile;
  if (name == "none") {
    profile.name = "none";
  } else if (name == "mild") {
    profile.name = "mild";
    profile.crash = rate(minutes{2}, seconds{1}, seconds{20});
    profile.partition = rate(minutes{3}, seconds{1}, seconds{15});
    profile.clog = rate(minutes{2}, milliseconds{100}, seconds{3});
    profile.disk_errors = rate(minutes{4}, seconds{1}, seconds{10}, 0.001, 0.01);
    profile.outage = rate(minutes{3}, seconds{1}, seconds{20});
    profile.down_max = 1;
    profile.one_way_probability = 0.2;
  } else if (name == "partitions") {
    profile.name = "partitions";
    profile.partition = rate(seconds{20}, seconds{1}, seconds{30});
    profile.clog = rate(seconds{30}, milliseconds{100}, seconds{5});
    profile.one_way_probability = 0.3;
  } else if (name == "crashes") {
    profile.name = "crashes";
    profile.crash = rate(seconds{20}, milliseconds{100}, seconds{30});
    profile.down_max = 2;
  } else if (name == "disk") {
    profile.name = "disk";
    // Crashes too: lost and torn unsynced writes show only across a crash.
    profile.crash = rate(seconds{60}, seconds{1}, seconds{20});
    profile.disk_errors = rate(seconds{30}, seconds{1}, seconds{20}, 0.01, 0.1);
    profile.disk_corruption = rate(seconds{60}, seconds{1}, seconds{20}, 0.001, 0.02);
    profile.down_max = 1;
  } else if (name == "chaos") {
    profile = chaos_profile();
  } else if (name == "swarm") {
    profile = chaos_profile();
    profile.name = "swarm";
    profile.swarm = true;
  } else {
    std::string known;
    for (const std::string_view known_name : kProfileNames) {
      if (!known.empty()) known += ", ";
      known += known_name;
    }
    return Error{ErrorCode::kNotFound, fmt::format("unknown fault profile '{}' (known: {})", name, known)};
  }
  DURO_ASSERT(profile.invalid_reason().empty());
  return profile;
}

FaultProfile resolve_fault_profile(std::uint64_t seed, const FaultProfile& profile) {
  const std::string reason = profile.invalid_reason();
  DURO_ASSERT_MSG(reason.empty(), reason.c_str());
  if (!profile.swarm) return profile;
  // Harder means more often and more likely: intervals are divided by the
  // factor, probabilities multiplied (up to 1).
  struct Factor {
    std::int64_t numerator;
    std::int64_t denominator;
  };
  static constexpr std::array<Factor, 5> kFactors{{{1, 4}, {1, 2}, {1, 1}, {2, 1}, {4, 1}}};
  Random random = Random(seed).fork("nemesis").fork("swarm");
  FaultProfile drawn = profile;
  drawn.swarm = false;
  std::vector<std::size_t> available;  // Kinds the base profile has at all.
  bool any_on = false;
  for (std::size_t i = 0; i < kRateSlots.size(); i++) {
    FaultRate& kind = drawn.*kRateSlots[i].rate;
    // Draw for every kind, on or off, so one kind's draw never shifts
    // another's.
    const bool on = random.chance(1, 2);
    const Factor factor = kFactors[random.uniform(kFactors.size())];
    if (!kind.enabled) continue;
    available.push_back(i);
    kind.enabled = on;
    any_on = any_on || on;
    const std::int64_t interval_ns = kind.interval_mean.count() / factor.numerator * factor.denominator;
    kind.interval_mean = std::clamp(Duration{interval_ns}, Duration{kTickNs}, kFaultPlanDurationMax);
    const double scale = static_cast<double>(factor.numerator) / static_cast<double>(factor.denominator);
    kind.probability_min = std::min(1.0, kind.probability_min * scale);
    kind.probability_max = std::min(1.0, kind.probability_max * scale);
  }
  if (profile.down_max > 1) drawn.down_max = 1 + random.uniform(profile.down_max);
  // Last, as it draws only sometimes: a run with no fault at all is what
  // the `none` profile is for.
  if (!any_on && !available.empty()) {
    (drawn.*kRateSlots[available[random.uniform(available.size())]].rate).enabled = true;
  }
  const std::string drawn_reason = drawn.invalid_reason();
  DURO_ASSERT_MSG(drawn_reason.empty(), drawn_reason.c_str());
  return drawn;
}

FaultPlan draw_fault_plan(std::uint64_t seed, const FaultProfile& base, const FaultTopology& topology) {
  const std::string topology_reason = topology_invalid_reason(topology);
  DURO_ASSERT_MSG(topology_reason.empty(), topology_reason.c_str());
  const FaultProfile profile = resolve_fault_profile(seed, base);

  FaultPlan plan;
  plan.seed = seed;
  plan.profile = base.name;
  plan.chaos = topology.chaos;

  // Partitions cut among every node the topology names.
  std::vector<std::string> universe = topology.crashable;
  for (const std::string& node : topology.with_disks) {
    if (std::find(universe.begin(), universe.end(), node) == universe.end()) universe.push_back(node);
  }

  const Random root = Random(seed).fork("nemesis");
  std::vector<FaultAction>& out = plan.actions;
  if (profile.crash.enabled) {
    draw_crashes(root.fork("crash"), profile.crash, profile.down_max, topology.crashable, plan.chaos, out);
  }
  if (profile.partition.enabled) {
    draw_partitions(root.fork("partition"), profile.partition, profile.one_way_probability, universe, plan.chaos,
                    out);
  }
  if (profile.clog.enabled) {
    draw_episodes(root.fork("clog"), profile.clog, FaultKind::kClog, topology.crashable, plan.chaos, out);
  }
  if (profile.clock_jump.enabled) {
    draw_clock_jumps(root.fork("clock-jump"), profile.clock_jump, topology.crashable, plan.chaos, out);
  }
  if (profile.disk_errors.enabled) {
    draw_episodes(root.fork("disk-errors"), profile.disk_errors, FaultKind::kDiskErrors, topology.with_disks,
                  plan.chaos, out);
  }
  if (profile.disk_corruption.enabled) {
    draw_episodes(root.fork("disk-corruption"), profile.disk_corruption, FaultKind::kDiskCorruption,
                  topology.with_disks, plan.chaos, out);
  }
  if (profile.outage.enabled) {
    draw_episodes(root.fork("outage"), profile.outage, FaultKind::kOutage, topology.services, plan.chaos, out);
  }
  // Stable: equal times keep kind order, and within a kind, cause before
  // effect (a restart drawn before the crash that follows it).
  std::stable_sort(out.begin(), out.end(),
                   [](const FaultAction& a, const FaultAction& b) { return a.at < b.at; });

  const Result<void> valid = plan.validate();
  DURO_ASSERT_MSG(valid.ok(), valid.ok() ? "" : valid.error().message.c_str());
  return plan;
}

}  // namespace duro::sim
