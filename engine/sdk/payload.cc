#include "engine/sdk/payload.h"

#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "engine/history/text_encoding.h"

namespace duro::sdk::detail {
namespace {

constexpr std::array<std::string_view, kDurationUnitCount> kDurationUnitNames = {"ns", "us", "ms", "s", "min", "h"};


void replace_all(std::string& text, std::string_view from, std::string_view to) {
  for (std::size_t at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size())) {
    text.replace(at, from.size(), to);
  }
}

// A short description of a JSON value for messages: its type and its text,
// cut to a readable length. Containers are not printed: dump() recurses,
// and input may nest deep.
std::string describe(const nlohmann::json& json) {
  if (json.is_null()) return "null";
  if (json.is_array()) return json.empty() ? "array []" : "array [...]";
  if (json.is_object()) return json.empty() ? "object {}" : "object {...}";
  std::string text = json.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  if (text.size() > 40) text = text.substr(0, 37) + "...";
  return fmt::format("{} {}", json.type_name(), text);
}

}  // namespace

std::string readable_type_name(std::string_view raw) {
  std::string name(raw);
  replace_all(name, "std::__cxx11::basic_string<char>", "std::string");
  replace_all(name, "std::basic_string<char>", "std::string");
  replace_all(name, "std::__cxx11::", "std::");
  replace_all(name, "std::__1::", "std::");
  replace_all(name, " >", ">");
  return name;
}

JsonError::JsonError(std::string_view type, std::string path, std::string problem)
    : NamedPayloadError(fmt::format("cannot read {} from JSON: at ${}: {}", readable_type_name(type), path, problem)),
      path_(std::move(path)),
      problem_(std::move(problem)) {}

void throw_decode_error(std::string_view type, const sim::Decoder& decoder) {
  throw NamedPayloadError(
      fmt::format("cannot decode {} from payload: {}", readable_type_name(type), decoder.error().message));
}

void throw_json_error_at(std::string_view type, std::string path, std::string problem) {
  throw JsonError(type, std::move(path), std::move(problem));
}

std::string expected_problem(std::string_view type, std::string_view expected, const nlohmann::json& got) {
  return fmt::format("expected {} ({}), got {}", expected, readable_type_name(type), describe(got));
}

void throw_converter_error(std::string_view type, bool json, std::string_view what) {
  throw NamedPayloadError(fmt::format("cannot {} {} from {}: {}", json ? "read" : "decode", readable_type_name(type),
                                      json ? "JSON" : "payload", what));
}

void rethrow_nested_json_error(std::string_view outer_type, std::string_view inner_type, std::string_view segment) {
  try {
    throw;
  } catch (const JsonError& error) {
    throw JsonError(outer_type, std::string(segment) + error.path(), error.problem());
  } catch (const PayloadError& error) {
    // From a specialization: its message, after its type.
    throw JsonError(outer_type, std::string(segment), fmt::format("{}: {}", readable_type_name(inner_type), error.what()));
  } catch (const nlohmann::json::exception& error) {
    throw JsonError(outer_type, std::string(segment), fmt::format("{}: {}", readable_type_name(inner_type), error.what()));
  }
}

void throw_unknown_field(std::string_view type, std::string_view key, const std::string_view* names,
                         std::size_t name_count) {
  std::string known;
  for (std::size_t i = 0; i < name_count; i++) {
    if (i > 0) known += ", ";
    known += names[i];
  }
  throw_json_error(type, fmt::format("unknown field {} (the fields are {})",
                                     nlohmann::json(std::string(key)).dump(-1, ' ', false,
                                                                           nlohmann::json::error_handler_t::replace),
                                     known));
}

bool is_utf8(std::string_view text) noexcept { return engine::is_utf8(text); }

nlohmann::json text_to_json(std::string_view text) {
  if (is_utf8(text)) return std::string(text);
  return bytes_to_json(text);
}

nlohmann::json bytes_to_json(std::string_view bytes) {
  nlohmann::json object = nlohmann::json::object();
  object["base64"] = engine::base64_encode(bytes);
  return object;
}

std::string text_from_json(std::string_view type, const nlohmann::json& json) {
  if (json.is_object()) return bytes_from_json(type, json);
  if (!json.is_string()) throw_json_expected(type, "a string", json);
  const std::string& text = json.get_ref<const std::string&>();
  if (text.size() > sim::kCodecLengthBytesMax) throw_json_error(type, "longer than sim::kCodecLengthBytesMax");
  return text;
}

