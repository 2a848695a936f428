// A failing run kept as a regression case (replays/failures/, DESIGN.md
// §6): the scenario, the seed, the (usually shrunk) fault plan, the build
// that failed, and what failed. `duro shrink --keep DIR` writes one; `duro
// regress PATH...` (and ctest) reruns each and requires it to pass now — a
// bug once fixed stays fixed.
//
//   {"format": 1, "scenario": "cell-migration", "seed": 7, "buildId": "7ae7d93c1f2e",
//    "invariant": "one-writer", "message": "ns-2 has two writers: ...",
//    "faultPlan": "# duro fault plan v1\nseed 7\n..."}
#pragma once

#include <cstdint>
#include <string>

#include "sim/fault_plan.h"

namespace duro::cli {

inline constexpr const char* kFailureExtension = ".failure";

struct KeptFailure {
  std::string scenario;
  std::uint64_t seed = 0;
  std::string build_id;
  std::string invariant;  // The first violation's, when it failed.
  std::string message;
  sim::FaultPlan plan;
};

std::string kept_failure_to_json(const KeptFailure& failure);
// BadInput naming `path` and the problem (malformed JSON, a missing field,
// a fault plan that does not parse).
KeptFailure kept_failure_from_json(const std::string& path, const std::string& json);

}  // namespace duro::cli
