// A compact binary codec: values to bytes and back.
//
// Everything that crosses the simulated network is serialized for real, so
// a lost, duplicated or corrupted message behaves as it would on a wire; the
// engine's history encoding and on-disk records reuse the same format.
//
//   struct Ping { std::uint64_t id; std::string from; std::optional<Duration> budget; };
//   DURO_CODEC_FIELDS(Ping, id, from, budget);     // at namespace scope, after the struct
//
//   std::string bytes = sim::encode(Ping{7, "n1", 5ms});
//   sim::Result<Ping> ping = sim::decode<Ping>(bytes);   // or Error{kDecode, "... at byte N"}
//
// Wire format. Nothing is tagged: both sides know the type, field by field.
// Bytes are written one at a time, so the format does not depend on the
// host's endianness (DESIGN.md §2).
//
//   unsigned integer    LEB128 varint: 7 bits a byte, low bits first, the
//                       high bit set on every byte but the last. 300 = AC 02.
//   signed integer      zigzag, then varint: 0 = 00, -1 = 01, 1 = 02, -2 = 03.
//   bool                one byte, 00 or 01.
//   double, float       the IEEE bit pattern as fixed64 / fixed32, little-endian.
//   std::string         varint length, then the bytes. So are byte vectors
//                       (std::vector<std::uint8_t>, std::vector<std::byte>).
//   std::vector<T>      varint count, then each element.
//   std::map<K, V>      varint count, then key, value, ... in ascending key order.
//   std::optional<T>    00 when empty; 01, then the value.
//   std::pair<A, B>     first, then second.
//   std::variant<Ts...> varint index of the alternative held (0-based, in
//                       the order of Ts), then that alternative; a
//                       std::monostate alternative adds nothing after the
//                       index. Reordering Ts changes the format; appending
//                       to Ts does not. An index past the last alternative
//                       is a decode error. Alternatives must be default-
//                       constructible (the decoder constructs, then reads).
//   duration            its count, as its rep (zigzag for the usual signed
//                       reps). The period is not sent: both sides' types
//                       must agree, as for every field. time_point: its
//                       time_since_epoch().
//   enum                its underlying integer. Decoding does not check that
//                       the value names an enumerator; the receiver does.
//   described struct    each listed field, in the order listed. (The
//                       list also records the fields' names, for other
//                       formats: see for_each_codec_field.)
//
// Encodings are canonical: each value has exactly one encoding and the
// decoder accepts no other (no padded varints, no bool but 00 or 01, map
// keys strictly ascending), so equal values have equal bytes — safe to hash,
// checksum and compare — and any bytes that decode re-encode to themselves.
//
// Decoding is strict because bytes can be hostile (injected corruption,
// a torn record). Truncation, an overlong varint, a length or count larger
// than the remaining input could hold, or one above the caps below, is a
// decode error: never a read out of bounds, never an allocation sized by a
// length nobody checked. The Decoder keeps its first error (what, and at
// which byte) and fails every later read at once, so a caller reads all its
// fields and checks once at the end.
//
// Types join by specializing Codec<T> (any type), or with DURO_CODEC_FIELDS
// (structs with public fields). Both compose with the containers above.
// Encoding appends to the caller's string and allocates nothing else; no
// virtual calls anywhere.
#pragma once

#include <algorithm>
#include <array>
#include <bit>
#include <chrono>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "sim/assert.h"
#include "sim/result.h"

namespace duro::sim {

// Caps. A decoder rejects anything above them; an encoder asserts it never
// writes anything above them, so every encoding can be decoded.

// The longest string or byte string. Messages and records are far smaller;
// a length above this is corruption, not data.
inline constexpr std::size_t kCodecLengthBytesMax = std::size_t{64} << 20;

// The most elements in one vector or map.
inline constexpr std::size_t kCodecCountMax = std::size_t{16} << 20;

// The deepest nesting of containers (vector, map, optional, variant)
// inside each other. Decoding recurses once per level, on a fiber stack of 64 KiB
// (Simulator's default); a recursive type (a tree holding a vector of
// trees) must not let a hostile input recurse without limit.
inline constexpr std::size_t kCodecDepthMax = 32;

// The most a decoder reserves for a vector before its elements have been
// read: a count is checked against the remaining input, but elements in
// memory can be far larger than their encodings, so beyond this the vector
// grows only as elements actually decode.
inline constexpr std::size_t kCodecReserveBytesMax = std::size_t{1} << 20;

// A u64 needs at most ceil(64 / 7) = 10 varint bytes.
inline constexpr std::size_t kVarint64BytesMax = 10;

class Encoder;
class Decoder;

// The customization point. A specialization (in namespace duro::sim)
// provides
//
//   static void encode(Encoder& encoder, const T& value);
//   static bool decode(Decoder& decoder, T& value);   // false on error
//
// and optionally `static constexpr std::size_t kEncodedBytesMin`, the
// fewest bytes any value encodes to (1 if absent). Every value must encode
// to at least one byte: that is what lets a decoder reject a count larger
// than the remaining input before it allocates.
//
// decode() overwrites `value` entirely; on failure `value` is valid but
// unspecified. A decode that rejects a value it read (out of range, say)
// reports it with decoder.fail_at(offset, "what").
template <typename T>
struct Codec;

// Codec<T>::kEncodedBytesMin, or 1 when the codec does not say.
template <typename T>
constexpr std::size_t codec_encoded_bytes_min() {
  if constexpr (requires { Codec<T>::kEncodedBytesMin; }) {
    return Codec<T>::kEncodedBytesMin;
  } else {
    return 1;
  }
}

// Appends encodings to a string it does not own.
class Encoder {
 public:
  explicit Encoder(std::string& output) noexcept : output_(output) {}

