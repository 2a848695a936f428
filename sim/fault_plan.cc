#include "sim/fault_plan.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <fstream>
#include <span>

#include "sim/assert.h"

namespace duro::sim {

namespace {

// __extension__: GCC and Clang have 128-bit integers; -Wpedantic wants it said.
__extension__ typedef unsigned __int128 Uint128;

constexpr std::string_view kHeader = "# duro fault plan v1";
constexpr std::string_view kHeaderPrefix = "# duro fault plan ";

constexpr std::int64_t kMicrosecondNs = 1'000;
constexpr std::int64_t kMillisecondNs = 1'000'000;
constexpr std::int64_t kSecondNs = 1'000'000'000;
constexpr std::int64_t kMinuteNs = 60 * kSecondNs;
constexpr std::int64_t kHourNs = 60 * kMinuteNs;
constexpr std::int64_t kDayNs = 24 * kHourNs;

struct KindName {
  FaultKind kind;
  std::string_view name;
};
// In FaultKind order: fault_kind_name indexes it.
constexpr std::array<KindName, kFaultKindCount> kKindNames{{
    {FaultKind::kCrash, "crash"},
    {FaultKind::kRestart, "restart"},
    {FaultKind::kPartition, "partition"},
    {FaultKind::kHeal, "heal"},
    {FaultKind::kClog, "clog"},
    {FaultKind::kClockJump, "clock-jump"},
    {FaultKind::kDiskErrors, "disk-errors"},
    {FaultKind::kDiskCorruption, "disk-corruption"},
    {FaultKind::kOutage, "outage"},
}};

bool kind_is_known(FaultKind kind) noexcept { return static_cast<std::size_t>(kind) < kFaultKindCount; }

// The kinds that act on exactly one node.
bool takes_one_node(FaultKind kind) noexcept {
  switch (kind) {
    case FaultKind::kCrash:
    case FaultKind::kRestart:
    case FaultKind::kClog:
    case FaultKind::kClockJump:
    case FaultKind::kDiskErrors:
    case FaultKind::kDiskCorruption: return true;
    default: return false;
  }
}

bool takes_duration(FaultKind kind) noexcept {
  return kind == FaultKind::kClog || kind == FaultKind::kDiskErrors || kind == FaultKind::kDiskCorruption ||
         kind == FaultKind::kOutage;
}

bool takes_probability(FaultKind kind) noexcept {
  return kind == FaultKind::kDiskErrors || kind == FaultKind::kDiskCorruption;
}

bool is_digit(char c) noexcept { return c >= '0' && c <= '9'; }
bool is_alpha(char c) noexcept { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool is_blank(char c) noexcept { return c == ' ' || c == '\t'; }

// The digits of `text` as a number; the caller bounds their count so the
// value fits (at most 38 digits fit in 128 bits).
Uint128 digits_value(std::string_view text) noexcept {
  DURO_ASSERT(text.size() <= 38);
  Uint128 value = 0;
  for (const char c : text) {
    DURO_ASSERT(is_digit(c));
    value = value * 10 + static_cast<unsigned>(c - '0');
  }
  return value;
}

// Appends value / unit with a decimal fraction of up to `digits` digits and
// no trailing zeros: (1'500'000, 1'000'000, 6) -> "1.5".
void append_decimal(std::string& out, std::int64_t value, std::int64_t unit, int digits) {
  DURO_ASSERT(value >= 0 && unit > 0);
  out += fmt::format("{}", value / unit);
  const std::int64_t fraction = value % unit;
  if (fraction == 0) return;
  std::string text = fmt::format("{:0{}}", fraction, digits);
  while (text.back() == '0') text.pop_back();
  out += '.';
  out += text;
}

std::string format_probability(double probability) {
  // fmt prints the shortest decimal that reads back as the same double
  // (0.05 stays "0.05"), so the text is both readable and exact.
  return fmt::format("{}", probability);
}

// Reads a probability written as a plain decimal, optionally with an
// exponent ("0.05", "1", "1e-05"); no signs, "inf", "nan" or hex.
Result<double> parse_probability(std::string_view text) {
  auto bad = [&] {
    return Error{ErrorCode::kInvalidArgument, fmt::format("probability '{}' is not a decimal number", text)};
  };
  if (text.empty() || text.size() > 64) return bad();
  std::size_t i = 0;
  const std::size_t int_start = i;
  while (i < text.size() && is_digit(text[i])) i++;
  if (i == int_start) return bad();
  if (i < text.size() && text[i] == '.') {
    i++;
    const std::size_t fraction_start = i;
    while (i < text.size() && is_digit(text[i])) i++;
    if (i == fraction_start) return bad();
  }
  if (i < text.size() && (text[i] == 'e' || text[i] == 'E')) {
    i++;
    if (i < text.size() && (text[i] == '+' || text[i] == '-')) i++;
    const std::size_t exponent_start = i;
    while (i < text.size() && is_digit(text[i])) i++;
    if (i == exponent_start) return bad();
  }
  if (i != text.size()) return bad();
  double value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size() || !(value > 0.0 && value <= 1.0)) {
    return Error{ErrorCode::kInvalidArgument, fmt::format("probability {} is outside (0, 1]", text)};
  }
  return value;
}

// Sorts a copy; the name of the first duplicate, or empty.
std::string first_duplicate(std::vector<std::string> names) {
  std::sort(names.begin(), names.end());
  const auto it = std::adjacent_find(names.begin(), names.end());
  return it == names.end() ? std::string{} : *it;
}

std::string first_common(std::vector<std::string> a, std::vector<std::string> b) {
  std::sort(a.begin(), a.end());
  std::sort(b.begin(), b.end());
  std::vector<std::string> common;
  std::set_intersection(a.begin(), a.end(), b.begin(), b.end(), std::back_inserter(common));
  return common.empty() ? std::string{} : common.front();
}

std::string check_side(const std::vector<std::string>& side, std::string_view which) {
  if (side.size() > kFaultPlanSideNodesMax) {
    return fmt::format("partition side {} has {} nodes, more than the limit of {}", which, side.size(),
                       kFaultPlanSideNodesMax);
  }
  for (const std::string& node : side) {
    if (std::string reason = invalid_name_reason(node); !reason.empty()) return reason;
  }
  if (std::string twice = first_duplicate(side); !twice.empty()) {
    return fmt::format("node '{}' appears twice on partition side {}", twice, which);
  }
  return {};
}

std::string join_nodes(const std::vector<std::string>& nodes) {
  std::string out;
  for (const std::string& node : nodes) {
    if (!out.empty()) out += ',';
    out += node;
  }
  return out;
}

std::string action_text(const FaultAction& action) {
  std::string out = "at ";
  out += format_plan_duration(action.at);
  out += ' ';
  out += fault_kind_name(action.kind);
  switch (action.kind) {
    case FaultKind::kCrash:
    case FaultKind::kRestart:
      out += ' ';
      out += action.nodes.front();
      break;
    case FaultKind::kPartition:
      out += ' ';
      out += join_nodes(action.nodes);
      out += action.one_way ? " -> " : " | ";
      out += action.others.empty() ? std::string("*") : join_nodes(action.others);
      break;
    case FaultKind::kHeal: break;
    case FaultKind::kClog:
      out += ' ';
      out += action.nodes.front();
      out += " for ";
      out += format_plan_duration(action.duration);
      break;
    case FaultKind::kClockJump:
      out += ' ';
      out += action.nodes.front();
      out += ' ';
      // Always signed, so a reader sees the direction at a glance.
      if (action.clock_delta > Duration::zero()) out += '+';
      out += format_plan_duration(action.clock_delta);
      break;
    case FaultKind::kDiskErrors:
    case FaultKind::kDiskCorruption:
      out += ' ';
      out += action.nodes.front();
      out += " for ";
      out += format_plan_duration(action.duration);
      out += " p=";
      out += format_probability(action.probability);
      break;
    case FaultKind::kOutage:
      out += ' ';
      out += action.service;
      out += " for ";
      out += format_plan_duration(action.duration);
      break;
  }
  return out;
}

// A valid action whose canonical line would not fit the line limit could
// be printed but not read back. Input lines fit, but their canonical form
// may be a few bytes longer ("1e-5" prints as "1e-05"), so both parse()
// and validate() check the printed form.
std::string line_too_long_reason(const FaultAction& action) {
  const std::size_t bytes = action_text(action).size();
  if (bytes <= kFaultPlanLineBytesMax) return {};
  return fmt::format("the action's line would be {} bytes, more than the limit of {}", bytes,
                     kFaultPlanLineBytesMax);
}

// --- Parsing ------------------------------------------------------------

// What each argument of a fault's line is, in order.
enum class Field : std::uint8_t {
  kNode,
  kService,
  kFor,
  kDuration,
  kSignedDuration,
  kProbability,
  kSideA,
  kArrow,
  kSideB,
};

struct Syntax {
  std::span<const Field> fields;
  std::string_view usage;
};

constexpr Field kOneNode[] = {Field::kNode};
constexpr Field kPartitionFields[] = {Field::kSideA, Field::kArrow, Field::kSideB};
constexpr Field kClogFields[] = {Field::kNode, Field::kFor, Field::kDuration};
constexpr Field kClockJumpFields[] = {Field::kNode, Field::kSignedDuration};
constexpr Field kDiskFields[] = {Field::kNode, Field::kFor, Field::kDuration, Field::kProbability};
constexpr Field kOutageFields[] = {Field::kService, Field::kFor, Field::kDuration};

Syntax syntax_of(FaultKind kind) noexcept {
  switch (kind) {
    case FaultKind::kCrash: return {kOneNode, "at <time> crash <node>"};
    case FaultKind::kRestart: return {kOneNode, "at <time> restart <node>"};
    case FaultKind::kPartition:
      return {kPartitionFields, "at <time> partition <node,...> | <node,...> (or -> for one way; * for everyone else)"};
    case FaultKind::kHeal: return {{}, "at <time> heal"};
    case FaultKind::kClog: return {kClogFields, "at <time> clog <node> for <duration>"};
    case FaultKind::kClockJump: return {kClockJumpFields, "at <time> clock-jump <node> <+duration or -duration>"};
    case FaultKind::kDiskErrors: return {kDiskFields, "at <time> disk-errors <node> for <duration> p=<probability>"};
    case FaultKind::kDiskCorruption:
      return {kDiskFields, "at <time> disk-corruption <node> for <duration> p=<probability>"};
    case FaultKind::kOutage: return {kOutageFields, "at <time> outage <service> for <duration>"};
  }
  DURO_ASSERT_MSG(false, "unknown fault kind");
  return {};
}

const char* field_name(Field field) noexcept {
  switch (field) {
    case Field::kNode: return "a node";
    case Field::kService: return "a service";
    case Field::kFor: return "'for'";
    case Field::kDuration: return "a duration";
    case Field::kSignedDuration: return "a signed duration";
    case Field::kProbability: return "p=<probability>";
    case Field::kSideA: return "the nodes of the first side";
    case Field::kArrow: return "'|' or '->'";
    case Field::kSideB: return "the nodes of the second side (or *)";
  }
  return "?";
}

// Splits "a,b,c" into names. Name checks come later, in invalid_reason().
Result<std::vector<std::string>> parse_side(std::string_view token, bool star_ok) {
  std::vector<std::string> nodes;
  if (token == "*") {
    if (star_ok) return nodes;
    return Error{ErrorCode::kInvalidArgument, "'*' (everyone else) may only be the second side"};
  }
  // A token is at most a line long, so this loop is bounded by it.
  std::size_t start = 0;
  for (std::size_t i = 0; i <= token.size(); i++) {
    if (i < token.size() && token[i] != ',') continue;
    if (i == start) return Error{ErrorCode::kInvalidArgument, fmt::format("empty node name in '{}'", token)};
    if (nodes.size() == kFaultPlanSideNodesMax) {
      return Error{ErrorCode::kInvalidArgument,
                   fmt::format("partition side has more than {} nodes", kFaultPlanSideNodesMax)};
    }
    nodes.emplace_back(token.substr(start, i - start));
    start = i + 1;
  }
  return nodes;
}

// Reads the fields after "at <time> <verb>" into `action`; the empty string
// on success, else the reason.
std::string parse_fields(std::span<const std::string_view> args, FaultAction& action) {
  const Syntax syntax = syntax_of(action.kind);
  for (std::size_t i = 0; i < syntax.fields.size(); i++) {
    const Field field = syntax.fields[i];
    if (i >= args.size()) return fmt::format("missing {} (usage: {})", field_name(field), syntax.usage);
    const std::string_view arg = args[i];
    switch (field) {
      case Field::kNode: action.nodes.emplace_back(arg); break;
      case Field::kService: action.service = std::string(arg); break;
      case Field::kFor:
        if (arg != "for") return fmt::format("expected 'for', found '{}' (usage: {})", arg, syntax.usage);
        break;
      case Field::kDuration:
      case Field::kSignedDuration: {
        Result<Duration> duration = parse_plan_duration(arg, field == Field::kSignedDuration);
        if (!duration) return fmt::format("bad duration '{}': {}", arg, duration.error().message);
        (field == Field::kDuration ? action.duration : action.clock_delta) = duration.value();
        break;
      }
      case Field::kProbability: {
        if (arg.substr(0, 2) != "p=") {
          return fmt::format("expected p=<probability>, found '{}' (usage: {})", arg, syntax.usage);
        }
        Result<double> probability = parse_probability(arg.substr(2));
        if (!probability) return probability.error().message;
        action.probability = probability.value();
        break;
      }
      case Field::kSideA:
      case Field::kSideB: {
        Result<std::vector<std::string>> side = parse_side(arg, field == Field::kSideB);
        if (!side) return side.error().message;
        (field == Field::kSideA ? action.nodes : action.others) = std::move(side).value();
        break;
      }
      case Field::kArrow:
        if (arg == "|") {
          action.one_way = false;
        } else if (arg == "->") {
          action.one_way = true;
        } else {
          return fmt::format("expected '|' or '->' between the sides, found '{}'", arg);
        }
        break;
    }
  }
  if (args.size() > syntax.fields.size()) {
    return fmt::format("unexpected '{}' (usage: {})", args[syntax.fields.size()], syntax.usage);
  }
  return {};
}

std::string known_kinds() {
  std::string out;
  for (std::size_t i = 0; i < kKindNames.size(); i++) {
    if (i > 0) out += i + 1 == kKindNames.size() ? " or " : ", ";
    out += kKindNames[i].name;
  }
  return out;
}

class Parser {
 public:
  Result<FaultPlan> run(std::string_view text) {
    std::size_t position = 0;
    std::size_t line_number = 0;
    // Each pass consumes one line; the line cap bounds the loop.
    while (position < text.size()) {
      line_number++;
      if (line_number > kFaultPlanLinesMax) {
        return fail(line_number, fmt::format("more than {} lines", kFaultPlanLinesMax));
      }
      std::size_t end = text.find('\n', position);
      if (end == std::string_view::npos) end = text.size();
      std::string_view line = text.substr(position, end - position);
      position = end + 1;
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);  // Edited on Windows.
      if (std::string reason = parse_line(line_number, line); !reason.empty()) return fail(line_number, reason);
    }
    if (line_number == 0) return fail(1, fmt::format("expected the header '{}'", kHeader));
    // Report a missing directive on the last line: that is where a reader
    // would add it.
    if (!seen_seed_) return fail(line_number, "missing the 'seed' line");
    if (!seen_profile_) return fail(line_number, "missing the 'profile' line");
    if (!seen_chaos_) return fail(line_number, "missing the 'chaos' line");
    DURO_ASSERT(plan_.validate().ok());
    return std::move(plan_);
  }

