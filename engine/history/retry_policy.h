// Retry policy, as Temporal's: how an activity (or a workflow, or a failed
// workflow task) is retried after a failure.
//
// Defaults are the server's: initial interval 1 s, backoff coefficient 2.0,
// maximum interval 100 x initial, maximum attempts 0 = unlimited (bounded
// only by the timeouts), and no non-retryable error types. Attempt 1 is the
// first try; maximum_attempts = 1 means no retry.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "engine/history/failure.h"
#include "sim/clock.h"
#include "sim/codec.h"

namespace duro::engine {

struct RetryPolicy {
  sim::Duration initial_interval = std::chrono::seconds{1};
  double backoff_coefficient = 2.0;
  sim::Duration maximum_interval{0};  // 0: 100 x initial_interval.
  std::int32_t maximum_attempts = 0;  // 0: unlimited.
  std::vector<std::string> non_retryable_error_types;  // Exact Failure::type names.

  bool operator==(const RetryPolicy&) const = default;
};
DURO_CODEC_FIELDS(RetryPolicy, initial_interval, backoff_coefficient, maximum_interval, maximum_attempts,
                  non_retryable_error_types);

// Fills in the defaults (zero intervals, coefficient < 1) the way the server
// does on schedule, so what history records is what is applied.
RetryPolicy normalized(RetryPolicy policy);

// Why `policy` refuses it, or nullopt when valid: negative intervals,
// coefficient < 1, negative attempts, maximum below initial.
std::optional<std::string> validate(const RetryPolicy& policy);

// The decision after attempt `attempt` (1-based) failed with `failure`:
// the backoff before the next attempt, or the RetryState that ends the
// retries. `time_left` is what remains of the enclosing timeout
// (schedule-to-close or the run's), nullopt when unbounded: a retry whose
// backoff would not fit is not attempted (kTimeout).
struct RetryDecision {
  RetryState state = RetryState::kInProgress;  // kInProgress: retry after `backoff`.
  sim::Duration backoff{0};
};
RetryDecision next_retry(const RetryPolicy& policy, std::int32_t attempt, const Failure& failure,
                         std::optional<sim::Duration> time_left);

}  // namespace duro::engine
