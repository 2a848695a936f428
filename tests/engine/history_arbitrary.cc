// The history model's RapidCheck generators (see history_arbitrary.h).
#include "tests/engine/history_arbitrary.h"

#include <bit>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "engine/history/command.h"
#include "engine/history/event.h"
#include "engine/history/history.h"
#include "engine/history/reflect.h"

namespace duro::engine::testing {
namespace {

// A code point's UTF-8 bytes.
std::string utf8(std::uint32_t code_point) {
  std::string out;
  if (code_point < 0x80) {
    out += static_cast<char>(code_point);
  } else if (code_point < 0x800) {
    out += static_cast<char>(0xC0 | code_point >> 6);
    out += static_cast<char>(0x80 | (code_point & 0x3F));
  } else if (code_point < 0x10000) {
    out += static_cast<char>(0xE0 | code_point >> 12);
    out += static_cast<char>(0x80 | ((code_point >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (code_point & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | code_point >> 18);
    out += static_cast<char>(0x80 | ((code_point >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((code_point >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (code_point & 0x3F));
  }
  return out;
}

// Text (ASCII), Unicode text (any scalar value, NUL included), or
// arbitrary bytes (mostly not UTF-8).
rc::Gen<std::string> gen_bytes() {
  const auto join = [](const std::vector<std::string>& parts) {
    std::string out;
    for (const std::string& part : parts) out += part;
    return out;
  };
  return rc::gen::weightedOneOf<std::string>({
      {3, rc::gen::string<std::string>()},
      {1, rc::gen::map(rc::gen::container<std::vector<std::string>>(rc::gen::map(
                           rc::gen::oneOf(rc::gen::inRange<std::uint32_t>(0, 0xD800),
                                          rc::gen::inRange<std::uint32_t>(0xE000, 0x110000)),
                           utf8)),
                       join)},
      {1, rc::gen::map(rc::gen::arbitrary<std::vector<std::uint8_t>>(),
                       [](const std::vector<std::uint8_t>& bytes) { return std::string(bytes.begin(), bytes.end()); })},
  });
}

// Integers biased toward the extremes as well as small values.
template <typename T>
rc::Gen<T> gen_integer() {
  return rc::gen::weightedOneOf<T>({
      {6, rc::gen::arbitrary<T>()},
      {1, rc::gen::element(std::numeric_limits<T>::min(), std::numeric_limits<T>::max(), T{0}, T{1})},
  });
}

template <typename T>
rc::Gen<T> gen_value();

// Structs and variants are built inside rc::gen::exec, drawing each field
// (or the alternative) with operator*, rather than with gen::build and
// gen::oneOf: those instantiate RapidCheck's tuple and shrinking templates
// once per struct and field, the bulk of this file's compile. Same values
// drawn from the same generators, same sizes; measured on 2 cores, this
// file's compile 265 s -> 194 s of CPU under ASan + UBSan, 95 s -> 64 s at
// -O1.
template <typename T, std::size_t... I>
rc::Gen<T> gen_described(std::index_sequence<I...>) {
  static constexpr auto kFields = duro_codec_fields(static_cast<const T*>(nullptr));
  return rc::gen::exec([] {
    T value{};
    ((value.*std::get<I>(kFields) = *gen_value<typename sim::detail::CodecMember<
          std::remove_const_t<std::tuple_element_t<I, std::remove_const_t<decltype(kFields)>>>>::Type>()),
     ...);
    return value;
  });
}

// Each alternative equally likely.
template <typename Variant, std::size_t... I>
rc::Gen<Variant> gen_variant(std::index_sequence<I...>) {
  return rc::gen::exec([] {
    const std::size_t index = *rc::gen::inRange<std::size_t>(0, sizeof...(I));
    Variant value;
    ((index == I ? void(value.template emplace<I>(*gen_value<std::variant_alternative_t<I, Variant>>())) : void()), ...);
    return value;
  });
}

template <typename T>
inline constexpr bool kIsVariant = false;
template <typename... Ts>
inline constexpr bool kIsVariant<std::variant<Ts...>> = true;

template <typename T>
rc::Gen<T> gen_value() {
  if constexpr (std::is_same_v<T, bool>) {
    return rc::gen::arbitrary<bool>();
  } else if constexpr (std::is_enum_v<T>) {
    return rc::gen::map(rc::gen::inRange<std::size_t>(0, EnumNames<T>::kNames.size()),
                        [](std::size_t value) { return static_cast<T>(value); });
  } else if constexpr (std::is_integral_v<T>) {
    return gen_integer<T>();
  } else if constexpr (std::is_same_v<T, double>) {
    // Every finite double, and the infinities; not NaN, which equals nothing.
    return rc::gen::weightedOneOf<double>({
        {6, rc::gen::map(rc::gen::arbitrary<std::uint64_t>(),
                         [](std::uint64_t bits) {
                           const double value = std::bit_cast<double>(bits);
                           return value == value ? value : 1.5;
                         })},
        {2, rc::gen::map(rc::gen::inRange(0, 1000), [](int n) { return 1.0 + n / 8.0; })},
        {1, rc::gen::element(std::numeric_limits<double>::infinity(), -std::numeric_limits<double>::infinity(),
                             0.0, -0.0)},
    });
  } else if constexpr (std::is_same_v<T, std::string>) {
    return gen_bytes();
  } else if constexpr (std::is_same_v<T, sim::Duration>) {
    return rc::gen::map(gen_integer<std::int64_t>(), [](std::int64_t ns) { return sim::Duration{ns}; });
  } else if constexpr (std::is_same_v<T, sim::TimePoint>) {
    return rc::gen::map(gen_integer<std::int64_t>(), [](std::int64_t ns) { return sim::TimePoint{sim::Duration{ns}}; });
  } else if constexpr (kIsOptional<T>) {
    using Inner = typename T::value_type;
    return rc::gen::map(rc::gen::maybe(gen_value<Inner>()),
                        [](rc::Maybe<Inner> maybe) { return maybe ? T(std::move(*maybe)) : T(); });
  } else if constexpr (kIsVector<T>) {
    return rc::gen::resize(8, rc::gen::container<T>(gen_value<typename T::value_type>()));
  } else if constexpr (kIsMap<T>) {
    return rc::gen::resize(
        8, rc::gen::container<T>(gen_value<typename T::key_type>(), gen_value<typename T::mapped_type>()));
  } else if constexpr (kIsVariant<T>) {
    return gen_variant<T>(std::make_index_sequence<std::variant_size_v<T>>{});
  } else {
    static_assert(sim::detail::CodecDescribed<T>, "no generator for this type");
    return gen_described<T>(
        std::make_index_sequence<std::tuple_size_v<std::remove_const_t<decltype(duro_codec_fields(
            static_cast<const T*>(nullptr)))>>>{});
  }
}

}  // namespace

rc::Gen<HistoryEvent> gen_event() { return gen_value<HistoryEvent>(); }

rc::Gen<Command> gen_command() { return gen_value<Command>(); }

rc::Gen<History> gen_history() {
  return rc::gen::map(rc::gen::resize(12, rc::gen::container<std::vector<HistoryEvent>>(gen_event())),
                      [](std::vector<HistoryEvent> events) { return History{std::move(events)}; });
}

}  // namespace duro::engine::testing
