#include "engine/history/history_json.h"

#include <array>
#include <charconv>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "engine/history/reflect.h"
#include "engine/history/text_encoding.h"
#include "sim/assert.h"
#include "sim/clock.h"

namespace duro::engine {
namespace {

// Ordered: keys come out in the order written (eventId first, fields in
// their declared order), which is what a person reading expects.
using Json = nlohmann::ordered_json;

constexpr std::int64_t kSecondNs = 1'000'000'000;

// --- Text helpers (base64 and UTF-8: text_encoding.h) ---------------------------

// "workflow_task_completed_event_id" -> "workflowTaskCompletedEventId".
std::string camel_case(std::string_view snake) {
  std::string out;
  out.reserve(snake.size());
  bool upper = false;
  for (const char c : snake) {
    if (c == '_') {
      upper = true;
    } else {
      out += upper && c >= 'a' && c <= 'z' ? static_cast<char>(c - 'a' + 'A') : c;
      upper = false;
    }
  }
  return out;
}

// Payload fields carry opaque bytes (Payload is a std::string, so the type
// cannot say): these names, in every struct of the model.
bool is_payload_field(std::string_view name) {
  return name == "input" || name == "result" || name == "details" || name == "last_completion_result";
}

// --- Durations and times ----------------------------------------------------

// Protobuf's JSON duration: seconds, then as many fraction digits as needed
// (none for whole seconds), then "s".
std::string format_duration_json(sim::Duration duration) {
  const std::int64_t ns = duration.count();
  // Magnitude in unsigned arithmetic: -INT64_MIN does not fit an int64.
  const std::uint64_t magnitude = ns < 0 ? std::uint64_t{0} - static_cast<std::uint64_t>(ns)
                                         : static_cast<std::uint64_t>(ns);
  const std::uint64_t seconds = magnitude / kSecondNs;
  std::uint64_t fraction_ns = magnitude % kSecondNs;
  std::string out = ns < 0 ? "-" : "";
  out += std::to_string(seconds);
  if (fraction_ns != 0) {
    std::string digits = fmt::format("{:09}", fraction_ns);
    while (digits.back() == '0') digits.pop_back();
    out += '.';
    out += digits;
  }
  out += 's';
  return out;
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }

std::optional<sim::Duration> parse_duration_json(std::string_view text) {
  std::size_t i = 0;
  const bool negative = i < text.size() && text[i] == '-';
  if (negative) i++;
  std::uint64_t seconds = 0;
  std::size_t digits = 0;
  for (; i < text.size() && is_digit(text[i]); i++, digits++) {
    if (digits == 12) return std::nullopt;  // Far beyond the range; keeps the arithmetic in 64 bits.
    seconds = seconds * 10 + static_cast<std::uint64_t>(text[i] - '0');
  }
  if (digits == 0) return std::nullopt;
  std::uint64_t fraction_ns = 0;
  if (i < text.size() && text[i] == '.') {
    i++;
    std::size_t fraction_digits = 0;
    for (; i < text.size() && is_digit(text[i]); i++, fraction_digits++) {
      if (fraction_digits == 9) return std::nullopt;  // Below a nanosecond.
      fraction_ns = fraction_ns * 10 + static_cast<std::uint64_t>(text[i] - '0');
    }
    if (fraction_digits == 0) return std::nullopt;
    for (; fraction_digits < 9; fraction_digits++) fraction_ns *= 10;
  }
  if (i + 1 != text.size() || text[i] != 's') return std::nullopt;
  // seconds < 10^12, so this stays below 2^64.
  const std::uint64_t magnitude = seconds * kSecondNs + fraction_ns;
  const std::uint64_t limit = std::uint64_t{1} << 63;  // -INT64_MIN; INT64_MAX is one less.
  if (magnitude > (negative ? limit : limit - 1)) return std::nullopt;
  if (!negative) return sim::Duration{static_cast<std::int64_t>(magnitude)};
  if (magnitude == limit) return sim::Duration{std::numeric_limits<std::int64_t>::min()};
  return sim::Duration{-static_cast<std::int64_t>(magnitude)};
}

// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
// days_from_civil): by hand, like sim::format_time, so it does not depend
// on the C library's time zone database.
std::int64_t days_from_civil(std::int64_t year, std::int64_t month, std::int64_t day) {
  year -= month <= 2 ? 1 : 0;
  const std::int64_t era = (year >= 0 ? year : year - 399) / 400;
  const std::int64_t year_of_era = year - era * 400;
  const std::int64_t day_of_year = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1;
  const std::int64_t day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
  return era * 146097 + day_of_era - 719468;
}

std::int64_t days_in_month(std::int64_t year, std::int64_t month) {
  static constexpr std::array<std::int64_t, 12> kDays = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  const bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
  return month == 2 && leap ? 29 : kDays[static_cast<std::size_t>(month - 1)];
}

// RFC 3339: "YYYY-MM-DDTHH:MM:SS[.fraction]" then "Z" or "+hh:mm"/"-hh:mm".
// Leap seconds (":60") are refused: the simulator's clock has none.
std::optional<sim::TimePoint> parse_time_json(std::string_view text) {
  std::size_t i = 0;
  const auto number = [&](std::size_t width, std::int64_t& out) {
    if (i + width > text.size()) return false;
    out = 0;
    for (std::size_t k = 0; k < width; k++) {
      if (!is_digit(text[i + k])) return false;
      out = out * 10 + (text[i + k] - '0');
    }
    i += width;
    return true;
  };
  const auto expect = [&](char a, char b) {
    if (i >= text.size() || (text[i] != a && text[i] != b)) return false;
    i++;
    return true;
  };
  std::int64_t year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0;
  if (!number(4, year) || !expect('-', '-') || !number(2, month) || !expect('-', '-') || !number(2, day) ||
      !expect('T', 't') || !number(2, hour) || !expect(':', ':') || !number(2, minute) || !expect(':', ':') ||
      !number(2, second)) {
    return std::nullopt;
  }
  std::int64_t fraction_ns = 0;
  if (i < text.size() && text[i] == '.') {
    i++;
    std::size_t digits = 0;
    for (; i < text.size() && is_digit(text[i]); i++, digits++) {
      if (digits == 9) return std::nullopt;
      fraction_ns = fraction_ns * 10 + (text[i] - '0');
    }
    if (digits == 0) return std::nullopt;
    for (; digits < 9; digits++) fraction_ns *= 10;
  }
  std::int64_t offset_s = 0;
  if (expect('Z', 'z')) {
    // UTC.
  } else if (i < text.size() && (text[i] == '+' || text[i] == '-')) {
    const std::int64_t sign = text[i] == '-' ? -1 : 1;
    i++;
    std::int64_t offset_hours = 0, offset_minutes = 0;
    if (!number(2, offset_hours) || !expect(':', ':') || !number(2, offset_minutes)) return std::nullopt;
    if (offset_hours > 23 || offset_minutes > 59) return std::nullopt;
    offset_s = sign * (offset_hours * 3600 + offset_minutes * 60);
  } else {
    return std::nullopt;
  }
  if (i != text.size()) return std::nullopt;
  if (month < 1 || month > 12 || day < 1 || day > days_in_month(year, month) || hour > 23 || minute > 59 ||
      second > 59) {
    return std::nullopt;
  }
  // Four-digit years keep this far inside 64 bits; the checked arithmetic
  // below is for the nanosecond count, which spans only 1677..2262.
  std::int64_t seconds = days_from_civil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second - offset_s;
  if (seconds < 0 && fraction_ns > 0) {
    // The same instant, so that the product below does not overflow for
    // times just inside the lower end of the range.
    seconds += 1;
    fraction_ns -= kSecondNs;
  }
  std::int64_t ns = 0;
  if (__builtin_mul_overflow(seconds, kSecondNs, &ns) || __builtin_add_overflow(ns, fraction_ns, &ns)) {
    return std::nullopt;
  }
  return sim::TimePoint{sim::Duration{ns}};
}

// --- Writing ----------------------------------------------------------------

// Text as a JSON string, or as {"data": base64} if it is not UTF-8.
Json text_json(const std::string& text) {
  if (is_utf8(text)) return Json(text);
  Json bytes = Json::object();
  bytes["data"] = base64_encode(text);
  return bytes;
}

template <typename T>
Json write(const T& value, bool payload);

template <typename T>
Json write_struct(const T& value) {
  Json object = Json::object();
  sim::for_each_codec_field(value, [&](std::string_view name, const auto& field) {
    object[camel_case(name)] = write(field, is_payload_field(name));
  });
  return object;
}

template <typename T>
Json write(const T& value, bool payload) {
  if constexpr (std::is_same_v<T, bool>) {
    return Json(value);
  } else if constexpr (std::is_enum_v<T>) {
    if (enum_in_range(value)) return Json(std::string(enum_name(value)));
    // Names no enumerator (a history built in code): the number, which
    // the reader refuses, rather than losing it silently.
    return Json(static_cast<std::int64_t>(value));
  } else if constexpr (std::is_integral_v<T>) {
    if constexpr (std::is_signed_v<T>) {
      return Json(static_cast<std::int64_t>(value));
    } else {
      return Json(static_cast<std::uint64_t>(value));
    }
  } else if constexpr (std::is_same_v<T, double>) {
    if (value != value) return Json("NaN");
    if (value == std::numeric_limits<double>::infinity()) return Json("Infinity");
    if (value == -std::numeric_limits<double>::infinity()) return Json("-Infinity");
    return Json(value);
  } else if constexpr (std::is_same_v<T, std::string>) {
    if (!payload) return text_json(value);
    Json object = Json::object();
    object["data"] = base64_encode(value);
    return object;
  } else if constexpr (std::is_same_v<T, sim::Duration>) {
    return Json(format_duration_json(value));
  } else if constexpr (std::is_same_v<T, sim::TimePoint>) {
    return Json(sim::format_time(value));
  } else if constexpr (kIsOptional<T>) {
    return value.has_value() ? write(*value, payload) : Json(nullptr);
  } else if constexpr (kIsVector<T>) {
    Json array = Json::array();
    for (const auto& element : value) array.push_back(write(element, payload));
    return array;
  } else if constexpr (kIsMap<T>) {
    static_assert(std::is_same_v<typename T::key_type, std::string>, "the model's maps are keyed by text");
    bool keys_utf8 = true;
    for (const auto& entry : value) keys_utf8 = keys_utf8 && is_utf8(entry.first);
    if (keys_utf8) {
      Json object = Json::object();
      for (const auto& [key, mapped] : value) object[key] = write(mapped, payload);
      return object;
    }
    Json array = Json::array();
    for (const auto& [key, mapped] : value) {
      Json entry = Json::object();
      entry["key"] = text_json(key);
      entry["value"] = write(mapped, payload);
      array.push_back(std::move(entry));
    }
    return array;
  } else {
    static_assert(sim::detail::CodecDescribed<T>, "a field type the JSON form does not know");
    return write_struct(value);
  }
}

Json write_event(const HistoryEvent& event) {
  Json object = Json::object();
  object["eventId"] = event.event_id;
  object["eventTime"] = sim::format_time(event.time);
  object["eventType"] = std::string(event_type_name(event.type()));
  object[event_attributes_key(event.type())] =
      std::visit([](const auto& attributes) { return write_struct(attributes); }, event.attributes);
  return object;
}

std::string dump(const Json& json, bool pretty) {
  // Every string written is valid UTF-8 (text_json checks), so `replace`
  // never fires; it is there so that dump() cannot throw.
  return json.dump(pretty ? 2 : -1, ' ', false, Json::error_handler_t::replace);
}

// --- Reading ----------------------------------------------------------------

template <std::size_t... I>
void emplace_alternative(EventAttributes& attributes, std::size_t index, std::index_sequence<I...>) {
  ((index == I ? static_cast<void>(attributes.emplace<I>()) : static_cast<void>(0)), ...);
}

// Reads values, keeping the path to where it is ("events[3] (eventId 4):
// timerStartedEventAttributes.startToFireTimeout") for its first error.
class Reader {
 public:
  // Extends the path for its lifetime.
  class Scope {
   public:
    Scope(Reader& reader, std::string_view segment) : reader_(reader), size_(reader.path_.size()) {
      reader_.path_ += segment;
    }
    ~Scope() { reader_.path_.resize(size_); }
    Scope(const Scope&) = delete;
    Scope& operator=(const Scope&) = delete;

