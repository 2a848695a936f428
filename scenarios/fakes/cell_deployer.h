// CellDeployer: the fake that puts a release on a cell — the rollout's one
// way to change the data plane — and keeps the record of every change.
//
// Methods (mutating calls carry an idempotency key):
//   "deploy"  start putting `release` on `cell` for `rollout`: an operation
//             that runs for a drawn time and then succeeds or fails (a
//             partial failure), or hangs until superseded. A new deploy of
//             the same release to the same cell supersedes (cancels) one
//             still running, so a retry after a hang does not leave two
//             changes in flight. Refused (kAlreadyExists) while the release
//             is halted: the fence against a deploy that was in flight in a
//             worker that lost track of time.
//   "status"  the operation's state.
//   "fence"   set (halted) or clear the fence for a release.
//   "baked"   how long until given cells have run a release for a bake
//             time, by the deployer's clock: a rollout's bake timer runs
//             on the servers' clocks, which can jump, so it confirms here
//             before it moves on.
//
// Ground truth for checkers: each cell's version, every operation with its
// start and end, and the halts; `on_change` runs after every change.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "scenarios/fakes/fake_service.h"

namespace duro::scenarios {

struct DeployRequest {
  std::string cell;
  std::string release;
  std::string rollout;
  bool rollback = false;
  // The activity asking, and which attempt of it: a deploy from an attempt
  // older than one already seen is refused (the fencing token that stops a
  // zombie attempt — one the server gave up on — from changing a cell).
  std::string activity;
  std::int32_t attempt = 1;
  std::string idempotency_key;
};
DURO_CODEC_FIELDS(DeployRequest, cell, release, rollout, rollback, activity, attempt, idempotency_key);

struct DeployReply {
  std::uint64_t operation = 0;
};
DURO_CODEC_FIELDS(DeployReply, operation);

struct DeployStatusRequest {
  std::uint64_t operation = 0;
};
DURO_CODEC_FIELDS(DeployStatusRequest, operation);

enum class DeployState : std::uint8_t { kRunning, kSucceeded, kFailed, kSuperseded };
const char* deploy_state_name(DeployState state) noexcept;

struct DeployStatus {
  DeployState state = DeployState::kRunning;
};
DURO_CODEC_FIELDS(DeployStatus, state);

struct FenceRequest {
  std::string release;
  bool halted = false;
  std::string idempotency_key;
};
DURO_CODEC_FIELDS(FenceRequest, release, halted, idempotency_key);

struct FenceReply {
  bool halted = false;
};
DURO_CODEC_FIELDS(FenceReply, halted);

// How long until the cells have run `release` for `bake` (by the
// deployer's clock, which the nemesis does not jump): 0 if they have.
struct BakeQuery {
  std::string release;
  std::vector<std::string> cells;
  sim::Duration bake{0};
};
DURO_CODEC_FIELDS(BakeQuery, release, cells, bake);

struct BakeReply {
  bool landed = false;            // Every cell runs the release.
  sim::Duration remaining{0};
};
DURO_CODEC_FIELDS(BakeReply, landed, remaining);

struct DeployOperation {
  std::uint64_t id = 0;
  std::string cell;
  std::string release;
  std::string rollout;
  bool rollback = false;
  sim::TimePoint started{};
  DeployState state = DeployState::kRunning;
  bool fails = false;   // Drawn at the start: a partial failure.
  bool hangs = false;   // Drawn at the start: runs until superseded.
  sim::TimePoint finished = sim::TimePoint::max();  // When it left kRunning.
};

struct FenceChange {
  sim::TimePoint at{};
  std::string release;
  bool halted = false;
};

struct CellDeployerOptions {
  sim::Duration deploy_min = std::chrono::minutes{2};
  sim::Duration deploy_max = std::chrono::minutes{15};
  double failure_probability = 0.1;
  double hang_probability = 0.05;
};

class CellDeployer final : public FakeService {
 public:
  CellDeployer(std::string name, FailureModel failure, CellDeployerOptions options,
               std::map<std::string, std::string> initial_versions);

  // Cell -> the release it runs.
  const std::map<std::string, std::string>& versions() const noexcept { return versions_; }
  const std::vector<DeployOperation>& operations() const noexcept { return operations_; }
  bool halted(const std::string& release) const { return fenced_.contains(release); }
  // Every halt and resume applied, in order.
  const std::vector<FenceChange>& fence_log() const noexcept { return fence_log_; }

 private:
  void register_methods(sim::RpcServer& server, sim::Env& env) override;
  sim::Result<DeployReply> deploy(sim::Env& env, const DeployRequest& request);
  BakeReply baked(sim::TimePoint now, const BakeQuery& query) const;
  // Ends operation `id` (if it still runs) as drawn.
  void complete(std::uint64_t id, sim::TimePoint now);

  CellDeployerOptions options_;
  std::map<std::string, std::string> versions_;
  std::vector<DeployOperation> operations_;  // Index = id - 1.
  std::map<std::string, std::uint64_t> answers_;  // Idempotency key -> operation.
  std::map<std::string, bool, std::less<>> fenced_;
  std::map<std::string, std::int32_t> attempts_;
  std::vector<FenceChange> fence_log_;  // Activity -> the latest attempt seen.
};

}  // namespace duro::scenarios