  std::string& output() noexcept { return output_; }

  // Any type with a Codec.
  template <typename T>
  void write(const T& value) {
    Codec<T>::encode(*this, value);
  }

  [[gnu::always_inline]] void write_varint64(std::uint64_t value) {
    // Fast path: one byte. Most counts, lengths, tags and integers are
    // small; kept this small so that it inlines into every codec (the
    // call was 5% of a workflow's instructions), the rest out of line.
    if (value < 0x80) [[likely]] {
      output_.push_back(static_cast<char>(value));
      return;
    }
    write_varint64_long(value);
  }

  // A varint of two bytes or more: built on the stack and appended once
  // (one capacity check, not ten).
  [[gnu::noinline]] void write_varint64_long(std::uint64_t value) {
    // The loop runs at most 9 times: each pass drops 7 of 64 bits.
    char buffer[kVarint64BytesMax];
    std::size_t size = 0;
    while (value >= 0x80) {
      buffer[size++] = static_cast<char>(value | 0x80);
      value >>= 7;
    }
    buffer[size++] = static_cast<char>(value);
    output_.append(buffer, size);
  }

  // Same bytes as write_varint64; named for symmetry with read_varint32.
  void write_varint32(std::uint32_t value) { write_varint64(value); }

  // Zigzag maps small magnitudes of either sign to small varints:
  // 0, -1, 1, -2, ... become 0, 1, 2, 3, ...
  void write_zigzag64(std::int64_t value) {
    write_varint64((static_cast<std::uint64_t>(value) << 1) ^ static_cast<std::uint64_t>(value >> 63));
  }

  void write_fixed32(std::uint32_t value) {
    char buffer[4];
    for (std::size_t i = 0; i < 4; i++) buffer[i] = static_cast<char>(value >> (8 * i));
    output_.append(buffer, 4);
  }

  void write_fixed64(std::uint64_t value) {
    char buffer[8];
    for (std::size_t i = 0; i < 8; i++) buffer[i] = static_cast<char>(value >> (8 * i));
    output_.append(buffer, 8);
  }

  void write_bool(bool value) { output_.push_back(value ? '\x01' : '\x00'); }
  void write_double(double value) { write_fixed64(std::bit_cast<std::uint64_t>(value)); }
  void write_float(float value) { write_fixed32(std::bit_cast<std::uint32_t>(value)); }

  // A length-prefixed string of bytes (any bytes, not only text).
  void write_bytes(std::string_view bytes) {
    DURO_ASSERT_MSG(bytes.size() <= kCodecLengthBytesMax, "encoding a string above kCodecLengthBytesMax");
    write_varint64(bytes.size());
    output_.append(bytes);
  }

  // Bytes without a length: fixed headers, magic numbers.
  void write_raw(std::string_view bytes) { output_.append(bytes); }

  // A container's element count. For Codec specializations of containers.
  void write_count(std::size_t count) {
    DURO_ASSERT_MSG(count <= kCodecCountMax, "encoding a container above kCodecCountMax");
    write_varint64(count);
  }

  // Brackets the elements of a container, so that nothing is encoded that
  // the decoder would refuse as too deep. For Codec specializations.
  void enter_nested() {
    depth_++;
    DURO_ASSERT_MSG(depth_ <= kCodecDepthMax, "encoding containers nested above kCodecDepthMax");
  }
  void leave_nested() {
    DURO_ASSERT(depth_ > 0);
    depth_--;
  }

 private:
  std::string& output_;
  std::size_t depth_ = 0;
};

// Reads encodings from bytes it does not own; the bytes must outlive it.
// Every read returns false on error, records the first error, and after
// one leaves the decoder failed: all later reads return false at once.
//
//   Decoder decoder(bytes);
//   decoder.read(header);
//   decoder.read(body);
//   if (!decoder.finish()) return decoder.error();   // One check, at the end.
class Decoder {
 public:
  explicit Decoder(std::string_view input) noexcept
      : begin_(reinterpret_cast<const unsigned char*>(input.data())),
        cursor_(begin_),
        end_(begin_ + input.size()) {}
  // A temporary string would be gone before the first read.
  explicit Decoder(std::string&& input) = delete;

