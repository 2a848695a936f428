// Shrinking a failing fault plan to the smallest one that still fails
// (`duro shrink`): fewer faults first, then shorter ones.
//
// 1. Fewer faults: first whole kinds of fault at a time (every disk error,
//    every clock jump), then every fault of one node or service; then delta
//    debugging (Zeller's ddmin): split the actions into n chunks; keep a
//    complement (the plan without one chunk) if it still fails, else a
//    chunk alone; else split finer. It ends 1-minimal:
//    removing any single remaining action makes the failure go away. The
//    empty plan is tried first: some failures need no fault at all.
// 2. Shorter faults: each remaining clog, outage or disk-fault window, each
//    crash's downtime (its node's next restart), each partition's (the next
//    heal), and each clock jump is halved, repeatedly, while it still fails.
//
// Each step's candidates are tested in order, in batches a caller can run
// in parallel, and the step takes the first failing candidate: the result
// depends on the plan and the test, never on how many processes ran it or
// which finished first. A run budget bounds the work;
// when it runs out the smallest failing plan so far is the answer.
//
//   ShrinkResult result = shrink_plan(plan, [&](const std::vector<sim::FaultPlan>& batch) {
//     return run_each_and_say_which_still_fail(batch);
//   }, {.runs_max = 300});
#pragma once

#include <cstddef>
#include <functional>
#include <vector>

#include "sim/fault_plan.h"

namespace duro::cli {

struct ShrinkOptions {
  std::size_t runs_max = 300;
  // Candidates tested at once (the caller's processes). A step tests its
  // candidates in order, this many at a time, and stops at the first
  // batch with a failure: the first failing candidate is the same whatever
  // this is, and a step that succeeds early costs little.
  std::size_t batch = 1;
  // Halvings tried per window, in one batch: down to 1/2^depth.
  int halvings = 4;
  // Called after each improvement, with the plan and the runs so far.
  std::function<void(const sim::FaultPlan& plan, std::size_t runs)> on_smaller{};
};

struct ShrinkResult {
  sim::FaultPlan plan;   // Still fails (as tested), and is the smallest found.
  std::size_t runs = 0;  // Candidates tested.
  bool budget_spent = false;
};

// For each plan of the batch, whether the failure persists under it. Every
// plan it is given is valid (FaultPlan::validate).
using PlanBatchTest = std::function<std::vector<bool>(const std::vector<sim::FaultPlan>& batch)>;

// `plan` must fail. The result's actions are a subset of its actions, some
// with shorter windows (a restart or heal moved earlier), sorted by time.
ShrinkResult shrink_plan(const sim::FaultPlan& plan, const PlanBatchTest& still_fails, const ShrinkOptions& options);

}  // namespace duro::cli
