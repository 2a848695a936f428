// A decider for tests and benchmarks: `count` activities of one type, one
// after another (activity i gets input "i"), then completion with their
// results concatenated. A failed or timed-out step fails the workflow.
// `retry`: each step's retry policy (none: the server's default).
#pragma once

#include <optional>
#include <string>

#include "engine/testing/raw_worker.h"

namespace duro::engine::testing {

Decider sequential_activities(int count, std::string activity_type, sim::Duration start_to_close,
                              std::optional<RetryPolicy> retry = std::nullopt);

}  // namespace duro::engine::testing