   private:
    Reader& reader_;
    std::size_t size_;
  };

  bool failed() const noexcept { return error_.has_value(); }
  const sim::Error& error() const {
    DURO_ASSERT(failed());
    return *error_;
  }

  // Records the first error; always false.
  bool fail(std::string_view what) {
    if (!error_.has_value()) {
      std::string message = path_.empty() ? std::string("history") : path_;
      // A path that ends at an event ("events[3] (eventId 4): ") has its
      // separator already.
      if (!message.ends_with(": ")) message += ": ";
      message += what;
      error_ = sim::Error{sim::ErrorCode::kInvalidArgument, std::move(message)};
    }
    return false;
  }

  bool fail_expected(std::string_view expected, const Json& got) {
    return fail(fmt::format("expected {}, got {}", expected, describe(got)));
  }

  template <typename T>
  bool read(const Json& json, T& value, bool payload);

  template <typename T>
  bool read_struct(const Json& json, T& value);

  bool read_event(const Json& json, std::size_t index, HistoryEvent& event);
  bool read_history(const Json& json, History& history);

 private:
  // A short description of a value for messages: its type and its text,
  // cut to a readable length.
  // Containers are not printed: dump() recurses, and input may nest a
  // million levels deep.
  static std::string describe(const Json& json) {
    if (json.is_null()) return "null";
    if (json.is_array()) return json.empty() ? "array []" : "array [...]";
    if (json.is_object()) return json.empty() ? "object {}" : "object {...}";
    std::string text = json.dump(-1, ' ', false, Json::error_handler_t::replace);
    if (text.size() > 40) text = text.substr(0, 37) + "...";
    return fmt::format("{} {}", json.type_name(), text);
  }

