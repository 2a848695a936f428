#include "engine/history/event.h"

#include <array>
#include <cstddef>

#include "sim/assert.h"

namespace duro::engine {
namespace {

// Indexed by EventType - 1, i.e. by the variant index: the same order as
// EventAttributes, checked below at compile time by count and spot-checked
// by the tests name by name.
constexpr std::array<std::string_view, kEventTypeCount> kEventTypeNames = {
    "WorkflowExecutionStarted",
    "WorkflowExecutionCompleted",
    "WorkflowExecutionFailed",
    "WorkflowExecutionTimedOut",
    "WorkflowExecutionCanceled",
    "WorkflowExecutionTerminated",
    "WorkflowExecutionContinuedAsNew",
    "WorkflowExecutionSignaled",
    "WorkflowExecutionCancelRequested",
    "WorkflowTaskScheduled",
    "WorkflowTaskStarted",
    "WorkflowTaskCompleted",
    "WorkflowTaskTimedOut",
    "WorkflowTaskFailed",
    "ActivityTaskScheduled",
    "ActivityTaskStarted",
    "ActivityTaskCompleted",
    "ActivityTaskFailed",
    "ActivityTaskTimedOut",
    "ActivityTaskCancelRequested",
    "ActivityTaskCanceled",
    "TimerStarted",
    "TimerFired",
    "TimerCanceled",
    "MarkerRecorded",
    "StartChildWorkflowExecutionInitiated",
    "StartChildWorkflowExecutionFailed",
    "ChildWorkflowExecutionStarted",
    "ChildWorkflowExecutionCompleted",
    "ChildWorkflowExecutionFailed",
    "ChildWorkflowExecutionCanceled",
    "ChildWorkflowExecutionTimedOut",
    "ChildWorkflowExecutionTerminated",
    "SignalExternalWorkflowExecutionInitiated",
    "SignalExternalWorkflowExecutionFailed",
    "ExternalWorkflowExecutionSignaled",
    "RequestCancelExternalWorkflowExecutionInitiated",
    "RequestCancelExternalWorkflowExecutionFailed",
    "ExternalWorkflowExecutionCancelRequested",
};

constexpr bool valid(EventType type) noexcept {
  const auto value = static_cast<std::size_t>(type);
  return value >= 1 && value <= kEventTypeCount;
}

}  // namespace

std::string_view event_type_name(EventType type) noexcept {
  if (!valid(type)) return "Unknown";
  return kEventTypeNames[static_cast<std::size_t>(type) - 1];
}

std::optional<EventType> event_type_from_name(std::string_view name) noexcept {
  // Linear: 39 short names, and only people's input (JSON, the CLI) asks.
  for (std::size_t i = 0; i < kEventTypeNames.size(); i++) {
    if (kEventTypeNames[i] == name) return static_cast<EventType>(i + 1);
  }
  return std::nullopt;
}

bool is_command_event(EventType type) noexcept {
  switch (type) {
    case EventType::kActivityTaskScheduled:
    case EventType::kActivityTaskCancelRequested:
    case EventType::kTimerStarted:
    case EventType::kTimerCanceled:
    case EventType::kMarkerRecorded:
    case EventType::kStartChildWorkflowExecutionInitiated:
    case EventType::kSignalExternalWorkflowExecutionInitiated:
    case EventType::kRequestCancelExternalWorkflowExecutionInitiated:
    case EventType::kWorkflowExecutionCompleted:
    case EventType::kWorkflowExecutionFailed:
    case EventType::kWorkflowExecutionCanceled:
    case EventType::kWorkflowExecutionContinuedAsNew:
      return true;
    default:
      return false;
  }
}

bool is_close_event(EventType type) noexcept {
  switch (type) {
    case EventType::kWorkflowExecutionCompleted:
    case EventType::kWorkflowExecutionFailed:
    case EventType::kWorkflowExecutionTimedOut:
    case EventType::kWorkflowExecutionCanceled:
    case EventType::kWorkflowExecutionTerminated:
    case EventType::kWorkflowExecutionContinuedAsNew:
      return true;
    default:
      return false;
  }
}

}  // namespace duro::engine