std::string bytes_from_json(std::string_view type, const nlohmann::json& json) {
  constexpr std::string_view kExpected = "{\"base64\": \"...\"}";
  if (!json.is_object()) throw_json_expected(type, kExpected, json);
  for (auto it = json.begin(); it != json.end(); ++it) {
    if (it.key() != "base64") {
      static constexpr std::array<std::string_view, 1> kNames = {"base64"};
      throw_unknown_field(type, it.key(), kNames.data(), kNames.size());
    }
  }
  const auto data = json.find("base64");
  if (data == json.end()) throw_json_expected(type, kExpected, json);
  if (!data->is_string()) throw_json_error_at(type, ".base64", expected_problem(type, "a base64 string", *data));
  const std::string& text = data->get_ref<const std::string&>();
  // Checked before decoding: base64 is 4 characters for 3 bytes.
  if (text.size() / 4 * 3 > sim::kCodecLengthBytesMax + 2) {
    throw_json_error(type, "longer than sim::kCodecLengthBytesMax");
  }
  std::optional<std::string> bytes = engine::base64_decode(text);
  if (!bytes.has_value()) throw_json_error_at(type, ".base64", "not valid base64");
  if (bytes->size() > sim::kCodecLengthBytesMax) throw_json_error(type, "longer than sim::kCodecLengthBytesMax");
  return std::move(*bytes);
}

nlohmann::json double_to_json(double value) {
  if (std::isnan(value)) return "NaN";
  if (value == std::numeric_limits<double>::infinity()) return "Infinity";
  if (value == -std::numeric_limits<double>::infinity()) return "-Infinity";
  return value;
}

double double_from_json(std::string_view type, const nlohmann::json& json) {
  if (json.is_number()) return json.get<double>();
  if (json.is_string()) {
    const std::string& text = json.get_ref<const std::string&>();
    if (text == "NaN") return std::numeric_limits<double>::quiet_NaN();
    if (text == "Infinity") return std::numeric_limits<double>::infinity();
    if (text == "-Infinity") return -std::numeric_limits<double>::infinity();
  }
  throw_json_expected(type, "a number, \"NaN\", \"Infinity\" or \"-Infinity\"", json);
}

std::string key_segment(std::string_view key) {
  return "[" + nlohmann::json(std::string(key)).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) +
         "]";
}

std::string index_segment(std::size_t index) { return fmt::format("[{}]", index); }

std::string format_duration(bool negative, std::uint64_t magnitude_ticks, std::size_t tick_unit) {
  DURO_ASSERT(tick_unit < kDurationUnitCount);
  if (magnitude_ticks == 0) return "0s";
  // The coarsest unit that divides it; the tick's own unit always does.
  for (std::size_t unit = kDurationUnitCount - 1;; unit--) {
    const std::uint64_t factor = kDurationUnitNs[unit] / kDurationUnitNs[tick_unit];
    if (magnitude_ticks % factor == 0) {
      return fmt::format("{}{}{}", negative ? "-" : "", magnitude_ticks / factor, kDurationUnitNames[unit]);
    }
    DURO_ASSERT(unit > tick_unit);
  }
}

bool parse_duration(std::string_view text, std::size_t tick_unit, bool& negative, std::uint64_t& magnitude_ticks,
                    std::string& problem) {
  DURO_ASSERT(tick_unit < kDurationUnitCount);
  const auto quoted = nlohmann::json(std::string(text)).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  std::size_t i = 0;
  negative = i < text.size() && text[i] == '-';
  if (negative) i++;
  std::uint64_t value = 0;
  const std::size_t digits_begin = i;
  for (; i < text.size() && text[i] >= '0' && text[i] <= '9'; i++) {
    const auto digit = static_cast<std::uint64_t>(text[i] - '0');
    if (value > (std::numeric_limits<std::uint64_t>::max() - digit) / 10) {
      problem = fmt::format("{} is out of range", quoted);
      return false;
    }
    value = value * 10 + digit;
  }
  const std::string_view unit_name = text.substr(i);
  std::size_t unit = kDurationUnitCount;
  for (std::size_t u = 0; u < kDurationUnitCount; u++) {
    if (kDurationUnitNames[u] == unit_name) unit = u;
  }
  if (i == digits_begin || unit == kDurationUnitCount) {
    problem = fmt::format("expected a duration: an integer, then h, min, s, ms, us or ns (\"90s\"), got {}", quoted);
    return false;
  }
  if (unit >= tick_unit) {
    const std::uint64_t factor = kDurationUnitNs[unit] / kDurationUnitNs[tick_unit];
    if (value > std::numeric_limits<std::uint64_t>::max() / factor) {
      problem = fmt::format("{} is out of range", quoted);
      return false;
    }
    magnitude_ticks = value * factor;
  } else {
    const std::uint64_t factor = kDurationUnitNs[tick_unit] / kDurationUnitNs[unit];
    if (value % factor != 0) {
      problem = fmt::format("{} is not a whole number of {}", quoted, kDurationUnitNames[tick_unit]);
      return false;
    }
    magnitude_ticks = value / factor;
  }
  return true;
}

}  // namespace duro::sdk::detail