  template <typename T>
  bool read_integer(const Json& json, T& value);
  bool read_text(const Json& json, std::string& value);
  bool read_bytes(const Json& json, std::string& value);

  std::string path_;
  std::optional<sim::Error> error_;
};

template <typename T>
bool Reader::read_integer(const Json& json, T& value) {
  if (json.is_number_unsigned()) {
    const auto raw = json.get<std::uint64_t>();
    if (!std::in_range<T>(raw)) return fail(fmt::format("{} is out of range", raw));
    value = static_cast<T>(raw);
    return true;
  }
  if (json.is_number_integer()) {
    const auto raw = json.get<std::int64_t>();
    if (!std::in_range<T>(raw)) return fail(fmt::format("{} is out of range", raw));
    value = static_cast<T>(raw);
    return true;
  }
  if (json.is_string()) {
    // Protobuf's JSON form writes 64-bit integers as decimal strings.
    const std::string& text = json.get_ref<const std::string&>();
    T parsed{};
    const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), parsed);
    if (error == std::errc() && end == text.data() + text.size() && !text.empty()) {
      value = parsed;
      return true;
    }
    if (error == std::errc::result_out_of_range) return fail(fmt::format("{} is out of range", text));
  }
  return fail_expected("an integer", json);
}

bool Reader::read_bytes(const Json& json, std::string& value) {
  if (!json.is_object()) return fail_expected("{\"data\": \"<base64>\"}", json);
  const auto data = json.find("data");
  if (data == json.end()) return fail("missing required field data");
  for (auto it = json.begin(); it != json.end(); ++it) {
    if (it.key() != "data") return fail(fmt::format("unknown field \"{}\"", it.key()));
  }
  if (!data->is_string()) return fail_expected("a base64 string in data", *data);
  std::optional<std::string> bytes = base64_decode(data->get_ref<const std::string&>());
  if (!bytes.has_value()) return fail("data is not valid base64");
  value = std::move(*bytes);
  return true;
}

