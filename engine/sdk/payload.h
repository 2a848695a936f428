// Payload conversion: user values to payload bytes and to JSON, and back.
//
// Workflow and activity arguments and results travel as engine::Payload,
// bytes the engine never looks inside. The SDK gives every value two forms:
// binary, which is what history stores and what replay decodes again for
// every event (so it is sim::Codec's compact format and never goes near
// JSON), and JSON, for people (CLI input, history display).
//
// A struct joins by listing its fields once, at namespace scope after the
// struct; that gives both forms:
//
//   struct Order {
//     std::string id;
//     std::vector<std::int32_t> quantities;
//     std::optional<std::string> coupon;
//   };
//   DURO_CODEC_FIELDS(Order, id, quantities, coupon);
//
//   engine::Payload bytes = sdk::to_payload(order);
//   Order same = sdk::from_payload<Order>(bytes);  // PayloadError if not an Order
//   nlohmann::json json = sdk::to_json(order);     // {"coupon":null,"id":"o-1","quantities":[2,1]}
//   Order again = sdk::from_json<Order>(json);     // PayloadError names the path
//
// Any other type (a class with invariants, a better JSON spelling) joins by
// specializing PayloadConverter<T> with four static functions:
//
//   template <>
//   struct duro::sdk::PayloadConverter<Money> {
//     static void to_payload(const Money& value, Payload& out);  // appends
//     static Money from_payload(std::string_view bytes);         // throws PayloadError
//     static nlohmann::json to_json(const Money& value);          // "12.50 USD"
//     static Money from_json(const nlohmann::json& json);        // throws PayloadError
//   };
//
// A specialization takes precedence over DURO_CODEC_FIELDS and over the
// built-in forms wherever the type appears: alone, or inside a vector,
// optional, map or described struct (whose binary form then carries the
// specialization's bytes with a length in front). Specialize for your own
// class types; a specialization for an enum or a standard type applies
// when the value is converted alone and to JSON, but inside another value's
// binary form the codec's own encoding stays. Declare the specialization
// right after the type, so that no use of the type can miss it (a use that
// did would encode the type differently, with no diagnostic). A type with
// neither a description nor a specialization does not compile, and the
// message says which to add.
//
// The built-in forms. Binary is exactly sim::encode (sim/codec.h). JSON:
//
//   integers, bool      numbers, true/false. Reading: an integer in range.
//   double, float       numbers; NaN and the infinities as "NaN",
//                       "Infinity", "-Infinity" (JSON has no spelling).
//   std::string         a string; bytes that are not UTF-8 (which JSON
//                       cannot hold) as {"base64": "..."}.
//   byte vectors        {"base64": "..."} (std::vector<std::uint8_t>, <std::byte>).
//   enum                its underlying integer (specialize for names).
//   std::vector<T>      an array.
//   std::map<K, V>      with string keys an object; other keys (or a key
//                       that is not UTF-8) an array of [key, value] pairs.
//   std::optional<T>    the value, or null when empty (so an
//                       optional<optional<T>> holding an empty optional
//                       reads back empty).
//   std::pair<A, B>     [first, second].
//   std::variant<Ts...> {"index": i, "value": v}, i the 0-based alternative.
//   duration            "<integer><unit>", unit h, min, s, ms, us or ns:
//                       written in the largest exact unit ("90s", "1500ms",
//                       "0s"), read in any unit that is a whole number of
//                       the type's ticks. Periods other than these units
//                       need a specialization.
//   time_point          its time since the clock's epoch, as a duration.
//   described struct    an object keyed by the field names as spelled in
//                       DURO_CODEC_FIELDS. Reading: a missing field keeps
//                       its default; an unknown key is an error.
//   std::monostate      "no value": the empty payload, and null.
//
// Reading JSON enforces the codec's caps (sim::kCodecCountMax and friends),
// so whatever from_json returns, to_payload can encode.
//
// Errors. from_payload and from_json throw PayloadError; the message names
// the type asked for and what was wrong: the decoder's error and its byte
// ("cannot decode Order from payload: truncated varint at byte 7"), or
// the JSON path and the problem ("cannot read Order from JSON: at
// $.quantities[2]: expected an integer (int), got string \"x\"").
#pragma once

