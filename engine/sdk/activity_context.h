// ActivityContext: what an activity knows and may do besides its work.
//
// Activities are plain functions, run by a worker on a simulated node:
//
//   CellId pick_cell(duro::sdk::ActivityContext& ctx, const std::string& region) {
//     auto reply = cloud_api.call(ctx.env(), "ReserveCell", region, ctx.idempotency_key());
//     ...
//   }
//
// Delivery is at least once: an attempt may run after a previous one did its
// work and then crashed or timed out. idempotency_key() is the same for
// every attempt of one activity in one run, so the services it calls can
// apply a request once.
//
// A failure is an exception: an ApplicationError (marked non_retryable to
// stop retries) or any std::exception (retried per the retry policy).
// A long activity heartbeats: heartbeat() records progress details (the
// next attempt reads them with heartbeat_details()), keeps the heartbeat
// timeout from firing, and tells the activity whether its cancellation was
// requested. Calls are throttled to one RPC per 0.8 x the heartbeat timeout
// (Temporal's rule; 30 s without one), so calling it in a tight loop is fine.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "engine/history/event.h"
#include "engine/sdk/errors.h"
#include "engine/sdk/payload.h"
#include "sim/clock.h"
#include "sim/env.h"

namespace duro::sdk {

struct ActivityInfo {
  engine::WorkflowExecution workflow_execution;
  std::string workflow_type;
  std::string activity_id;
  std::string activity_type;
  std::int32_t attempt = 1;
  sim::TimePoint scheduled_time{};                 // Of the first attempt.
  sim::TimePoint current_attempt_scheduled_time{};
  sim::TimePoint started_time{};
  sim::Duration schedule_to_close_timeout{0};
  sim::Duration start_to_close_timeout{0};
  sim::Duration heartbeat_timeout{0};
};

class ActivityContext {
 public:
  // Sends one heartbeat (details) and returns whether cancellation was
  // requested; throws nothing (a lost heartbeat is retried by the next).
  using HeartbeatFn = std::function<bool(const Payload& details)>;

  ActivityContext(sim::Env& env, ActivityInfo info, Payload last_heartbeat_details, HeartbeatFn heartbeat);
  // Ends the flusher (see heartbeat()).
  ~ActivityContext();
  ActivityContext(const ActivityContext&) = delete;
  ActivityContext& operator=(const ActivityContext&) = delete;

  const ActivityInfo& info() const noexcept { return info_; }
  std::int32_t attempt() const noexcept { return info_.attempt; }
  // "<workflow id>/<run id>/<activity id>": stable across attempts.
  std::string idempotency_key() const;
  // The node the activity runs on: its clock, network and randomness.
  sim::Env& env() noexcept { return env_; }

  // A heartbeat throttled away is not lost: with a heartbeat timeout set, a
  // flusher fiber sends the latest details when the throttle interval
  // ends (Temporal's rule), so an activity that heartbeats every 30 s
  // under a 2 min timeout is never timed out between two of its calls.
  template <typename T>
  void heartbeat(const T& details) {
    heartbeat_payload(to_payload(details));
  }
  void heartbeat() { heartbeat_payload(Payload{}); }
  // The details of the previous attempt's last heartbeat, if it sent one.
  template <typename T>
  std::optional<T> heartbeat_details() const {
    if (last_heartbeat_details_.empty()) return std::nullopt;
    return from_payload<T>(last_heartbeat_details_);
  }
  // True once a heartbeat learned that the workflow cancelled this
  // activity; it should stop and throw CanceledError.
  bool cancel_requested() const noexcept { return state_->cancel_requested; }
  // The details most recently given to heartbeat() (sent or not).
  const Payload& latest_details() const noexcept { return state_->latest; }

 private:
  // Shared with the flusher fiber, which may outlive the context by the
  // length of one heartbeat call.
  struct HeartbeatState {
    HeartbeatFn send;
    sim::Duration throttle{0};
    Payload latest;
    sim::TimePoint next{};  // No send before this.
    bool sent_once = false;
    bool pending = false;   // Details given since the last send.
    bool cancel_requested = false;
    bool in_flight = false; // A send is waiting for its answer: one at a time,
                            // so older details never land after newer ones.
    bool done = false;      // The activity returned: the flusher stops.
  };

  void heartbeat_payload(Payload details);
  static void send(HeartbeatState& state, sim::TimePoint now);
  static void flush_loop(const std::shared_ptr<HeartbeatState>& state, sim::Env& env);

  sim::Env& env_;
  ActivityInfo info_;
  Payload last_heartbeat_details_;
  std::shared_ptr<HeartbeatState> state_;
};

}  // namespace duro::sdk
