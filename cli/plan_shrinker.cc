#include "cli/plan_shrinker.h"

#include <algorithm>
#include <functional>
#include <optional>
#include <set>
#include <string>
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
  // (By value: the caller keeps its own to take the found one from.)
  std::optional<std::size_t> first_failing(std::vector<FaultPlan> candidates) {
    const std::size_t left = options_.runs_max - std::min(runs_, options_.runs_max);
    if (candidates.size() > left) {
      candidates.resize(left);
      budget_spent_ = true;
    }
    for (std::size_t start = 0; start < candidates.size(); start += options_.batch) {
      const std::size_t end = std::min(candidates.size(), start + options_.batch);
      std::vector<FaultPlan> batch(std::make_move_iterator(candidates.begin() + static_cast<std::ptrdiff_t>(start)),
                                   std::make_move_iterator(candidates.begin() + static_cast<std::ptrdiff_t>(end)));
      for (const FaultPlan& candidate : batch) DURO_ASSERT(candidate.validate().ok());
      const std::vector<bool> fails = test_(batch);
      DURO_ASSERT(fails.size() == batch.size());
      runs_ += batch.size();
      for (std::size_t i = 0; i < fails.size(); i++) {
        if (fails[i]) return start + i;
      }
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

// Whole kinds of fault, then whole nodes' and services' faults, at a time:
// a few runs that often remove most of a drawn plan (a failure seldom needs
// both disk errors and clock jumps).
FaultPlan fewer_kinds_and_targets(FaultPlan current, Shrinker& shrinker) {
  for (bool progress = true; progress && current.actions.size() > 1 && !shrinker.budget_spent();) {
    progress = false;
    std::vector<std::function<bool(const FaultAction&)>> groups;
    std::set<FaultKind> kinds;
    std::set<std::string> targets;
    for (const FaultAction& action : current.actions) {
      kinds.insert(action.kind);
      if (!action.service.empty()) targets.insert(action.service);
      if (action.kind != FaultKind::kPartition && !action.nodes.empty()) targets.insert(action.nodes.front());
    }
    if (kinds.size() > 1) {
      for (const FaultKind kind : kinds) groups.push_back([kind](const FaultAction& a) { return a.kind == kind; });
    }
    if (targets.size() > 1) {
      for (const std::string& target : targets) {
        groups.push_back([target](const FaultAction& a) {
          return a.service == target || (a.kind != FaultKind::kPartition && !a.nodes.empty() && a.nodes.front() == target);
        });
      }
    }
    std::vector<FaultPlan> candidates;
    for (const auto& in_group : groups) {
      std::vector<FaultAction> rest;
      for (const FaultAction& action : current.actions) {
        if (!in_group(action)) rest.push_back(action);
      }
      if (rest.size() < current.actions.size()) candidates.push_back(with_actions(current, std::move(rest)));
    }
    if (const std::optional<std::size_t> found = shrinker.first_failing(candidates)) {
      current = std::move(candidates[*found]);
      shrinker.smaller(current);
      progress = true;
    }
  }
  return current;
}

FaultPlan fewer_faults(FaultPlan current, Shrinker& shrinker) {
  if (current.actions.empty()) return current;
  if (shrinker.first_failing({with_actions(current, {})})) {
    current.actions.clear();
    shrinker.smaller(current);
    return current;
  }
  current = fewer_kinds_and_targets(std::move(current), shrinker);
  std::size_t n = 2;
  // Each round either removes at least one action or doubles n up to the
  // plan's size, so rounds are bounded by (actions + log2 actions) * ...;
  // the budget bounds them in any case.
  while (current.actions.size() >= 2 && !shrinker.budget_spent()) {
    const std::size_t size = current.actions.size();
    n = std::min(n, size);
    std::vector<std::vector<FaultAction>> chunks(n);
    for (std::size_t i = 0; i < size; i++) chunks[i * n / size].push_back(current.actions[i]);
    // Complements (the plan without one chunk) first: a failure that needs
    // several faults survives losing one chunk far more often than it
    // lives in one chunk alone, and the step stops at the first that fails.
    // With two chunks, each complement is the other chunk.
    std::vector<FaultPlan> candidates;
    if (n > 2) {
      for (std::size_t skip = 0; skip < n; skip++) {
        std::vector<FaultAction> rest;
        for (std::size_t c = 0; c < n; c++) {
          if (c != skip) rest.insert(rest.end(), chunks[c].begin(), chunks[c].end());
        }
        candidates.push_back(with_actions(current, std::move(rest)));
      }
    }
    const std::size_t complements = candidates.size();
    for (const auto& chunk : chunks) candidates.push_back(with_actions(current, chunk));
    const std::optional<std::size_t> found = shrinker.first_failing(candidates);
    if (found) {
      current = std::move(candidates[*found]);
      n = *found < complements ? std::max<std::size_t>(n - 1, 2) : 2;
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
  DURO_ASSERT(options.batch >= 1);
  Shrinker shrinker(still_fails, options);
  FaultPlan current = fewer_faults(plan, shrinker);
  current = shorter_faults(std::move(current), shrinker, options.halvings);
  return ShrinkResult{std::move(current), shrinker.runs(), shrinker.budget_spent()};
}

}  // namespace duro::cli