bool Reader::read_text(const Json& json, std::string& value) {
  if (json.is_string()) {
    value = json.get<std::string>();
    return true;
  }
  if (json.is_object()) return read_bytes(json, value);
  return fail_expected("a string", json);
}

template <typename T>
bool Reader::read_struct(const Json& json, T& value) {
  if (!json.is_object()) return fail_expected("an object", json);
  bool ok = true;
  sim::for_each_codec_field(value, [&](std::string_view name, auto& field) {
    if (!ok) return;
    const std::string key = camel_case(name);
    const auto it = json.find(key);
    if (it == json.end()) return;  // Omitted: the field's default.
    Scope scope(*this, "." + key);
    ok = read(*it, field, is_payload_field(name));
  });
  if (!ok) return false;
  constexpr auto names = sim::codec_field_names<T>();
  for (auto it = json.begin(); it != json.end(); ++it) {
    bool known = false;
    for (const std::string_view name : names) known = known || camel_case(name) == it.key();
    if (!known) return fail(fmt::format("unknown field \"{}\"", it.key()));
  }
  return true;
}

template <typename T>
bool Reader::read(const Json& json, T& value, bool payload) {
  if constexpr (std::is_same_v<T, bool>) {
    if (!json.is_boolean()) return fail_expected("true or false", json);
    value = json.get<bool>();
    return true;
  } else if constexpr (std::is_enum_v<T>) {
    if (json.is_string()) {
      const std::optional<T> named = enum_from_name<T>(json.get_ref<const std::string&>());
      if (!named.has_value()) return fail(fmt::format("unknown name {}", describe(json)));
      value = *named;
      return true;
    }
    std::underlying_type_t<T> raw{};
    if (!json.is_number_integer() || !read_integer(json, raw)) return fail_expected("an enumerator's name", json);
    if (!enum_in_range(static_cast<T>(raw))) return fail(fmt::format("{} names no enumerator", raw));
    value = static_cast<T>(raw);
    return true;
  } else if constexpr (std::is_integral_v<T>) {
    return read_integer(json, value);
  } else if constexpr (std::is_same_v<T, double>) {
    if (json.is_number()) {
      value = json.get<double>();
      return true;
    }
    if (json.is_string()) {
      const std::string& text = json.get_ref<const std::string&>();
      if (text == "NaN") value = std::numeric_limits<double>::quiet_NaN();
      else if (text == "Infinity") value = std::numeric_limits<double>::infinity();
      else if (text == "-Infinity") value = -std::numeric_limits<double>::infinity();
      else return fail_expected("a number", json);
      return true;
    }
    return fail_expected("a number", json);
  } else if constexpr (std::is_same_v<T, std::string>) {
    return payload ? read_bytes(json, value) : read_text(json, value);
  } else if constexpr (std::is_same_v<T, sim::Duration>) {
    std::optional<sim::Duration> duration;
    if (json.is_string()) duration = parse_duration_json(json.get_ref<const std::string&>());
    if (!duration.has_value()) return fail_expected("a duration string like \"1.5s\"", json);
    value = *duration;
    return true;
  } else if constexpr (std::is_same_v<T, sim::TimePoint>) {
    std::optional<sim::TimePoint> time;
    if (json.is_string()) time = parse_time_json(json.get_ref<const std::string&>());
    if (!time.has_value()) return fail_expected("an RFC 3339 time like \"2026-01-01T00:00:00.000000000Z\"", json);
    value = *time;
    return true;
  } else if constexpr (kIsOptional<T>) {
    if (json.is_null()) {
      value.reset();
      return true;
    }
    return read(json, value.emplace(), payload);
  } else if constexpr (kIsVector<T>) {
    if (!json.is_array()) return fail_expected("an array", json);
    value.clear();
    for (std::size_t i = 0; i < json.size(); i++) {
      Scope scope(*this, fmt::format("[{}]", i));
      if (!read(json[i], value.emplace_back(), payload)) return false;
    }
    return true;
  } else if constexpr (kIsMap<T>) {
    value.clear();
    if (json.is_object()) {
      for (auto it = json.begin(); it != json.end(); ++it) {
        Scope scope(*this, fmt::format(".{}", it.key()));
        typename T::mapped_type mapped{};
        if (!read(it.value(), mapped, payload)) return false;
        value.insert_or_assign(it.key(), std::move(mapped));
      }
      return true;
    }
    if (!json.is_array()) return fail_expected("an object", json);
    // The form for keys that are not UTF-8: [{"key": ..., "value": ...}].
    for (std::size_t i = 0; i < json.size(); i++) {
      Scope scope(*this, fmt::format("[{}]", i));
      const Json& entry = json[i];
      if (!entry.is_object() || entry.size() != 2 || !entry.contains("key") || !entry.contains("value")) {
        return fail_expected("{\"key\": ..., \"value\": ...}", entry);
      }
      std::string key;
      typename T::mapped_type mapped{};
      {
        Scope key_scope(*this, ".key");
        if (!read_text(entry["key"], key)) return false;
      }
      {
        Scope value_scope(*this, ".value");
        if (!read(entry["value"], mapped, payload)) return false;
      }
      if (!value.emplace(std::move(key), std::move(mapped)).second) return fail("duplicate key");
    }
    return true;
  } else {
    static_assert(sim::detail::CodecDescribed<T>, "a field type the JSON form does not know");
    return read_struct(json, value);
  }
}

