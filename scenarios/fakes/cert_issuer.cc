#include "scenarios/fakes/cert_issuer.h"

#include <utility>

#include "sim/assert.h"
#include "sim/simulator.h"

namespace duro::scenarios {

CertIssuer::CertIssuer(std::string name, FailureModel failure, CertIssuerOptions options)
    : FakeService(std::move(name), failure), options_(options) {
  DURO_ASSERT(options_.validity > sim::Duration{0});
  DURO_ASSERT(options_.idempotency_keys_max > 0 && options_.certificates_per_name_max > 0);
}

void CertIssuer::preissue(const std::string& name, sim::TimePoint issued_at, sim::TimePoint not_after) {
  DURO_ASSERT(!name.empty() && issued_at < not_after);
  DURO_ASSERT_MSG(!certs_.contains(name), "preissue() before any other certificate of the name");
  certs_[name].push_back(Certificate{next_serial_++, issued_at, not_after, std::nullopt});
}

const std::vector<Certificate>& CertIssuer::certificates(const std::string& name) const {
  static const std::vector<Certificate> kNone;
  auto it = certs_.find(name);
  return it == certs_.end() ? kNone : it->second;
}

CertReply CertIssuer::describe(const std::string& name, sim::TimePoint now) const {
  CertReply reply;
  reply.now = now;
  auto it = certs_.find(name);
  if (it == certs_.end() || it->second.empty()) return reply;
  const Certificate& current = it->second.back();
  reply.found = true;
  reply.serial = current.serial;
  reply.not_after = current.not_after;
  reply.revoked = current.revoked_at.has_value();
  return reply;
}

const CertReply* CertIssuer::remembered(const std::string& key) const {
  if (key.empty()) return nullptr;
  auto it = answers_.find(key);
  return it == answers_.end() ? nullptr : &it->second;
}

void CertIssuer::remember(const std::string& key, const CertReply& reply) {
  if (key.empty()) return;
  DURO_ASSERT_MSG(answers_.size() < options_.idempotency_keys_max, "the issuer remembers too many idempotency keys");
  answers_.emplace(key, reply);
}

CertReply CertIssuer::issue(const CertIssueRequest& request, sim::TimePoint now) {
  DURO_ASSERT(!request.name.empty());
  if (const CertReply* answer = remembered(request.idempotency_key)) return *answer;
  CertReply reply = describe(request.name, now);
  // Another renewal won, or the name was revoked: nothing new.
  if (reply.revoked || reply.serial != request.replaces) {
    remember(request.idempotency_key, reply);
    return reply;
  }
  std::vector<Certificate>& certs = certs_[request.name];
  DURO_ASSERT_MSG(certs.size() < options_.certificates_per_name_max, "a name has too many certificates");
  certs.push_back(Certificate{next_serial_++, now, now + options_.validity, std::nullopt});
  reply = describe(request.name, now);
  reply.issued = true;
  DURO_ASSERT(reply.found && reply.serial == certs.back().serial);
  remember(request.idempotency_key, reply);
  return reply;
}

CertReply CertIssuer::status(const std::string& name, sim::TimePoint now) const { return describe(name, now); }

CertReply CertIssuer::revoke(const CertRevokeRequest& request, sim::TimePoint now) {
  DURO_ASSERT(!request.name.empty());
  if (const CertReply* answer = remembered(request.idempotency_key)) return *answer;
  auto it = certs_.find(request.name);
  if (it != certs_.end() && !it->second.empty() && !it->second.back().revoked_at) it->second.back().revoked_at = now;
  CertReply reply = describe(request.name, now);
  remember(request.idempotency_key, reply);
  return reply;
}

void CertIssuer::register_methods(sim::RpcServer& server, sim::Env& env) {
  serve<CertIssueRequest, CertReply>(server, env, "issue", /*mutating=*/true,
                                     [this, &env](const CertIssueRequest& request) -> sim::Result<CertReply> {
                                       if (request.name.empty()) {
                                         return sim::Error{sim::ErrorCode::kInvalidArgument, "issue needs a name"};
                                       }
                                       return issue(request, env.sim().now());
                                     });
  serve<CertStatusRequest, CertReply>(server, env, "status", /*mutating=*/false,
                                      [this, &env](const CertStatusRequest& request) -> sim::Result<CertReply> {
                                        return status(request.name, env.sim().now());
                                      });
  serve<CertRevokeRequest, CertReply>(server, env, "revoke", /*mutating=*/true,
                                      [this, &env](const CertRevokeRequest& request) -> sim::Result<CertReply> {
                                        if (request.name.empty()) {
                                          return sim::Error{sim::ErrorCode::kInvalidArgument, "revoke needs a name"};
                                        }
                                        return revoke(request, env.sim().now());
                                      });
}

}  // namespace duro::scenarios