 private:
  static Error fail(std::size_t line_number, std::string_view reason) {
    return Error{ErrorCode::kInvalidArgument, fmt::format("line {}: {}", line_number, reason)};
  }

  std::string parse_line(std::size_t line_number, std::string_view line) {
    if (line.size() > kFaultPlanLineBytesMax) {
      return fmt::format("line is {} bytes, more than the limit of {}", line.size(), kFaultPlanLineBytesMax);
    }
    for (const char c : line) {
      const auto byte = static_cast<unsigned char>(c);
      if ((byte < 0x20 && c != '\t') || byte == 0x7F) return fmt::format("control character 0x{:02x}", byte);
    }
    if (line_number == 1) return parse_header(line);
    if (const std::size_t hash = line.find('#'); hash != std::string_view::npos) line = line.substr(0, hash);

    // At most one token per two bytes of a line: bounded by the line cap.
    std::vector<std::string_view> tokens;
    for (std::size_t i = 0; i < line.size();) {
      while (i < line.size() && is_blank(line[i])) i++;
      const std::size_t start = i;
      while (i < line.size() && !is_blank(line[i])) i++;
      if (i > start) tokens.push_back(line.substr(start, i - start));
    }
    if (tokens.empty()) return {};

    const std::string_view directive = tokens.front();
    const std::span<const std::string_view> args = std::span(tokens).subspan(1);
    if (directive == "at") return parse_action(args);
    if (directive != "seed" && directive != "profile" && directive != "chaos") {
      return fmt::format("unknown directive '{}' (expected seed, profile, chaos or at)", directive);
    }
    if (!plan_.actions.empty()) return fmt::format("'{}' must come before the first action", directive);
    if (args.size() != 1) return fmt::format("'{}' takes exactly one value", directive);
    const std::string_view value = args.front();
    if (directive == "seed") {
      if (seen_seed_) return "a second 'seed' line";
      seen_seed_ = true;
      const bool digits = std::all_of(value.begin(), value.end(), is_digit);
      const auto [end, error] = std::from_chars(value.data(), value.data() + value.size(), plan_.seed);
      if (!digits || error != std::errc() || end != value.data() + value.size()) {
        return fmt::format("seed '{}' is not a decimal number below 2^64", value);
      }
    } else if (directive == "profile") {
      if (seen_profile_) return "a second 'profile' line";
      seen_profile_ = true;
      if (std::string reason = invalid_name_reason(value); !reason.empty()) return fmt::format("profile {}", reason);
      plan_.profile = std::string(value);
    } else {
      if (seen_chaos_) return "a second 'chaos' line";
      seen_chaos_ = true;
      Result<Duration> chaos = parse_plan_duration(value);
      if (!chaos) return fmt::format("bad chaos length '{}': {}", value, chaos.error().message);
      plan_.chaos = chaos.value();
    }
    return {};
  }

