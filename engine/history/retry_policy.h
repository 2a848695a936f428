// Retry policy, as Temporal's: how an activity (or a workflow, or a failed
// workflow task) is retried after a failure.
//
// Defaults are the server's: initial interval 1 s, backoff coefficient 2.0,
// maximum interval 100 x initial, maximum attempts 0 = unlimited (bounded
// only by the timeouts), and no non-retryable error types. Attempt 1 is the
// first try; maximum_attempts = 1 means no retry.
//
// One addition to Temporal's policy: `jitter`, default 0 (Temporal's fixed
// backoff). Without jitter, everything that failed together — every
// activity that called a service during its outage — retries together, in
// lockstep, for as long as the outage lasts and again the moment it ends
// (the retry-storm scenario measures it). With jitter j, each backoff is
// shortened by a random fraction of itself in [0, j), so retries that
// started together drift apart by a little more at every attempt.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "engine/history/failure.h"
#include "sim/clock.h"
#include "sim/codec.h"

namespace duro::engine {

struct RetryPolicy {
  sim::Duration initial_interval = std::chrono::seconds{1};
  double backoff_coefficient = 2.0;
  sim::Duration maximum_interval{0};  // 0: 100 x initial_interval.
  std::int32_t maximum_attempts = 0;  // 0: unlimited.
  std::vector<std::string> non_retryable_error_types{};  // Exact Failure::type names. ({}: designated initializers may omit it.)
  // In [0, 1]: each backoff is b x (1 - jitter x u), u uniform in [0, 1)
  // (jittered_backoff). 0: none, Temporal's behaviour; 1: "full jitter".
  double jitter = 0;

  bool operator==(const RetryPolicy&) const = default;
};
DURO_CODEC_FIELDS(RetryPolicy, initial_interval, backoff_coefficient, maximum_interval, maximum_attempts,
                  non_retryable_error_types, jitter);

// Fills in the defaults the way the server does on schedule (Temporal's
// EnsureDefaults), so what history records is what is applied: a zero
// initial interval becomes 1 s, a zero maximum interval 100 x the initial
// one (saturating), a zero coefficient 2.0. Zero means "unset", as in
// Temporal's protobuf; other out-of-range values are left for validate()
// to refuse. Idempotent.
RetryPolicy normalized(RetryPolicy policy);

// Why `policy` is refused, or nullopt when valid: negative intervals, a
// coefficient that is neither 0 (unset) nor a finite number >= 1, negative
// maximum attempts, a maximum interval (when set) below the initial one, a
// jitter outside [0, 1].
// Gives the same verdict for a policy and its normalized() form, so the
// server may check either.
std::optional<std::string> validate(const RetryPolicy& policy);

// The backoff after attempt `attempt` (1-based) failed, before the next:
// initial_interval x backoff_coefficient^(attempt - 1), capped at the
// maximum interval (defaults applied as by normalized()). Exactly
// reproducible everywhere: the power is taken by repeated IEEE
// multiplication (no pow() from libm, whose results differ between
// platforms), stopping as soon as the cap is reached, so it costs at most
// log(maximum / initial) / log(coefficient) multiplications; past 2^20
// attempts (reachable only with coefficients within ~1e-5 of 1) the
// backoff is the maximum interval. Never decreases as `attempt` grows,
// never exceeds the maximum. `policy` must be valid.
sim::Duration retry_backoff(const RetryPolicy& policy, std::int32_t attempt);

// The decision after attempt `attempt` (1-based) failed with `failure`:
// the backoff before the next attempt, or the RetryState that ends the
// retries. `time_left` is what remains of the enclosing timeout
// (schedule-to-close or the run's), nullopt when unbounded: a retry whose
// backoff would not fit is not attempted (kTimeout).
//
// Temporal's rules, in Temporal's order:
//   1. not retryable -> kNonRetryableFailure: failure.non_retryable; a type
//      of CanceledError or TerminatedError; a timeout other than
//      start-to-close or heartbeat (schedule-to-start is never retried,
//      schedule-to-close has no time left); failure.type listed in
//      non_retryable_error_types, or for a timeout "TimeoutError:" + its
//      timeout type name (e.g. "TimeoutError:Heartbeat", Temporal's
//      "TemporalTimeout:" names).
//   2. maximum_attempts > 0 and attempt >= maximum_attempts
//      -> kMaximumAttemptsReached.
//   3. backoff = retry_backoff(policy, attempt); backoff > *time_left
//      -> kTimeout.
//   4. otherwise kInProgress, retry after backoff.
// `policy` must be valid.
struct RetryDecision {
  RetryState state = RetryState::kInProgress;  // kInProgress: retry after `backoff`.
  sim::Duration backoff{0};

  bool operator==(const RetryDecision&) const = default;
};
RetryDecision next_retry(const RetryPolicy& policy, std::int32_t attempt, const Failure& failure,
                         std::optional<sim::Duration> time_left);

// `backoff` (a decision's) with the policy's jitter applied: backoff x (1 -
// jitter x u), never below 1 ns, where u in [0, 1) is drawn from
// `jitter_seed` alone. The server seeds it from what names the retry (the
// run, the activity's scheduled event, the attempt), so the jitter is
// random across activities yet the mutator stays a pure function (a
// retried write computes the same backoff) and a seed replays it. Jitter
// only shortens a backoff: it never changes next_retry's decision (whether
// a retry fits `time_left` is judged on the full backoff), and the result
// never exceeds `backoff`. With jitter 0 it is `backoff`, exactly.
sim::Duration jittered_backoff(const RetryPolicy& policy, sim::Duration backoff, std::uint64_t jitter_seed);

}  // namespace duro::engine
