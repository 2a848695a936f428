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

namespace duro::sdk::detail {
namespace {

constexpr std::array<std::string_view, kDurationUnitCount> kDurationUnitNames = {"ns", "us", "ms", "s", "min", "h"};

constexpr std::string_view kBase64Alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

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

// Standard base64 (RFC 4648 section 4), with padding.
std::string base64_encode(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    const std::uint32_t group = std::uint32_t{static_cast<unsigned char>(bytes[i])} << 16 |
                                std::uint32_t{static_cast<unsigned char>(bytes[i + 1])} << 8 |
                                std::uint32_t{static_cast<unsigned char>(bytes[i + 2])};
    for (int shift = 18; shift >= 0; shift -= 6) out += kBase64Alphabet[(group >> shift) & 0x3F];
  }
  const std::size_t rest = bytes.size() - i;
  if (rest > 0) {
    std::uint32_t group = std::uint32_t{static_cast<unsigned char>(bytes[i])} << 16;
    if (rest == 2) group |= std::uint32_t{static_cast<unsigned char>(bytes[i + 1])} << 8;
    out += kBase64Alphabet[(group >> 18) & 0x3F];
    out += kBase64Alphabet[(group >> 12) & 0x3F];
    out += rest == 2 ? kBase64Alphabet[(group >> 6) & 0x3F] : '=';
    out += '=';
  }
  return out;
}

int base64_value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

// Strict: whole groups of four, padding only at the end, and the unused
// bits of a padded group zero, so that each byte string has one spelling.
std::optional<std::string> base64_decode(std::string_view text) {
  if (text.size() % 4 != 0) return std::nullopt;
  std::string out;
  out.reserve(text.size() / 4 * 3);
  for (std::size_t i = 0; i < text.size(); i += 4) {
    const bool last = i + 4 == text.size();
    const std::size_t padding = last ? (text[i + 3] == '=' ? (text[i + 2] == '=' ? 2 : 1) : 0) : 0;
    std::uint32_t group = 0;
    for (std::size_t k = 0; k < 4; k++) {
      int value = 0;
      if (k < 4 - padding) {
        value = base64_value(text[i + k]);
        if (value < 0) return std::nullopt;  // Includes a '=' out of place.
      }
      group = group << 6 | static_cast<std::uint32_t>(value);
    }
    out += static_cast<char>(group >> 16);
    if (padding < 2) out += static_cast<char>((group >> 8) & 0xFF);
    if (padding < 1) out += static_cast<char>(group & 0xFF);
    if ((padding == 1 && (group & 0xFF) != 0) || (padding == 2 && (group & 0xFFFF) != 0)) return std::nullopt;
  }
  return out;
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

// Well-formed UTF-8 (Unicode 15, table 3-7): no overlong forms, no
// surrogates, nothing above U+10FFFF. Exactly what the JSON library
// accepts, so text that passes is dumped unchanged.
bool is_utf8(std::string_view text) noexcept {
  std::size_t i = 0;
  while (i < text.size()) {
    const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(text[i + k]); };
    const unsigned char b0 = byte(0);
    if (b0 < 0x80) {
      i += 1;
      continue;
    }
    std::size_t length = 0;
    unsigned char low = 0x80;  // The range of the second byte.
    unsigned char high = 0xBF;
    if (b0 >= 0xC2 && b0 <= 0xDF) {
      length = 2;
    } else if (b0 >= 0xE0 && b0 <= 0xEF) {
      length = 3;
      if (b0 == 0xE0) low = 0xA0;   // Overlong.
      if (b0 == 0xED) high = 0x9F;  // Surrogates.
    } else if (b0 >= 0xF0 && b0 <= 0xF4) {
      length = 4;
      if (b0 == 0xF0) low = 0x90;   // Overlong.
      if (b0 == 0xF4) high = 0x8F;  // Above U+10FFFF.
    } else {
      return false;
    }
    if (i + length > text.size()) return false;
    if (byte(1) < low || byte(1) > high) return false;
    for (std::size_t k = 2; k < length; k++) {
      if (byte(k) < 0x80 || byte(k) > 0xBF) return false;
    }
    i += length;
  }
  return true;
}

nlohmann::json text_to_json(std::string_view text) {
  if (is_utf8(text)) return std::string(text);
  return bytes_to_json(text);
}

nlohmann::json bytes_to_json(std::string_view bytes) {
  nlohmann::json object = nlohmann::json::object();
  object["base64"] = base64_encode(bytes);
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
  std::optional<std::string> bytes = base64_decode(text);
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
