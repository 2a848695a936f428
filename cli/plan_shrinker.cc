#include "cli/plan_shrinker.h"

#include <algorithm>
#include <optional>
#include <utility>

#include "sim/assert.h"

namespace duro::cli {

namespace {

using sim::FaultAction;
using sim::FaultKind;
using sim::FaultPlan;

// Windows are not shortened below this: shorter than any timeout in the
// engine, a fault this brief is as good as none.
constexpr sim::Duration kWindowMin = std::chrono::milliseconds{1};

FaultPlan with_actions(const FaultPlan& base, std::vector<FaultAction> actions) {
  FaultPlan plan = base;
  std::stable_sort(actions.begin(), actions.end(),
                   [](const FaultAction& a, const FaultAction& b) { return a.at < b.at; });
  plan.actions = std::move(actions);
  return plan;
}

class Shrinker {
 public:
  Shrinker(const PlanBatchTest& test, const ShrinkOptions& options) : test_(test), options_(options) {}

  // Tests as many of `candidates` as the budget allows; the index of the
  // first that still fails.
  std::optional<std::size_t> first_failing(std::vector<FaultPlan> candidates) {
    const std::size_t left = options_.runs_max - std::min(runs_, options_.runs_max);
    if (candidates.size() > left) {
      candidates.resize(left);
      budget_spent_ = true;
    }
    if (candidates.empty()) return std::nullopt;
    for (const FaultPlan& candidate : candidates) DURO_ASSERT(candidate.validate().ok());
    const std::vector<bool> fails = test_(candidates);
    DURO_ASSERT(fails.size() == candidates.size());
    runs_ += candidates.size();
    for (std::size_t i = 0; i < fails.size(); i++) {
      if (fails[i]) return i;
    }
    return std::nullopt;
  }

  void smaller(const FaultPlan& plan) {
    if (options_.on_smaller) options_.on_smaller(plan, runs_);
  }

  std::size_t runs() const noexcept { return runs_; }
  bool budget_spent() const noexcept { return budget_spent_; }

 private:
  const PlanBatchTest& test_;
  const ShrinkOptions& options_;
  std::size_t runs_ = 0;
  bool budget_spent_ = false;
};

FaultPlan fewer_faults(FaultPlan current, Shrinker& shrinker) {
  if (current.actions.empty()) return current;
  if (shrinker.first_failing({with_actions(current, {})})) {
    current.actions.clear();
    shrinker.smaller(current);
    return current;
  }
  std::size_t n = 2;
  // Each round either removes at least one action or doubles n up to the
  // plan's size, so rounds are bounded by (actions + log2 actions) * ...;
  // the budget bounds them in any case.
  while (current.actions.size() >= 2 && !shrinker.budget_spent()) {
    const std::size_t size = current.actions.size();
    n = std::min(n, size);
    std::vector<std::vector<FaultAction>> chunks(n);
    for (std::size_t i = 0; i < size; i++) chunks[i * n / size].push_back(current.actions[i]);
    std::vector<FaultPlan> candidates;
    for (const auto& chunk : chunks) candidates.push_back(with_actions(current, chunk));
    if (n > 2) {  // With two chunks, each complement is the other chunk.
      for (std::size_t skip = 0; skip < n; skip++) {
        std::vector<FaultAction> rest;
        for (std::size_t c = 0; c < n; c++) {
          if (c != skip) rest.insert(rest.end(), chunks[c].begin(), chunks[c].end());
        }
        candidates.push_back(with_actions(current, std::move(rest)));
      }
    }
    const std::optional<std::size_t> found = shrinker.first_failing(candidates);
    if (found) {
      current = std::move(candidates[*found]);
      n = *found < n ? 2 : std::max<std::size_t>(n - 1, 2);
      shrinker.smaller(current);
    } else {
      if (n >= size) break;
      n = std::min(2 * n, size);
    }
  }
  return current;
}

// The index of the first action after `i` of `kind` on `node` (any node
// when `node` is empty).
std::optional<std::size_t> next_of(const FaultPlan& plan, std::size_t i, FaultKind kind, const std::string& node) {
  for (std::size_t j = i + 1; j < plan.actions.size(); j++) {
    const FaultAction& action = plan.actions[j];
    if (action.kind == kind && (node.empty() || action.nodes == std::vector<std::string>{node})) return j;
  }
  return std::nullopt;
}

// Candidates shortening action i, the shortest first.
std::vector<FaultPlan> shortenings(const FaultPlan& plan, std::size_t i, int halvings) {
  std::vector<FaultPlan> candidates;
  const FaultAction& action = plan.actions[i];
  for (int k = halvings; k >= 1; k--) {
    std::vector<FaultAction> actions = plan.actions;
    FaultAction& changed = actions[i];
    switch (action.kind) {
      case FaultKind::kClog:
      case FaultKind::kDiskErrors:
      case FaultKind::kDiskCorruption:
      case FaultKind::kOutage:
        changed.duration = action.duration / (1 << k);
        if (changed.duration < kWindowMin) continue;
        break;
      case FaultKind::kClockJump:
        changed.clock_delta = action.clock_delta / (1 << k);
        if (changed.clock_delta == sim::Duration{0}) continue;
        break;
      case FaultKind::kCrash:
      case FaultKind::kPartition: {
        const bool crash = action.kind == FaultKind::kCrash;
        const std::optional<std::size_t> end =
            next_of(plan, i, crash ? FaultKind::kRestart : FaultKind::kHeal, crash ? action.nodes.front() : "");
        if (!end) return candidates;
        const sim::Duration window = (plan.actions[*end].at - action.at) / (1 << k);
        if (window < kWindowMin) continue;
        actions[*end].at = action.at + window;
        break;
      }
      case FaultKind::kRestart:
      case FaultKind::kHeal:
        return candidates;
    }
    candidates.push_back(with_actions(plan, std::move(actions)));
  }
  return candidates;
}

FaultPlan shorter_faults(FaultPlan current, Shrinker& shrinker, int halvings) {
  for (std::size_t i = 0; i < current.actions.size() && !shrinker.budget_spent(); i++) {
    std::vector<FaultPlan> candidates = shortenings(current, i, halvings);
    if (candidates.empty()) continue;
    if (const std::optional<std::size_t> found = shrinker.first_failing(candidates)) {
      current = std::move(candidates[*found]);
      shrinker.smaller(current);
    }
  }
  return current;
}

}  // namespace

ShrinkResult shrink_plan(const sim::FaultPlan& plan, const PlanBatchTest& still_fails, const ShrinkOptions& options) {
  DURO_ASSERT(plan.validate().ok());
  DURO_ASSERT(options.halvings >= 1 && options.halvings <= 20);
  Shrinker shrinker(still_fails, options);
  FaultPlan current = fewer_faults(plan, shrinker);
  current = shorter_faults(std::move(current), shrinker, options.halvings);
  return ShrinkResult{std::move(current), shrinker.runs(), shrinker.budget_spent()};
}

}  // namespace duro::cli