  bool ok() const noexcept { return error_what_ == nullptr; }
  // Bytes read so far, and left to read. A failed decoder has nothing left.
  std::size_t offset_bytes() const noexcept { return static_cast<std::size_t>(cursor_ - begin_); }
  std::size_t remaining_bytes() const noexcept { return static_cast<std::size_t>(end_ - cursor_); }

  // Any type with a Codec.
  template <typename T>
  bool read(T& value) {
    return Codec<T>::decode(*this, value);
  }

  [[gnu::always_inline]] bool read_varint64(std::uint64_t& value) noexcept {
    const unsigned char* p = cursor_;
    // Fast path: one byte. Most counts, lengths, tags and integers are
    // small; inlined, the rest out of line (as write_varint64).
    if (p != end_ && *p < 0x80) [[likely]] {
      value = *p;
      cursor_ = p + 1;
      return true;
    }
    return read_varint64_long(value);
  }

  // A varint of two bytes or more (or a truncated one).
  [[gnu::noinline]] bool read_varint64_long(std::uint64_t& value) noexcept {
    const unsigned char* p = cursor_;
    std::uint64_t result = 0;
    for (std::size_t i = 0; i < kVarint64BytesMax; i++) {
      if (p == end_) return fail_at_pointer(cursor_, "truncated varint");
      const std::uint64_t byte = *p++;
      result |= (byte & 0x7F) << (7 * i);
      if (byte < 0x80) {
        // A last byte of zero adds nothing: the same value has a shorter,
        // canonical encoding. Of a tenth byte only the lowest bit fits.
        if (byte == 0 && i > 0) return fail_at_pointer(cursor_, "non-minimal varint");
        if (i == kVarint64BytesMax - 1 && byte > 1) return fail_at_pointer(cursor_, "varint exceeds 64 bits");
        value = result;
        cursor_ = p;
        return true;
      }
    }
    return fail_at_pointer(cursor_, "varint longer than 10 bytes");
  }

  // A varint whose value must fit 32 bits. Since varints are minimal, that
  // also bounds it to 5 bytes.
  bool read_varint32(std::uint32_t& value) noexcept {
    const unsigned char* start = cursor_;
    std::uint64_t wide = 0;
    if (!read_varint64(wide)) return false;
    if (wide > UINT32_MAX) return fail_at_pointer(start, "varint exceeds 32 bits");
    value = static_cast<std::uint32_t>(wide);
    return true;
  }

  bool read_zigzag64(std::int64_t& value) noexcept {
    std::uint64_t raw = 0;
    if (!read_varint64(raw)) return false;
    value = static_cast<std::int64_t>((raw >> 1) ^ (~(raw & 1) + 1));
    return true;
  }

  bool read_zigzag32(std::int32_t& value) noexcept {
    std::uint32_t raw = 0;
    if (!read_varint32(raw)) return false;
    value = static_cast<std::int32_t>((raw >> 1) ^ (~(raw & 1) + 1));
    return true;
  }

  bool read_fixed32(std::uint32_t& value) noexcept {
    if (remaining_bytes() < 4) return fail_at_pointer(cursor_, "truncated fixed32");
    std::uint32_t result = 0;
    for (std::size_t i = 0; i < 4; i++) result |= std::uint32_t{cursor_[i]} << (8 * i);
    cursor_ += 4;
    value = result;
    return true;
  }

  bool read_fixed64(std::uint64_t& value) noexcept {
    if (remaining_bytes() < 8) return fail_at_pointer(cursor_, "truncated fixed64");
    std::uint64_t result = 0;
    for (std::size_t i = 0; i < 8; i++) result |= std::uint64_t{cursor_[i]} << (8 * i);
    cursor_ += 8;
    value = result;
    return true;
  }

  bool read_bool(bool& value) noexcept {
    if (cursor_ == end_) return fail_at_pointer(cursor_, "truncated bool");
    if (*cursor_ > 1) return fail_at_pointer(cursor_, "bool or tag byte not 0 or 1");
    value = *cursor_++ == 1;
    return true;
  }

  bool read_double(double& value) noexcept {
    std::uint64_t bits = 0;
    if (!read_fixed64(bits)) return false;
    value = std::bit_cast<double>(bits);
    return true;
  }

  bool read_float(float& value) noexcept {
    std::uint32_t bits = 0;
    if (!read_fixed32(bits)) return false;
    value = std::bit_cast<float>(bits);
    return true;
  }

  // A length-prefixed byte string, as a view into the input (no copy;
  // valid as long as the input is).
  bool read_bytes(std::string_view& bytes) noexcept {
    const unsigned char* start = cursor_;
    std::uint64_t length_bytes = 0;
    if (!read_varint64(length_bytes)) return false;
    if (length_bytes > kCodecLengthBytesMax) return fail_at_pointer(start, "length above cap");
    if (length_bytes > remaining_bytes()) return fail_at_pointer(start, "length exceeds remaining input");
    bytes = std::string_view(reinterpret_cast<const char*>(cursor_), static_cast<std::size_t>(length_bytes));
    cursor_ += length_bytes;
    return true;
  }

