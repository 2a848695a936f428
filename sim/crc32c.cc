#include "sim/crc32c.h"

#include <array>
#include <cstddef>
#include <cstring>

namespace duro::sim {
namespace {

// The reflected Castagnoli polynomial.
constexpr std::uint32_t kPolynomial = 0x82F63B78;

// kTables[0] is the classic byte-at-a-time table; kTables[k][b] is the CRC
// of byte b followed by k zero bytes, which lets the loop fold eight bytes
// per step (slicing by 8).
using Tables = std::array<std::array<std::uint32_t, 256>, 8>;

constexpr Tables make_tables() {
  Tables tables{};
  for (std::uint32_t byte = 0; byte < 256; byte++) {
    std::uint32_t crc = byte;
    for (int bit = 0; bit < 8; bit++) crc = (crc >> 1) ^ ((crc & 1) != 0 ? kPolynomial : 0);
    tables[0][byte] = crc;
  }
  for (std::size_t k = 1; k < 8; k++) {
    for (std::size_t byte = 0; byte < 256; byte++) {
      const std::uint32_t previous = tables[k - 1][byte];
      tables[k][byte] = (previous >> 8) ^ tables[0][previous & 0xFF];
    }
  }
  return tables;
}

constexpr Tables kTables = make_tables();

#if defined(__x86_64__)
// The crc32 instruction computes exactly CRC-32C (the reflected Castagnoli
// polynomial), eight bytes at a time. Unaligned loads through memcpy.
__attribute__((target("sse4.2"))) std::uint32_t crc32c_extend_sse42(std::uint32_t crc,
                                                                     std::string_view bytes) noexcept {
  const char* data = bytes.data();
  std::size_t size = bytes.size();
  std::uint64_t state = ~crc;
  while (size >= 8) {
    std::uint64_t word;
    std::memcpy(&word, data, 8);
    state = __builtin_ia32_crc32di(state, word);
    data += 8;
    size -= 8;
  }
  auto narrow = static_cast<std::uint32_t>(state);
  for (; size > 0; size--, data++) narrow = __builtin_ia32_crc32qi(narrow, static_cast<unsigned char>(*data));
  return ~narrow;
}

// Read once, before main (a static initializer must init the CPU model
// itself). A call from an earlier initializer takes the portable path.
const bool kHaveSse42 = [] {
  __builtin_cpu_init();
  return __builtin_cpu_supports("sse4.2") != 0;
}();
#endif

}  // namespace

std::uint32_t crc32c_extend(std::uint32_t crc, std::string_view bytes) noexcept {
#if defined(__x86_64__)
  if (kHaveSse42) return crc32c_extend_sse42(crc, bytes);
#endif
  return crc32c_extend_portable(crc, bytes);
}

std::uint32_t crc32c_extend_portable(std::uint32_t crc, std::string_view bytes) noexcept {
  const auto* data = reinterpret_cast<const unsigned char*>(bytes.data());
  std::size_t size = bytes.size();
  crc = ~crc;
  // Eight bytes per step, assembled little-endian byte by byte (so the
  // host's byte order does not matter).
  while (size >= 8) {
    const std::uint32_t low = crc ^ (static_cast<std::uint32_t>(data[0]) | static_cast<std::uint32_t>(data[1]) << 8 |
                                     static_cast<std::uint32_t>(data[2]) << 16 |
                                     static_cast<std::uint32_t>(data[3]) << 24);
    crc = kTables[7][low & 0xFF] ^ kTables[6][(low >> 8) & 0xFF] ^ kTables[5][(low >> 16) & 0xFF] ^
          kTables[4][low >> 24] ^ kTables[3][data[4]] ^ kTables[2][data[5]] ^ kTables[1][data[6]] ^
          kTables[0][data[7]];
    data += 8;
    size -= 8;
  }
  for (; size > 0; size--, data++) crc = (crc >> 8) ^ kTables[0][(crc ^ *data) & 0xFF];
  return ~crc;
}

}  // namespace duro::sim