  static std::string parse_header(std::string_view line) {
    while (!line.empty() && is_blank(line.back())) line.remove_suffix(1);
    if (line == kHeader) return {};
    if (line.substr(0, kHeaderPrefix.size()) == kHeaderPrefix) {
      return fmt::format("unsupported fault plan version '{}' (this build reads v1)",
                         line.substr(kHeaderPrefix.size()));
    }
    return fmt::format("expected the header '{}'", kHeader);
  }

  std::string parse_action(std::span<const std::string_view> args) {
    if (!seen_seed_ || !seen_profile_ || !seen_chaos_) {
      return "an action before the 'seed', 'profile' and 'chaos' lines";
    }
    if (plan_.actions.size() == kFaultPlanActionsMax) {
      return fmt::format("more than {} actions", kFaultPlanActionsMax);
    }
    if (args.size() < 2) return "an action needs a time and a fault: at <time> <fault> ...";
    FaultAction action;
    Result<Duration> at = parse_plan_duration(args[0]);
    if (!at) return fmt::format("bad time '{}': {}", args[0], at.error().message);
    action.at = at.value();
    const std::optional<FaultKind> kind = fault_kind_from_name(args[1]);
    if (!kind) return fmt::format("unknown fault '{}' (expected {})", args[1], known_kinds());
    action.kind = *kind;
    if (std::string reason = parse_fields(args.subspan(2), action); !reason.empty()) return reason;
    if (std::string reason = action.invalid_reason(); !reason.empty()) return reason;
    if (std::string reason = line_too_long_reason(action); !reason.empty()) return reason;
    if (action.at >= plan_.chaos) {
      return fmt::format("time {} is not inside the chaos phase [0, {})", format_plan_duration(action.at),
                         format_plan_duration(plan_.chaos));
    }
    if (!plan_.actions.empty() && action.at < plan_.actions.back().at) {
      return fmt::format("time {} is before the previous action's {} (actions must be in time order)",
                         format_plan_duration(action.at), format_plan_duration(plan_.actions.back().at));
    }
    plan_.actions.push_back(std::move(action));
    return {};
  }