  // Exactly `size_bytes` bytes, without a length prefix.
  bool read_raw(std::size_t size_bytes, std::string_view& bytes) noexcept {
    if (!ok()) return false;  // A failed decoder fails even a read of nothing.
    if (size_bytes > remaining_bytes()) return fail_at_pointer(cursor_, "truncated raw bytes");
    bytes = std::string_view(reinterpret_cast<const char*>(cursor_), size_bytes);
    cursor_ += size_bytes;
    return true;
  }

  // A container's element count, checked against the caps and against the
  // input left: `count` elements of at least `element_bytes_min` bytes each
  // must fit, so a hostile count fails here, before anything is allocated.
  bool read_count(std::size_t& count, std::size_t element_bytes_min) noexcept {
    DURO_ASSERT(element_bytes_min > 0);
    const unsigned char* start = cursor_;
    std::uint64_t raw = 0;
    if (!read_varint64(raw)) return false;
    if (raw > kCodecCountMax) return fail_at_pointer(start, "count above cap");
    if (raw > remaining_bytes() / element_bytes_min) return fail_at_pointer(start, "count exceeds remaining input");
    count = static_cast<std::size_t>(raw);
    return true;
  }

  // Brackets the elements of a container; false past kCodecDepthMax.
  // For Codec specializations of containers.
  bool enter_nested() noexcept {
    if (depth_ == kCodecDepthMax) return fail_at_pointer(cursor_, "nesting above cap");
    depth_++;
    return true;
  }
  void leave_nested() noexcept {
    DURO_ASSERT(depth_ > 0);
    depth_--;
  }

  // Succeeds if everything was read; "trailing bytes" otherwise.
  bool finish() noexcept {
    if (!ok()) return false;
    if (cursor_ != end_) return fail_at_pointer(cursor_, "trailing bytes");
    return true;
  }

  // Records an error (unless one is recorded already) and fails the
  // decoder. `what` must be a string literal: it is kept, not copied.
  // Always returns false, for `return decoder.fail_at(...)`.
  bool fail_at(std::size_t offset_bytes, const char* what) noexcept;
  bool fail(const char* what) noexcept { return fail_at(offset_bytes(), what); }

  // The first error: what went wrong, and the offset of the value that
  // failed (its first byte). Only when !ok().
  const char* error_what() const noexcept { return error_what_; }
  std::size_t error_offset_bytes() const noexcept { return error_offset_bytes_; }

  // Error{kDecode, "<what> at byte <offset>"}. Only when !ok().
  Error error() const;

 private:
  bool fail_at_pointer(const unsigned char* at, const char* what) noexcept {
    return fail_at(static_cast<std::size_t>(at - begin_), what);
  }

  const unsigned char* begin_;
  const unsigned char* cursor_;  // Moved to end_ on error: later reads fail.
  const unsigned char* end_;
  std::size_t depth_ = 0;
  const char* error_what_ = nullptr;  // nullptr while ok.
  std::size_t error_offset_bytes_ = 0;
};

// Convenience.

// Appends the encoding of `value` to `output`.
template <typename T>
void encode_append(std::string& output, const T& value) {
  Encoder encoder(output);
  encoder.write(value);
}

// A buffer to encode into, lent by the calling thread and kept for its next
// encode(): growing a fresh string from empty reallocates and copies once
// per doubling, about six times for a kilobyte. Encoding into a buffer that
// has grown already, then copying out once at the exact size, allocates
// once. Leases nest (a codec may call encode() for a field); each gets its
// own buffer, its holder's alone until the lease ends, so a lease may be held
// across a fiber switch: a fiber that runs meanwhile leases a different
// buffer. But a lease held across a long wait is a buffer nobody else can
// reuse: with many fibers waiting so, the pool runs dry and each new lease
// grows a buffer from nothing (RpcServer's handlers lease only once they
// are done, for that reason).
class EncodeScratch {
 public:
  EncodeScratch();
  ~EncodeScratch();
  EncodeScratch(const EncodeScratch&) = delete;
  EncodeScratch& operator=(const EncodeScratch&) = delete;

  // Empty on lease.
  std::string& buffer() noexcept { return *buffer_; }
  const std::string& buffer() const noexcept { return *buffer_; }

