#include "engine/history/failure.h"

namespace duro::engine {

const char* timeout_type_name(TimeoutType type) noexcept {
  switch (type) {
    case TimeoutType::kNone: return "None";
    case TimeoutType::kStartToClose: return "StartToClose";
    case TimeoutType::kScheduleToStart: return "ScheduleToStart";
    case TimeoutType::kScheduleToClose: return "ScheduleToClose";
    case TimeoutType::kHeartbeat: return "Heartbeat";
  }
  return "Unknown";
}

const char* retry_state_name(RetryState state) noexcept {
  switch (state) {
    case RetryState::kUnspecified: return "Unspecified";
    case RetryState::kInProgress: return "InProgress";
    case RetryState::kNonRetryableFailure: return "NonRetryableFailure";
    case RetryState::kTimeout: return "Timeout";
    case RetryState::kMaximumAttemptsReached: return "MaximumAttemptsReached";
    case RetryState::kRetryPolicyNotSet: return "RetryPolicyNotSet";
    case RetryState::kInternalServerError: return "InternalServerError";
    case RetryState::kCancelRequested: return "CancelRequested";
  }
  return "Unknown";
}

}  // namespace duro::engine