  FaultPlan plan_;
  bool seen_seed_ = false;
  bool seen_profile_ = false;
  bool seen_chaos_ = false;
};

}  // namespace

const char* fault_kind_name(FaultKind kind) noexcept {
  if (!kind_is_known(kind)) return "unknown";
  const KindName& entry = kKindNames[static_cast<std::size_t>(kind)];
  DURO_ASSERT(entry.kind == kind);
  return entry.name.data();  // The literals are NUL-terminated.
}

std::optional<FaultKind> fault_kind_from_name(std::string_view name) noexcept {
  for (const KindName& entry : kKindNames) {
    if (entry.name == name) return entry.kind;
  }
  return std::nullopt;
}

std::string invalid_name_reason(std::string_view name) {
  if (name.empty()) return "empty name";
  if (name.size() > kFaultPlanNameBytesMax) {
    return fmt::format("name '{}...' is longer than {} bytes", name.substr(0, 16), kFaultPlanNameBytesMax);
  }
  if (!is_alpha(name.front()) && !is_digit(name.front())) {
    return fmt::format("name '{}' must start with a letter or digit", name);
  }
  for (const char c : name) {
    if (!is_alpha(c) && !is_digit(c) && c != '.' && c != '_' && c != '-') {
      const auto byte = static_cast<unsigned char>(c);
      if (byte < 0x20 || byte >= 0x7F) {
        return fmt::format("name '{}' has an illegal byte 0x{:02x} (allowed: letters, digits, '.', '_', '-')", name,
                           byte);
      }
      return fmt::format("name '{}' has an illegal character '{}' (allowed: letters, digits, '.', '_', '-')", name, c);
    }
  }
  return {};
}

