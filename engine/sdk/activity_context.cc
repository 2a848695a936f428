#include "engine/sdk/activity_context.h"

#include <utility>

#include "sim/assert.h"
#include "sim/simulator.h"

namespace duro::sdk {
namespace {

// Temporal's throttle when the activity has no heartbeat timeout.
constexpr sim::Duration kDefaultHeartbeatThrottle = std::chrono::seconds{30};
// A bound on the flusher's loop, in throttle intervals: ten thousand
// heartbeat intervals is beyond any sensible attempt (the loop ends with
// the activity in any case).
constexpr int kFlushesMax = 10'000;

}  // namespace

ActivityContext::ActivityContext(sim::Env& env, ActivityInfo info, Payload last_heartbeat_details,
                                 HeartbeatFn heartbeat)
    : env_(env),
      info_(std::move(info)),
      last_heartbeat_details_(std::move(last_heartbeat_details)),
      state_(std::make_shared<HeartbeatState>()) {
  state_->send = std::move(heartbeat);
  state_->throttle =
      info_.heartbeat_timeout > sim::Duration{0} ? info_.heartbeat_timeout * 4 / 5 : kDefaultHeartbeatThrottle;
  DURO_ASSERT(state_->throttle > sim::Duration{0});
  if (info_.heartbeat_timeout > sim::Duration{0} && state_->send) {
    env_.spawn("heartbeat-flusher", [state = state_, &env] { flush_loop(state, env); });
  }
}

ActivityContext::~ActivityContext() { state_->done = true; }

std::string ActivityContext::idempotency_key() const {
  return info_.workflow_execution.workflow_id + "/" + info_.workflow_execution.run_id + "/" + info_.activity_id;
}

void ActivityContext::send(HeartbeatState& state, sim::TimePoint now) {
  if (state.in_flight) {
    state.pending = true;  // The flusher sends it after the one in flight.
    return;
  }
  state.sent_once = true;
  state.pending = false;
  state.next = now + state.throttle;
  state.in_flight = true;
  const bool cancel = state.send && state.send(state.latest);
  state.in_flight = false;
  if (cancel) state.cancel_requested = true;
}

void ActivityContext::heartbeat_payload(Payload details) {
  state_->latest = std::move(details);
  const sim::TimePoint now = env_.sim().now();
  if (state_->sent_once && now < state_->next) {
    state_->pending = true;  // Throttled: the flusher (or a later call) sends it.
    return;
  }
  send(*state_, now);
}

void ActivityContext::flush_loop(const std::shared_ptr<HeartbeatState>& state, sim::Env& env) {
  for (int i = 0; i < kFlushesMax && !state->done; i++) {
    const sim::TimePoint now = env.sim().now();
    // Before the first heartbeat there is nothing to flush: check again a
    // throttle interval later.
    env.sleep_for(state->sent_once && state->next > now ? state->next - now : state->throttle);
    if (state->done) return;
    if (state->pending && env.sim().now() >= state->next) send(*state, env.sim().now());
  }
}

}  // namespace duro::sdk
