// The limits and defaults a server applies to every workflow, with
// Temporal's values. Each limit is enforced with a clear error; none is a
// silent truncation.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>

#include "sim/clock.h"

namespace duro::engine {

struct ServerLimits {
  // History length: warn once past the first, terminate the run past the
  // second (Temporal: 10,240 and 51,200 events).
  std::int64_t history_events_warn = 10'240;
  std::int64_t history_events_max = 51'200;
  // Any one payload (input, result, signal, details).
  std::size_t payload_bytes_max = 2 << 20;
  // Per run: a command beyond these fails the workflow task
  // (kPendingLimitExceeded) instead of growing state without bound.
  std::size_t pending_activities_max = 2'000;
  std::size_t pending_children_max = 2'000;
  std::size_t pending_timers_max = 10'000;
  std::size_t pending_externals_max = 2'000;
  std::size_t buffered_events_max = 10'000;
  std::size_t commands_per_task_max = 1'000;
  sim::Duration default_workflow_task_timeout = std::chrono::seconds{10};
  sim::Duration max_workflow_task_timeout = std::chrono::minutes{2};
  // A failed or timed-out workflow task is retried at once the first time
  // (a cache miss replay may fix it), then after a growing backoff.
  sim::Duration workflow_task_retry_backoff_initial = std::chrono::seconds{1};
  sim::Duration workflow_task_retry_backoff_max = std::chrono::minutes{10};
  // Re-handing a task to matching that has not started (matching may have
  // lost it with a crashed node): first after this, then doubling.
  sim::Duration redispatch_initial = std::chrono::seconds{5};
  sim::Duration redispatch_max = std::chrono::minutes{5};
};

}  // namespace duro::engine