bool Reader::read_event(const Json& json, std::size_t index, HistoryEvent& event) {
  Scope scope(*this, fmt::format("events[{}]", index));
  if (!json.is_object()) return fail_expected("an event object", json);

  const auto id = json.find("eventId");
  if (id == json.end()) return fail("missing required field eventId");
  {
    Scope field(*this, ": eventId");
    if (!read(*id, event.event_id, false)) return false;
  }
  // From here on, messages name the event by its id too.
  Scope with_id(*this, fmt::format(" (eventId {}): ", event.event_id));

  const auto time = json.find("eventTime");
  if (time == json.end()) return fail("missing required field eventTime");
  {
    Scope field(*this, "eventTime");
    if (!read(*time, event.time, false)) return false;
  }

  const auto type_name = json.find("eventType");
  if (type_name == json.end()) return fail("missing required field eventType");
  if (!type_name->is_string()) {
    Scope field(*this, "eventType");
    return fail_expected("an event type name", *type_name);
  }
  const std::optional<EventType> type = event_type_from_name(type_name->get_ref<const std::string&>());
  if (!type.has_value()) {
    Scope field(*this, "eventType");
    return fail(fmt::format("unknown event type \"{}\"", type_name->get_ref<const std::string&>()));
  }

  const std::string key = event_attributes_key(*type);
  for (auto it = json.begin(); it != json.end(); ++it) {
    const std::string& name = it.key();
    if (name != "eventId" && name != "eventTime" && name != "eventType" && name != key) {
      return fail(fmt::format("unknown field \"{}\" (a {} event's attributes are {})", name,
                              type_name->get_ref<const std::string&>(), key));
    }
  }
  const auto attributes = json.find(key);
  if (attributes == json.end()) return fail(fmt::format("missing required field {}", key));
  emplace_alternative(event.attributes, static_cast<std::size_t>(*type) - 1,
                      std::make_index_sequence<kEventTypeCount>{});
  DURO_ASSERT(event.type() == *type);
  Scope field(*this, key);
  return std::visit([&](auto& alternative) { return read_struct(*attributes, alternative); }, event.attributes);
}