 private:
  std::unique_ptr<std::string> buffer_;
};

template <typename T>
std::string encode(const T& value) {
  EncodeScratch scratch;
  encode_append(scratch.buffer(), value);
  return std::string(scratch.buffer());
}

// Decodes all of `input` into `value`, reusing its storage; trailing bytes
// are an error.
template <typename T>
Result<void> decode_into(std::string_view input, T& value) {
  Decoder decoder(input);
  decoder.read(value);
  if (!decoder.finish()) return decoder.error();
  return {};
}

// Decodes all of `input` as a T (default-constructible).
template <typename T>
Result<T> decode(std::string_view input) {
  T value{};
  Result<void> result = decode_into(input, value);
  if (!result.ok()) return result.error();
  return value;
}

// Codecs for the standard types.

namespace detail {

// Integers, but not bool or the character types: whether `char` is signed
// depends on the platform, and so would its encoding.
template <typename T>
concept CodecInteger = std::integral<T> && !std::same_as<T, bool> && !std::same_as<T, char> &&
                       !std::same_as<T, wchar_t> && !std::same_as<T, char8_t> && !std::same_as<T, char16_t> &&
                       !std::same_as<T, char32_t>;

// Element types whose vectors encode as byte strings.
template <typename T>
concept CodecByte = std::same_as<T, unsigned char> || std::same_as<T, std::byte>;

template <typename T>
inline constexpr bool kCodecUnsupported = false;

}  // namespace detail

// No codec: a compile error that says what to do.
template <typename T>
struct Codec {
  static_assert(detail::kCodecUnsupported<T>,
                "no Codec<T>: describe the struct with DURO_CODEC_FIELDS, or specialize duro::sim::Codec<T>");
};

template <detail::CodecInteger T>
struct Codec<T> {
  static void encode(Encoder& encoder, const T& value) {
    if constexpr (std::is_signed_v<T>) {
      encoder.write_zigzag64(value);
    } else {
      encoder.write_varint64(value);
    }
  }
  static bool decode(Decoder& decoder, T& value) {
    const std::size_t offset = decoder.offset_bytes();
    if constexpr (std::is_signed_v<T>) {
      std::int64_t wide = 0;
      if (!decoder.read_zigzag64(wide)) return false;
      if (!std::in_range<T>(wide)) return decoder.fail_at(offset, "integer out of range");
      value = static_cast<T>(wide);
    } else if constexpr (sizeof(T) <= 4) {
      std::uint32_t wide = 0;
      if (!decoder.read_varint32(wide)) return false;
      if (!std::in_range<T>(wide)) return decoder.fail_at(offset, "integer out of range");
      value = static_cast<T>(wide);
    } else {
      std::uint64_t wide = 0;
      if (!decoder.read_varint64(wide)) return false;
      value = static_cast<T>(wide);
    }
    return true;
  }
};

template <>
struct Codec<bool> {
  static void encode(Encoder& encoder, const bool& value) { encoder.write_bool(value); }
  static bool decode(Decoder& decoder, bool& value) { return decoder.read_bool(value); }
};

template <>
struct Codec<double> {
  static constexpr std::size_t kEncodedBytesMin = 8;
  static void encode(Encoder& encoder, const double& value) { encoder.write_double(value); }
  static bool decode(Decoder& decoder, double& value) { return decoder.read_double(value); }
};

template <>
struct Codec<float> {
  static constexpr std::size_t kEncodedBytesMin = 4;
  static void encode(Encoder& encoder, const float& value) { encoder.write_float(value); }
  static bool decode(Decoder& decoder, float& value) { return decoder.read_float(value); }
};

template <typename T>
  requires std::is_enum_v<T>
struct Codec<T> {
  using Underlying = std::underlying_type_t<T>;
  static void encode(Encoder& encoder, const T& value) {
    Codec<Underlying>::encode(encoder, static_cast<Underlying>(value));
  }
  static bool decode(Decoder& decoder, T& value) {
    Underlying raw{};
    if (!Codec<Underlying>::decode(decoder, raw)) return false;
    value = static_cast<T>(raw);
    return true;
  }
};

template <typename Traits, typename Allocator>
struct Codec<std::basic_string<char, Traits, Allocator>> {
  using String = std::basic_string<char, Traits, Allocator>;
  static void encode(Encoder& encoder, const String& value) {
    encoder.write_bytes(std::string_view(value.data(), value.size()));
  }
  static bool decode(Decoder& decoder, String& value) {
    std::string_view bytes;
    if (!decoder.read_bytes(bytes)) return false;
    value.assign(bytes.data(), bytes.size());  // Length checked against the input.
    return true;
  }
};

template <detail::CodecByte T, typename Allocator>
struct Codec<std::vector<T, Allocator>> {
  static void encode(Encoder& encoder, const std::vector<T, Allocator>& value) {
    encoder.write_bytes(std::string_view(reinterpret_cast<const char*>(value.data()), value.size()));
  }
  static bool decode(Decoder& decoder, std::vector<T, Allocator>& value) {
    std::string_view bytes;
    if (!decoder.read_bytes(bytes)) return false;
    const T* data = reinterpret_cast<const T*>(bytes.data());
    value.assign(data, data + bytes.size());  // Length checked against the input.
    return true;
  }
};

template <typename T, typename Allocator>
  requires(!detail::CodecByte<T>)
struct Codec<std::vector<T, Allocator>> {
  using Vector = std::vector<T, Allocator>;

