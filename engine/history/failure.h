// Payloads and failures: the values that travel inside events and commands.
//
// A payload is an opaque byte string: the SDK converts user values to bytes
// (and back) and the engine never looks inside. A Failure is Temporal's
// failure: a type (the error's class name, which retry policies match on),
// a message, optional details, whether the thrower marked it
// non-retryable, and for timeouts which timeout fired.
#pragma once

#include <cstdint>
#include <string>

#include "sim/codec.h"

namespace duro::engine {

using Payload = std::string;

enum class TimeoutType : std::uint8_t {
  kNone,
  kStartToClose,
  kScheduleToStart,
  kScheduleToClose,
  kHeartbeat,
};

// Why a retryable thing (an activity, a workflow, a child) stopped retrying.
enum class RetryState : std::uint8_t {
  kUnspecified,
  kInProgress,
  kNonRetryableFailure,
  kTimeout,
  kMaximumAttemptsReached,
  kRetryPolicyNotSet,
  kInternalServerError,
  kCancelRequested,
};

struct Failure {
  std::string type;     // "ApplicationError" subtypes by name; "TimeoutError", "CanceledError", "TerminatedError".
  std::string message;
  Payload details;
  bool non_retryable = false;
  TimeoutType timeout_type = TimeoutType::kNone;  // Set on timeouts.
  std::string source;   // Who raised it: "workflow", "activity", "server".

  bool operator==(const Failure&) const = default;
};
DURO_CODEC_FIELDS(Failure, type, message, details, non_retryable, timeout_type, source);

// Failure types the server itself raises (matched by name in retry policies).
inline constexpr const char* kTimeoutFailureType = "TimeoutError";
inline constexpr const char* kCanceledFailureType = "CanceledError";
inline constexpr const char* kTerminatedFailureType = "TerminatedError";

const char* timeout_type_name(TimeoutType type) noexcept;
const char* retry_state_name(RetryState state) noexcept;

}  // namespace duro::engine
