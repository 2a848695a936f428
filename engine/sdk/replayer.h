// Replayer: runs workflow code against a recorded history, offline.
//
// The check behind `duro replay` and the replay tests: a fresh run is fed
// the whole history, the code re-runs every recorded workflow task, and
// each command it produces is matched against history (workflow_run.h).
// A workflow change that would break runs already in flight shows up here
// as a NondeterminismError, before it ships. Nothing is simulated: no
// server, no network, only the code and the events.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <vector>

#include "engine/history/event.h"
#include "engine/sdk/errors.h"
#include "engine/sdk/registry.h"
#include "sim/stack_pool.h"

namespace duro::sdk {

struct ReplayResult {
  bool ok = false;
  // Why not: a divergence, or another failure (unknown workflow type, a
  // malformed history, an exception from the code).
  std::optional<NondeterminismError::Divergence> divergence;
  std::optional<Failure> failure;
  // The commands the code produced, task by task (the last one a live
  // task's answer when the history ends with one in flight).
  std::vector<TaskCommands> commands_by_task;
  std::size_t events = 0;
  // Human-readable: "ok", or the divergence report / failure message.
  std::string message;
};

class Replayer {
 public:
  explicit Replayer(const Registry& registry);

  // The type comes from the history's first event. The workflow id is not
  // in the history and must be the run's own (code may use it: child ids
  // derive from it); the run id likewise, else the history's original run id.
  ReplayResult replay(std::span<const engine::HistoryEvent> history, std::string workflow_id, std::string run_id = "");

 private:
  const Registry& registry_;
  sim::StackPool stacks_;
};

}  // namespace duro::sdk