  static void encode(Encoder& encoder, const Vector& value) {
    const std::size_t size_before_bytes = encoder.output().size();
    encoder.write_count(value.size());
    encoder.enter_nested();
    for (const auto& element : value) Codec<T>::encode(encoder, element);
    encoder.leave_nested();
    // The decoder's count check trusts kEncodedBytesMin: hold the codec to it.
    DURO_ASSERT(encoder.output().size() - size_before_bytes >= value.size() * codec_encoded_bytes_min<T>());
  }

  static bool decode(Decoder& decoder, Vector& value) {
    std::size_t count = 0;
    if (!decoder.read_count(count, codec_encoded_bytes_min<T>())) return false;
    if (!decoder.enter_nested()) return false;
    value.clear();
    value.reserve(std::min(count, kCodecReserveBytesMax / sizeof(T)));
    for (std::size_t i = 0; i < count; i++) {
      if constexpr (std::is_same_v<T, bool>) {
        bool element = false;  // vector<bool> hands out proxies, not bool&.
        if (!decoder.read_bool(element)) return false;
        value.push_back(element);
      } else {
        if (!Codec<T>::decode(decoder, value.emplace_back())) return false;
      }
    }
    decoder.leave_nested();
    return true;
  }
};

template <typename K, typename V, typename Compare, typename Allocator>
struct Codec<std::map<K, V, Compare, Allocator>> {
  using Map = std::map<K, V, Compare, Allocator>;
  static constexpr std::size_t kEntryBytesMin = codec_encoded_bytes_min<K>() + codec_encoded_bytes_min<V>();

  static void encode(Encoder& encoder, const Map& value) {
    const std::size_t size_before_bytes = encoder.output().size();
    encoder.write_count(value.size());
    encoder.enter_nested();
    for (const auto& [key, mapped] : value) {
      Codec<K>::encode(encoder, key);
      Codec<V>::encode(encoder, mapped);
    }
    encoder.leave_nested();
    DURO_ASSERT(encoder.output().size() - size_before_bytes >= value.size() * kEntryBytesMin);
  }

  static bool decode(Decoder& decoder, Map& value) {
    std::size_t count = 0;
    if (!decoder.read_count(count, kEntryBytesMin)) return false;
    if (!decoder.enter_nested()) return false;
    value.clear();
    for (std::size_t i = 0; i < count; i++) {
      const std::size_t key_offset = decoder.offset_bytes();
      K key{};
      if (!Codec<K>::decode(decoder, key)) return false;
      // Strictly ascending, as a map iterates: rejects duplicate keys (which
      // would silently drop a value) and keeps the encoding canonical. It
      // also makes every insertion an O(1) append at the end.
      if (!value.empty() && !value.key_comp()(std::prev(value.end())->first, key)) {
        return decoder.fail_at(key_offset, "map keys not strictly ascending");
      }
      V mapped{};
      if (!Codec<V>::decode(decoder, mapped)) return false;
      value.emplace_hint(value.end(), std::move(key), std::move(mapped));
    }
    decoder.leave_nested();
    return true;
  }
};

template <typename T>
struct Codec<std::optional<T>> {
  static void encode(Encoder& encoder, const std::optional<T>& value) {
    encoder.write_bool(value.has_value());
    if (value.has_value()) {
      encoder.enter_nested();
      Codec<T>::encode(encoder, *value);
      encoder.leave_nested();
    }
  }
  static bool decode(Decoder& decoder, std::optional<T>& value) {
    bool present = false;
    if (!decoder.read_bool(present)) return false;
    if (!present) {
      value.reset();
      return true;
    }
    if (!decoder.enter_nested()) return false;
    if (!Codec<T>::decode(decoder, value.emplace())) return false;
    decoder.leave_nested();
    return true;
  }
};

template <typename A, typename B>
struct Codec<std::pair<A, B>> {
  static constexpr std::size_t kEncodedBytesMin = codec_encoded_bytes_min<A>() + codec_encoded_bytes_min<B>();
  static void encode(Encoder& encoder, const std::pair<A, B>& value) {
    Codec<A>::encode(encoder, value.first);
    Codec<B>::encode(encoder, value.second);
  }
  static bool decode(Decoder& decoder, std::pair<A, B>& value) {
    return Codec<A>::decode(decoder, value.first) && Codec<B>::decode(decoder, value.second);
  }
};

namespace detail {

// The fewest bytes an alternative adds after a variant's index: nothing for
// std::monostate (which has no codec of its own: alone it would encode to
// zero bytes, which a container's count check cannot allow).
template <typename T>
constexpr std::size_t codec_alternative_bytes_min() {
  if constexpr (std::is_same_v<T, std::monostate>) {
    return 0;
  } else {
    return codec_encoded_bytes_min<T>();
  }
}

}  // namespace detail

template <typename... Ts>
struct Codec<std::variant<Ts...>> {
  using Variant = std::variant<Ts...>;
  // The index takes at least one byte, so even variant<monostate> does.
  static constexpr std::size_t kEncodedBytesMin = 1 + std::min({detail::codec_alternative_bytes_min<Ts>()...});