bool Reader::read_history(const Json& json, History& history) {
  if (!json.is_object()) return fail_expected("an object {\"events\": [...]}", json);
  for (auto it = json.begin(); it != json.end(); ++it) {
    if (it.key() != "events") return fail(fmt::format("unknown field \"{}\"", it.key()));
  }
  const auto events = json.find("events");
  if (events == json.end()) return fail("missing required field events");
  if (!events->is_array()) return fail_expected("an array of events", *events);
  history.events.clear();
  history.events.reserve(events->size());
  for (std::size_t i = 0; i < events->size(); i++) {
    if (!read_event((*events)[i], i, history.events.emplace_back())) return false;
  }
  return true;
}

}  // namespace

std::string event_attributes_key(EventType type) {
  std::string key(event_type_name(type));
  if (!key.empty() && key[0] >= 'A' && key[0] <= 'Z') key[0] = static_cast<char>(key[0] - 'A' + 'a');
  key += "EventAttributes";
  return key;
}

std::string to_json(const History& history, bool pretty) {
  Json events = Json::array();
  for (const HistoryEvent& event : history.events) events.push_back(write_event(event));
  Json root = Json::object();
  root["events"] = std::move(events);
  return dump(root, pretty);
}

std::string to_json(const HistoryEvent& event) { return dump(write_event(event), false); }

sim::Result<History> history_from_json(std::string_view json) {
  Json root;
  try {
    root = Json::parse(json.begin(), json.end());
  } catch (const Json::parse_error& error) {
    return sim::Error{sim::ErrorCode::kDecode, fmt::format("JSON parse error at byte {}: {}", error.byte, error.what())};
  } catch (const Json::exception& error) {
    // Not only parse_error: a number too large for a double is out_of_range
    // (found by fuzz/history_file_fuzzer.cc).
    return sim::Error{sim::ErrorCode::kDecode, fmt::format("JSON parse error: {}", error.what())};
  }
  History history;
  Reader reader;
  try {
    reader.read_history(root, history);
  } catch (const Json::exception& error) {
    // Every access above checks the type first; this is a backstop, so
    // that no input can make an exception escape.
    return sim::Error{sim::ErrorCode::kInvalidArgument, fmt::format("malformed history JSON: {}", error.what())};
  }
  if (reader.failed()) return reader.error();
  return history;
}

}  // namespace duro::engine
