#include "engine/sdk/activity_context.h"

#include <utility>

namespace duro::sdk {
namespace {

// Temporal's throttle when the activity has no heartbeat timeout.
constexpr sim::Duration kDefaultHeartbeatThrottle = std::chrono::seconds{30};

}  // namespace

ActivityContext::ActivityContext(sim::Env& env, ActivityInfo info, Payload last_heartbeat_details,
                                 HeartbeatFn heartbeat)
    : env_(env),
      info_(std::move(info)),
      last_heartbeat_details_(std::move(last_heartbeat_details)),
      heartbeat_(std::move(heartbeat)) {}

std::string ActivityContext::idempotency_key() const {
  return info_.workflow_execution.workflow_id + "/" + info_.workflow_execution.run_id + "/" + info_.activity_id;
}

void ActivityContext::heartbeat_payload(Payload details) {
  latest_details_ = std::move(details);
  const sim::TimePoint now = env_.sim().now();
  if (sent_once_ && now < next_heartbeat_) return;  // Throttled: the details go with a later one.
  const sim::Duration throttle = info_.heartbeat_timeout > sim::Duration{0}
                                     ? info_.heartbeat_timeout * 4 / 5
                                     : kDefaultHeartbeatThrottle;
  sent_once_ = true;
  next_heartbeat_ = now + throttle;
  if (heartbeat_ && heartbeat_(latest_details_)) cancel_requested_ = true;
}

}  // namespace duro::sdk
