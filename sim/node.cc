#include "sim/node.h"

#include <fmt/format.h>

namespace duro::sim {

std::string to_string(Address address) {
  const std::uint32_t v = address.value;
  return fmt::format("{}.{}.{}.{}", v >> 24, (v >> 16) & 0xFF, (v >> 8) & 0xFF, v & 0xFF);
}

}  // namespace duro::sim
