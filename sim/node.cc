#include "sim/node.h"

#include <fmt/format.h>

namespace duro::sim {

std::string to_string(Address address) {
  const std::uint32_t v = address.value;
  return fmt::format("{}.{}.{}.{}", v >> 24, (v >> 16) & 0xFF, (v >> 8) & 0xFF, v & 0xFF);
}

std::optional<Address> parse_address(std::string_view text) {
  std::uint32_t value = 0;
  int parts = 0;
  std::size_t i = 0;
  while (parts < 4) {
    if (i >= text.size() || text[i] < '0' || text[i] > '9') return std::nullopt;
    std::uint32_t part = 0;
    std::size_t digits = 0;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9' && digits < 4) {
      part = part * 10 + static_cast<std::uint32_t>(text[i] - '0');
      i++;
      digits++;
    }
    if (part > 255 || digits > 3) return std::nullopt;
    value = (value << 8) | part;
    parts++;
    if (parts < 4) {
      if (i >= text.size() || text[i] != '.') return std::nullopt;
      i++;
    }
  }
  if (i != text.size()) return std::nullopt;
  return Address{value};
}

}  // namespace duro::sim