#include <array>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <limits>
#include <map>
#include <optional>
#include <ratio>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/history/failure.h"
#include "engine/history/reflect.h"
#include "sim/codec.h"

namespace duro::sdk {

using Payload = engine::Payload;

// Thrown when bytes or JSON do not decode as the type asked for.
class PayloadError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The customization point; see the top of this file. The primary template
// is the built-in converter (codec types and described structs); specialize
// it fully (or partially, for a template of your own) to take over.
template <typename T, typename Enable = void>
struct PayloadConverter;

template <typename T>
Payload to_payload(const T& value);
template <typename T>
T from_payload(std::string_view bytes);
template <typename T>
nlohmann::json to_json(const T& value);
template <typename T>
T from_json(const nlohmann::json& json);

// --- Implementation ---------------------------------------------------------

namespace detail {

// The name of T as the compiler spells it: __PRETTY_FUNCTION__ holds it
// between a prefix and a suffix that do not depend on T, measured once on
// a known type. Error messages tidy it with readable_type_name().
template <typename T>
constexpr std::string_view raw_type_name() noexcept {
  return __PRETTY_FUNCTION__;
}
inline constexpr std::string_view kTypeNameProbe = raw_type_name<double>();
inline constexpr std::size_t kTypeNamePrefix = kTypeNameProbe.find("double");
inline constexpr std::size_t kTypeNameSuffix = kTypeNameProbe.size() - kTypeNamePrefix - 6;

template <typename T>
constexpr std::string_view type_name() noexcept {
  constexpr std::string_view raw = raw_type_name<T>();
  return raw.substr(kTypeNamePrefix, raw.size() - kTypeNamePrefix - kTypeNameSuffix);
}

// "std::__cxx11::basic_string<char>" -> "std::string", and the like.
std::string readable_type_name(std::string_view raw);

// An error whose message already names the type asked for; the free
// functions pass it through rather than wrapping it again.
class NamedPayloadError : public PayloadError {
 public:
  using PayloadError::PayloadError;
};

// A JSON error, kept in parts so that each enclosing converter can put its
// own step in front of the path and its own type at the front of the message.
class JsonError : public NamedPayloadError {
 public:
  // `path` is relative to the value of `type`: "" for the value itself,
  // ".items[2]" for something inside.
  JsonError(std::string_view type, std::string path, std::string problem);
  const std::string& path() const noexcept { return path_; }
  const std::string& problem() const noexcept { return problem_; }

