#include "engine/sdk/errors.h"

#include <fmt/format.h>

#include <utility>

namespace duro::sdk {
namespace {

std::string failure_what(const Failure& failure) {
  if (failure.message.empty()) return failure.type;
  return failure.type + ": " + failure.message;
}

// At most this many commands on each side of the divergence in a report:
// enough context to place it, short enough to read.
constexpr std::size_t kAroundMax = 6;

void append_side(std::string& out, const char* title, const std::vector<CommandLine>& lines,
                 engine::EventId focus_event, std::size_t focus_index) {
  out += fmt::format("  {}:\n", title);
  if (lines.empty()) {
    out += "    (none)\n";
    return;
  }
  // Keep the window around the focus.
  std::size_t first = 0;
  if (lines.size() > kAroundMax) {
    const std::size_t center = std::min(focus_index, lines.size() - 1);
    first = center > kAroundMax / 2 ? center - kAroundMax / 2 : 0;
    first = std::min(first, lines.size() - kAroundMax);
  }
  const std::size_t last = std::min(lines.size(), first + kAroundMax);
  if (first > 0) out += fmt::format("    ... {} earlier\n", first);
  for (std::size_t i = first; i < last; i++) {
    const CommandLine& line = lines[i];
    const bool focus = (focus_event != 0 && line.event_id == focus_event) || (focus_event == 0 && i == focus_index);
    out += focus ? "  > " : "    ";
    if (line.event_id != 0) out += fmt::format("event {:<5} ", line.event_id);
    out += line.text;
    if (!line.location.file.empty()) {
      out += fmt::format("   ({}:{} {})", line.location.file, line.location.line, line.location.call);
    }
    out += '\n';
  }
  if (last < lines.size()) out += fmt::format("    ... {} later\n", lines.size() - last);
}

}  // namespace

WorkflowError::WorkflowError(Failure failure) : std::runtime_error(failure_what(failure)), failure_(std::move(failure)) {}

ApplicationError::ApplicationError(std::string type, std::string message, Payload details, bool non_retryable)
    : WorkflowError(Failure{std::move(type), std::move(message), std::move(details), non_retryable,
                            engine::TimeoutType::kNone, ""}) {}

ActivityError::ActivityError(Failure failure, std::string activity_type, std::string activity_id,
                             engine::RetryState retry_state)
    : WorkflowError(std::move(failure)),
      activity_type_(std::move(activity_type)),
      activity_id_(std::move(activity_id)),
      retry_state_(retry_state) {}

ChildWorkflowError::ChildWorkflowError(Failure failure, std::string workflow_type, engine::WorkflowExecution execution)
    : WorkflowError(std::move(failure)), workflow_type_(std::move(workflow_type)), execution_(std::move(execution)) {}

CanceledError::CanceledError(std::string message)
    : WorkflowError(Failure{engine::kCanceledFailureType, std::move(message), {}, true, engine::TimeoutType::kNone,
                            "workflow"}) {}

const char* nondeterminism_kind_name(NondeterminismError::Kind kind) noexcept {
  switch (kind) {
    case NondeterminismError::Kind::kMismatch: return "mismatch";
    case NondeterminismError::Kind::kMissing: return "missing command";
    case NondeterminismError::Kind::kExtra: return "extra command";
  }
  return "unknown";
}

std::string format_divergence(const NondeterminismError::Divergence& d) {
  std::string out = fmt::format("NondeterminismError ({}): workflow \"{}\" run \"{}\" type \"{}\" diverged from its history",
                                nondeterminism_kind_name(d.kind), d.workflow_id, d.run_id, d.workflow_type);
  out += fmt::format(" at event {}", d.event_id);
  if (d.workflow_task_started_event_id != 0) {
    out += fmt::format(" (in the workflow task started at event {})", d.workflow_task_started_event_id);
  }
  out += '\n';
  out += fmt::format("  history holds: {}\n", d.history_holds.empty() ? "(nothing)" : d.history_holds);
  out += fmt::format("  code produced: {}\n", d.code_produced.empty() ? "(nothing)" : d.code_produced);
  if (!d.location.file.empty()) {
    out += fmt::format("  {} {}:{} ({})\n", d.kind == NondeterminismError::Kind::kMissing ? "code's last command at" : "at",
                       d.location.file, d.location.line, d.location.call);
  } else if (!d.location.call.empty()) {
    out += fmt::format("  at: {}\n", d.location.call);
  }
  std::size_t history_focus = d.history_around.size();
  for (std::size_t i = 0; i < d.history_around.size(); i++) {
    if (d.history_around[i].event_id == d.event_id) history_focus = i;
  }
  std::size_t code_focus = d.code_around.empty() ? 0 : d.code_around.size() - 1;
  for (std::size_t i = 0; i < d.code_around.size(); i++) {
    if (d.code_around[i].location == d.location && d.code_around[i].text == d.code_produced) code_focus = i;
  }
  append_side(out, "history's commands in this workflow task", d.history_around, d.event_id, history_focus);
  append_side(out, "code's commands in this workflow task", d.code_around, 0, code_focus);
  return out;
}

NondeterminismError::NondeterminismError(Divergence divergence)
    : std::runtime_error(format_divergence(divergence)), divergence_(std::move(divergence)) {}

}  // namespace duro::sdk