  static void encode(Encoder& encoder, const Variant& value) {
    DURO_ASSERT_MSG(!value.valueless_by_exception(), "encoding a valueless variant");
    encoder.write_varint64(value.index());
    encoder.enter_nested();
    std::visit(
        [&]<typename T>(const T& alternative) {
          if constexpr (!std::is_same_v<T, std::monostate>) Codec<T>::encode(encoder, alternative);
        },
        value);
    encoder.leave_nested();
  }

  static bool decode(Decoder& decoder, Variant& value) {
    // One decoder per alternative, indexed by the decoded index: a table
    // rather than a chain of comparisons, and it works for variants that
    // hold the same type twice (the index, not the type, says which).
    static constexpr std::array<bool (*)(Decoder&, Variant&), sizeof...(Ts)> kDecoders =
        []<std::size_t... I>(std::index_sequence<I...>) {
          return std::array<bool (*)(Decoder&, Variant&), sizeof...(Ts)>{&decode_alternative<I>...};
        }(std::index_sequence_for<Ts...>{});
    const std::size_t offset = decoder.offset_bytes();
    std::uint64_t index = 0;
    if (!decoder.read_varint64(index)) return false;
    if (index >= sizeof...(Ts)) return decoder.fail_at(offset, "variant index out of range");
    if (!decoder.enter_nested()) return false;
    if (!kDecoders[static_cast<std::size_t>(index)](decoder, value)) return false;
    decoder.leave_nested();
    return true;
  }

 private:
  template <std::size_t I>
  static bool decode_alternative(Decoder& decoder, Variant& value) {
    using T = std::variant_alternative_t<I, Variant>;
    if constexpr (std::is_same_v<T, std::monostate>) {
      value.template emplace<I>();
      return true;
    } else {
      return Codec<T>::decode(decoder, value.template emplace<I>());
    }
  }
};

template <detail::CodecInteger Rep, typename Period>
struct Codec<std::chrono::duration<Rep, Period>> {
  using Duration = std::chrono::duration<Rep, Period>;
  static void encode(Encoder& encoder, const Duration& value) { Codec<Rep>::encode(encoder, value.count()); }
  static bool decode(Decoder& decoder, Duration& value) {
    Rep count{};
    if (!Codec<Rep>::decode(decoder, count)) return false;
    value = Duration{count};
    return true;
  }
};

template <typename ClockType, typename Duration>
struct Codec<std::chrono::time_point<ClockType, Duration>> {
  using TimePoint = std::chrono::time_point<ClockType, Duration>;
  static constexpr std::size_t kEncodedBytesMin = codec_encoded_bytes_min<Duration>();
  static void encode(Encoder& encoder, const TimePoint& value) {
    Codec<Duration>::encode(encoder, value.time_since_epoch());
  }
  static bool decode(Decoder& decoder, TimePoint& value) {
    Duration since_epoch{};
    if (!Codec<Duration>::decode(decoder, since_epoch)) return false;
    value = TimePoint{since_epoch};
    return true;
  }
};

// Described structs.
//
//   struct Move { std::string piece; std::int32_t from; std::int32_t to; };
//   DURO_CODEC_FIELDS(Move, piece, from, to);
//
// Place it after the struct, at namespace scope, in the struct's own
// namespace (the codec finds the description by argument-dependent lookup,
// so this works from any namespace, an anonymous one included). Fields
// encode in the order listed, which is the wire format: reordering the list
// changes it. List every field that must travel; a field left out is not
// sent and decodes as its default. Limits: public data members; at least one
// field; at most 64 (tested; somewhat more compile, far more do not); a
// Type whose name contains a comma (a template) needs an alias first. For
// anything else, specialize Codec<T>.
//
// The list also records each field's name as spelled in it, so that other
// representations of the same struct (the JSON form of histories, error
// messages) walk it without a second list to keep in step:
// codec_field_names<T>() and for_each_codec_field(value, visit) below.
#define DURO_CODEC_FIELDS(Type, ...)                                                                  \
  [[maybe_unused]] constexpr auto duro_codec_fields(const Type*) noexcept {                           \
    return ::std::tuple{DURO_CODEC_DETAIL_FOR_EACH(DURO_CODEC_DETAIL_MEMBER, Type, __VA_ARGS__)};     \
  }                                                                                                   \
  [[maybe_unused]] constexpr auto duro_codec_field_names(const Type*) noexcept {                      \
    return ::std::array{DURO_CODEC_DETAIL_FOR_EACH(DURO_CODEC_DETAIL_NAME, Type, __VA_ARGS__)};       \
  }                                                                                                   \
  static_assert(::std::is_class_v<Type>, "DURO_CODEC_FIELDS describes a struct")

namespace detail {

template <typename T>
concept CodecDescribed = requires(const T* type) { duro_codec_fields(type); };

template <typename Member>
struct CodecMember;
template <typename Class, typename Field>
struct CodecMember<Field Class::*> {
  using Type = Field;
};

template <typename Fields>
struct CodecFieldsBytesMin;
template <typename... Members>
struct CodecFieldsBytesMin<std::tuple<Members...>> {
  static constexpr std::size_t value = (codec_encoded_bytes_min<typename CodecMember<Members>::Type>() + ... + 0);
};

}  // namespace detail

template <detail::CodecDescribed T>
struct Codec<T> {
  // A tuple of pointers to the listed members, known at compile time: the
  // loops below unroll into one write or read per field.
  static constexpr auto kFields = duro_codec_fields(static_cast<const T*>(nullptr));
  using Fields = std::remove_const_t<decltype(kFields)>;
  static constexpr std::size_t kEncodedBytesMin = detail::CodecFieldsBytesMin<Fields>::value;
  static_assert(kEncodedBytesMin >= 1, "DURO_CODEC_FIELDS needs at least one field");