std::string format_plan_duration(Duration duration) {
  std::int64_t ns = duration.count();
  std::string out;
  if (ns < 0) {
    // Negating INT64_MIN overflows; it is 292 years, far past any plan.
    DURO_ASSERT(ns != INT64_MIN);
    out += '-';
    ns = -ns;
  }
  if (ns == 0) {
    out += "0s";
    return out;
  }
  const std::int64_t days = ns / kDayNs;
  const std::int64_t hours = ns / kHourNs % 24;
  const std::int64_t minutes = ns / kMinuteNs % 60;
  const std::int64_t rest_ns = ns % kMinuteNs;
  if (days > 0) out += fmt::format("{}d", days);
  if (hours > 0) out += fmt::format("{}h", hours);
  if (minutes > 0) out += fmt::format("{}m", minutes);
  if (rest_ns == 0) return out;
  if (ns >= kSecondNs) {
    append_decimal(out, rest_ns, kSecondNs, 9);
    out += 's';
  } else if (ns >= kMillisecondNs) {
    append_decimal(out, rest_ns, kMillisecondNs, 6);
    out += "ms";
  } else if (ns >= kMicrosecondNs) {
    append_decimal(out, rest_ns, kMicrosecondNs, 3);
    out += "us";
  } else {
    out += fmt::format("{}ns", rest_ns);
  }
  return out;
}

