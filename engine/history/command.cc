#include "engine/history/command.h"

#include <array>
#include <cstddef>

namespace duro::engine {
namespace {

struct CommandInfo {
  std::string_view name;
  EventType event_type;
};

// Indexed by CommandType - 1, i.e. by the Command variant index.
constexpr std::array<CommandInfo, kCommandTypeCount> kCommands = {{
    {"ScheduleActivityTask", EventType::kActivityTaskScheduled},
    {"RequestCancelActivityTask", EventType::kActivityTaskCancelRequested},
    {"StartTimer", EventType::kTimerStarted},
    {"CancelTimer", EventType::kTimerCanceled},
    {"RecordMarker", EventType::kMarkerRecorded},
    {"StartChildWorkflowExecution", EventType::kStartChildWorkflowExecutionInitiated},
    {"SignalExternalWorkflowExecution", EventType::kSignalExternalWorkflowExecutionInitiated},
    {"RequestCancelExternalWorkflowExecution", EventType::kRequestCancelExternalWorkflowExecutionInitiated},
    {"CompleteWorkflowExecution", EventType::kWorkflowExecutionCompleted},
    {"FailWorkflowExecution", EventType::kWorkflowExecutionFailed},
    {"CancelWorkflowExecution", EventType::kWorkflowExecutionCanceled},
    {"ContinueAsNewWorkflowExecution", EventType::kWorkflowExecutionContinuedAsNew},
}};

constexpr bool valid(CommandType type) noexcept {
  const auto value = static_cast<std::size_t>(type);
  return value >= 1 && value <= kCommandTypeCount;
}

}  // namespace

std::string_view command_type_name(CommandType type) noexcept {
  if (!valid(type)) return "Unknown";
  return kCommands[static_cast<std::size_t>(type) - 1].name;
}

EventType command_event_type(CommandType type) noexcept {
  DURO_ASSERT_MSG(valid(type), "command_event_type of an unknown command type");
  const EventType event_type = kCommands[static_cast<std::size_t>(type) - 1].event_type;
  // The one-to-one mapping of command events (TEMPORAL_MODEL.md).
  DURO_ASSERT(is_command_event(event_type));
  return event_type;
}

bool is_close_command(CommandType type) noexcept {
  switch (type) {
    case CommandType::kCompleteWorkflowExecution:
    case CommandType::kFailWorkflowExecution:
    case CommandType::kCancelWorkflowExecution:
    case CommandType::kContinueAsNewWorkflowExecution:
      return true;
    default:
      return false;
  }
}

}  // namespace duro::engine
