#include "sim/crc32c.h"

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>

namespace duro::sim {
namespace {

// Known answers: the check value of the CRC catalogue, and RFC 3720's
// (iSCSI) test vectors.
TEST(Crc32c, MatchesKnownAnswers) {
  EXPECT_EQ(crc32c(""), 0U);
  EXPECT_EQ(crc32c("123456789"), 0xE3069283U);
  EXPECT_EQ(crc32c(std::string(32, '\0')), 0x8A9136AAU);
  EXPECT_EQ(crc32c(std::string(32, '\xFF')), 0x62A8AB43U);
  std::string ascending;
  for (int i = 0; i < 32; i++) ascending.push_back(static_cast<char>(i));
  EXPECT_EQ(crc32c(ascending), 0x46DD794EU);
}

TEST(Crc32c, DetectsEveryFlippedBitOfARecord) {
  std::string record = "a durable record: shard 3, range 7, events 12..19";
  const std::uint32_t good = crc32c(record);
  for (std::size_t byte = 0; byte < record.size(); byte++) {
    for (int bit = 0; bit < 8; bit++) {
      record[byte] = static_cast<char>(record[byte] ^ (1 << bit));
      EXPECT_NE(crc32c(record), good) << "byte " << byte << " bit " << bit;
      record[byte] = static_cast<char>(record[byte] ^ (1 << bit));
    }
  }
}

RC_GTEST_PROP(Crc32cProperty, ExtendingEqualsOneShot, (const std::string& a, const std::string& b)) {
  RC_ASSERT(crc32c_extend(crc32c(a), b) == crc32c(a + b));
}

// The CPU's instruction, where the host has one, and the tables agree, at
// every length and alignment (a prefix shifts the rest off 8-byte bounds).
RC_GTEST_PROP(Crc32cProperty, TheHostsPathAndThePortableOneAgree, (const std::string& bytes, std::uint32_t seed)) {
  const std::size_t skip = *rc::gen::inRange<std::size_t>(0, 8);
  const std::string_view shifted = std::string_view(bytes).substr(std::min(skip, bytes.size()));
  RC_ASSERT(crc32c_extend(seed, shifted) == crc32c_extend_portable(seed, shifted));
  RC_ASSERT(crc32c_extend(seed, bytes) == crc32c_extend_portable(seed, bytes));
}

}  // namespace
}  // namespace duro::sim