Result<Duration> parse_plan_duration(std::string_view text, bool signed_ok) {
  auto fail = [](std::string reason) { return Error{ErrorCode::kInvalidArgument, std::move(reason)}; };
  struct Unit {
    std::string_view name;
    std::int64_t ns;
  };
  // Largest first: components must follow this order.
  static constexpr std::array<Unit, 7> kUnits{{{"d", kDayNs},
                                               {"h", kHourNs},
                                               {"m", kMinuteNs},
                                               {"s", kSecondNs},
                                               {"ms", kMillisecondNs},
                                               {"us", kMicrosecondNs},
                                               {"ns", 1}}};
  const std::string_view original = text;
  if (text.empty()) return fail("empty duration");
  bool negative = false;
  if (text.front() == '+' || text.front() == '-') {
    if (!signed_ok) return fail("a sign is not allowed here");
    negative = text.front() == '-';
    text.remove_prefix(1);
  }
  const auto max_ns = static_cast<Uint128>(kFaultPlanDurationMax.count());
  Uint128 total_ns = 0;
  std::size_t unit_next = 0;  // Index of the largest unit still allowed.
  bool fraction_seen = false;
  std::size_t i = 0;
  // Each pass consumes at least one character.
  while (i < text.size()) {
    if (fraction_seen) return fail("only the last component may have a decimal fraction");
    const std::size_t int_start = i;
    while (i < text.size() && is_digit(text[i])) i++;
    const std::string_view int_digits = text.substr(int_start, i - int_start);
    if (int_digits.empty()) return fail(fmt::format("expected a number at '{}'", text.substr(int_start)));
    std::string_view fraction_digits;
    if (i < text.size() && text[i] == '.') {
      i++;
      const std::size_t fraction_start = i;
      while (i < text.size() && is_digit(text[i])) i++;
      fraction_digits = text.substr(fraction_start, i - fraction_start);
      if (fraction_digits.empty()) return fail("expected digits after '.'");
      fraction_seen = true;
    }
    const std::size_t unit_start = i;
    while (i < text.size() && is_alpha(text[i])) i++;
    const std::string_view unit_name = text.substr(unit_start, i - unit_start);
    if (unit_name.empty()) {
      return fail(fmt::format("missing unit after '{}' (use d, h, m, s, ms, us or ns)",
                              text.substr(int_start, i - int_start)));
    }
    std::size_t unit_index = kUnits.size();
    for (std::size_t u = 0; u < kUnits.size(); u++) {
      if (kUnits[u].name == unit_name) unit_index = u;
    }
    if (unit_index == kUnits.size()) {
      return fail(fmt::format("unknown unit '{}' (use d, h, m, s, ms, us or ns)", unit_name));
    }
    if (unit_index < unit_next) {
      return fail(fmt::format("unit '{}' out of order (units go from largest to smallest, each once)", unit_name));
    }
    unit_next = unit_index + 1;
    // 20 digits fit 128 bits even when multiplied by a day in nanoseconds;
    // anything longer is past the limit anyway.
    if (int_digits.size() > 20 || fraction_digits.size() > 18) {
      return fail(fmt::format("'{}' has too many digits", original));
    }
    const auto unit_ns = static_cast<Uint128>(kUnits[unit_index].ns);
    total_ns += digits_value(int_digits) * unit_ns;
    if (!fraction_digits.empty()) {
      Uint128 scale = 1;
      for (std::size_t d = 0; d < fraction_digits.size(); d++) scale *= 10;
      const Uint128 fraction_ns = digits_value(fraction_digits) * unit_ns;
      if (fraction_ns % scale != 0) return fail(fmt::format("'{}' is finer than a nanosecond", original));
      total_ns += fraction_ns / scale;
    }
    if (total_ns > max_ns) {
      return fail(fmt::format("'{}' is longer than the limit of {}", original,
                              format_plan_duration(kFaultPlanDurationMax)));
    }
  }
  if (unit_next == 0) return fail(fmt::format("'{}' has no number", original));
  const auto ns = static_cast<std::int64_t>(total_ns);
  return Duration{negative ? -ns : ns};
}