 private:
  std::string path_;
  std::string problem_;
};

// The error paths, out of line: they build strings, the paths that succeed
// do not.
[[noreturn]] void throw_decode_error(std::string_view type, const sim::Decoder& decoder);
[[noreturn]] void throw_json_error_at(std::string_view type, std::string path, std::string problem);
[[noreturn]] inline void throw_json_error(std::string_view type, std::string problem) {
  throw_json_error_at(type, std::string(), std::move(problem));
}
// "expected an integer (int), got string \"x\"".
std::string expected_problem(std::string_view type, std::string_view expected, const nlohmann::json& got);
[[noreturn]] inline void throw_json_expected(std::string_view type, std::string_view expected,
                                             const nlohmann::json& got) {
  throw_json_error(type, expected_problem(type, expected, got));
}
// Wraps what a specialization threw (PayloadError, or the JSON library's
// exception) so that the message names the type.
[[noreturn]] void throw_converter_error(std::string_view type, bool json, std::string_view what);
// Inside a catch handler: rethrows the JSON error of the value at `segment`
// inside a value of `outer_type`, with the path extended. Exceptions other
// than conversion errors propagate unchanged.
[[noreturn]] void rethrow_nested_json_error(std::string_view outer_type, std::string_view inner_type,
                                            std::string_view segment);
[[noreturn]] void throw_unknown_field(std::string_view type, std::string_view key, const std::string_view* names,
                                      std::size_t name_count);

// Text and bytes in JSON.
bool is_utf8(std::string_view text) noexcept;
nlohmann::json text_to_json(std::string_view text);
nlohmann::json bytes_to_json(std::string_view bytes);
std::string text_from_json(std::string_view type, const nlohmann::json& json);
std::string bytes_from_json(std::string_view type, const nlohmann::json& json);

// Doubles in JSON (floats convert through double).
nlohmann::json double_to_json(double value);
double double_from_json(std::string_view type, const nlohmann::json& json);

// `["key"]`: a map key as a path step.
std::string key_segment(std::string_view key);
std::string index_segment(std::size_t index);

// Durations. Units, finest first; a duration type's tick must be one of them.
inline constexpr std::size_t kDurationUnitCount = 6;
inline constexpr std::array<std::uint64_t, kDurationUnitCount> kDurationUnitNs = {
    1, 1'000, 1'000'000, 1'000'000'000, 60'000'000'000, 3'600'000'000'000};
inline constexpr std::size_t kNoDurationUnit = kDurationUnitCount;

template <typename Period>
constexpr std::size_t duration_unit_index() noexcept {
  using Ns = std::ratio_divide<Period, std::nano>;
  if constexpr (Ns::den != 1) {
    return kNoDurationUnit;
  } else {
    for (std::size_t i = 0; i < kDurationUnitCount; i++) {
      if (kDurationUnitNs[i] == static_cast<std::uint64_t>(Ns::num)) return i;
    }
    return kNoDurationUnit;
  }
}

// A count of ticks (sign and magnitude, so that every rep fits) as text,
// and back; parse_duration fails with a problem for the message.
std::string format_duration(bool negative, std::uint64_t magnitude_ticks, std::size_t tick_unit);
bool parse_duration(std::string_view text, std::size_t tick_unit, bool& negative, std::uint64_t& magnitude_ticks,
                    std::string& problem);

// Containers nested in the JSON being read, counted as the encoder counts
// them, so that a value from_json returns never trips the encoder's depth
// assertion (a recursive described type can nest as deep as its input).
inline thread_local std::size_t json_nesting_depth = 0;

class JsonNesting {
 public:
  explicit JsonNesting(std::string_view type) {
    if (json_nesting_depth == sim::kCodecDepthMax) {
      throw_json_error(type, "containers nested deeper than sim::kCodecDepthMax");
    }
    json_nesting_depth++;
  }
  ~JsonNesting() { json_nesting_depth--; }
  JsonNesting(const JsonNesting&) = delete;
  JsonNesting& operator=(const JsonNesting&) = delete;
};

// Shapes.
template <typename T>
inline constexpr bool kIsString = false;
template <typename Traits, typename Allocator>
inline constexpr bool kIsString<std::basic_string<char, Traits, Allocator>> = true;

template <typename T>
inline constexpr bool kIsByteVector = false;
template <sim::detail::CodecByte T, typename Allocator>
inline constexpr bool kIsByteVector<std::vector<T, Allocator>> = true;

// The shapes the history model's code already names (reflect.h).
using engine::kIsMap;
using engine::kIsOptional;
using engine::kIsVector;

template <typename T>
inline constexpr bool kIsPair = false;
template <typename A, typename B>
inline constexpr bool kIsPair<std::pair<A, B>> = true;

template <typename T>
inline constexpr bool kIsVariant = false;
template <typename... Ts>
inline constexpr bool kIsVariant<std::variant<Ts...>> = true;

template <typename T>
inline constexpr bool kIsDuration = false;
template <typename Rep, typename Period>
inline constexpr bool kIsDuration<std::chrono::duration<Rep, Period>> = true;

template <typename T>
inline constexpr bool kIsTimePoint = false;
template <typename Clock, typename Duration>
inline constexpr bool kIsTimePoint<std::chrono::time_point<Clock, Duration>> = true;

// True when PayloadConverter<T> is a specialization, not the built-in
// converter (which is marked). Instantiating the built-in converter's class
// is harmless: its checks are in its functions.
template <typename T>
concept HasConverterSpecialization = !requires { PayloadConverter<T>::kBuiltIn; };

template <typename T>
consteval bool builtin_convertible();

// Whether T can appear inside another value: std::monostate has no
// encoding of its own (except as a variant's alternative).
template <typename T>
consteval bool nestable() {
  if constexpr (std::is_same_v<T, std::monostate>) {
    return false;
  } else if constexpr (HasConverterSpecialization<T>) {
    return true;
  } else {
    return builtin_convertible<T>();
  }
}

template <typename Variant>
struct VariantAlternativesNestable;
template <typename... Ts>
struct VariantAlternativesNestable<std::variant<Ts...>> {
  static constexpr bool value = ((std::is_same_v<Ts, std::monostate> || nestable<Ts>()) && ...);
};

// What the built-in converter handles. Described structs count without a
// look at their fields (a recursive type would recurse here forever); a
// field of a type with no converter fails when that field converts.
template <typename T>
consteval bool builtin_convertible() {
  if constexpr (std::is_same_v<T, std::monostate> || std::is_same_v<T, bool> || std::is_same_v<T, double> ||
                std::is_same_v<T, float> || sim::detail::CodecInteger<T>) {
    return true;
  } else if constexpr (std::is_enum_v<T>) {
    return sim::detail::CodecInteger<std::underlying_type_t<T>>;
  } else if constexpr (kIsString<T> || kIsByteVector<T>) {
    return true;
  } else if constexpr (kIsVector<T> || kIsOptional<T>) {
    return nestable<typename T::value_type>();
  } else if constexpr (kIsMap<T>) {
    return nestable<typename T::key_type>() && nestable<typename T::mapped_type>();
  } else if constexpr (kIsPair<T>) {
    return nestable<typename T::first_type>() && nestable<typename T::second_type>();
  } else if constexpr (kIsVariant<T>) {
    return VariantAlternativesNestable<T>::value;
  } else if constexpr (kIsDuration<T>) {
    return sim::detail::CodecInteger<typename T::rep> &&
           duration_unit_index<typename T::period>() != kNoDurationUnit;
  } else if constexpr (kIsTimePoint<T>) {
    return builtin_convertible<typename T::duration>();
  } else if constexpr (sim::detail::CodecDescribed<T>) {
    return true;
  } else {
    return false;
  }
}

// The one place that says what to do about a type with no converter: each
// of the built-in converter's functions asks here first.
template <typename T>
constexpr bool check_builtin_convertible() {
  static_assert(builtin_convertible<T>(),
                "no PayloadConverter<T>: describe the struct with DURO_CODEC_FIELDS(Type, field, ...), or "
                "specialize duro::sdk::PayloadConverter<T> (a container needs one for each element type)");
  return builtin_convertible<T>();
}

// A nested value from JSON, through its own converter (so specializations
// apply inside containers), its errors put in terms of the outer value.
template <typename E, typename Segment>
E nested_from_json(const nlohmann::json& json, std::string_view outer_type, const Segment& segment) {
  try {
    return PayloadConverter<E>::from_json(json);
  } catch (...) {
    rethrow_nested_json_error(outer_type, type_name<E>(), segment());
  }
}

template <typename T>
T integer_from_json(const nlohmann::json& json) {
  if (json.is_number_unsigned()) {
    const auto raw = json.get<std::uint64_t>();
    if (std::in_range<T>(raw)) return static_cast<T>(raw);
    throw_json_error(type_name<T>(), std::to_string(raw) + " is out of range");
  }
  if (json.is_number_integer()) {
    const auto raw = json.get<std::int64_t>();
    if (std::in_range<T>(raw)) return static_cast<T>(raw);
    throw_json_error(type_name<T>(), std::to_string(raw) + " is out of range");
  }
  throw_json_expected(type_name<T>(), "an integer", json);
}

// Sign and magnitude to a rep, if it fits.
template <typename Rep>
bool duration_count_from(bool negative, std::uint64_t magnitude, Rep& count) {
  if (!negative || magnitude == 0) {
    if (!std::in_range<Rep>(magnitude)) return false;
    count = static_cast<Rep>(magnitude);
    return true;
  }
  if constexpr (std::is_unsigned_v<Rep>) {
    return false;
  } else {
    // -(magnitude - 1) - 1, so that the most negative rep does not overflow.
    if (magnitude - 1 > static_cast<std::uint64_t>(std::numeric_limits<Rep>::max())) return false;
    count = static_cast<Rep>(-static_cast<std::int64_t>(magnitude - 1) - 1);
    return true;
  }
}

template <typename T>
nlohmann::json builtin_to_json(const T& value) {
  if constexpr (std::is_same_v<T, std::monostate>) {
    return nullptr;
  } else if constexpr (std::is_same_v<T, bool>) {
    return value;
  } else if constexpr (std::is_enum_v<T>) {
    return static_cast<std::underlying_type_t<T>>(value);
  } else if constexpr (sim::detail::CodecInteger<T>) {
    return value;
  } else if constexpr (std::is_floating_point_v<T>) {
    return double_to_json(static_cast<double>(value));
  } else if constexpr (kIsString<T>) {
    return text_to_json(std::string_view(value.data(), value.size()));
  } else if constexpr (kIsByteVector<T>) {
    return bytes_to_json(std::string_view(reinterpret_cast<const char*>(value.data()), value.size()));
  } else if constexpr (kIsVector<T>) {
    using E = typename T::value_type;
    nlohmann::json array = nlohmann::json::array();
    for (const E& element : value) array.push_back(PayloadConverter<E>::to_json(element));
    return array;
  } else if constexpr (kIsMap<T>) {
    using K = typename T::key_type;
    using V = typename T::mapped_type;
    if constexpr (kIsString<K>) {
      bool keys_utf8 = true;
      for (const auto& entry : value) keys_utf8 = keys_utf8 && is_utf8(entry.first);
      if (keys_utf8) {
        nlohmann::json object = nlohmann::json::object();
        for (const auto& [key, mapped] : value) {
          object[std::string(key.data(), key.size())] = PayloadConverter<V>::to_json(mapped);
        }
        return object;
      }
    }
    nlohmann::json array = nlohmann::json::array();
    for (const auto& [key, mapped] : value) {
      array.push_back(nlohmann::json::array({PayloadConverter<K>::to_json(key), PayloadConverter<V>::to_json(mapped)}));
    }
    return array;
  } else if constexpr (kIsOptional<T>) {
    if (!value.has_value()) return nullptr;
    return PayloadConverter<typename T::value_type>::to_json(*value);
  } else if constexpr (kIsPair<T>) {
    return nlohmann::json::array({PayloadConverter<typename T::first_type>::to_json(value.first),
                                  PayloadConverter<typename T::second_type>::to_json(value.second)});
  } else if constexpr (kIsVariant<T>) {
    DURO_ASSERT_MSG(!value.valueless_by_exception(), "converting a valueless variant");
    nlohmann::json object = nlohmann::json::object();
    object["index"] = value.index();
    object["value"] = std::visit(
        []<typename A>(const A& alternative) { return PayloadConverter<A>::to_json(alternative); }, value);
    return object;
  } else if constexpr (kIsDuration<T>) {
    const auto count = value.count();
    const bool negative = count < 0;
    // Magnitude in unsigned arithmetic: -INT64_MIN does not fit an int64.
    const std::uint64_t magnitude = negative ? std::uint64_t{0} - static_cast<std::uint64_t>(count)
                                             : static_cast<std::uint64_t>(count);
    return format_duration(negative, magnitude, duration_unit_index<typename T::period>());
  } else if constexpr (kIsTimePoint<T>) {
    return builtin_to_json(value.time_since_epoch());
  } else {
    static_assert(sim::detail::CodecDescribed<T>);
    nlohmann::json object = nlohmann::json::object();
    sim::for_each_codec_field(value, [&]<typename F>(std::string_view name, const F& field) {
      object[std::string(name)] = PayloadConverter<F>::to_json(field);
    });
    return object;
  }
}

template <typename T>
T builtin_from_json(const nlohmann::json& json) {
  constexpr std::string_view type = type_name<T>();
  if constexpr (std::is_same_v<T, std::monostate>) {
    if (!json.is_null()) throw_json_expected(type, "null", json);
    return {};
  } else if constexpr (std::is_same_v<T, bool>) {
    if (!json.is_boolean()) throw_json_expected(type, "true or false", json);
    return json.get<bool>();
  } else if constexpr (std::is_enum_v<T>) {
    try {
      return static_cast<T>(integer_from_json<std::underlying_type_t<T>>(json));
    } catch (const JsonError& error) {
      throw_json_error(type, error.problem());
    }
  } else if constexpr (sim::detail::CodecInteger<T>) {
    return integer_from_json<T>(json);
  } else if constexpr (std::is_same_v<T, double>) {
    return double_from_json(type, json);
  } else if constexpr (std::is_same_v<T, float>) {
    const double wide = double_from_json(type, json);
    if (std::isfinite(wide) && std::fabs(wide) > std::numeric_limits<float>::max()) {
      throw_json_error(type, std::to_string(wide) + " is out of range");
    }
    return static_cast<float>(wide);
  } else if constexpr (kIsString<T>) {
    const std::string text = text_from_json(type, json);
    return T(text.data(), text.size());
  } else if constexpr (kIsByteVector<T>) {
    const std::string bytes = bytes_from_json(type, json);
    using E = typename T::value_type;
    const E* data = reinterpret_cast<const E*>(bytes.data());
    return T(data, data + bytes.size());
  } else if constexpr (kIsVector<T>) {
    using E = typename T::value_type;
    if (!json.is_array()) throw_json_expected(type, "an array", json);
    if (json.size() > sim::kCodecCountMax) throw_json_error(type, "more elements than sim::kCodecCountMax");
    const JsonNesting nesting(type);
    T value;
    value.reserve(json.size());
    for (std::size_t i = 0; i < json.size(); i++) {
      value.push_back(nested_from_json<E>(json[i], type, [i] { return index_segment(i); }));
    }
    return value;
  } else if constexpr (kIsMap<T>) {
    using K = typename T::key_type;
    using V = typename T::mapped_type;
    if (json.size() > sim::kCodecCountMax) throw_json_error(type, "more entries than sim::kCodecCountMax");
    T value;
    if constexpr (kIsString<K>) {
      if (json.is_object()) {
        const JsonNesting nesting(type);
        for (auto it = json.begin(); it != json.end(); ++it) {
          const std::string& key = it.key();
          if (key.size() > sim::kCodecLengthBytesMax) throw_json_error(type, "a key above sim::kCodecLengthBytesMax");
          value.emplace(K(key.data(), key.size()),
                        nested_from_json<V>(it.value(), type, [&key] { return key_segment(key); }));
        }
        return value;
      }
      if (!json.is_array()) throw_json_expected(type, "an object, or an array of [key, value] pairs", json);
    } else {
      if (!json.is_array()) throw_json_expected(type, "an array of [key, value] pairs", json);
    }
    const JsonNesting nesting(type);
    for (std::size_t i = 0; i < json.size(); i++) {
      const nlohmann::json& entry = json[i];
      if (!entry.is_array() || entry.size() != 2) {
        throw_json_error_at(type, index_segment(i), expected_problem(type, "a [key, value] pair", entry));
      }
      K key = nested_from_json<K>(entry[0], type, [i] { return index_segment(i) + "[0]"; });
      V mapped = nested_from_json<V>(entry[1], type, [i] { return index_segment(i) + "[1]"; });
      if (!value.emplace(std::move(key), std::move(mapped)).second) {
        throw_json_error_at(type, index_segment(i) + "[0]", "duplicate key");
      }
    }
    return value;
  } else if constexpr (kIsOptional<T>) {
    if (json.is_null()) return std::nullopt;
    const JsonNesting nesting(type);
    return nested_from_json<typename T::value_type>(json, type, [] { return std::string(); });
  } else if constexpr (kIsPair<T>) {
    if (!json.is_array() || json.size() != 2) throw_json_expected(type, "a [first, second] pair", json);
    return T(nested_from_json<typename T::first_type>(json[0], type, [] { return index_segment(0); }),
             nested_from_json<typename T::second_type>(json[1], type, [] { return index_segment(1); }));
  } else if constexpr (kIsVariant<T>) {
    if (!json.is_object()) throw_json_expected(type, "{\"index\": i, \"value\": v}", json);
    for (auto it = json.begin(); it != json.end(); ++it) {
      if (it.key() != "index" && it.key() != "value") {
        static constexpr std::array<std::string_view, 2> kNames = {"index", "value"};
        throw_unknown_field(type, it.key(), kNames.data(), kNames.size());
      }
    }
    const auto index_json = json.find("index");
    if (index_json == json.end()) throw_json_error(type, "missing field \"index\"");
    const auto index = nested_from_json<std::size_t>(*index_json, type, [] { return std::string(".index"); });
    if (index >= std::variant_size_v<T>) {
      throw_json_error(type, "index " + std::to_string(index) + " names no alternative");
    }
    const auto value_json = json.find("value");
    const nlohmann::json null_json;  // A missing value reads as null: fine for std::monostate.
    const nlohmann::json& alternative_json = value_json == json.end() ? null_json : *value_json;
    const JsonNesting nesting(type);
    T value;
    [&]<std::size_t... I>(std::index_sequence<I...>) {
      ((index == I ? static_cast<void>(value.template emplace<I>(
                         nested_from_json<std::variant_alternative_t<I, T>>(alternative_json, type,
                                                                            [] { return std::string(".value"); })))
                   : static_cast<void>(0)),
       ...);
    }(std::make_index_sequence<std::variant_size_v<T>>{});
    return value;
  } else if constexpr (kIsDuration<T>) {
    if (!json.is_string()) throw_json_expected(type, "a duration like \"90s\" or \"1500ms\"", json);
    bool negative = false;
    std::uint64_t magnitude = 0;
    std::string problem;
    typename T::rep count{};
    if (!parse_duration(json.get_ref<const std::string&>(), duration_unit_index<typename T::period>(), negative,
                        magnitude, problem)) {
      throw_json_error(type, std::move(problem));
    }
    if (!duration_count_from(negative, magnitude, count)) throw_json_error(type, "out of range");
    return T(count);
  } else if constexpr (kIsTimePoint<T>) {
    try {
      return T(builtin_from_json<typename T::duration>(json));
    } catch (const JsonError& error) {
      throw_json_error(type, error.problem());
    }
  } else {
    static_assert(sim::detail::CodecDescribed<T>);
    if (!json.is_object()) throw_json_expected(type, "an object", json);
    constexpr auto names = sim::codec_field_names<T>();
    for (auto it = json.begin(); it != json.end(); ++it) {
      bool known = false;
      for (const std::string_view name : names) known = known || name == it.key();
      if (!known) throw_unknown_field(type, it.key(), names.data(), names.size());
    }
    T value{};
    sim::for_each_codec_field(value, [&]<typename F>(std::string_view name, F& field) {
      const auto it = json.find(std::string(name));
      if (it == json.end()) return;  // Omitted: the field keeps its default.
      field = nested_from_json<F>(*it, type, [name] { return "." + std::string(name); });
    });
    return value;
  }
}

// A specialized type inside another value's binary form: its converter's
// bytes, with a length in front (the converter reads whole payloads, so it
// must be told where its bytes end).
template <typename T>
struct ConverterCodec {
  static void encode(sim::Encoder& encoder, const T& value) {
    Payload bytes;
    PayloadConverter<T>::to_payload(value, bytes);
    encoder.write_bytes(bytes);
  }

  static bool decode(sim::Decoder& decoder, T& value) {
    const std::size_t offset = decoder.offset_bytes();
    std::string_view bytes;
    if (!decoder.read_bytes(bytes)) return false;
    try {
      value = PayloadConverter<T>::from_payload(bytes);
    } catch (const PayloadError&) {
      return decoder.fail_at(offset, rejected_what());
    }
    return true;
  }

 private:
  // The decoder keeps its `what` and does not copy it: a string that lives
  // as long as the program, built once per type.
  static const char* rejected_what() {
    static const std::string what = "bytes that PayloadConverter<" + readable_type_name(type_name<T>()) + "> rejects";
    return what.c_str();
  }
};

}  // namespace detail

// The built-in converter.
template <typename T, typename Enable>
struct PayloadConverter {
  // Marks this converter as the built-in one; a specialization has no such member.
  static constexpr bool kBuiltIn = true;

