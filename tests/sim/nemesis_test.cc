// The nemesis (sim/nemesis.h): plans are a pure function of (seed, profile,
// topology), and every plan keeps the rules the world relies on.
#include "sim/nemesis.h"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>

#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "sim/random.h"

namespace duro::sim {
namespace {

using namespace std::chrono_literals;

FaultTopology control_plane_topology() {
  return FaultTopology{
      .crashable = {"store-0", "store-1", "store-2", "server-0", "server-1", "worker-0", "worker-1"},
      .with_disks = {"store-0", "store-1", "store-2"},
      .services = {"cloud-api", "dns"},
      .chaos = 10min,
  };
}

FaultProfile profile_named(std::string_view name) {
  Result<FaultProfile> profile = fault_profile(name);
  DURO_ASSERT(profile.ok());
  return std::move(profile).value();
}

bool contains(const std::vector<std::string>& names, const std::string& name) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

// Replays `plan` against the rules in sim/nemesis.h, for the profile the
// seed resolved to: the first rule broken, or empty.
std::string broken_rule(const FaultPlan& plan, const FaultProfile& profile, const FaultTopology& topology) {
  if (const Result<void> valid = plan.validate(); !valid.ok()) return fmt::format("invalid: {}", valid.error().message);
  if (plan.chaos != topology.chaos) return "chaos differs from the topology's";
  std::vector<std::string> universe = topology.crashable;
  universe.insert(universe.end(), topology.with_disks.begin(), topology.with_disks.end());
  std::set<std::string> down;
  bool partitioned = false;
  std::map<std::pair<FaultKind, std::string>, Duration> busy_until;
  for (std::size_t i = 0; i < plan.actions.size(); i++) {
    const FaultAction& a = plan.actions[i];
    const std::string& node = a.nodes.empty() ? a.service : a.nodes.front();
    auto broken = [&](std::string_view why) {
      return fmt::format("action {} ({} {}): {}", i + 1, fault_kind_name(a.kind), node, why);
    };
    if (a.at < 0s || a.at >= plan.chaos) return broken("outside the chaos phase");
    switch (a.kind) {
      case FaultKind::kCrash:
        if (!profile.crash.enabled) return broken("crashes are off");
        if (!contains(topology.crashable, node)) return broken("may not crash");
        if (!down.insert(node).second) return broken("crashed while down");
        if (down.size() > profile.down_max) return broken("more than down_max nodes down");
        break;
      case FaultKind::kRestart:
        if (down.erase(node) == 0) return broken("restarted while up");
        break;
      case FaultKind::kPartition:
        if (!profile.partition.enabled) return broken("partitions are off");
        if (partitioned) return broken("partition while another stands");
        for (const std::string& n : a.nodes) {
          if (!contains(universe, n)) return broken(fmt::format("{} is not in the topology", n));
        }
        for (const std::string& n : a.others) {
          if (!contains(universe, n)) return broken(fmt::format("{} is not in the topology", n));
        }
        partitioned = true;
        break;
      case FaultKind::kHeal:
        if (!partitioned) return broken("heal without a partition");
        partitioned = false;
        break;
      case FaultKind::kClockJump:
        if (!profile.clock_jump.enabled) return broken("clock jumps are off");
        if (!contains(topology.crashable, node)) return broken("may not jump");
        break;
      case FaultKind::kClog:
      case FaultKind::kDiskErrors:
      case FaultKind::kDiskCorruption:
      case FaultKind::kOutage: {
        const FaultRate& rate = a.kind == FaultKind::kClog         ? profile.clog
                                : a.kind == FaultKind::kDiskErrors ? profile.disk_errors
                                : a.kind == FaultKind::kOutage     ? profile.outage
                                                                   : profile.disk_corruption;
        if (!rate.enabled) return broken("this kind is off");
        const std::vector<std::string>& targets = a.kind == FaultKind::kClog     ? topology.crashable
                                                  : a.kind == FaultKind::kOutage ? topology.services
                                                                                 : topology.with_disks;
        if (!contains(targets, node)) return broken("may not suffer this");
        if (a.at + a.duration > plan.chaos) return broken("lasts past the chaos phase");
        Duration& until = busy_until[{a.kind, node}];
        if (a.at < until) return broken("already suffers this");
        until = a.at + a.duration;
        if (a.probability != 0 && (a.probability < rate.probability_min || a.probability > rate.probability_max)) {
          return broken("probability outside the profile's range");
        }
        break;
      }
    }
  }
  if (partitioned) return "a partition is never healed";
  return {};
}

std::string broken_rule_for(std::uint64_t seed, const FaultProfile& profile, const FaultTopology& topology) {
  return broken_rule(draw_fault_plan(seed, profile, topology), resolve_fault_profile(seed, profile), topology);
}

// --- Profiles ----------------------------------------------------------------

TEST(Nemesis, ProfilesResolveByName) {
  const std::vector<std::string_view> names = fault_profile_names();
  EXPECT_EQ(names, (std::vector<std::string_view>{"none", "mild", "partitions", "crashes", "disk", "chaos", "swarm"}));
  for (const std::string_view name : names) {
    const Result<FaultProfile> profile = fault_profile(name);
    ASSERT_TRUE(profile.ok()) << name;
    EXPECT_EQ(profile.value().name, name);
    EXPECT_EQ(profile.value().invalid_reason(), "") << name;
  }
  const Result<FaultProfile> unknown = fault_profile("havoc");
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.error().code, ErrorCode::kNotFound);
  EXPECT_EQ(unknown.error().message,
            "unknown fault profile 'havoc' (known: none, mild, partitions, crashes, disk, chaos, swarm)");
}

TEST(Nemesis, ProfilesTurnOnWhatTheirNamesSay) {
  EXPECT_FALSE(profile_named("none").crash.enabled || profile_named("none").partition.enabled ||
               profile_named("none").outage.enabled);
  const FaultProfile mild = profile_named("mild");
  EXPECT_EQ(mild.down_max, 1u);
  EXPECT_FALSE(mild.disk_corruption.enabled);
  EXPECT_TRUE(profile_named("partitions").partition.enabled);
  EXPECT_FALSE(profile_named("partitions").crash.enabled);
  EXPECT_TRUE(profile_named("crashes").crash.enabled);
  EXPECT_FALSE(profile_named("crashes").partition.enabled);
  EXPECT_TRUE(profile_named("disk").disk_corruption.enabled);
  const FaultProfile chaos = profile_named("chaos");
  for (const FaultRate* rate : {&chaos.crash, &chaos.partition, &chaos.clog, &chaos.clock_jump, &chaos.disk_errors,
                                &chaos.disk_corruption, &chaos.outage}) {
    EXPECT_TRUE(rate->enabled);
  }
  EXPECT_TRUE(profile_named("swarm").swarm);
}

TEST(Nemesis, InvalidCustomProfilesSayWhy) {
  FaultProfile profile = profile_named("crashes");
  profile.crash.interval_mean = 0s;
  EXPECT_NE(profile.invalid_reason().find("crash: interval_mean"), std::string::npos) << profile.invalid_reason();
  profile = profile_named("crashes");
  profile.crash.duration_min = 2s;
  profile.crash.duration_max = 1s;
  EXPECT_NE(profile.invalid_reason().find("crash: durations"), std::string::npos) << profile.invalid_reason();
  profile = profile_named("disk");
  profile.disk_errors.probability_max = 1.5;
  EXPECT_NE(profile.invalid_reason().find("disk-errors: probabilities"), std::string::npos);
  profile = profile_named("crashes");
  profile.down_max = 0;
  EXPECT_NE(profile.invalid_reason().find("down_max"), std::string::npos);
  profile = profile_named("crashes");
  profile.crash.probability_min = 0.5;
  EXPECT_NE(profile.invalid_reason().find("only for disk faults"), std::string::npos);
}

// --- Purity ----------------------------------------------------------------------

RC_GTEST_PROP(NemesisProperty, SameInputsGiveTheSamePlan, (std::uint64_t seed)) {
  const std::string_view name = *rc::gen::elementOf(fault_profile_names());
  const FaultProfile profile = profile_named(name);
  const FaultPlan first = draw_fault_plan(seed, profile, control_plane_topology());
  const FaultPlan second = draw_fault_plan(seed, profile_named(name), control_plane_topology());
  RC_ASSERT(first == second);
  RC_ASSERT(first.seed == seed);
  RC_ASSERT(first.profile == std::string(name));
}

TEST(Nemesis, DifferentSeedsGiveDifferentPlans) {
  for (const std::string_view name : fault_profile_names()) {
    if (name == "none") continue;
    std::set<std::string> seen;  // The plans' text, without the seed line.
    for (std::uint64_t seed = 0; seed < 50; seed++) {
      FaultPlan plan = draw_fault_plan(seed, profile_named(name), control_plane_topology());
      // Swarm may draw only a rare kind; the others always draw something.
      if (name != "swarm") {
        EXPECT_FALSE(plan.actions.empty()) << name << " seed " << seed;
      }
      plan.seed = 0;
      EXPECT_TRUE(seen.insert(plan.to_text()).second) << name << ": seed " << seed << " repeats an earlier plan";
    }
  }
}

// A digest of a plan's text without its comments.
std::uint64_t digest(const FaultPlan& plan) {
  const std::string text = plan.to_text();
  std::string content;
  std::size_t start = 0;
  while (start < text.size()) {
    const std::size_t end = text.find('\n', start);
    if (text[start] != '#') content += text.substr(start, end - start + 1);
    start = end + 1;
  }
  return hash_label(content);
}

TEST(Nemesis, DrawIsStableAcrossBuildsAndPlatforms) {
  // Golden digests of a few plans, recorded once. A seed that found a bug
  // must draw the same faults on every build: a change here must be
  // deliberate (and announced, since old seeds stop reproducing).
  const FaultTopology topology = control_plane_topology();
  const FaultPlan chaos = draw_fault_plan(42, profile_named("chaos"), topology);
  ASSERT_GE(chaos.actions.size(), 3u);
  EXPECT_EQ(chaos.actions[0], (FaultAction{.at = 7190ms, .kind = FaultKind::kPartition, .nodes = {"store-1"}}));
  EXPECT_EQ(chaos.actions[1], (FaultAction{.at = 30262ms,
                                           .kind = FaultKind::kDiskCorruption,
                                           .nodes = {"store-0"},
                                           .duration = 1567ms,
                                           .probability = 0.0096}));
  EXPECT_EQ(chaos.actions[2], (FaultAction{.at = 36355ms, .kind = FaultKind::kHeal}));
  EXPECT_EQ(digest(chaos), 0xA39E583659CABE53ULL);
  EXPECT_EQ(digest(draw_fault_plan(42, profile_named("swarm"), topology)), 0x3E584F9F911DE273ULL);
  EXPECT_EQ(digest(draw_fault_plan(7, profile_named("mild"), topology)), 0x0D1742024B448437ULL);
}

TEST(Nemesis, EachKindDrawsFromItsOwnStream) {
  // Turning partitions, clogs and outages on must not move a single crash.
  FaultProfile crashes_only = profile_named("crashes");
  FaultProfile crashes_and_more = crashes_only;
  const FaultProfile chaos = profile_named("chaos");
  crashes_and_more.partition = chaos.partition;
  crashes_and_more.clog = chaos.clog;
  crashes_and_more.outage = chaos.outage;
  for (std::uint64_t seed = 0; seed < 20; seed++) {
    const FaultPlan alone = draw_fault_plan(seed, crashes_only, control_plane_topology());
    const FaultPlan mixed = draw_fault_plan(seed, crashes_and_more, control_plane_topology());
    std::vector<FaultAction> mixed_crashes;
    for (const FaultAction& action : mixed.actions) {
      if (action.kind == FaultKind::kCrash || action.kind == FaultKind::kRestart) mixed_crashes.push_back(action);
    }
    ASSERT_FALSE(alone.actions.empty());
    EXPECT_EQ(alone.actions, mixed_crashes) << "seed " << seed;
    EXPECT_GT(mixed.actions.size(), alone.actions.size()) << "the other kinds drew nothing";
  }
}

// --- The rules ---------------------------------------------------------------

TEST(Nemesis, TheRuleCheckerCatchesBrokenPlans) {
  const FaultTopology topology = control_plane_topology();
  const FaultProfile chaos = profile_named("chaos");
  auto plan_of = [&](std::vector<FaultAction> actions) {
    return FaultPlan{.seed = 1, .profile = "manual", .chaos = topology.chaos, .actions = std::move(actions)};
  };
  const FaultAction crash0{.at = 1s, .kind = FaultKind::kCrash, .nodes = {"store-0"}};
  const FaultAction heal{.at = 9s, .kind = FaultKind::kHeal};
  const FaultAction partition{.at = 2s, .kind = FaultKind::kPartition, .nodes = {"store-0"}};
  EXPECT_EQ(broken_rule(plan_of({crash0}), chaos, topology), "");
  EXPECT_NE(broken_rule(plan_of({crash0, FaultAction{.at = 2s, .kind = FaultKind::kCrash, .nodes = {"store-0"}}}),
                        chaos, topology),
            "");
  EXPECT_NE(broken_rule(plan_of({crash0,
                                 {.at = 2s, .kind = FaultKind::kCrash, .nodes = {"store-1"}},
                                 {.at = 3s, .kind = FaultKind::kCrash, .nodes = {"store-2"}}}),
                        chaos, topology),
            "")
      << "three down with down_max 2";
  EXPECT_NE(broken_rule(plan_of({{.at = 2s, .kind = FaultKind::kRestart, .nodes = {"store-0"}}}), chaos, topology), "");
  EXPECT_NE(broken_rule(plan_of({partition}), chaos, topology), "") << "never healed";
  EXPECT_EQ(broken_rule(plan_of({partition, heal}), chaos, topology), "");
  EXPECT_NE(broken_rule(plan_of({heal}), chaos, topology), "");
  EXPECT_NE(broken_rule(plan_of({{.at = 1s, .kind = FaultKind::kClog, .nodes = {"nobody"}, .duration = 1s}}), chaos,
                        topology),
            "");
  EXPECT_NE(broken_rule(plan_of({{.at = 9min, .kind = FaultKind::kOutage, .duration = 2min, .service = "dns"}}), chaos,
                        topology),
            "")
      << "outlasts the chaos phase";
  EXPECT_NE(broken_rule(plan_of({{.at = 1s,
                                  .kind = FaultKind::kDiskCorruption,
                                  .nodes = {"store-0"},
                                  .duration = 1s,
                                  .probability = 0.01}}),
                        profile_named("mild"), topology),
            "")
      << "mild does not corrupt";
}

RC_GTEST_PROP(NemesisProperty, EveryProfileKeepsTheRules, (std::uint64_t seed)) {
  const std::string_view name = *rc::gen::elementOf(fault_profile_names());
  const std::string broken = broken_rule_for(seed, profile_named(name), control_plane_topology());
  RC_ASSERT(broken == std::string());
}

RC_GTEST_PROP(NemesisProperty, RandomTopologiesKeepTheRules, (std::uint64_t seed)) {
  const std::string_view name = *rc::gen::elementOf(fault_profile_names());
  const std::vector<std::string> pool = {"a", "b", "c", "d", "e", "f", "g", "h"};
  auto subset = [&] {
    std::vector<std::string> out;
    for (const std::string& n : pool) {
      if (*rc::gen::arbitrary<bool>()) out.push_back(n);
    }
    return out;
  };
  FaultTopology topology;
  topology.crashable = subset();
  topology.with_disks = subset();
  topology.services = *rc::gen::elementOf(std::vector<std::vector<std::string>>{{}, {"api"}, {"api", "dns"}});
  // Tiny and odd chaos lengths too: 0, a nanosecond, a millisecond and a
  // bit, up to an hour.
  topology.chaos = *rc::gen::oneOf(rc::gen::element(0ns, 1ns, Duration{1ms} + 1ns, Duration{2ms}),
                                   rc::gen::map(rc::gen::inRange<std::int64_t>(0, 3'600'000'000'000),
                                                [](std::int64_t ns) { return Duration{ns}; }));
  const FaultPlan plan = draw_fault_plan(seed, profile_named(name), topology);
  RC_ASSERT(broken_rule(plan, resolve_fault_profile(seed, profile_named(name)), topology) == std::string());
  if (topology.chaos < 1ms) RC_ASSERT(plan.actions.empty());
}

RC_GTEST_PROP(NemesisProperty, DrawnPlansRoundTripThroughText, (std::uint64_t seed)) {
  const std::string_view name = *rc::gen::elementOf(fault_profile_names());
  const FaultPlan plan = draw_fault_plan(seed, profile_named(name), control_plane_topology());
  const Result<FaultPlan> parsed = FaultPlan::parse(plan.to_text());
  RC_ASSERT(parsed.ok());
  RC_ASSERT(parsed.value() == plan);
}

TEST(Nemesis, NoneDrawsNothing) {
  for (std::uint64_t seed = 0; seed < 100; seed++) {
    const FaultPlan plan = draw_fault_plan(seed, profile_named("none"), control_plane_topology());
    EXPECT_TRUE(plan.actions.empty()) << "seed " << seed;
    EXPECT_EQ(plan.profile, "none");
    EXPECT_EQ(plan.chaos, 10min);
  }
}

// Counts, over many seeds, what a profile's plans contain.
struct Census {
  std::size_t plans_with_corruption = 0;
  std::size_t plans_with_crashes = 0;
  std::size_t down_max_seen = 0;
  std::size_t plans_left_down = 0;  // A node still down when the chaos ends.
};

Census census(std::string_view profile, std::uint64_t seeds) {
  Census out;
  for (std::uint64_t seed = 0; seed < seeds; seed++) {
    const FaultPlan plan = draw_fault_plan(seed, profile_named(profile), control_plane_topology());
    std::set<std::string> down;
    bool corrupt = false;
    bool crash = false;
    for (const FaultAction& action : plan.actions) {
      if (action.kind == FaultKind::kCrash) {
        crash = true;
        down.insert(action.nodes.front());
        out.down_max_seen = std::max(out.down_max_seen, down.size());
      }
      if (action.kind == FaultKind::kRestart) down.erase(action.nodes.front());
      corrupt = corrupt || action.kind == FaultKind::kDiskCorruption;
    }
    out.plans_with_corruption += corrupt;
    out.plans_with_crashes += crash;
    out.plans_left_down += !down.empty();
  }
  return out;
}

TEST(Nemesis, MildNeverCorruptsNorTakesTwoNodesDown) {
  const Census mild = census("mild", 300);
  EXPECT_EQ(mild.plans_with_corruption, 0u);
  EXPECT_EQ(mild.down_max_seen, 1u) << "0 would mean mild never crashes: the check would prove nothing";
  EXPECT_GT(mild.plans_with_crashes, 100u);
}

TEST(Nemesis, OnlyDiskChaosAndSomeSwarmDrawsCorrupt) {
  EXPECT_EQ(census("none", 100).plans_with_corruption, 0u);
  EXPECT_EQ(census("mild", 100).plans_with_corruption, 0u);
  EXPECT_EQ(census("partitions", 100).plans_with_corruption, 0u);
  EXPECT_EQ(census("crashes", 100).plans_with_corruption, 0u);
  EXPECT_GT(census("disk", 100).plans_with_corruption, 90u);
  EXPECT_GT(census("chaos", 100).plans_with_corruption, 90u);
  const Census swarm = census("swarm", 200);
  EXPECT_GT(swarm.plans_with_corruption, 40u);
  EXPECT_LT(swarm.plans_with_corruption, 160u);
}

TEST(Nemesis, CrashesTakeUpToDownMaxAndSomeStayDownIntoTheQuietPhase) {
  const Census crashes = census("crashes", 100);
  EXPECT_EQ(crashes.down_max_seen, 2u);
  EXPECT_GT(crashes.plans_left_down, 0u) << "no plan left a node for the quiet phase to restart";
  EXPECT_LT(crashes.plans_left_down, 100u);
}

TEST(Nemesis, SwarmVariesWhichKindsAreOnSeedBySeed) {
  const FaultProfile swarm = profile_named("swarm");
  std::set<std::vector<bool>> combinations;
  std::vector<int> on_count(7, 0);
  std::set<std::size_t> down_maxes;
  constexpr int kSeeds = 200;
  for (std::uint64_t seed = 0; seed < kSeeds; seed++) {
    const FaultProfile drawn = resolve_fault_profile(seed, swarm);
    EXPECT_FALSE(drawn.swarm);
    EXPECT_EQ(drawn.invalid_reason(), "");
    const std::vector<bool> on = {drawn.crash.enabled,       drawn.partition.enabled,   drawn.clog.enabled,
                                  drawn.clock_jump.enabled,  drawn.disk_errors.enabled, drawn.disk_corruption.enabled,
                                  drawn.outage.enabled};
    EXPECT_NE(std::count(on.begin(), on.end(), true), 0) << "seed " << seed << " has no fault kind on";
    for (std::size_t k = 0; k < on.size(); k++) on_count[k] += on[k];
    combinations.insert(on);
    down_maxes.insert(drawn.down_max);
  }
  EXPECT_GT(combinations.size(), 50u);
  for (std::size_t k = 0; k < on_count.size(); k++) {
    // About half; 200 seeds put a fair coin within 70..130 with
    // overwhelming probability.
    EXPECT_GT(on_count[k], 70) << "kind " << k;
    EXPECT_LT(on_count[k], 140) << "kind " << k;
  }
  EXPECT_EQ(down_maxes, (std::set<std::size_t>{1, 2}));
  // Rates vary too: some seed's crash interval differs from the base.
  bool scaled = false;
  for (std::uint64_t seed = 0; seed < 20; seed++) {
    scaled = scaled || resolve_fault_profile(seed, swarm).crash.interval_mean != swarm.crash.interval_mean;
  }
  EXPECT_TRUE(scaled);
  // A profile that is not swarm resolves to itself.
  EXPECT_EQ(resolve_fault_profile(3, profile_named("chaos")), profile_named("chaos"));
}

TEST(Nemesis, EmptyTopologyListsDrawNothingOfTheirKinds) {
  FaultTopology topology = control_plane_topology();
  topology.with_disks.clear();
  topology.services.clear();
  for (std::uint64_t seed = 0; seed < 20; seed++) {
    for (const FaultAction& action : draw_fault_plan(seed, profile_named("chaos"), topology).actions) {
      EXPECT_NE(action.kind, FaultKind::kDiskErrors);
      EXPECT_NE(action.kind, FaultKind::kDiskCorruption);
      EXPECT_NE(action.kind, FaultKind::kOutage);
    }
  }
}

}  // namespace
}  // namespace duro::sim
