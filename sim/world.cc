#include "sim/world.h"

#include <fmt/format.h>

#include <algorithm>

namespace duro::sim {

World::World(WorldOptions options)
    : options_(options),
      sim_(std::make_unique<Simulator>(SimulatorOptions{
          .seed = options.seed, .shuffle_ties = options.shuffle_ties, .fibers_max = options.fibers_max})),
      network_(std::make_unique<Network>(*sim_, options.network, sim_->random().fork("network"))),
      buggify_(std::make_unique<Buggify>(options.seed, options.buggify)) {
  DURO_ASSERT(options.clock_offset_max.count() >= 0);
  DURO_ASSERT(options.clock_drift_ppb_max >= 0 && options.clock_drift_ppb_max <= LocalClock::kDriftPpbMax);
  // A disk outlives its node's crashes; the crash settles its unsynced writes.
  sim_->add_crash_listener([this](NodeId node) {
    if (node < disks_.size()) disks_[node]->crash();
  });
}

World::~World() {
  // Processes (which own sockets and reference disks) die with the
  // simulator; everything they reference must still exist then.
  sim_.reset();
}

NodeId World::add_node(std::string name, BootFn boot) {
  DURO_ASSERT(boot != nullptr);
  DURO_ASSERT_MSG(!names_.contains(name), "duplicate node name");
  // The node exists (down) before its disk and clock, which name it; it
  // boots once they are in place.
  const NodeId node = sim_->add_node(
      name,
      [this, boot = std::move(boot)](NodeId self) {
        Env& env = *envs_[self];
        env.random_ = sim_->random().fork(fmt::format("node/{}/boot/{}", sim_->node_name(self), sim_->incarnation(self)));
        return boot(env);
      },
      /*boot_now=*/false);
  Random streams = sim_->random().fork("node/" + name);
  disks_.push_back(std::make_unique<Disk>(*sim_, node, options_.disk, streams.fork("disk")));
  Random clock_random = streams.fork("clock");
  const auto offset_ns_max = options_.clock_offset_max.count();
  const Duration offset{clock_random.uniform_range(-offset_ns_max, offset_ns_max)};
  const std::int64_t drift_ppb =
      clock_random.uniform_range(-options_.clock_drift_ppb_max, options_.clock_drift_ppb_max);
  clocks_.push_back(std::make_unique<LocalClock>(*sim_, offset, drift_ppb));
  envs_.push_back(std::make_unique<Env>(*sim_, node, *network_, *disks_.back(), *clocks_.back()));
  DURO_ASSERT(envs_.size() == node + 1);
  names_.emplace(std::move(name), node);
  sim_->restart(node);
  return node;
}

Env& World::env(NodeId node) {
  DURO_ASSERT_MSG(node < envs_.size(), "unknown node id");
  return *envs_[node];
}

NodeId World::node_named(std::string_view name) const {
  const auto found = names_.find(name);
  return found == names_.end() ? kNoNode : found->second;
}

bool World::in_outage(std::string_view service) const {
  const auto found = outage_until_.find(service);
  return found != outage_until_.end() && sim_->now() < found->second;
}

std::vector<NodeId> World::resolve(const std::vector<std::string>& names) const {
  std::vector<NodeId> nodes;
  nodes.reserve(names.size());
  for (const std::string& name : names) {
    const NodeId node = node_named(name);
    DURO_ASSERT(node != kNoNode);  // apply() checked every name.
    nodes.push_back(node);
  }
  return nodes;
}

Result<void> World::apply(const FaultPlan& plan) {
  if (Result<void> valid = plan.validate(); !valid.ok()) return valid;
  for (std::size_t i = 0; i < plan.actions.size(); i++) {
    const FaultAction& action = plan.actions[i];
    for (const auto* names : {&action.nodes, &action.others}) {
      for (const std::string& name : *names) {
        if (node_named(name) == kNoNode) {
          return Error{ErrorCode::kInvalidArgument,
                       fmt::format("action {} ({} at {}): no node named '{}' in this world", i + 1,
                                   fault_kind_name(action.kind), format_plan_duration(action.at), name)};
        }
      }
    }
  }
  const TimePoint start = sim_->start_time();
  for (const FaultAction& action : plan.actions) {
    sim_->schedule_at(std::max(start + action.at, sim_->now()), [this, action] { apply_action(action); });
  }
  sim_->schedule_at(std::max(start + plan.chaos, sim_->now()), [this] { begin_quiet(); });
  return {};
}

void World::log(const FaultAction& action, std::string outcome) {
  sim_->trace("fault", fmt::format("{} {}: {}", fault_kind_name(action.kind),
                                   action.nodes.empty() ? action.service : action.nodes.front(), outcome));
  fault_log_.push_back(AppliedFault{sim_->now(), action, std::move(outcome)});
}

void World::apply_action(const FaultAction& action) {
  if (phase_ == Phase::kQuiet) {
    log(action, "skipped: the quiet phase has begun");
    return;
  }
  const TimePoint now = sim_->now();
  switch (action.kind) {
    case FaultKind::kCrash: {
      const NodeId node = resolve(action.nodes).front();
      if (!sim_->is_up(node)) return log(action, "skipped: already down");
      sim_->crash(node);
      return log(action, "applied");
    }
    case FaultKind::kRestart: {
      const NodeId node = resolve(action.nodes).front();
      if (sim_->is_up(node)) return log(action, "skipped: already up");
      sim_->restart(node);
      return log(action, "applied");
    }
    case FaultKind::kPartition: {
      const std::vector<NodeId> a = resolve(action.nodes);
      std::vector<NodeId> b = resolve(action.others);
      if (b.empty()) {
        for (NodeId node = 0; node < sim_->node_count(); node++) {
          if (std::find(a.begin(), a.end(), node) == a.end()) b.push_back(node);
        }
      }
      network_->partition(a, b, action.one_way);
      return log(action, "applied");
    }
    case FaultKind::kHeal:
      network_->heal();
      return log(action, "applied");
    case FaultKind::kClog:
      network_->clog(resolve(action.nodes).front(), now + action.duration);
      return log(action, "applied");
    case FaultKind::kClockJump:
      clocks_[resolve(action.nodes).front()]->jump(action.clock_delta);
      return log(action, "applied");
    case FaultKind::kDiskErrors:
    case FaultKind::kDiskCorruption: {
      const NodeId node = resolve(action.nodes).front();
      const TimePoint until = now + action.duration;
      disk_windows_.push_back(DiskWindow{node, action.kind, until, action.probability});
      refresh_disk_faults(node);
      sim_->schedule_at(until, [this, node] { refresh_disk_faults(node); });
      return log(action, "applied");
    }
    case FaultKind::kOutage: {
      TimePoint& until = outage_until_[action.service];
      until = std::max(until, now + action.duration);
      return log(action, "applied");
    }
  }
  DURO_ASSERT_MSG(false, "unknown fault kind");
}

void World::refresh_disk_faults(NodeId node) {
  const TimePoint now = sim_->now();
  std::erase_if(disk_windows_, [now](const DiskWindow& window) { return window.until <= now; });
  double errors = 0;
  double corruption = 0;
  for (const DiskWindow& window : disk_windows_) {
    if (window.node != node) continue;
    double& probability = window.kind == FaultKind::kDiskErrors ? errors : corruption;
    probability = std::max(probability, window.probability);
  }
  Disk& disk = *disks_[node];
  if (errors > 0) {
    disk.set_io_error_probability(errors);
  } else {
    disk.clear_io_errors();
  }
  if (corruption > 0) {
    disk.set_corruption_probability(corruption);
  } else {
    disk.clear_corruption();
  }
}

void World::begin_quiet() {
  if (phase_ == Phase::kQuiet) return;
  phase_ = Phase::kQuiet;
  quiet_since_ = sim_->now();
  sim_->trace("phase", "quiet: healing, restarting, stopping disk faults");
  network_->heal();
  network_->unclog_all();
  for (const auto& disk : disks_) {
    disk->clear_io_errors();
    disk->clear_corruption();
  }
  disk_windows_.clear();
  outage_until_.clear();
  for (NodeId node = 0; node < sim_->node_count(); node++) {
    if (!sim_->is_up(node)) sim_->restart(node);
  }
}

RunResult World::run(RunLimits limits) {
  Buggify::Scope buggify_scope(*buggify_);
  return sim_->run(limits);
}

}  // namespace duro::sim
