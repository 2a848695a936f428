#include "scenarios/fakes/resource_service.h"

#include <fmt/format.h>

#include <utility>

#include "sim/assert.h"
#include "sim/simulator.h"

namespace duro::scenarios {

ResourceService::ResourceService(std::string name, FailureModel failure, ResourceOptions options)
    : FakeService(std::move(name), failure), options_(options) {
  DURO_ASSERT(options_.propagation_min >= sim::Duration{0} && options_.propagation_min <= options_.propagation_max);
  DURO_ASSERT(options_.idempotency_keys_max > 0);
}

void ResourceService::preload(const std::string& key, std::string value, std::string owner) {
  DURO_ASSERT(!key.empty() && !owner.empty() && !records_.contains(key));
  DURO_ASSERT(options_.capacity == 0 || records_.size() < options_.capacity);
  Record& record = records_[key];
  record.value = std::move(value);
  record.owner = std::move(owner);
}

const Record* ResourceService::find(std::string_view key) const {
  auto it = records_.find(key);
  return it == records_.end() ? nullptr : &it->second;
}

const sim::Result<ResourceReply>* ResourceService::remembered(const std::string& key) const {
  if (key.empty()) return nullptr;
  auto it = answers_.find(key);
  return it == answers_.end() ? nullptr : &it->second;
}

void ResourceService::remember(const std::string& key, const sim::Result<ResourceReply>& reply) {
  if (key.empty()) return;
  DURO_ASSERT_MSG(answers_.size() < options_.idempotency_keys_max, "a fake remembers too many idempotency keys");
  answers_.emplace(key, reply);
}

void ResourceService::register_methods(sim::RpcServer& server, sim::Env& env) {
  serve<ResourcePut, ResourceReply>(server, env, "put", /*mutating=*/true,
                                    [this, &env](const ResourcePut& request) { return put(env, request); });
  serve<ResourceDelete, ResourceReply>(server, env, "delete", /*mutating=*/true,
                                       [this, &env](const ResourceDelete& request) { return erase(env, request); });
  serve<ResourceGet, ResourceReply>(server, env, "get", /*mutating=*/false,
                                    [this, &env](const ResourceGet& request) { return get(env, request); });
  serve<ResourceUsageRequest, ResourceUsage>(server, env, "usage", /*mutating=*/false,
                                             [this](const ResourceUsageRequest&) -> sim::Result<ResourceUsage> {
                                               return ResourceUsage{records_.size(), options_.capacity};
                                             });
}

sim::Result<ResourceReply> ResourceService::put(sim::Env& env, const ResourcePut& request) {
  if (const sim::Result<ResourceReply>* answer = remembered(request.idempotency_key)) return *answer;
  if (request.key.empty() || request.owner.empty()) {
    return sim::Error{sim::ErrorCode::kInvalidArgument, "put needs a key and an owner"};
  }
  const sim::TimePoint now = env.sim().now();
  sim::Result<ResourceReply> reply = ResourceReply{};
  auto it = records_.find(request.key);
  if (it != records_.end() && it->second.owner != request.owner) {
    reply = sim::Error{sim::ErrorCode::kAlreadyExists, request.key + " is held by " + it->second.owner};
  } else if (it != records_.end() && request.generation > 0 && request.generation <= it->second.generation) {
    reply = sim::Error{sim::ErrorCode::kAlreadyExists,
                       fmt::format("{} is at generation {}: {} is stale", request.key, it->second.generation,
                                   request.generation)};
  } else if (it == records_.end() && options_.capacity > 0 && records_.size() >= options_.capacity) {
    reply = sim::Error{sim::ErrorCode::kNoSpace, name() + " is at capacity"};
  } else {
    const auto propagation_ns =
        env.random().uniform_range(std::chrono::nanoseconds(options_.propagation_min).count(),
                                   std::chrono::nanoseconds(options_.propagation_max).count());
    Record& record = records_[request.key];
    if (it == records_.end()) {
      record.created = now;
      record.previous.reset();
    } else {
      // Readers see the old value until the new one propagates.
      record.previous = now >= record.visible_at ? std::optional<std::string>(record.value) : record.previous;
    }
    record.value = request.value;
    record.owner = request.owner;
    if (request.generation > 0) record.generation = request.generation;
    record.visible_at = now + sim::Duration{propagation_ns};
    log_.push_back(AppliedChange{now, "put", request.key, request.value, request.owner});
    reply = ResourceReply{true, record.value, record.owner};
  }
  remember(request.idempotency_key, reply);
  return reply;
}

sim::Result<ResourceReply> ResourceService::erase(sim::Env& env, const ResourceDelete& request) {
  if (const sim::Result<ResourceReply>* answer = remembered(request.idempotency_key)) return *answer;
  sim::Result<ResourceReply> reply = ResourceReply{};
  auto it = records_.find(request.key);
  if (it != records_.end() && !request.owner.empty() && it->second.owner != request.owner) {
    reply = sim::Error{sim::ErrorCode::kAlreadyExists, request.key + " is held by " + it->second.owner};
  } else if (it != records_.end()) {
    log_.push_back(AppliedChange{env.sim().now(), "delete", request.key, it->second.value, it->second.owner});
    reply = ResourceReply{true, it->second.value, it->second.owner};
    records_.erase(it);
  }
  remember(request.idempotency_key, reply);
  return reply;
}

sim::Result<ResourceReply> ResourceService::get(sim::Env& env, const ResourceGet& request) const {
  auto it = records_.find(request.key);
  if (it == records_.end()) return ResourceReply{};
  const Record& record = it->second;
  if (env.sim().now() >= record.visible_at) return ResourceReply{true, record.value, record.owner};
  if (record.previous) return ResourceReply{true, *record.previous, record.owner};
  return ResourceReply{};
}

}  // namespace duro::scenarios
