// Walking the history model's values generically.
//
// Events, commands and their parts are plain structs described with
// DURO_CODEC_FIELDS, whose field lists also carry the fields' names
// (sim::for_each_codec_field). With the few shapes a field can take —
// listed here as traits — and the names of the model's enums, code that
// must treat every field of every event (the JSON form, the enum check in
// decode_events, test generators) is written once, not once per event.
#pragma once

#include <array>
#include <cstddef>
#include <map>
#include <optional>
#include <string_view>
#include <type_traits>
#include <vector>

#include "engine/history/event.h"
#include "engine/history/failure.h"

namespace duro::engine {

// The shapes a field of the model takes, besides scalars and described
// structs.
template <typename T>
inline constexpr bool kIsOptional = false;
template <typename T>
inline constexpr bool kIsOptional<std::optional<T>> = true;

template <typename T>
inline constexpr bool kIsVector = false;
template <typename T, typename A>
inline constexpr bool kIsVector<std::vector<T, A>> = true;

template <typename T>
inline constexpr bool kIsMap = false;
template <typename K, typename V, typename C, typename A>
inline constexpr bool kIsMap<std::map<K, V, C, A>> = true;

// Names of the model's enums: Temporal's enum value names without their
// prefix ("StartToClose" for TIMEOUT_TYPE_START_TO_CLOSE), indexed by the
// enumerator's value. Every enum of the model counts from 0 without gaps,
// so "in range" and "names an enumerator" are the same test. A new enum in
// the model needs a specialization here (the JSON form fails to compile
// without one); a new enumerator, a name at the end of its list.
template <typename E>
struct EnumNames;

template <>
struct EnumNames<TaskQueueKind> {
  static constexpr std::array<std::string_view, 2> kNames = {"Normal", "Sticky"};
};
template <>
struct EnumNames<ParentClosePolicy> {
  static constexpr std::array<std::string_view, 3> kNames = {"Terminate", "Abandon", "RequestCancel"};
};
template <>
struct EnumNames<WorkflowIdReusePolicy> {
  static constexpr std::array<std::string_view, 3> kNames = {"AllowDuplicate", "AllowDuplicateFailedOnly",
                                                             "RejectDuplicate"};
};
template <>
struct EnumNames<ContinueAsNewInitiator> {
  static constexpr std::array<std::string_view, 3> kNames = {"Workflow", "Retry", "CronSchedule"};
};
template <>
struct EnumNames<WorkflowTaskFailedCause> {
  static constexpr std::array<std::string_view, 8> kNames = {
      "Unspecified",
      "UnhandledCommand",
      "BadCommandAttributes",
      "Nondeterminism",
      "WorkflowWorkerUnhandledFailure",
      "ResetStickyTaskQueue",
      "PendingLimitExceeded",
      "PayloadTooLarge",
  };
};
template <>
struct EnumNames<StartChildFailedCause> {
  static constexpr std::array<std::string_view, 2> kNames = {"WorkflowAlreadyExists", "NamespaceNotFound"};
};
template <>
struct EnumNames<ExternalFailedCause> {
  static constexpr std::array<std::string_view, 1> kNames = {"ExternalWorkflowNotFound"};
};
// The same names as timeout_type_name() and retry_state_name() (tested).
template <>
struct EnumNames<TimeoutType> {
  static constexpr std::array<std::string_view, 5> kNames = {"None", "StartToClose", "ScheduleToStart",
                                                              "ScheduleToClose", "Heartbeat"};
};
template <>
struct EnumNames<RetryState> {
  static constexpr std::array<std::string_view, 8> kNames = {
      "Unspecified",           "InProgress", "NonRetryableFailure", "Timeout", "MaximumAttemptsReached",
      "RetryPolicyNotSet",     "InternalServerError", "CancelRequested",
  };
};

template <typename E>
concept NamedEnum = std::is_enum_v<E> && requires { EnumNames<E>::kNames; };

template <NamedEnum E>
constexpr bool enum_in_range(E value) noexcept {
  return static_cast<std::size_t>(value) < EnumNames<E>::kNames.size();
}

// The enumerator's name; "" for a value that names none.
template <NamedEnum E>
constexpr std::string_view enum_name(E value) noexcept {
  return enum_in_range(value) ? EnumNames<E>::kNames[static_cast<std::size_t>(value)] : std::string_view{};
}

template <NamedEnum E>
constexpr std::optional<E> enum_from_name(std::string_view name) noexcept {
  for (std::size_t i = 0; i < EnumNames<E>::kNames.size(); i++) {
    if (EnumNames<E>::kNames[i] == name) return static_cast<E>(i);
  }
  return std::nullopt;
}

}  // namespace duro::engine