std::string FaultAction::invalid_reason() const {
  if (!kind_is_known(kind)) return fmt::format("unknown fault kind {}", static_cast<int>(kind));
  const char* verb = fault_kind_name(kind);
  if (at < Duration::zero() || at > kFaultPlanDurationMax) {
    return fmt::format("time {} is outside [0, {}]", format_plan_duration(at),
                       format_plan_duration(kFaultPlanDurationMax));
  }
  if (takes_one_node(kind)) {
    if (nodes.size() != 1) return fmt::format("{} takes exactly one node, not {}", verb, nodes.size());
    if (std::string reason = invalid_name_reason(nodes.front()); !reason.empty()) return fmt::format("node {}", reason);
  } else if (kind == FaultKind::kPartition) {
    if (nodes.empty()) return "partition needs at least one node on its first side";
    if (std::string reason = check_side(nodes, "A"); !reason.empty()) return reason;
    if (std::string reason = check_side(others, "B"); !reason.empty()) return reason;
    if (std::string both = first_common(nodes, others); !both.empty()) {
      return fmt::format("node '{}' is on both sides of the partition", both);
    }
  } else if (!nodes.empty()) {
    return fmt::format("{} takes no nodes", verb);
  }
  if (kind != FaultKind::kPartition && !others.empty()) return fmt::format("{} takes no second side", verb);
  if (kind != FaultKind::kPartition && one_way) return fmt::format("{} cannot be one-way", verb);

  if (takes_duration(kind)) {
    if (duration <= Duration::zero() || duration > kFaultPlanDurationMax) {
      return fmt::format("{} needs a duration in (0, {}], not {}", verb, format_plan_duration(kFaultPlanDurationMax),
                         format_plan_duration(duration));
    }
  } else if (duration != Duration::zero()) {
    return fmt::format("{} takes no duration", verb);
  }

  if (kind == FaultKind::kClockJump) {
    if (clock_delta == Duration::zero()) return "clock-jump needs a non-zero delta";
    if (clock_delta > kFaultPlanDurationMax || clock_delta < -kFaultPlanDurationMax) {
      return fmt::format("clock-jump delta {} is longer than the limit of {}", format_plan_duration(clock_delta),
                         format_plan_duration(kFaultPlanDurationMax));
    }
  } else if (clock_delta != Duration::zero()) {
    return fmt::format("{} takes no clock delta", verb);
  }

  if (takes_probability(kind)) {
    // Written this way round so NaN fails too.
    if (!(probability > 0.0 && probability <= 1.0)) {
      return fmt::format("probability {} is outside (0, 1]", probability);
    }
  } else if (probability != 0.0) {
    return fmt::format("{} takes no probability", verb);
  }

  if (kind == FaultKind::kOutage) {
    if (std::string reason = invalid_name_reason(service); !reason.empty()) return fmt::format("service {}", reason);
  } else if (!service.empty()) {
    return fmt::format("{} takes no service", verb);
  }
  return {};
}

