#include "sim/codec.h"

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <algorithm>
#include <bit>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "sim/clock.h"

namespace duro::sim {
namespace {

using namespace std::chrono_literals;

// Test types: plain described structs, an enum, a recursive type, and a
// type with a hand-written Codec.

struct Point {
  std::int32_t x = 0;
  std::int32_t y = 0;
  bool operator==(const Point&) const = default;
};
DURO_CODEC_FIELDS(Point, x, y);

enum class Color : std::uint8_t { kRed = 0, kGreen = 7, kBlue = 200 };

struct Shape {
  std::string name;
  std::vector<Point> points;
  std::optional<Color> color;
  std::map<std::string, std::int64_t> tags;
  Duration ttl{};
  TimePoint created{};
  bool visible = false;
  double scale = 0;
  std::vector<std::uint8_t> blob;
  std::pair<std::uint16_t, std::int8_t> layer{};
  bool operator==(const Shape&) const = default;
};
DURO_CODEC_FIELDS(Shape, name, points, color, tags, ttl, created, visible, scale, blob, layer);

// Recursive: nesting depth is driven by the input, so the decoder bounds it.
struct Tree {
  std::uint32_t value = 0;
  std::vector<Tree> children;
  bool operator==(const Tree&) const = default;
};
DURO_CODEC_FIELDS(Tree, value, children);

// Encoded by hand as one fixed32: every value takes 4 bytes.
struct Rgb {
  std::uint8_t r = 0;
  std::uint8_t g = 0;
  std::uint8_t b = 0;
  bool operator==(const Rgb&) const = default;
};

}  // namespace

template <>
struct Codec<Rgb> {
  static constexpr std::size_t kEncodedBytesMin = 4;
  static void encode(Encoder& encoder, const Rgb& value) {
    encoder.write_fixed32(std::uint32_t{value.r} | std::uint32_t{value.g} << 8 | std::uint32_t{value.b} << 16);
  }
  static bool decode(Decoder& decoder, Rgb& value) {
    const std::size_t offset = decoder.offset_bytes();
    std::uint32_t packed = 0;
    if (!decoder.read_fixed32(packed)) return false;
    if (packed >> 24 != 0) return decoder.fail_at(offset, "rgb high byte not zero");
    value = Rgb{static_cast<std::uint8_t>(packed), static_cast<std::uint8_t>(packed >> 8),
                static_cast<std::uint8_t>(packed >> 16)};
    return true;
  }
};

}  // namespace duro::sim

// A described struct in another namespace, holding one from duro::sim: the
// description is found by argument-dependent lookup, wherever it lives.
namespace duro_codec_test_elsewhere {

struct Envelope {
  std::uint64_t id = 0;
  duro::sim::Shape shape;
  std::vector<duro::sim::Rgb> palette;
  bool operator==(const Envelope&) const = default;
};
DURO_CODEC_FIELDS(Envelope, id, shape, palette);

}  // namespace duro_codec_test_elsewhere

namespace duro::sim {
namespace {

using duro_codec_test_elsewhere::Envelope;

// The documented limit of DURO_CODEC_FIELDS: 64 fields.
struct Wide64 {
  std::uint8_t f00, f01, f02, f03, f04, f05, f06, f07, f08, f09, f10, f11, f12, f13, f14, f15, f16, f17, f18, f19,
      f20, f21, f22, f23, f24, f25, f26, f27, f28, f29, f30, f31, f32, f33, f34, f35, f36, f37, f38, f39, f40, f41,
      f42, f43, f44, f45, f46, f47, f48, f49, f50, f51, f52, f53, f54, f55, f56, f57, f58, f59, f60, f61, f62, f63;
};
DURO_CODEC_FIELDS(Wide64, f00, f01, f02, f03, f04, f05, f06, f07, f08, f09, f10, f11, f12, f13, f14, f15, f16, f17,
                  f18, f19, f20, f21, f22, f23, f24, f25, f26, f27, f28, f29, f30, f31, f32, f33, f34, f35, f36, f37,
                  f38, f39, f40, f41, f42, f43, f44, f45, f46, f47, f48, f49, f50, f51, f52, f53, f54, f55, f56, f57,
                  f58, f59, f60, f61, f62, f63);

// Helpers.

// "AC 02": bytes as spaced upper-case hex, so a mismatch reads at a glance.
std::string hex(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789ABCDEF";
  std::string out;
  for (const char c : bytes) {
    const auto byte = static_cast<unsigned char>(c);
    if (!out.empty()) out += ' ';
    out += kDigits[byte >> 4];
    out += kDigits[byte & 0xF];
  }
  return out;
}

// Bytes from a list of byte values.
std::string bytes_of(std::initializer_list<int> values) {
  std::string out;
  for (const int value : values) out += static_cast<char>(value);
  return out;
}

// A copy of `bytes` in a heap block of exactly that size: a read one past
// the end is a heap overflow that AddressSanitizer reports (a std::string
// has spare capacity, and short ones live inside the object).
class ExactBuffer {
 public:
  explicit ExactBuffer(std::string_view bytes) : data_(new char[bytes.size()]), size_(bytes.size()) {
    if (!bytes.empty()) std::memcpy(data_.get(), bytes.data(), bytes.size());
  }
  std::string_view view() const { return {data_.get(), size_}; }

