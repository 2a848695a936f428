// ResourceService: a fake that holds named records — a cell database's
// namespace records, DNS records, certificates, ingress rules, a name
// registry — with idempotent create, update and delete.
//
// Methods (requests carry the caller's idempotency key; a repeated key gets
// the first answer again without applying anything):
//   "put"    create `key` owned by `owner`, or update it if `owner` already
//            owns it; kAlreadyExists if another owner holds it (the reply's
//            message names the holder) or, for a conditional write, if the
//            record is as new already; kNoSpace at `capacity` records.
//   "delete" remove `key` if `owner` holds it (or if owner is empty); gone
//            already is success (deleted = false).
//   "get"    the record as readers see it: a put becomes visible only after
//            the propagation delay drawn for it (DNS), until then the
//            previous value (or nothing) is returned.
//   "usage"  how many records and the capacity.
//
// The records are ground truth for checkers: records(), find(), and the
// log of every applied change.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "scenarios/fakes/fake_service.h"

namespace duro::scenarios {

struct ResourcePut {
  std::string key;
  std::string value;
  std::string owner;
  std::string idempotency_key;
  // 0: unconditional. Otherwise a conditional write: applied only if newer
  // than the record's generation (else kAlreadyExists, "stale"), so a
  // late, older write cannot undo a newer one.
  std::int64_t generation = 0;
};
DURO_CODEC_FIELDS(ResourcePut, key, value, owner, idempotency_key, generation);

struct ResourceDelete {
  std::string key;
  std::string owner;  // Empty: whoever holds it.
  std::string idempotency_key;
};
DURO_CODEC_FIELDS(ResourceDelete, key, owner, idempotency_key);

struct ResourceGet {
  std::string key;
};
DURO_CODEC_FIELDS(ResourceGet, key);

struct ResourceReply {
  bool found = false;    // get: visible; put: always; delete: it existed.
  std::string value;
  std::string owner;
};
DURO_CODEC_FIELDS(ResourceReply, found, value, owner);

struct ResourceUsageRequest {
  bool unused = false;
};
DURO_CODEC_FIELDS(ResourceUsageRequest, unused);

struct ResourceUsage {
  std::uint64_t records = 0;
  std::uint64_t capacity = 0;  // 0: unbounded.
};
DURO_CODEC_FIELDS(ResourceUsage, records, capacity);

struct ResourceOptions {
  std::uint64_t capacity = 0;  // 0: unbounded.
  sim::Duration propagation_min{0};
  sim::Duration propagation_max{0};
  std::size_t idempotency_keys_max = 1 << 20;  // A bound on what it remembers.
};

struct Record {
  std::string value;
  std::string owner;
  sim::TimePoint created{};
  sim::TimePoint visible_at{};           // When readers see `value`.
  std::optional<std::string> previous;   // What readers see before that.
  std::int64_t generation = 0;           // Of the last conditional write.
};

struct AppliedChange {
  sim::TimePoint at{};
  std::string method;  // "put" or "delete".
  std::string key;
  std::string value;
  std::string owner;
};

class ResourceService final : public FakeService {
 public:
  ResourceService(std::string name, FailureModel failure, ResourceOptions options = {});

  // A record that existed before the run, visible at once.
  void preload(const std::string& key, std::string value, std::string owner);

  const std::map<std::string, Record, std::less<>>& records() const noexcept { return records_; }
  const Record* find(std::string_view key) const;
  const std::vector<AppliedChange>& log() const noexcept { return log_; }
  const ResourceOptions& options() const noexcept { return options_; }

 private:
  void register_methods(sim::RpcServer& server, sim::Env& env) override;
  sim::Result<ResourceReply> put(sim::Env& env, const ResourcePut& request);
  sim::Result<ResourceReply> erase(sim::Env& env, const ResourceDelete& request);
  sim::Result<ResourceReply> get(sim::Env& env, const ResourceGet& request) const;
  // The answer given to `key` before, if any.
  const sim::Result<ResourceReply>* remembered(const std::string& key) const;
  void remember(const std::string& key, const sim::Result<ResourceReply>& reply);

  ResourceOptions options_;
  std::map<std::string, Record, std::less<>> records_;
  std::map<std::string, sim::Result<ResourceReply>, std::less<>> answers_;
  std::vector<AppliedChange> log_;
};

}  // namespace duro::scenarios