Result<void> FaultPlan::validate() const {
  auto fail = [](std::string reason) { return Error{ErrorCode::kInvalidArgument, std::move(reason)}; };
  if (std::string reason = invalid_name_reason(profile); !reason.empty()) {
    return fail(fmt::format("profile: {}", reason));
  }
  if (chaos < Duration::zero() || chaos > kFaultPlanDurationMax) {
    return fail(fmt::format("chaos: {} is outside [0, {}]", format_plan_duration(chaos),
                            format_plan_duration(kFaultPlanDurationMax)));
  }
  if (actions.size() > kFaultPlanActionsMax) {
    return fail(fmt::format("{} actions, more than the limit of {}", actions.size(), kFaultPlanActionsMax));
  }
  for (std::size_t i = 0; i < actions.size(); i++) {
    const FaultAction& action = actions[i];
    if (std::string reason = action.invalid_reason(); !reason.empty()) {
      return fail(fmt::format("action {}: {}", i + 1, reason));
    }
    if (std::string reason = line_too_long_reason(action); !reason.empty()) {
      return fail(fmt::format("action {}: {}", i + 1, reason));
    }
    if (action.at >= chaos) {
      return fail(fmt::format("action {}: time {} is not inside the chaos phase [0, {})", i + 1,
                              format_plan_duration(action.at), format_plan_duration(chaos)));
    }
    if (i > 0 && action.at < actions[i - 1].at) {
      return fail(fmt::format("action {}: time {} is before the previous action's {}", i + 1,
                              format_plan_duration(action.at), format_plan_duration(actions[i - 1].at)));
    }
  }
  return {};
}

std::string FaultPlan::to_text() const {
  const Result<void> valid = validate();
  DURO_ASSERT_MSG(valid.ok(), "FaultPlan::to_text() of an invalid plan; see validate()");
  std::string out;
  out += kHeader;
  out += "\n# One action per line, in time order. To shrink a failure, delete lines or\n"
         "# change times, then replay this file (docs/faults.md).\n";
  out += fmt::format("seed {}\nprofile {}\nchaos {}\n", seed, profile, format_plan_duration(chaos));
  for (const FaultAction& action : actions) {
    out += action_text(action);
    out += '\n';
  }
  return out;
}

Result<FaultPlan> FaultPlan::parse(std::string_view text) { return Parser().run(text); }

Result<FaultPlan> read_fault_plan_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Error{ErrorCode::kNotFound, fmt::format("{}: cannot open", path)};
  std::string text;
  std::array<char, 64 * 1024> buffer{};
  // Each pass reads a full buffer or hits the end; the size cap bounds it.
  for (;;) {
    in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
    text.append(buffer.data(), static_cast<std::size_t>(in.gcount()));
    if (text.size() > kFaultPlanTextBytesMax) {
      return Error{ErrorCode::kInvalidArgument,
                   fmt::format("{}: larger than the limit of {} bytes", path, kFaultPlanTextBytesMax)};
    }
    if (!in) break;
  }
  if (in.bad()) return Error{ErrorCode::kIoError, fmt::format("{}: read failed", path)};
  Result<FaultPlan> plan = FaultPlan::parse(text);
  if (!plan) return Error{plan.error().code, fmt::format("{}: {}", path, plan.error().message)};
  return plan;
}

Result<void> write_fault_plan_file(const std::string& path, const FaultPlan& plan) {
  const std::string text = plan.to_text();
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) return Error{ErrorCode::kIoError, fmt::format("{}: cannot open for writing", path)};
  out.write(text.data(), static_cast<std::streamsize>(text.size()));
  out.close();
  if (!out) return Error{ErrorCode::kIoError, fmt::format("{}: write failed", path)};
  return {};
}

}  // namespace duro::sim