 private:
  std::unique_ptr<char[]> data_;
  std::size_t size_;
};

// The message every decode error has: "<what> at byte <offset>".
// (Parsed by hand: std::regex trips a false -Wmaybe-uninitialized in g++ 12
// under the sanitizer build.)
bool is_decode_error(const Error& error, std::size_t input_size_bytes) {
  static constexpr std::string_view kAt = " at byte ";
  const std::string_view message = error.message;
  const std::size_t at = message.rfind(kAt);
  if (error.code != ErrorCode::kDecode || at == std::string_view::npos || at == 0) return false;
  const std::string_view what = message.substr(0, at);
  const std::string_view offset = message.substr(at + kAt.size());
  const auto is_digit = [](char c) { return c >= '0' && c <= '9'; };
  const auto is_word = [&](char c) { return (c >= 'a' && c <= 'z') || is_digit(c) || c == ' ' || c == '-'; };
  if (offset.empty() || offset.size() > 19) return false;
  if (!std::all_of(what.begin(), what.end(), is_word) || !std::all_of(offset.begin(), offset.end(), is_digit)) {
    return false;
  }
  return std::stoull(std::string(offset)) <= input_size_bytes;
}

template <typename T>
std::string decode_error(std::string_view bytes) {
  Result<T> result = decode<T>(ExactBuffer(bytes).view());
  if (result.ok()) return "(decoded)";
  EXPECT_EQ(result.error().code, ErrorCode::kDecode);
  return result.error().message;
}

// Decodes what encode() wrote, checks it equals the value, and that it
// re-encodes to the same bytes.
template <typename T>
void rc_assert_round_trips(const T& value) {
  const std::string bytes = encode(value);
  Result<T> decoded = decode<T>(ExactBuffer(bytes).view());
  RC_ASSERT(decoded.ok());
  RC_ASSERT(decoded.value() == value);
  RC_ASSERT(encode(decoded.value()) == bytes);
}

// Bytes that either decode, and then re-encode to exactly themselves (the
// format is canonical), or fail with a well-formed decode error. Returns
// whether they decoded.
template <typename T>
bool rc_assert_decodes_canonically_or_fails(std::string_view bytes) {
  const ExactBuffer buffer(bytes);
  Result<T> decoded = decode<T>(buffer.view());
  if (decoded.ok()) {
    RC_ASSERT(encode(decoded.value()) == std::string(bytes));
  } else {
    RC_ASSERT(is_decode_error(decoded.error(), bytes.size()));
  }
  return decoded.ok();
}

// Generators.

template <typename T>
rc::Gen<std::optional<T>> gen_optional(rc::Gen<T> gen) {
  return rc::gen::map(rc::gen::maybe(std::move(gen)), [](rc::Maybe<T> maybe) {
    return maybe ? std::optional<T>(std::move(*maybe)) : std::nullopt;
  });
}

rc::Gen<Point> gen_point() {
  return rc::gen::build<Point>(rc::gen::set(&Point::x), rc::gen::set(&Point::y));
}

rc::Gen<Shape> gen_shape() {
  return rc::gen::build<Shape>(
      rc::gen::set(&Shape::name), rc::gen::set(&Shape::points, rc::gen::container<std::vector<Point>>(gen_point())),
      rc::gen::set(&Shape::color, gen_optional(rc::gen::element(Color::kRed, Color::kGreen, Color::kBlue))),
      rc::gen::set(&Shape::tags), rc::gen::set(&Shape::ttl), rc::gen::set(&Shape::created),
      rc::gen::set(&Shape::visible),
      // Finite, so == compares it (the double property covers every bit pattern).
      rc::gen::set(&Shape::scale,
                   rc::gen::map(rc::gen::arbitrary<std::int32_t>(), [](std::int32_t n) { return n / 8.0; })),
      rc::gen::set(&Shape::blob), rc::gen::set(&Shape::layer));
}

rc::Gen<Envelope> gen_envelope() {
  return rc::gen::build<Envelope>(
      rc::gen::set(&Envelope::id), rc::gen::set(&Envelope::shape, gen_shape()),
      rc::gen::set(&Envelope::palette,
                   rc::gen::container<std::vector<Rgb>>(rc::gen::build<Rgb>(
                       rc::gen::set(&Rgb::r), rc::gen::set(&Rgb::g), rc::gen::set(&Rgb::b)))));
}

rc::Gen<Tree> gen_tree(int depth) {
  if (depth == 0) return rc::gen::build<Tree>(rc::gen::set(&Tree::value));
  return rc::gen::mapcat(rc::gen::inRange(0, 4), [depth](int children) {
    return rc::gen::build<Tree>(
        rc::gen::set(&Tree::value),
        rc::gen::set(&Tree::children, rc::gen::container<std::vector<Tree>>(children, gen_tree(depth - 1))));
  });
}

// Bytes weighted toward the small values that counts, tags and lengths use,
// so that garbage sometimes decodes and the success path is exercised too.
rc::Gen<std::string> gen_garbage() {
  return rc::gen::map(
      rc::gen::container<std::vector<std::uint8_t>>(rc::gen::weightedOneOf<std::uint8_t>({
          {4, rc::gen::inRange<std::uint8_t>(0, 4)},
          {1, rc::gen::arbitrary<std::uint8_t>()},
      })),
      [](const std::vector<std::uint8_t>& values) { return std::string(values.begin(), values.end()); });
}

// A tree whose vectors nest `depth` deep: `depth` trees, each of value 0,
// each the only child of the one before; the last has no children.
std::string nested_tree_bytes(std::size_t depth) {
  DURO_ASSERT(depth > 0);
  std::string bytes;
  for (std::size_t i = 0; i + 1 < depth; i++) bytes += bytes_of({0x00, 0x01});
  bytes += bytes_of({0x00, 0x00});
  return bytes;
}

// An allocator that remembers the largest block asked for, to show that a
// hostile length never reaches an allocation.
struct AllocationLog {
  static inline std::size_t largest_bytes = 0;
  static inline std::size_t count = 0;
  static void reset() { largest_bytes = count = 0; }
};

template <typename T>
struct LoggingAllocator {
  using value_type = T;
  LoggingAllocator() = default;
  template <typename U>
  LoggingAllocator(const LoggingAllocator<U>&) noexcept {}  // NOLINT: rebinding is implicit.
  T* allocate(std::size_t n) {
    AllocationLog::count++;
    AllocationLog::largest_bytes = std::max(AllocationLog::largest_bytes, n * sizeof(T));
    return std::allocator<T>{}.allocate(n);
  }
  void deallocate(T* p, std::size_t n) noexcept { std::allocator<T>{}.deallocate(p, n); }
  friend bool operator==(const LoggingAllocator&, const LoggingAllocator&) noexcept { return true; }
};

using LoggedString = std::basic_string<char, std::char_traits<char>, LoggingAllocator<char>>;
template <typename T>
using LoggedVector = std::vector<T, LoggingAllocator<T>>;

// Large in memory (8 strings, 256 bytes) but as small as 8 bytes encoded.
struct Bulky {
  std::string s0, s1, s2, s3, s4, s5, s6, s7;
};
DURO_CODEC_FIELDS(Bulky, s0, s1, s2, s3, s4, s5, s6, s7);

// Variants: a tagged choice, with an empty alternative and a type that
// appears twice (told apart by index, not by type).
using Choice = std::variant<std::monostate, std::uint32_t, std::string, Point, Point>;

struct Message {
  std::uint8_t version = 0;
  Choice body;
  std::vector<Choice> extras;
  bool operator==(const Message&) const = default;
};
DURO_CODEC_FIELDS(Message, version, body, extras);

rc::Gen<Choice> gen_choice() {
  return rc::gen::mapcat(rc::gen::inRange<std::size_t>(0, std::variant_size_v<Choice>), [](std::size_t index) {
    switch (index) {
      // Not gen::just(Choice{}): g++ 12 at -O1 (the sanitizer build) warns
      // falsely that moving a variant holding monostate reads uninitialized
      // storage.
      case 0: return rc::gen::map(rc::gen::arbitrary<bool>(), [](bool) { return Choice{std::in_place_index<0>}; });
      case 1: return rc::gen::map(rc::gen::arbitrary<std::uint32_t>(), [](std::uint32_t v) { return Choice{v}; });
      case 2: return rc::gen::map(rc::gen::arbitrary<std::string>(), [](std::string v) { return Choice{v}; });
      case 3:
        return rc::gen::map(gen_point(), [](Point p) { return Choice{std::in_place_index<3>, p}; });
      default:
        return rc::gen::map(gen_point(), [](Point p) { return Choice{std::in_place_index<4>, p}; });
    }
  });
}

rc::Gen<Message> gen_message() {
  return rc::gen::build<Message>(rc::gen::set(&Message::version), rc::gen::set(&Message::body, gen_choice()),
                                 rc::gen::set(&Message::extras, rc::gen::container<std::vector<Choice>>(gen_choice())));
}

// The wire format, byte for byte: recorded histories and on-disk records
// depend on it, so a change here must be deliberate.

TEST(CodecWireFormat, UnsignedVarints) {
  EXPECT_EQ(hex(encode(std::uint64_t{0})), "00");
  EXPECT_EQ(hex(encode(std::uint64_t{1})), "01");
  EXPECT_EQ(hex(encode(std::uint64_t{127})), "7F");
  EXPECT_EQ(hex(encode(std::uint64_t{128})), "80 01");
  EXPECT_EQ(hex(encode(std::uint64_t{300})), "AC 02");
  EXPECT_EQ(hex(encode(std::uint64_t{16384})), "80 80 01");
  EXPECT_EQ(hex(encode(std::uint32_t{300})), "AC 02") << "widths share one format";
  EXPECT_EQ(hex(encode(std::uint8_t{255})), "FF 01");
  EXPECT_EQ(hex(encode(std::numeric_limits<std::uint32_t>::max())), "FF FF FF FF 0F");
  EXPECT_EQ(hex(encode(std::numeric_limits<std::uint64_t>::max())), "FF FF FF FF FF FF FF FF FF 01");
}

TEST(CodecWireFormat, SignedIntegersAreZigzagVarints) {
  EXPECT_EQ(hex(encode(std::int64_t{0})), "00");
  EXPECT_EQ(hex(encode(std::int64_t{-1})), "01");
  EXPECT_EQ(hex(encode(std::int64_t{1})), "02");
  EXPECT_EQ(hex(encode(std::int64_t{-2})), "03");
  EXPECT_EQ(hex(encode(std::int64_t{-64})), "7F");
  EXPECT_EQ(hex(encode(std::int64_t{64})), "80 01");
  EXPECT_EQ(hex(encode(std::int8_t{-128})), "FF 01");
  EXPECT_EQ(hex(encode(std::numeric_limits<std::int32_t>::max())), "FE FF FF FF 0F");
  EXPECT_EQ(hex(encode(std::numeric_limits<std::int32_t>::min())), "FF FF FF FF 0F");
  EXPECT_EQ(hex(encode(std::numeric_limits<std::int64_t>::max())), "FE FF FF FF FF FF FF FF FF 01");
  EXPECT_EQ(hex(encode(std::numeric_limits<std::int64_t>::min())), "FF FF FF FF FF FF FF FF FF 01");
}

TEST(CodecWireFormat, FixedWidthAndFloatingPointAreLittleEndian) {
  std::string out;
  Encoder encoder(out);
  encoder.write_fixed32(0x01020304);
  encoder.write_fixed64(0x0102030405060708);
  EXPECT_EQ(hex(out), "04 03 02 01 08 07 06 05 04 03 02 01");
  EXPECT_EQ(hex(encode(1.0)), "00 00 00 00 00 00 F0 3F");
  EXPECT_EQ(hex(encode(-0.0)), "00 00 00 00 00 00 00 80");
  EXPECT_EQ(hex(encode(1.0f)), "00 00 80 3F");
  EXPECT_EQ(hex(encode(true)), "01");
  EXPECT_EQ(hex(encode(false)), "00");
}

TEST(CodecWireFormat, StringsAndContainers) {
  EXPECT_EQ(hex(encode(std::string())), "00");
  EXPECT_EQ(hex(encode(std::string("hi"))), "02 68 69");
  EXPECT_EQ(hex(encode(std::string("a\0b", 3))), "03 61 00 62");
  // Byte vectors are byte strings, not a varint per element (FF would be FF 01).
  EXPECT_EQ(hex(encode(std::vector<std::uint8_t>{1, 2, 0xFF})), "03 01 02 FF");
  EXPECT_EQ(hex(encode(std::vector<std::byte>{std::byte{0xFF}})), "01 FF");
  EXPECT_EQ(hex(encode(std::vector<std::uint32_t>{1, 300})), "02 01 AC 02");
  EXPECT_EQ(hex(encode(std::vector<bool>{true, false})), "02 01 00");
  EXPECT_EQ(hex(encode(std::map<std::string, std::int32_t>{{"b", -1}, {"a", 1}})), "02 01 61 02 01 62 01");
  EXPECT_EQ(hex(encode(std::optional<std::int32_t>())), "00");
  EXPECT_EQ(hex(encode(std::optional<std::int32_t>(5))), "01 0A");
  EXPECT_EQ(hex(encode(std::pair<std::uint8_t, std::int8_t>(1, -1))), "01 01");
}

TEST(CodecWireFormat, TimeEnumsAndStructs) {
  EXPECT_EQ(hex(encode(Duration{-1})), "01");
  EXPECT_EQ(hex(encode(std::chrono::milliseconds{1500})), "B8 17") << "the count, in the type's own period";
  EXPECT_EQ(hex(encode(kDefaultStartTime)), "80 80 D0 DF BD 94 B9 86 31");
  EXPECT_EQ(hex(encode(Color::kGreen)), "07");
  EXPECT_EQ(hex(encode(Color::kBlue)), "C8 01");
  EXPECT_EQ(hex(encode(Point{1, -1})), "02 01") << "fields in order, nothing else";
  EXPECT_EQ(hex(encode(Rgb{1, 2, 3})), "01 02 03 00");
  EXPECT_EQ(hex(encode(Tree{5, {Tree{6, {}}}})), "05 01 06 00");
}

// Round trips.

RC_GTEST_PROP(CodecRoundTrip, Unsigned64, (std::uint64_t value)) { rc_assert_round_trips(value); }
RC_GTEST_PROP(CodecRoundTrip, Signed64, (std::int64_t value)) { rc_assert_round_trips(value); }
RC_GTEST_PROP(CodecRoundTrip, Unsigned32, (std::uint32_t value)) { rc_assert_round_trips(value); }
RC_GTEST_PROP(CodecRoundTrip, Signed32, (std::int32_t value)) { rc_assert_round_trips(value); }

RC_GTEST_PROP(CodecRoundTrip, NarrowIntegersAndBool,
              (std::uint16_t u16, std::int16_t i16, std::uint8_t u8, std::int8_t i8, bool flag)) {
  rc_assert_round_trips(u16);
  rc_assert_round_trips(i16);
  rc_assert_round_trips(u8);
  rc_assert_round_trips(i8);
  rc_assert_round_trips(flag);
}

// Any 64-bit pattern, large or small: the generator's default sizes stay
// small, and the interesting varints are the long ones.
RC_GTEST_PROP(CodecRoundTrip, VarintLengthFollowsBitWidth, (std::uint64_t raw, std::uint8_t shift)) {
  const std::uint64_t value = raw >> (shift % 64);
  const std::string bytes = encode(value);
  const int bits = 64 - std::countl_zero(value | 1);
  RC_ASSERT(bytes.size() == static_cast<std::size_t>((bits + 6) / 7));
  rc_assert_round_trips(value);
  rc_assert_round_trips(static_cast<std::int64_t>(value));
}

TEST(CodecRoundTrip, IntegerExtremes) {
  auto check = [](auto value, std::size_t size_bytes) {
    using T = decltype(value);
    const std::string bytes = encode(value);
    EXPECT_EQ(bytes.size(), size_bytes) << +value;
    Result<T> decoded = decode<T>(bytes);
    ASSERT_TRUE(decoded.ok()) << +value << ": " << to_string(decoded.error());
    EXPECT_EQ(decoded.value(), value);
  };
  check(std::numeric_limits<std::uint64_t>::max(), 10);
  check(std::numeric_limits<std::int64_t>::max(), 10);
  check(std::numeric_limits<std::int64_t>::min(), 10);
  check(std::numeric_limits<std::uint32_t>::max(), 5);
  check(std::numeric_limits<std::int32_t>::max(), 5);
  check(std::numeric_limits<std::int32_t>::min(), 5);
  check(std::numeric_limits<std::uint16_t>::max(), 3);
  check(std::numeric_limits<std::int16_t>::min(), 3);
  check(std::numeric_limits<std::uint8_t>::max(), 2);
  check(std::numeric_limits<std::int8_t>::min(), 2);
  check(std::numeric_limits<std::int8_t>::max(), 2);
  check(std::uint64_t{0}, 1);
  check(std::int64_t{-1}, 1);
}

// Every bit pattern survives, NaN payloads and negative zero included.
RC_GTEST_PROP(CodecRoundTrip, DoubleAndFloatBitPatterns, (std::uint64_t bits64, std::uint32_t bits32)) {
  const double d = std::bit_cast<double>(bits64);
  const float f = std::bit_cast<float>(bits32);
  Result<double> decoded_d = decode<double>(encode(d));
  Result<float> decoded_f = decode<float>(encode(f));
  RC_ASSERT(decoded_d.ok() && decoded_f.ok());
  RC_ASSERT(std::bit_cast<std::uint64_t>(decoded_d.value()) == bits64);
  RC_ASSERT(std::bit_cast<std::uint32_t>(decoded_f.value()) == bits32);
}

RC_GTEST_PROP(CodecRoundTrip, StringsAndByteStrings,
              (const std::string& text, const std::vector<std::uint8_t>& blob, const std::vector<std::string>& list)) {
  rc_assert_round_trips(text);
  rc_assert_round_trips(blob);
  rc_assert_round_trips(list);
}

RC_GTEST_PROP(CodecRoundTrip, NestedContainers,
              (const std::map<std::string, std::vector<std::pair<std::int32_t, std::string>>>& index,
               const std::vector<std::vector<bool>>& grid, const std::map<std::int64_t, std::uint8_t>& by_id)) {
  rc_assert_round_trips(index);
  rc_assert_round_trips(grid);
  rc_assert_round_trips(by_id);
  const auto maybe_index = *gen_optional(rc::gen::just(index));
  rc_assert_round_trips(maybe_index);
  const auto optionals = *rc::gen::container<std::vector<std::optional<std::int16_t>>>(
      gen_optional(rc::gen::arbitrary<std::int16_t>()));
  rc_assert_round_trips(optionals);
}

RC_GTEST_PROP(CodecRoundTrip, DurationsAndTimePoints,
              (Duration duration, std::chrono::seconds seconds, TimePoint time)) {
  rc_assert_round_trips(duration);
  rc_assert_round_trips(seconds);
  rc_assert_round_trips(time);
}

RC_GTEST_PROP(CodecRoundTrip, DescribedStructs, ()) {
  rc_assert_round_trips(*gen_shape());
  rc_assert_round_trips(*gen_envelope());
  rc_assert_round_trips(*gen_tree(4));
}

TEST(CodecRoundTrip, SixtyFourFieldStruct) {
  Wide64 wide{};
  wide.f00 = 1;
  wide.f31 = 2;
  wide.f63 = 200;
  const std::string bytes = encode(wide);
  ASSERT_EQ(bytes.size(), 65u) << "64 fields, f63 taking two bytes";
  Result<Wide64> decoded = decode<Wide64>(bytes);
  ASSERT_TRUE(decoded.ok());
  EXPECT_EQ(decoded.value().f00, 1);
  EXPECT_EQ(decoded.value().f31, 2);
  EXPECT_EQ(decoded.value().f63, 200);
  EXPECT_EQ(encode(decoded.value()), bytes);
}

// Decode errors: what and where.

TEST(CodecDecodeErrors, NameWhatFailedAndAtWhichByte) {
  EXPECT_EQ(decode_error<std::uint64_t>(""), "truncated varint at byte 0");
  EXPECT_EQ(decode_error<std::uint64_t>(bytes_of({0x80, 0x80})), "truncated varint at byte 0");
  EXPECT_EQ(decode_error<Point>(bytes_of({0x02, 0x80})), "truncated varint at byte 1") << "the offset of y";
  EXPECT_EQ(decode_error<double>(bytes_of({0, 0, 0, 0, 0, 0, 0})), "truncated fixed64 at byte 0");
  EXPECT_EQ(decode_error<float>(bytes_of({0, 0, 0})), "truncated fixed32 at byte 0");
  EXPECT_EQ(decode_error<bool>(""), "truncated bool at byte 0");
  EXPECT_EQ(decode_error<Rgb>(bytes_of({1, 2, 3, 4})), "rgb high byte not zero at byte 0");
}

TEST(CodecDecodeErrors, TrailingBytesAreRejected) {
  EXPECT_EQ(decode_error<std::uint32_t>(encode(std::uint32_t{5}) + '\0'), "trailing bytes at byte 1");
  EXPECT_EQ(decode_error<std::string>(encode(std::string("hi")) + "x"), "trailing bytes at byte 3");
  EXPECT_EQ(decode_error<Point>(encode(Point{300, 1}) + encode(Point{})), "trailing bytes at byte 3");
}

TEST(CodecDecodeErrors, OverlongAndNonMinimalVarintsAreRejected) {
  const std::string eleven = bytes_of({0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01});
  EXPECT_EQ(decode_error<std::uint64_t>(eleven), "varint longer than 10 bytes at byte 0");
  const std::string sixty_five_bits = bytes_of({0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x02});
  EXPECT_EQ(decode_error<std::uint64_t>(sixty_five_bits), "varint exceeds 64 bits at byte 0");
  EXPECT_EQ(decode_error<std::int64_t>(sixty_five_bits), "varint exceeds 64 bits at byte 0");
  // Zero as two bytes, 1 as three: values with a shorter encoding.
  EXPECT_EQ(decode_error<std::uint64_t>(bytes_of({0x80, 0x00})), "non-minimal varint at byte 0");
  EXPECT_EQ(decode_error<std::uint64_t>(bytes_of({0x81, 0x80, 0x00})), "non-minimal varint at byte 0");
  EXPECT_EQ(decode_error<std::string>(bytes_of({0x80, 0x00})), "non-minimal varint at byte 0");
  // A u32 is 5 bytes at most, and its fifth carries 4 bits.
  EXPECT_EQ(decode_error<std::uint32_t>(bytes_of({0xFF, 0xFF, 0xFF, 0xFF, 0x10})), "varint exceeds 32 bits at byte 0");
  EXPECT_EQ(decode_error<std::uint32_t>(bytes_of({0x80, 0x80, 0x80, 0x80, 0x80, 0x01})),
            "varint exceeds 32 bits at byte 0");
  const std::string two_to_the_32 = bytes_of({0x80, 0x80, 0x80, 0x80, 0x10});
  Decoder decoder(two_to_the_32);
  std::uint32_t value = 0;
  EXPECT_FALSE(decoder.read_varint32(value));
  EXPECT_STREQ(decoder.error_what(), "varint exceeds 32 bits");
}

TEST(CodecDecodeErrors, IntegersOutOfTheirTypesRange) {
  EXPECT_EQ(decode_error<std::uint8_t>(encode(std::uint64_t{256})), "integer out of range at byte 0");
  EXPECT_EQ(decode_error<std::uint16_t>(encode(std::uint64_t{65536})), "integer out of range at byte 0");
  EXPECT_EQ(decode_error<std::int8_t>(encode(std::int64_t{128})), "integer out of range at byte 0");
  EXPECT_EQ(decode_error<std::int8_t>(encode(std::int64_t{-129})), "integer out of range at byte 0");
  EXPECT_EQ(decode_error<std::int32_t>(encode(std::int64_t{1} << 31)), "integer out of range at byte 0");
  EXPECT_EQ(decode_error<Color>(encode(std::uint32_t{256})), "integer out of range at byte 0");
  // The largest values that do fit still decode.
  EXPECT_EQ(decode<std::int8_t>(encode(std::int64_t{-128})).value(), -128);
  EXPECT_EQ(decode<std::uint16_t>(encode(std::uint64_t{65535})).value(), 65535);
}

using StringToInt = std::map<std::string, std::int32_t>;

TEST(CodecDecodeErrors, NonCanonicalTagsAndKeysAreRejected) {
  EXPECT_EQ(decode_error<bool>(bytes_of({0x02})), "bool or tag byte not 0 or 1 at byte 0");
  EXPECT_EQ(decode_error<std::optional<std::int32_t>>(bytes_of({0x02, 0x00})), "bool or tag byte not 0 or 1 at byte 0");
  // {"a": 1, "a": 2}: a duplicate key would silently drop a value.
  EXPECT_EQ(decode_error<StringToInt>(bytes_of({0x02, 0x01, 0x61, 0x02, 0x01, 0x61, 0x04})),
            "map keys not strictly ascending at byte 4");
  // {"b": 1, "a": 2}: out of order.
  EXPECT_EQ(decode_error<StringToInt>(bytes_of({0x02, 0x01, 0x62, 0x02, 0x01, 0x61, 0x04})),
            "map keys not strictly ascending at byte 4");
}

TEST(CodecDecodeErrors, NestingIsBounded) {
  Result<Tree> deepest = decode<Tree>(nested_tree_bytes(kCodecDepthMax));
  ASSERT_TRUE(deepest.ok()) << to_string(deepest.error());
  EXPECT_EQ(encode(deepest.value()), nested_tree_bytes(kCodecDepthMax));
  // One level more: the 33rd vector's elements would start at byte 66,
  // after 33 (value, count) pairs. An empty vector is a level too.
  EXPECT_EQ(decode_error<Tree>(nested_tree_bytes(kCodecDepthMax + 1)), "nesting above cap at byte 66");
  EXPECT_EQ(decode_error<Tree>(nested_tree_bytes(100'000)), "nesting above cap at byte 66");
}

// Hostile input: must fail fast, without reading out of bounds or
// allocating by a length it has not checked.

TEST(CodecHostileInput, HugeLengthsFailBeforeAllocating) {
  std::string bytes;
  Encoder encoder(bytes);
  encoder.write_varint64(std::uint64_t{1} << 60);  // A string of 2^60 bytes.
  encoder.write_raw("abc");
  AllocationLog::reset();
  EXPECT_EQ(decode_error<LoggedString>(bytes), "length above cap at byte 0");
  EXPECT_EQ(AllocationLog::count, 0u);

  // Under the cap, but more than the input holds.
  bytes.clear();
  encoder.write_varint64(kCodecLengthBytesMax);
  encoder.write_raw("abc");
  AllocationLog::reset();
  EXPECT_EQ(decode_error<LoggedString>(bytes), "length exceeds remaining input at byte 0");
  EXPECT_EQ(decode_error<LoggedVector<std::uint8_t>>(bytes), "length exceeds remaining input at byte 0");
  EXPECT_EQ(AllocationLog::count, 0u);
}

TEST(CodecHostileInput, HugeCountsFailBeforeAllocating) {
  std::string bytes;
  Encoder encoder(bytes);
  encoder.write_varint64(std::uint64_t{1} << 40);  // A vector of 2^40 elements.
  encoder.write_raw(std::string(100, '\x01'));
  AllocationLog::reset();
  EXPECT_EQ(decode_error<LoggedVector<std::uint64_t>>(bytes), "count above cap at byte 0");
  EXPECT_EQ(decode_error<LoggedVector<LoggedString>>(bytes), "count above cap at byte 0");
  EXPECT_EQ(AllocationLog::count, 0u);

  // 101 one-byte elements cannot fit in 100 bytes.
  bytes.clear();
  encoder.write_varint64(101);
  encoder.write_raw(std::string(100, '\x01'));
  AllocationLog::reset();
  EXPECT_EQ(decode_error<LoggedVector<std::uint64_t>>(bytes), "count exceeds remaining input at byte 0");
  EXPECT_EQ(AllocationLog::count, 0u);
  bytes[0] = 100;
  EXPECT_TRUE(decode<LoggedVector<std::uint64_t>>(bytes).ok()) << "100 do";
}

TEST(CodecHostileInput, CountsRespectTheElementsMinimumSize) {
  // Two doubles need 16 bytes; with 15 the count alone is refused (a codec
  // assuming one byte per element would fail later, reading the second).
  std::string bytes = bytes_of({0x02}) + std::string(15, '\0');
  EXPECT_EQ(decode_error<std::vector<double>>(bytes), "count exceeds remaining input at byte 0");
  EXPECT_EQ(decode_error<std::vector<Rgb>>(bytes_of({0x02}) + std::string(7, '\0')),
            "count exceeds remaining input at byte 0");
  EXPECT_EQ(decode_error<std::vector<Point>>(bytes_of({0x02, 0x00, 0x00, 0x00})),
            "count exceeds remaining input at byte 0")
      << "a Point takes at least 2 bytes";
  using IntToDouble = std::map<std::int32_t, double>;
  EXPECT_EQ(decode_error<IntToDouble>(bytes_of({0x01}) + std::string(8, '\0')),
            "count exceeds remaining input at byte 0");
  bytes += '\0';
  EXPECT_TRUE(decode<std::vector<double>>(bytes).ok());
}

TEST(CodecHostileInput, VectorReservationIsCapped) {
  // 100,000 Bulky elements fit the input's 800,000 bytes by count, but
  // every element is garbage. Reserving the count up front would take
  // 25 MB; the decoder reserves at most kCodecReserveBytesMax.
  std::string bytes;
  Encoder encoder(bytes);
  encoder.write_varint64(100'000);
  encoder.write_raw(std::string(800'000, '\xFF'));
  AllocationLog::reset();
  EXPECT_EQ(decode_error<LoggedVector<Bulky>>(bytes), "varint longer than 10 bytes at byte 3");
  EXPECT_GT(AllocationLog::count, 0u);
  EXPECT_LE(AllocationLog::largest_bytes, kCodecReserveBytesMax);
}

// Every strict prefix of a valid encoding fails: the format is
// self-delimiting, and no read goes past the end (ASan checks, as each
// prefix sits in a block of exactly its size).
RC_GTEST_PROP(CodecHostileInput, EveryStrictPrefixFails, ()) {
  const std::string shape = encode(*gen_shape());
  const std::string tree = encode(*gen_tree(3));
  for (std::size_t size = 0; size < shape.size(); size++) {
    Result<Shape> decoded = decode<Shape>(ExactBuffer(std::string_view(shape).substr(0, size)).view());
    RC_ASSERT(!decoded.ok());
    RC_ASSERT(is_decode_error(decoded.error(), size));
  }
  for (std::size_t size = 0; size < tree.size(); size++) {
    Result<Tree> decoded = decode<Tree>(ExactBuffer(std::string_view(tree).substr(0, size)).view());
    RC_ASSERT(!decoded.ok());
    RC_ASSERT(is_decode_error(decoded.error(), size));
  }
}

RC_GTEST_PROP(CodecHostileInput, GarbageDecodesCanonicallyOrFails, ()) {
  const std::string garbage = *gen_garbage();
  int decoded = 0;
  decoded += rc_assert_decodes_canonically_or_fails<std::uint64_t>(garbage);
  decoded += rc_assert_decodes_canonically_or_fails<std::int32_t>(garbage);
  decoded += rc_assert_decodes_canonically_or_fails<std::string>(garbage);
  decoded += rc_assert_decodes_canonically_or_fails<std::vector<std::optional<bool>>>(garbage);
  decoded += rc_assert_decodes_canonically_or_fails<std::map<std::uint8_t, std::vector<std::int16_t>>>(garbage);
  decoded += rc_assert_decodes_canonically_or_fails<Point>(garbage);
  decoded += rc_assert_decodes_canonically_or_fails<Shape>(garbage);
  decoded += rc_assert_decodes_canonically_or_fails<Tree>(garbage);
  decoded += rc_assert_decodes_canonically_or_fails<Envelope>(garbage);
  RC_TAG(decoded > 0 ? "decoded as some type" : "rejected by every type");
}

// A valid encoding with one byte changed, inserted or removed: the damage
// a corrupting network or disk does.
RC_GTEST_PROP(CodecHostileInput, DamagedEncodingsDecodeCanonicallyOrFail, ()) {
  std::string bytes = encode(*gen_envelope());
  const std::size_t at = *rc::gen::inRange<std::size_t>(0, bytes.size() + 1);
  const char byte = static_cast<char>(*rc::gen::arbitrary<std::uint8_t>());
  switch (*rc::gen::inRange(0, 3)) {
    case 0:
      if (at < bytes.size()) bytes[at] = byte;
      break;
    case 1:
      bytes.insert(bytes.begin() + static_cast<std::ptrdiff_t>(at), byte);
      break;
    default:
      if (at < bytes.size()) bytes.erase(at, 1);
      break;
  }
  RC_TAG(rc_assert_decodes_canonically_or_fails<Envelope>(bytes) ? "decoded" : "rejected");
}


// Variants.

TEST(CodecVariant, WireFormatIsTheIndexThenTheAlternative) {
  EXPECT_EQ(hex(encode(Choice{})), "00") << "monostate: the index alone";
  EXPECT_EQ(hex(encode(Choice{std::uint32_t{300}})), "01 AC 02");
  EXPECT_EQ(hex(encode(Choice{std::string("hi")})), "02 02 68 69");
  EXPECT_EQ(hex(encode(Choice{std::in_place_index<3>, Point{1, -1}})), "03 02 01");
  EXPECT_EQ(hex(encode(Choice{std::in_place_index<4>, Point{1, -1}})), "04 02 01");
  EXPECT_EQ(Codec<Choice>::kEncodedBytesMin, 1u);
  EXPECT_EQ((Codec<std::variant<Point, std::uint32_t>>::kEncodedBytesMin), 2u) << "index + the smallest alternative";
}

TEST(CodecVariant, SameTypeTwiceKeepsItsIndex) {
  const Choice second{std::in_place_index<4>, Point{5, 6}};
  Result<Choice> decoded = decode<Choice>(encode(second));
  ASSERT_TRUE(decoded.ok());
  EXPECT_EQ(decoded.value().index(), 4u);
  EXPECT_EQ(decoded.value(), second);
}

TEST(CodecVariant, IndexOutOfRangeIsADecodeErrorAtItsOffset) {
  EXPECT_EQ(decode_error<Choice>(bytes_of({0x05})), "variant index out of range at byte 0");
  EXPECT_EQ(decode_error<Choice>(bytes_of({0xFF, 0x01})), "variant index out of range at byte 0");
  // Inside a struct: version (1 byte), then the body's index.
  EXPECT_EQ(decode_error<Message>(bytes_of({0x07, 0x09, 0x00})), "variant index out of range at byte 1");
  // The index is a canonical varint too.
  EXPECT_EQ(decode_error<Choice>(bytes_of({0x81, 0x00, 0x05})), "non-minimal varint at byte 0");
  EXPECT_EQ(decode_error<Choice>(bytes_of({0x01})), "truncated varint at byte 1");
}

TEST(CodecVariant, DecodeReplacesTheAlternativeHeld) {
  Choice value{std::string("old")};
  ASSERT_TRUE(decode_into(encode(Choice{std::uint32_t{9}}), value).ok());
  EXPECT_EQ(value, Choice{std::uint32_t{9}});
  ASSERT_TRUE(decode_into(encode(Choice{}), value).ok());
  EXPECT_EQ(value.index(), 0u);
}

TEST(CodecVariant, CountsAsANestingLevel) {
  // A vector of variants of vectors: three levels, accepted; the cap is
  // the same as for any container (NestingIsBounded).
  using Deep = std::vector<std::variant<std::vector<std::uint8_t>>>;
  const Deep deep{std::variant<std::vector<std::uint8_t>>{std::vector<std::uint8_t>{1, 2}}};
  Result<Deep> decoded = decode<Deep>(encode(deep));
  ASSERT_TRUE(decoded.ok());
  EXPECT_EQ(decoded.value(), deep);
}

RC_GTEST_PROP(CodecVariant, RoundTrips, ()) { rc_assert_round_trips(*gen_message()); }

RC_GTEST_PROP(CodecVariant, EveryStrictPrefixFails, ()) {
  const std::string bytes = encode(*gen_message());
  for (std::size_t size = 0; size < bytes.size(); size++) {
    Result<Message> decoded = decode<Message>(ExactBuffer(std::string_view(bytes).substr(0, size)).view());
    RC_ASSERT(!decoded.ok());
    RC_ASSERT(is_decode_error(decoded.error(), size));
  }
}

RC_GTEST_PROP(CodecVariant, GarbageAndDamageDecodeCanonicallyOrFail, ()) {
  rc_assert_decodes_canonically_or_fails<Message>(*gen_garbage());
  std::string bytes = encode(*gen_message());
  const std::size_t at = *rc::gen::inRange<std::size_t>(0, bytes.size());
  bytes[at] = static_cast<char>(*rc::gen::arbitrary<std::uint8_t>());
  RC_TAG(rc_assert_decodes_canonically_or_fails<Message>(bytes) ? "decoded" : "rejected");
}

// Field names recorded by DURO_CODEC_FIELDS.

TEST(CodecFieldNames, AreTheListedSpellingsInOrder) {
  constexpr auto names = codec_field_names<Shape>();
  static_assert(names.size() == 10);
  static_assert(names[0] == "name" && names[9] == "layer");
  EXPECT_EQ(std::vector<std::string_view>(names.begin(), names.end()),
            (std::vector<std::string_view>{"name", "points", "color", "tags", "ttl", "created", "visible", "scale",
                                           "blob", "layer"}));
  EXPECT_EQ(codec_field_names<Wide64>()[63], "f63");
}

TEST(CodecFieldNames, ForEachFieldVisitsNamesAndMembersInOrder) {
  Point point{3, 4};
  std::vector<std::string> seen;
  for_each_codec_field(std::as_const(point), [&](std::string_view name, const std::int32_t& field) {
    seen.push_back(std::string(name) + "=" + std::to_string(field));
  });
  EXPECT_EQ(seen, (std::vector<std::string>{"x=3", "y=4"}));
  // Mutable access through a non-const value.
  for_each_codec_field(point, [](std::string_view, std::int32_t& field) { field *= 10; });
  EXPECT_EQ(point, (Point{30, 40}));
  // Heterogeneous fields: the visitor is called with each field's own type.
  Message message{.version = 2, .body = Choice{std::uint32_t{1}}, .extras = {}};
  std::string kinds;
  for_each_codec_field(message, [&]<typename F>(std::string_view name, F&) {
    kinds += std::string(name) + (std::is_same_v<F, Choice> ? ":variant " : ":other ");
  });
  EXPECT_EQ(kinds, "version:other body:variant extras:other ");
}

// The Decoder's contract.

TEST(CodecDecoder, FirstErrorSticksAndLaterReadsFailAtOnce) {
  const std::string bytes = bytes_of({0x02, 0x05, 0x05});
  Decoder decoder(bytes);
  bool flag = false;
  EXPECT_FALSE(decoder.read_bool(flag));
  EXPECT_FALSE(decoder.ok());
  std::uint64_t value = 0;
  EXPECT_FALSE(decoder.read_varint64(value)) << "a valid varint follows, but the decoder has failed";
  std::string_view raw;
  EXPECT_FALSE(decoder.read_raw(0, raw));
  EXPECT_FALSE(decoder.fail("later"));
  EXPECT_FALSE(decoder.finish());
  EXPECT_STREQ(decoder.error_what(), "bool or tag byte not 0 or 1");
  EXPECT_EQ(decoder.error_offset_bytes(), 0u);
  EXPECT_EQ(decoder.error(), (Error{ErrorCode::kDecode, "bool or tag byte not 0 or 1 at byte 0"}));
}

TEST(CodecDecoder, ReadsFieldByFieldAndChecksOnceAtTheEnd) {
  std::string bytes;
  Encoder encoder(bytes);
  encoder.write_raw("DURO");
  encoder.write_fixed32(1);
  encoder.write(std::string("payload"));
  encoder.write_bytes("bytes");

  Decoder decoder(bytes);
  std::string_view magic;
  std::uint32_t version = 0;
  std::string payload;
  std::string_view view;
  decoder.read_raw(4, magic);
  decoder.read_fixed32(version);
  decoder.read(payload);
  decoder.read_bytes(view);
  ASSERT_TRUE(decoder.finish());
  EXPECT_EQ(magic, "DURO");
  EXPECT_EQ(version, 1u);
  EXPECT_EQ(payload, "payload");
  EXPECT_EQ(view, "bytes");
  EXPECT_TRUE(view.data() >= bytes.data() && view.data() < bytes.data() + bytes.size()) << "a view, not a copy";
  EXPECT_EQ(decoder.remaining_bytes(), 0u);
}

TEST(CodecDecoder, DecodeIntoOverwritesTheWholeValue) {
  std::vector<std::int32_t> list{9, 9, 9};
  ASSERT_TRUE(decode_into(encode(std::vector<std::int32_t>{1}), list).ok());
  EXPECT_EQ(list, (std::vector<std::int32_t>{1}));
  std::map<std::int32_t, bool> map{{5, true}};
  ASSERT_TRUE(decode_into(encode(std::map<std::int32_t, bool>{{1, false}}), map).ok());
  EXPECT_EQ(map, (std::map<std::int32_t, bool>{{1, false}}));
  std::optional<std::string> maybe = "old";
  ASSERT_TRUE(decode_into(encode(std::optional<std::string>()), maybe).ok());
  EXPECT_FALSE(maybe.has_value());
  Result<void> failed = decode_into(bytes_of({0x01}), list);
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.error().message, "count exceeds remaining input at byte 0");
}

// The Encoder's contract.

TEST(CodecEncoder, AppendsInPlace) {
  std::string out = "head";
  out.reserve(1024);
  const char* data = out.data();
  Shape shape;
  shape.name = "square";
  shape.points = {{0, 0}, {0, 1}, {1, 1}, {1, 0}};
  shape.tags = {{"edges", 4}};
  encode_append(out, shape);
  EXPECT_EQ(out.data(), data) << "grew within the reserved capacity: no reallocation";
  EXPECT_EQ(out.substr(0, 4), "head");
  EXPECT_EQ(out.substr(4), encode(shape));
  Result<Shape> decoded = decode<Shape>(std::string_view(out).substr(4));
  ASSERT_TRUE(decoded.ok());
  EXPECT_EQ(decoded.value(), shape);
}

// The encoder refuses to write what no decoder would accept.
TEST(CodecDeathTest, EncoderAssertsTheCaps) {
  EXPECT_DEATH(encode(std::vector<bool>(kCodecCountMax + 1)), "kCodecCountMax");
  Tree tree;  // Its vector is one level.
  for (std::size_t depth = 1; depth < kCodecDepthMax; depth++) tree = Tree{0, {std::move(tree)}};
  EXPECT_EQ(encode(tree), nested_tree_bytes(kCodecDepthMax)) << "the deepest the decoder accepts";
  tree = Tree{0, {std::move(tree)}};
  EXPECT_DEATH(encode(tree), "kCodecDepthMax");
}

}  // namespace
}  // namespace duro::sim
