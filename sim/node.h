// Simulated machines.
//
// A node has a name, an address and a process. The process is whatever a
// boot function builds: the volatile memory of a server. Every fiber belongs
// to exactly one node. Crashing a node unwinds all of its fibers (oldest
// first; destructors run, as they would on a clean shutdown of the stack)
// and then destroys its process; nothing volatile survives. Restarting boots
// it again, with the incarnation number raised by one. What survives a
// crash (a disk) belongs to the world, not to the process.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string_view>
#include <string>

namespace duro::sim {

using NodeId = std::uint32_t;
inline constexpr NodeId kNoNode = UINT32_MAX;

// A node's network address. Plain data; printed as 10.x.y.z.
struct Address {
  std::uint32_t value = 0;
  bool operator==(const Address&) const = default;
  auto operator<=>(const Address&) const = default;
};
std::string to_string(Address address);
// The inverse of to_string: "10.0.0.3" -> Address; nullopt if malformed.
std::optional<Address> parse_address(std::string_view text);

// A node's volatile state. Boot functions return a subclass.
class Process {
 public:
  virtual ~Process() = default;
};

// Builds the process of node `node` and spawns its fibers. Runs at
// add_node() and at every restart().
using BootFn = std::function<std::unique_ptr<Process>(NodeId node)>;

}  // namespace duro::sim
