// Fault plans (sim/fault_plan.h): the text form round-trips exactly, and
// every malformed input is refused with its line and a reason, never a
// crash.
#include "sim/fault_plan.h"

#include <gtest/gtest.h>
#include <fmt/format.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdio>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace duro::sim {
namespace {

using namespace std::chrono_literals;

// --- Generators ------------------------------------------------------------

rc::Gen<std::string> gen_name() {
  return rc::gen::exec([] {
    static constexpr std::string_view kFirst = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    static constexpr std::string_view kRest = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-";
    const auto length = *rc::gen::inRange<std::size_t>(1, kFaultPlanNameBytesMax + 1);
    std::string name(1, *rc::gen::elementOf(kFirst));
    while (name.size() < length) name += *rc::gen::elementOf(kRest);
    return name;
  });
}

// Durations in [low, high]: mostly awkward nanosecond counts, sometimes
// round ones, and the ends of the range.
rc::Gen<Duration> gen_duration(Duration low, Duration high) {
  return rc::gen::exec([low, high] {
    const std::int64_t lo = low.count();
    const std::int64_t hi = high.count();
    switch (*rc::gen::inRange(0, 5)) {
      case 0: return low;
      case 1: return high;
      case 2: {
        // A whole number of some unit, clamped into the range.
        static const std::vector<std::int64_t> kUnits = {1, 1'000, 1'000'000, 1'000'000'000, 60'000'000'000,
                                                  3'600'000'000'000, 86'400'000'000'000};
        const std::int64_t unit = *rc::gen::elementOf(kUnits);
        const std::int64_t count = *rc::gen::inRange<std::int64_t>(0, 1000);
        return Duration{std::clamp(count * unit, lo, hi)};
      }
      default: return Duration{lo + static_cast<std::int64_t>(*rc::gen::inRange<std::uint64_t>(
                                        0, static_cast<std::uint64_t>(hi - lo) + 1))};
    }
  });
}

// Any double in (0, 1], subnormals included, or a short decimal.
rc::Gen<double> gen_probability() {
  return rc::gen::exec([] {
    if (*rc::gen::arbitrary<bool>()) return static_cast<double>(*rc::gen::inRange(1, 10'001)) / 10'000.0;
    // Positive doubles are ordered like their bit patterns; 1.0 is 0x3FF0...
    const std::uint64_t bits = *rc::gen::inRange<std::uint64_t>(1, 0x3FF0000000000001ULL);
    return std::bit_cast<double>(bits);
  });
}

std::vector<std::string> gen_distinct_names(std::size_t count) {
  std::set<std::string> names;
  for (std::size_t attempt = 0; names.size() < count && attempt < 4 * count + 8; attempt++) {
    names.insert(*gen_name());
  }
  return {names.begin(), names.end()};
}

FaultAction gen_action(Duration at) {
  FaultAction action;
  action.at = at;
  action.kind = static_cast<FaultKind>(*rc::gen::inRange<std::size_t>(0, kFaultKindCount));
  const Duration long_max = kFaultPlanDurationMax;
  switch (action.kind) {
    case FaultKind::kCrash:
    case FaultKind::kRestart: action.nodes = {*gen_name()}; break;
    case FaultKind::kPartition: {
      std::vector<std::string> names = gen_distinct_names(*rc::gen::inRange<std::size_t>(1, 8));
      const auto side_a = *rc::gen::inRange<std::size_t>(1, names.size() + 1);
      action.nodes.assign(names.begin(), names.begin() + static_cast<std::ptrdiff_t>(side_a));
      action.others.assign(names.begin() + static_cast<std::ptrdiff_t>(side_a), names.end());
      action.one_way = *rc::gen::arbitrary<bool>();
      break;
    }
    case FaultKind::kHeal: break;
    case FaultKind::kClog:
      action.nodes = {*gen_name()};
      action.duration = *gen_duration(1ns, long_max);
      break;
    case FaultKind::kClockJump: {
      action.nodes = {*gen_name()};
      const Duration size = *gen_duration(1ns, long_max);
      action.clock_delta = *rc::gen::arbitrary<bool>() ? size : -size;
      break;
    }
    case FaultKind::kDiskErrors:
    case FaultKind::kDiskCorruption:
      action.nodes = {*gen_name()};
      action.duration = *gen_duration(1ns, long_max);
      action.probability = *gen_probability();
      break;
    case FaultKind::kOutage:
      action.service = *gen_name();
      action.duration = *gen_duration(1ns, long_max);
      break;
  }
  return action;
}

rc::Gen<FaultPlan> gen_plan() {
  return rc::gen::exec([] {
    FaultPlan plan;
    plan.seed = *rc::gen::arbitrary<std::uint64_t>();
    plan.profile = *gen_name();
    const auto count = *rc::gen::inRange<std::size_t>(0, 24);
    plan.chaos = *gen_duration(count == 0 ? 0ns : 1ns, kFaultPlanDurationMax);
    std::vector<Duration> times;
    for (std::size_t i = 0; i < count; i++) times.push_back(*gen_duration(0ns, plan.chaos - 1ns));
    // Repeat some times: equal times must keep their order.
    if (count > 1 && *rc::gen::arbitrary<bool>()) times[1] = times[0];
    std::sort(times.begin(), times.end());
    for (const Duration at : times) plan.actions.push_back(gen_action(at));
    return plan;
  });
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::size_t start = 0;
  while (start < text.size()) {
    std::size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    lines.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return lines;
}

// --- Round trips -----------------------------------------------------------

RC_GTEST_PROP(FaultPlanProperty, TextRoundTripsExactly, ()) {
  const FaultPlan plan = *gen_plan();
  RC_ASSERT(plan.validate().ok());
  const std::string text = plan.to_text();
  const Result<FaultPlan> parsed = FaultPlan::parse(text);
  RC_ASSERT(parsed.ok());
  RC_ASSERT(parsed.value() == plan);
  RC_ASSERT(parsed.value().to_text() == text);
}

RC_GTEST_PROP(FaultPlanProperty, CommentsBlanksSpacingAndCrlfDoNotChangeThePlan, ()) {
  const FaultPlan plan = *gen_plan();
  const std::vector<std::string> lines = lines_of(plan.to_text());
  std::string edited = lines.front() + "\n";  // The header stays first.
  const bool crlf = *rc::gen::arbitrary<bool>();
  for (std::size_t i = 1; i < lines.size(); i++) {
    if (*rc::gen::inRange(0, 4) == 0) {
      edited += *rc::gen::elementOf(std::vector<std::string>{"", "   ", "# note", "\t# x"});
      edited += '\n';
    }
    std::string line = lines[i];
    // Spread tokens with extra blanks.
    std::string spaced;
    for (const char c : line) {
      spaced += c;
      if (c == ' ' && *rc::gen::inRange(0, 3) == 0) spaced += "\t ";
    }
    if (*rc::gen::arbitrary<bool>()) spaced = "  " + spaced;
    if (*rc::gen::arbitrary<bool>()) spaced += "   # trailing comment";
    edited += spaced;
    edited += crlf ? "\r\n" : "\n";
  }
  const Result<FaultPlan> parsed = FaultPlan::parse(edited);
  RC_ASSERT(parsed.ok());
  RC_ASSERT(parsed.value() == plan);
}

TEST(FaultPlan, ParsesTheDocumentedExample) {
  const std::string text =
      "# duro fault plan v1\n"
      "seed 42\n"
      "profile chaos\n"
      "chaos 10m\n"
      "\n"
      "at 12.5s crash store-0        # a comment\n"
      "at 30s restart store-0\n"
      "at 40s partition server-0,server-1 | server-2\n"
      "at 41s partition worker-1 -> *\n"
      "at 60s heal\n"
      "at 70s clog worker-1 for 5s\n"
      "at 80s clock-jump worker-2 -30s\n"
      "at 81s clock-jump worker-2 1.5m\n"
      "at 90s disk-errors store-0 for 10s p=0.05\n"
      "at 100s disk-corruption store-0 for 10s p=1e-4\n"
      "at 110s outage cloud-api for 30s\n";
  const Result<FaultPlan> parsed = FaultPlan::parse(text);
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  const FaultPlan& plan = parsed.value();
  EXPECT_EQ(plan.seed, 42u);
  EXPECT_EQ(plan.profile, "chaos");
  EXPECT_EQ(plan.chaos, 10min);
  ASSERT_EQ(plan.actions.size(), 11u);
  EXPECT_EQ(plan.actions[0], (FaultAction{.at = 12500ms, .kind = FaultKind::kCrash, .nodes = {"store-0"}}));
  EXPECT_EQ(plan.actions[2], (FaultAction{.at = 40s,
                                          .kind = FaultKind::kPartition,
                                          .nodes = {"server-0", "server-1"},
                                          .others = {"server-2"}}));
  EXPECT_EQ(plan.actions[3],
            (FaultAction{.at = 41s, .kind = FaultKind::kPartition, .nodes = {"worker-1"}, .one_way = true}));
  EXPECT_EQ(plan.actions[4], (FaultAction{.at = 60s, .kind = FaultKind::kHeal}));
  EXPECT_EQ(plan.actions[5],
            (FaultAction{.at = 70s, .kind = FaultKind::kClog, .nodes = {"worker-1"}, .duration = 5s}));
  EXPECT_EQ(plan.actions[6].clock_delta, -30s);
  EXPECT_EQ(plan.actions[7].clock_delta, 90s);
  EXPECT_EQ(plan.actions[8], (FaultAction{.at = 90s,
                                          .kind = FaultKind::kDiskErrors,
                                          .nodes = {"store-0"},
                                          .duration = 10s,
                                          .probability = 0.05}));
  EXPECT_EQ(plan.actions[9].probability, 0.0001);
  EXPECT_EQ(plan.actions[10],
            (FaultAction{.at = 110s, .kind = FaultKind::kOutage, .duration = 30s, .service = "cloud-api"}));
  // And it prints in canonical form.
  const std::vector<std::string> lines = lines_of(plan.to_text());
  const std::vector<std::string> actions(lines.end() - 11, lines.end());
  EXPECT_EQ(actions, (std::vector<std::string>{
                         "at 12.5s crash store-0",
                         "at 30s restart store-0",
                         "at 40s partition server-0,server-1 | server-2",
                         "at 41s partition worker-1 -> *",
                         "at 1m heal",
                         "at 1m10s clog worker-1 for 5s",
                         "at 1m20s clock-jump worker-2 -30s",
                         "at 1m21s clock-jump worker-2 +1m30s",
                         "at 1m30s disk-errors store-0 for 10s p=0.05",
                         "at 1m40s disk-corruption store-0 for 10s p=0.0001",
                         "at 1m50s outage cloud-api for 30s",
                     }));
}

TEST(FaultPlan, DurationsPrintReadablyAndExactly) {
  const std::vector<std::pair<Duration, std::string>> cases = {
      {0ns, "0s"},
      {1ns, "1ns"},
      {1500ns, "1.5us"},
      {250ms, "250ms"},
      {1ms + 1ns, "1.000001ms"},
      {12500ms, "12.5s"},
      {90s, "1m30s"},
      {60s + 1ns, "1m0.000000001s"},
      {10min, "10m"},
      {1h, "1h"},
      {36h + 500ms, "1d12h0.5s"},
      {-30s, "-30s"},
  };
  for (const auto& [duration, text] : cases) {
    EXPECT_EQ(format_plan_duration(duration), text);
    const Result<Duration> parsed = parse_plan_duration(text, /*signed_ok=*/true);
    ASSERT_TRUE(parsed.ok()) << text << ": " << parsed.error().message;
    EXPECT_EQ(parsed.value(), duration) << text;
  }
  // Other spellings of the same instants.
  EXPECT_EQ(parse_plan_duration("1.5h").value(), 90min);
  EXPECT_EQ(parse_plan_duration("1m500ms").value(), 60500ms);
  EXPECT_EQ(parse_plan_duration("0.000000001s").value(), 1ns);
  EXPECT_EQ(parse_plan_duration("007s").value(), 7s);
  EXPECT_EQ(parse_plan_duration("+2s", true).value(), 2s);
  EXPECT_FALSE(parse_plan_duration("+2s").ok()) << "a sign where none is allowed";
}

RC_GTEST_PROP(FaultPlanProperty, AnyDurationFormatsAndParsesBack, ()) {
  const Duration duration = *gen_duration(-kFaultPlanDurationMax, kFaultPlanDurationMax);
  const Result<Duration> parsed = parse_plan_duration(format_plan_duration(duration), true);
  RC_ASSERT(parsed.ok());
  RC_ASSERT(parsed.value() == duration);
}

TEST(FaultPlan, ProbabilitiesSurviveToTheLastBit) {
  for (const double p : {0.1, 1.0 / 3.0, 0.05, 1.0, 5e-324, 0.30000000000000004, std::nextafter(1.0, 0.0)}) {
    FaultPlan plan{.seed = 1, .profile = "manual", .chaos = 1s};
    plan.actions.push_back(
        {.at = 0s, .kind = FaultKind::kDiskErrors, .nodes = {"d"}, .duration = 1s, .probability = p});
    const Result<FaultPlan> parsed = FaultPlan::parse(plan.to_text());
    ASSERT_TRUE(parsed.ok()) << parsed.error().message;
    EXPECT_EQ(std::bit_cast<std::uint64_t>(parsed.value().actions[0].probability), std::bit_cast<std::uint64_t>(p));
  }
}

// --- Malformed input ---------------------------------------------------------

struct BadCase {
  std::string text;
  int line;
  std::string reason;  // A substring of the message.
};

const std::string kHead = "# duro fault plan v1\nseed 1\nprofile manual\nchaos 10m\n";  // Actions start on line 5.

std::string repeated(const std::string& line, std::size_t times) {
  std::string out;
  for (std::size_t i = 0; i < times; i++) out += line;
  return out;
}

TEST(FaultPlan, RejectsEachKindOfMalformedInputWithItsLineAndReason) {
  // 257 distinct two-letter names: short enough to fit one line.
  std::string many_nodes;
  for (int i = 0; i < 257; i++) {
    if (i > 0) many_nodes += ',';
    many_nodes += static_cast<char>('a' + i / 26);
    many_nodes += static_cast<char>('a' + i % 26);
  }
  // A line of exactly the limit whose canonical form is longer: the time
  // prints as "9999d23h59m59.999999999s".
  std::string full_line = "at 863999999999999999ns partition ";
  for (int i = 0; i < 256; i++) {
    const std::string name = fmt::format("{}node-{:03}", i > 0 ? "," : "", i);
    if (full_line.size() + name.size() + 4 > kFaultPlanLineBytesMax) break;
    full_line += name;
  }
  while (full_line.size() + 4 < kFaultPlanLineBytesMax) full_line += 'x';
  full_line += " | *";
  ASSERT_EQ(full_line.size(), kFaultPlanLineBytesMax);
  const std::vector<BadCase> cases = {
      // Header and directives.
      {"", 1, "expected the header '# duro fault plan v1'"},
      {"seed 1\n", 1, "expected the header"},
      {"# duro fault plan v2\nseed 1\n", 1, "unsupported fault plan version 'v2'"},
      {"# duro fault plan v1\nsed 1\n", 2, "unknown directive 'sed'"},
      {"# duro fault plan v1\nseed 1\nseed 2\n", 3, "a second 'seed' line"},
      {"# duro fault plan v1\nseed -1\n", 2, "seed '-1' is not a decimal number"},
      {"# duro fault plan v1\nseed 18446744073709551616\n", 2, "below 2^64"},
      {"# duro fault plan v1\nseed 1 2\n", 2, "takes exactly one value"},
      {"# duro fault plan v1\nprofile a/b\n", 2, "illegal character '/'"},
      {"# duro fault plan v1\nchaos 10\n", 2, "missing unit"},
      {"# duro fault plan v1\nseed 1\nprofile x\n", 3, "missing the 'chaos' line"},
      {"# duro fault plan v1\nseed 1\nat 1s crash a\n", 3, "before the 'seed', 'profile' and 'chaos' lines"},
      {kHead + "at 1s crash a\nseed 2\n", 6, "'seed' must come before the first action"},
      // Times.
      {kHead + "at 1x crash a\n", 5, "bad time '1x': unknown unit 'x'"},
      {kHead + "at -1s crash a\n", 5, "a sign is not allowed here"},
      {kHead + "at 0.1ns crash a\n", 5, "finer than a nanosecond"},
      {kHead + "at 1s1m crash a\n", 5, "out of order"},
      {kHead + "at 1.5m30s crash a\n", 5, "only the last component may have a decimal fraction"},
      {kHead + "at 1.s crash a\n", 5, "expected digits after '.'"},
      {kHead + "at 10001d crash a\n", 5, "longer than the limit"},
      {kHead + "at 99999999999999999999999d crash a\n", 5, "too many digits"},
      {kHead + "at 11m crash a\n", 5, "not inside the chaos phase [0, 10m)"},
      {kHead + "at 2s crash a\nat 1s restart a\n", 6, "before the previous action's 2s"},
      // Verbs and fields.
      {kHead + "at\n", 5, "needs a time and a fault"},
      {kHead + "at 1s crsh a\n", 5, "unknown fault 'crsh'"},
      {kHead + "at 1s crash\n", 5, "missing a node"},
      {kHead + "at 1s crash a b\n", 5, "unexpected 'b'"},
      {kHead + "at 1s heal now\n", 5, "unexpected 'now'"},
      {kHead + "at 1s clog a\n", 5, "missing 'for'"},
      {kHead + "at 1s clog a in 5s\n", 5, "expected 'for', found 'in'"},
      {kHead + "at 1s clog a for\n", 5, "missing a duration"},
      {kHead + "at 1s clog a for 0s\n", 5, "clog needs a duration in (0,"},
      {kHead + "at 1s clock-jump a 0s\n", 5, "non-zero delta"},
      {kHead + "at 1s outage for 5s\n", 5, "expected 'for', found '5s'"},
      // Probabilities.
      {kHead + "at 1s disk-errors a for 1s\n", 5, "missing p=<probability>"},
      {kHead + "at 1s disk-errors a for 1s 0.5\n", 5, "expected p=<probability>, found '0.5'"},
      {kHead + "at 1s disk-errors a for 1s p=1.5\n", 5, "probability 1.5 is outside (0, 1]"},
      {kHead + "at 1s disk-errors a for 1s p=0\n", 5, "outside (0, 1]"},
      {kHead + "at 1s disk-errors a for 1s p=1e-400\n", 5, "outside (0, 1]"},
      {kHead + "at 1s disk-errors a for 1s p=nan\n", 5, "not a decimal number"},
      {kHead + "at 1s disk-errors a for 1s p=-0.5\n", 5, "not a decimal number"},
      {kHead + "at 1s disk-corruption a for 1s p=0x1p-3\n", 5, "not a decimal number"},
      // Names and partitions.
      {kHead + "at 1s crash a$b\n", 5, "illegal character '$'"},
      {kHead + "at 1s crash -a\n", 5, "must start with a letter or digit"},
      {kHead + "at 1s crash " + std::string(65, 'x') + "\n", 5, "longer than 64 bytes"},
      {kHead + "at 1s crash caf\xc3\xa9\n", 5, "illegal byte 0xc3"},
      {kHead + "at 1s partition a | a\n", 5, "node 'a' is on both sides"},
      {kHead + "at 1s partition a,b,a | c\n", 5, "node 'a' appears twice on partition side A"},
      {kHead + "at 1s partition a,,b | c\n", 5, "empty node name in 'a,,b'"},
      {kHead + "at 1s partition * | a\n", 5, "may only be the second side"},
      {kHead + "at 1s partition a <- b\n", 5, "expected '|' or '->'"},
      {kHead + "at 1s partition a |\n", 5, "missing the nodes of the second side"},
      {kHead + "at 1s partition " + many_nodes + " | *\n", 5, "more than 256 nodes"},
      // Sizes and bytes.
      {kHead + "at 1s crash a" + std::string(1100, ' ') + "\n", 5, "more than the limit of 1024"},
      {"# duro fault plan v1\nseed 1\nprofile x\nchaos 10000d\n" + full_line + "\n", 5,
       "the action's line would be 1028 bytes"},
      {kHead + "at 1s crash a\x01\n", 5, "control character 0x01"},
      {kHead + "at 1s crash a\r\r\n", 5, "control character 0x0d"},
      {"# duro fault plan v1\nseed 1\nprofile x\nchaos 1000d\n" + repeated("at 1s heal\n", 10'001), 10'005,
       "more than 10000 actions"},
      {"# duro fault plan v1\n" + repeated("#\n", 100'000), 100'001, "more than 100000 lines"},
  };
  for (const BadCase& bad : cases) {
    const Result<FaultPlan> parsed = FaultPlan::parse(bad.text);
    const std::string shown = bad.text.size() > 200 ? bad.text.substr(0, 200) + "..." : bad.text;
    ASSERT_FALSE(parsed.ok()) << "accepted:\n" << shown;
    EXPECT_EQ(parsed.error().code, ErrorCode::kInvalidArgument);
    const std::string prefix = "line " + std::to_string(bad.line) + ": ";
    EXPECT_EQ(parsed.error().message.substr(0, prefix.size()), prefix)
        << parsed.error().message << "\nfor:\n" << shown;
    EXPECT_NE(parsed.error().message.find(bad.reason), std::string::npos)
        << "wanted '" << bad.reason << "' in: " << parsed.error().message;
  }
}

// Edits of a valid plan, as a person (or a fuzzer) makes them.
std::string mutate(std::string text) {
  static const std::vector<std::string> kPieces = {
      " ", "\n", "#", ",", "|", "->", "*", "at", "for", "p=", "p=1", "0", "1", ".", "-", "+", "s", "ms", "m",
      "d", "crash", "heal", "partition", "clog", "seed", "chaos", "profile", "\t", "\r", "\x01", "\xff", "1e999",
      "99999999999999999999", "0.0000000001ns"};
  const int edits = *rc::gen::inRange(1, 6);
  for (int e = 0; e < edits; e++) {
    const std::size_t at = text.empty() ? 0 : *rc::gen::inRange<std::size_t>(0, text.size() + 1);
    switch (*rc::gen::inRange(0, 4)) {
      case 0: text.insert(at, *rc::gen::elementOf(kPieces)); break;
      case 1:
        if (at < text.size()) text.erase(at, *rc::gen::inRange<std::size_t>(1, 8));
        break;
      case 2:
        if (at < text.size()) text[at] = *rc::gen::arbitrary<char>();
        break;
      default: {
        // Duplicate a line elsewhere.
        const std::vector<std::string> lines = lines_of(text);
        if (!lines.empty()) text.insert(at, *rc::gen::elementOf(lines) + "\n");
        break;
      }
    }
  }
  return text;
}

RC_GTEST_PROP(FaultPlanProperty, EditedOrGarbageTextNeverCrashesAndWhatParsesIsStable, ()) {
  const bool garbage = *rc::gen::inRange(0, 4) == 0;
  const std::string text = garbage ? "# duro fault plan v1\n" + *rc::gen::arbitrary<std::string>()
                                   : mutate((*gen_plan()).to_text());
  const Result<FaultPlan> parsed = FaultPlan::parse(text);
  if (parsed.ok()) {
    RC_ASSERT(parsed.value().validate().ok());
    const std::string canonical = parsed.value().to_text();
    const Result<FaultPlan> again = FaultPlan::parse(canonical);
    RC_ASSERT(again.ok());
    RC_ASSERT(again.value() == parsed.value());
    RC_ASSERT(again.value().to_text() == canonical);
  } else {
    RC_ASSERT(parsed.error().code == ErrorCode::kInvalidArgument);
    const std::string& message = parsed.error().message;
    RC_ASSERT(message.rfind("line ", 0) == 0);
    const int line = std::stoi(message.substr(5));
    const auto lines = static_cast<int>(std::count(text.begin(), text.end(), '\n')) + 1;
    RC_ASSERT(line >= 1);
    RC_ASSERT(line <= lines);
  }
}

// --- Plans built in code ---------------------------------------------------------

TEST(FaultPlan, ValidateNamesTheBadActionOfAPlanBuiltInCode) {
  const FaultPlan good{.seed = 7,
                       .profile = "manual",
                       .chaos = 1min,
                       .actions = {{.at = 1s, .kind = FaultKind::kCrash, .nodes = {"a"}},
                                   {.at = 2s, .kind = FaultKind::kRestart, .nodes = {"a"}}}};
  ASSERT_TRUE(good.validate().ok());

  struct Case {
    FaultPlan plan;
    std::string reason;
  };
  std::vector<Case> cases;
  auto with = [&](auto edit, std::string reason) {
    FaultPlan plan = good;
    edit(plan);
    cases.push_back({std::move(plan), std::move(reason)});
  };
  with([](FaultPlan& p) { p.profile = ""; }, "profile: empty name");
  with([](FaultPlan& p) { p.chaos = -1s; }, "chaos: -1s is outside");
  with([](FaultPlan& p) { p.actions[1].at = 500ms; }, "action 2: time 500ms is before");
  with([](FaultPlan& p) { p.actions[1].at = 1min; }, "action 2: time 1m is not inside the chaos phase");
  with([](FaultPlan& p) { p.actions[0].duration = 1s; }, "action 1: crash takes no duration");
  with([](FaultPlan& p) { p.actions[0].nodes.push_back("b"); }, "crash takes exactly one node, not 2");
  with([](FaultPlan& p) { p.actions[0].one_way = true; }, "crash cannot be one-way");
  with([](FaultPlan& p) { p.actions[0].probability = 0.5; }, "crash takes no probability");
  with([](FaultPlan& p) { p.actions[0].service = "s"; }, "crash takes no service");
  with([](FaultPlan& p) { p.actions[0].others = {"b"}; }, "crash takes no second side");
  with([](FaultPlan& p) { p.actions[0].clock_delta = 1s; }, "crash takes no clock delta");
  with([](FaultPlan& p) { p.actions[0].kind = static_cast<FaultKind>(42); }, "unknown fault kind 42");
  with(
      [](FaultPlan& p) {
        p.actions[0] = {.at = 1s, .kind = FaultKind::kDiskErrors, .nodes = {"a"}, .duration = 1s,
                        .probability = std::nan("")};
      },
      "probability nan is outside (0, 1]");
  with([](FaultPlan& p) { p.actions[0] = {.at = 1s, .kind = FaultKind::kHeal, .nodes = {"a"}}; },
       "heal takes no nodes");
  with(
      [](FaultPlan& p) {
        p.actions[0] = {.at = 1s, .kind = FaultKind::kPartition};
        for (int i = 0; i < 20; i++) p.actions[0].nodes.push_back(fmt::format("{:064}", i));
      },
      "action 1: the action's line would be");
  for (const Case& c : cases) {
    const Result<void> valid = c.plan.validate();
    ASSERT_FALSE(valid.ok()) << c.reason;
    EXPECT_NE(valid.error().message.find(c.reason), std::string::npos)
        << "wanted '" << c.reason << "' in: " << valid.error().message;
  }
}

TEST(FaultPlanDeathTest, ToTextOfAnInvalidPlanAsserts) {
  FaultPlan plan{.seed = 1, .profile = "bad name", .chaos = 1s};
  EXPECT_DEATH((void)plan.to_text(), "to_text\\(\\) of an invalid plan");
}

TEST(FaultPlan, KindNamesAreTheVerbsAndRoundTrip) {
  for (std::size_t i = 0; i < kFaultKindCount; i++) {
    const auto kind = static_cast<FaultKind>(i);
    EXPECT_EQ(fault_kind_from_name(fault_kind_name(kind)), kind);
  }
  EXPECT_STREQ(fault_kind_name(FaultKind::kClockJump), "clock-jump");
  EXPECT_STREQ(fault_kind_name(FaultKind::kDiskCorruption), "disk-corruption");
  EXPECT_EQ(fault_kind_from_name("explode"), std::nullopt);
}

// --- Files -----------------------------------------------------------------

TEST(FaultPlan, FilesRoundTripAndErrorsNameThePath) {
  const std::string path = ::testing::TempDir() + "duro_fault_plan_test.plan";
  FaultPlan plan{.seed = 99, .profile = "manual", .chaos = 5min};
  plan.actions.push_back({.at = 1s, .kind = FaultKind::kOutage, .duration = 2s, .service = "dns"});
  ASSERT_TRUE(write_fault_plan_file(path, plan).ok());
  const Result<FaultPlan> read = read_fault_plan_file(path);
  ASSERT_TRUE(read.ok()) << read.error().message;
  EXPECT_EQ(read.value(), plan);

  {
    std::FILE* file = std::fopen(path.c_str(), "wb");
    ASSERT_NE(file, nullptr);
    std::fputs("# duro fault plan v1\nseed x\n", file);
    std::fclose(file);
  }
  const Result<FaultPlan> bad = read_fault_plan_file(path);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().message, path + ": line 2: seed 'x' is not a decimal number below 2^64");
  std::remove(path.c_str());

  const Result<FaultPlan> missing = read_fault_plan_file(path + ".missing");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, ErrorCode::kNotFound);

  const Result<void> unwritable = write_fault_plan_file("/nonexistent-dir/x.plan", plan);
  ASSERT_FALSE(unwritable.ok());
  EXPECT_EQ(unwritable.error().code, ErrorCode::kIoError);
}

}  // namespace
}  // namespace duro::sim