  // Each function is guarded, so that a type with no converter gets the
  // one message above rather than a cascade from the codec.
  static void to_payload([[maybe_unused]] const T& value, [[maybe_unused]] Payload& out) {
    if constexpr (detail::check_builtin_convertible<T>() && !std::is_same_v<T, std::monostate>) {
      sim::encode_append(out, value);
    }
  }

  static T from_payload(std::string_view bytes) {
    if constexpr (detail::check_builtin_convertible<T>()) {
      sim::Decoder decoder(bytes);
      T value{};
      if constexpr (!std::is_same_v<T, std::monostate>) decoder.read(value);
      if (!decoder.finish()) [[unlikely]] detail::throw_decode_error(detail::type_name<T>(), decoder);
      return value;
    } else {
      std::terminate();
    }
  }

  static nlohmann::json to_json(const T& value) {
    if constexpr (detail::check_builtin_convertible<T>()) {
      return detail::builtin_to_json(value);
    } else {
      std::terminate();
    }
  }

  static T from_json(const nlohmann::json& json) {
    if constexpr (detail::check_builtin_convertible<T>()) {
      return detail::builtin_from_json<T>(json);
    } else {
      std::terminate();
    }
  }
};

template <typename T>
Payload to_payload(const T& value) {
  Payload out;
  PayloadConverter<T>::to_payload(value, out);
  return out;
}

template <typename T>
T from_payload(std::string_view bytes) {
  if constexpr (detail::HasConverterSpecialization<T>) {
    try {
      return PayloadConverter<T>::from_payload(bytes);
    } catch (const detail::NamedPayloadError&) {
      throw;
    } catch (const PayloadError& error) {
      detail::throw_converter_error(detail::type_name<T>(), false, error.what());
    }
  } else {
    return PayloadConverter<T>::from_payload(bytes);
  }
}

template <typename T>
nlohmann::json to_json(const T& value) {
  return PayloadConverter<T>::to_json(value);
}

template <typename T>
T from_json(const nlohmann::json& json) {
  try {
    return PayloadConverter<T>::from_json(json);
  } catch (const detail::NamedPayloadError&) {
    throw;
  } catch (const PayloadError& error) {
    detail::throw_converter_error(detail::type_name<T>(), true, error.what());
  } catch (const nlohmann::json::exception& error) {
    detail::throw_converter_error(detail::type_name<T>(), true, error.what());
  }
}

}  // namespace duro::sdk

namespace duro::sim {

// A type with a PayloadConverter specialization encodes through it inside
// containers and described structs too. Two specializations because a
// described struct already has a codec: this one's constraint includes that
// one's, so it is the more specialized and wins.
template <typename T>
  requires std::is_class_v<T> && (!detail::CodecDescribed<T>) && sdk::detail::HasConverterSpecialization<T>
struct Codec<T> : sdk::detail::ConverterCodec<T> {};

template <typename T>
  requires detail::CodecDescribed<T> && sdk::detail::HasConverterSpecialization<T>
struct Codec<T> : sdk::detail::ConverterCodec<T> {};

}  // namespace duro::sim
