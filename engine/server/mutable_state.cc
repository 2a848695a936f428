#include "engine/server/mutable_state.h"

#include <algorithm>

namespace duro::engine {

const ActivityInfo* MutableState::activity_by_id(std::string_view activity_id) const {
  for (const auto& [id, activity] : activities) {
    if (activity.activity_id == activity_id) return &activity;
  }
  return nullptr;
}

bool MutableState::seen_request(std::string_view request_id) const {
  return std::find(request_ids.begin(), request_ids.end(), request_id) != request_ids.end();
}

void MutableState::remember_request(std::string request_id) {
  DURO_ASSERT(!request_id.empty());
  if (request_ids.size() >= kRequestIdsPerRunMax) request_ids.erase(request_ids.begin());
  request_ids.push_back(std::move(request_id));
}

const char* workflow_status_name(WorkflowStatus status) noexcept {
  switch (status) {
    case WorkflowStatus::kRunning: return "Running";
    case WorkflowStatus::kCompleted: return "Completed";
    case WorkflowStatus::kFailed: return "Failed";
    case WorkflowStatus::kCanceled: return "Canceled";
    case WorkflowStatus::kTerminated: return "Terminated";
    case WorkflowStatus::kContinuedAsNew: return "ContinuedAsNew";
    case WorkflowStatus::kTimedOut: return "TimedOut";
  }
  return "Unknown";
}

}  // namespace duro::engine
