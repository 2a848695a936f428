// CRC-32C (Castagnoli): the checksum of durable records.
//
//   std::uint32_t crc = sim::crc32c(bytes);
//   crc = sim::crc32c_extend(crc, more_bytes);   // == crc32c(bytes + more_bytes)
//
// Why CRC-32C: it is what iSCSI, ext4, Btrfs, LevelDB and RocksDB checksum
// their blocks with; it detects every burst error up to 32 bits and every
// error of up to 5 flipped bits in a record of a few kilobytes (Koopman), so
// a torn sector, a flipped bit or a misdirected write cannot pass for valid
// data except with probability about 2^-32 — unless someone writes a
// checksummed fake on purpose, which is not the threat here.
//
// On x86-64 hosts with SSE4.2 (nearly all since 2008) the CPU's crc32
// instruction computes it, several times faster; elsewhere portable
// table-driven code (slicing by 8) does, with no endianness dependence.
// Either way the result is the same on every host (tested against each
// other).
#pragma once

#include <cstdint>
#include <string_view>

namespace duro::sim {

// Continues a CRC-32C computed over earlier bytes with `bytes`. The CRC of
// nothing is 0.
std::uint32_t crc32c_extend(std::uint32_t crc, std::string_view bytes) noexcept;

inline std::uint32_t crc32c(std::string_view bytes) noexcept { return crc32c_extend(0, bytes); }

// The table-driven code alone, whatever the host: for tests.
std::uint32_t crc32c_extend_portable(std::uint32_t crc, std::string_view bytes) noexcept;

}  // namespace duro::sim
