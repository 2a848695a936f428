#include "engine/history/retry_policy.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <string_view>

#include <fmt/format.h>

#include "sim/assert.h"
#include "sim/random.h"

namespace duro::engine {
namespace {

using namespace std::chrono_literals;

// The server's defaults (TEMPORAL_MODEL.md).
constexpr sim::Duration kDefaultInitialInterval = 1s;
constexpr double kDefaultBackoffCoefficient = 2.0;
constexpr std::int64_t kDefaultMaximumIntervalFactor = 100;

// Beyond this many multiplications the backoff is the maximum interval:
// the bound on retry_backoff's loop (see the header).
constexpr std::int32_t kBackoffStepsMax = std::int32_t{1} << 20;

sim::Duration effective_initial(const RetryPolicy& policy) {
  return policy.initial_interval == sim::Duration::zero() ? kDefaultInitialInterval : policy.initial_interval;
}

double effective_coefficient(const RetryPolicy& policy) {
  return policy.backoff_coefficient == 0.0 ? kDefaultBackoffCoefficient : policy.backoff_coefficient;
}

// 100 x initial, saturating: an initial interval above ~3 years would
// overflow the nanosecond count.
sim::Duration effective_maximum(const RetryPolicy& policy) {
  if (policy.maximum_interval != sim::Duration::zero()) return policy.maximum_interval;
  const std::int64_t initial_ns = effective_initial(policy).count();
  if (initial_ns > std::numeric_limits<std::int64_t>::max() / kDefaultMaximumIntervalFactor) {
    return sim::Duration::max();
  }
  return sim::Duration{initial_ns * kDefaultMaximumIntervalFactor};
}

// Temporal's isRetryable (see the header for the rules).
bool retryable(const Failure& failure, const std::vector<std::string>& non_retryable_error_types) {
  if (failure.non_retryable) return false;
  if (failure.type == kCanceledFailureType || failure.type == kTerminatedFailureType) return false;
  const auto listed = [&](std::string_view type) {
    return std::find(non_retryable_error_types.begin(), non_retryable_error_types.end(), type) !=
           non_retryable_error_types.end();
  };
  if (failure.timeout_type != TimeoutType::kNone) {
    if (failure.timeout_type != TimeoutType::kStartToClose && failure.timeout_type != TimeoutType::kHeartbeat) {
      return false;
    }
    if (listed(std::string(kTimeoutFailureType) + ":" + timeout_type_name(failure.timeout_type))) return false;
  }
  return !listed(failure.type);
}

}  // namespace

RetryPolicy normalized(RetryPolicy policy) {
  // The maximum first: its default derives from the initial interval as
  // the caller gave it (zero meaning the default).
  policy.maximum_interval = effective_maximum(policy);
  policy.initial_interval = effective_initial(policy);
  policy.backoff_coefficient = effective_coefficient(policy);
  return policy;
}

std::optional<std::string> validate(const RetryPolicy& policy) {
  if (policy.initial_interval < sim::Duration::zero()) {
    return fmt::format("retry policy: initial_interval is negative ({} ns)", policy.initial_interval.count());
  }
  if (policy.maximum_interval < sim::Duration::zero()) {
    return fmt::format("retry policy: maximum_interval is negative ({} ns)", policy.maximum_interval.count());
  }
  const double coefficient = policy.backoff_coefficient;
  // Written so that NaN fails too.
  if (coefficient != 0.0 && !(coefficient >= 1.0 && std::isfinite(coefficient))) {
    return fmt::format("retry policy: backoff_coefficient must be a finite number >= 1 (or 0 for the default), got {}",
                       coefficient);
  }
  if (policy.maximum_attempts < 0) {
    return fmt::format("retry policy: maximum_attempts is negative ({})", policy.maximum_attempts);
  }
  if (policy.maximum_interval != sim::Duration::zero() && policy.maximum_interval < effective_initial(policy)) {
    return fmt::format("retry policy: maximum_interval ({} ns) is below initial_interval ({} ns)",
                       policy.maximum_interval.count(), effective_initial(policy).count());
  }
  // Written so that NaN fails too.
  if (!(policy.jitter >= 0.0 && policy.jitter <= 1.0)) {
    return fmt::format("retry policy: jitter must be in [0, 1], got {}", policy.jitter);
  }
  return std::nullopt;
}

sim::Duration retry_backoff(const RetryPolicy& policy, std::int32_t attempt) {
  DURO_ASSERT_MSG(attempt >= 1, "attempts are 1-based");
  DURO_ASSERT_MSG(!validate(policy).has_value(), "retry_backoff of an invalid retry policy");
  const std::int64_t initial_ns = effective_initial(policy).count();
  const std::int64_t maximum_ns = effective_maximum(policy).count();
  const double coefficient = effective_coefficient(policy);
  DURO_ASSERT(initial_ns > 0 && maximum_ns >= initial_ns && coefficient >= 1.0);

  // initial x coefficient^(attempt - 1), one multiplication per attempt.
  // Each step is one correctly rounded IEEE multiplication by a factor
  // >= 1, so the sequence never decreases (rounding is monotone) and is
  // the same on every conforming platform (-ffp-contract=off: no fused
  // operations). Compared with the cap in double, before any conversion,
  // so a product beyond the int64 range never reaches a cast.
  const std::int32_t steps = attempt - 1;
  // Exact without a multiplication: a double holds integers exactly only
  // up to 2^53 ns (104 days), and the first backoff is the initial one.
  if (steps == 0 || coefficient == 1.0) return sim::Duration{initial_ns};
  if (steps > kBackoffStepsMax) return sim::Duration{maximum_ns};
  // Past 2^53 ns the conversion may round initial down by half an ulp, but
  // a multiplication by a coefficient > 1 (so >= 1 + 2^-52) adds at least
  // a whole ulp: the second backoff is still >= the first.
  const double maximum = static_cast<double>(maximum_ns);
  double backoff = static_cast<double>(initial_ns);
  for (std::int32_t step = 0; step < steps && backoff < maximum; step++) backoff *= coefficient;
  if (!(backoff < maximum)) return sim::Duration{maximum_ns};
  // backoff < maximum <= 2^63: in range. Truncated, as Temporal's
  // time.Duration(int64(...)); min() because `maximum` may have rounded up.
  return sim::Duration{std::min(static_cast<std::int64_t>(backoff), maximum_ns)};
}

RetryDecision next_retry(const RetryPolicy& policy, std::int32_t attempt, const Failure& failure,
                         std::optional<sim::Duration> time_left) {
  DURO_ASSERT_MSG(attempt >= 1, "attempts are 1-based");
  if (!retryable(failure, policy.non_retryable_error_types)) {
    return RetryDecision{RetryState::kNonRetryableFailure, sim::Duration::zero()};
  }
  if (policy.maximum_attempts > 0 && attempt >= policy.maximum_attempts) {
    return RetryDecision{RetryState::kMaximumAttemptsReached, sim::Duration::zero()};
  }
  const sim::Duration backoff = retry_backoff(policy, attempt);
  DURO_ASSERT(backoff > sim::Duration::zero());
  if (time_left.has_value() && backoff > *time_left) {
    return RetryDecision{RetryState::kTimeout, sim::Duration::zero()};
  }
  return RetryDecision{RetryState::kInProgress, backoff};
}

sim::Duration jittered_backoff(const RetryPolicy& policy, sim::Duration backoff, std::uint64_t jitter_seed) {
  DURO_ASSERT_MSG(!validate(policy).has_value(), "jittered_backoff of an invalid retry policy");
  DURO_ASSERT(backoff > sim::Duration::zero());
  if (policy.jitter == 0.0) return backoff;
  // 53 random bits: u in [0, 1), as sim::Random::uniform_double draws it.
  std::uint64_t state = jitter_seed;
  const double u = static_cast<double>(sim::splitmix64(state) >> 11) * 0x1.0p-53;
  // cut < backoff (jitter x u < 1), computed and compared in double before
  // any conversion; the cast truncates, so the result only rounds up.
  const double cut = static_cast<double>(backoff.count()) * policy.jitter * u;
  const std::int64_t cut_ns = std::min(static_cast<std::int64_t>(cut), backoff.count() - 1);
  const sim::Duration jittered{backoff.count() - cut_ns};
  DURO_ASSERT(jittered > sim::Duration::zero() && jittered <= backoff);
  return jittered;
}

}  // namespace duro::engine
