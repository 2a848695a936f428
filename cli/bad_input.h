// What every `duro` command shares: its exit codes, and BadInput, which a
// command throws for bad usage or input (an unknown scenario, a malformed
// file) so that main() prints the message and exits 2.
#pragma once

#include <string>

namespace duro::cli {

inline constexpr int kExitPassed = 0;
inline constexpr int kExitFailed = 1;
inline constexpr int kExitBadInput = 2;

// The message says what is wrong, and exit code 2 says it was not a failed
// seed or a diverging replay.
struct BadInput {
  std::string message;
};

}  // namespace duro::cli