  static void encode(Encoder& encoder, const T& value) {
    std::apply([&](auto... field) { (encoder.write(value.*field), ...); }, kFields);
  }
  static bool decode(Decoder& decoder, T& value) {
    return std::apply([&](auto... field) { return (decoder.read(value.*field) && ...); }, kFields);
  }
};

// Field names of described structs, for representations other than this
// codec: a std::array<std::string_view, N> of the names as spelled in
// DURO_CODEC_FIELDS, in the listed order.
template <detail::CodecDescribed T>
constexpr auto codec_field_names() noexcept {
  return duro_codec_field_names(static_cast<const T*>(nullptr));
}

// Calls visit(name, field) for each listed field of `value`, in the listed
// order; `field` is a reference to the member (const when `value` is).
// Unrolled at compile time, like the codec itself.
//
//   for_each_codec_field(move, [&](std::string_view name, const auto& field) { ... });
template <typename T, typename Visit>
  requires detail::CodecDescribed<std::remove_const_t<T>>
constexpr void for_each_codec_field(T& value, Visit&& visit) {
  using Plain = std::remove_const_t<T>;
  constexpr auto fields = duro_codec_fields(static_cast<const Plain*>(nullptr));
  constexpr auto names = duro_codec_field_names(static_cast<const Plain*>(nullptr));
  static_assert(std::tuple_size_v<std::remove_const_t<decltype(fields)>> == names.size());
  [&]<std::size_t... I>(std::index_sequence<I...>) {
    (visit(names[I], value.*std::get<I>(fields)), ...);
  }(std::make_index_sequence<names.size()>{});
}

}  // namespace duro::sim

// DURO_CODEC_DETAIL_FOR_EACH(m, context, a, b, c) expands to
// m(context, a) m(context, b) m(context, c). The preprocessor does not
// recurse, so each step leaves the next one unexpanded (the name and its
// parentheses are kept apart until the next scan) and RESCAN scans again
// and again: 64 nested rescans, enough for 86 fields (measured). The
// documented limit is 64; past 86 the leftover step is a compile error.
#define DURO_CODEC_DETAIL_MEMBER(Type, field) &Type::field,
#define DURO_CODEC_DETAIL_NAME(Type, field) ::std::string_view{#field},
#define DURO_CODEC_DETAIL_FOR_EACH(m, context, ...) \
  __VA_OPT__(DURO_CODEC_DETAIL_RESCAN(DURO_CODEC_DETAIL_STEP(m, context, __VA_ARGS__)))
#define DURO_CODEC_DETAIL_STEP(m, context, first, ...) \
  m(context, first) __VA_OPT__(DURO_CODEC_DETAIL_STEP_AGAIN DURO_CODEC_DETAIL_PARENS (m, context, __VA_ARGS__))
#define DURO_CODEC_DETAIL_PARENS ()
#define DURO_CODEC_DETAIL_STEP_AGAIN() DURO_CODEC_DETAIL_STEP
#define DURO_CODEC_DETAIL_RESCAN(...)                        \
  DURO_CODEC_DETAIL_RESCAN_16(DURO_CODEC_DETAIL_RESCAN_16( \
      DURO_CODEC_DETAIL_RESCAN_16(DURO_CODEC_DETAIL_RESCAN_16(__VA_ARGS__))))
#define DURO_CODEC_DETAIL_RESCAN_16(...)                   \
  DURO_CODEC_DETAIL_RESCAN_4(DURO_CODEC_DETAIL_RESCAN_4(   \
      DURO_CODEC_DETAIL_RESCAN_4(DURO_CODEC_DETAIL_RESCAN_4(__VA_ARGS__))))
#define DURO_CODEC_DETAIL_RESCAN_4(...)                    \
  DURO_CODEC_DETAIL_RESCAN_1(DURO_CODEC_DETAIL_RESCAN_1(   \
      DURO_CODEC_DETAIL_RESCAN_1(DURO_CODEC_DETAIL_RESCAN_1(__VA_ARGS__))))
#define DURO_CODEC_DETAIL_RESCAN_1(...) __VA_ARGS__
