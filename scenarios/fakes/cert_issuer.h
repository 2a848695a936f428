// CertIssuer: a certificate authority that issues, reports on and revokes
// one certificate per name (a cell's serving certificate), slow and
// rate-limited as real ones are (its FailureModel's latency and
// requests_per_second_max).
//
// Expiry is by the issuer's own clock (a fake's clock; the nemesis never
// jumps it): a certificate issued at t is valid until t + validity. A
// client's clock may be hours off; it learns how long its certificate has
// left from "status", which answers with the issuer's time.
//
// Methods (mutating calls carry an idempotency key; a repeated key gets
// the first answer and applies nothing):
//   "issue"   a new certificate for `name`, replacing serial `replaces`
//             (0: there is none yet). A compare-and-swap: if the current
//             certificate is not `replaces` (another renewal won), nothing
//             is issued and the current one is returned (issued = false),
//             so two renewals of one certificate yield one new one.
//   "status"  the current certificate of `name` and the issuer's time.
//   "revoke"  revoke the current certificate of `name`; revoked already is
//             success. A revoked name is not renewed: "issue" then answers
//             with the revoked certificate (issued = false, revoked = true).
//
// Ground truth for checkers: every certificate ever issued per name, in
// order, with its issue time, expiry and revocation.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "scenarios/fakes/fake_service.h"

namespace duro::scenarios {

struct CertIssueRequest {
  std::string name;
  std::uint64_t replaces = 0;
  std::string idempotency_key;
};
DURO_CODEC_FIELDS(CertIssueRequest, name, replaces, idempotency_key);

struct CertStatusRequest {
  std::string name;
};
DURO_CODEC_FIELDS(CertStatusRequest, name);

struct CertRevokeRequest {
  std::string name;
  std::string idempotency_key;
};
DURO_CODEC_FIELDS(CertRevokeRequest, name, idempotency_key);

struct CertReply {
  bool found = false;     // The name has a certificate.
  bool issued = false;    // issue: this call made a new one.
  bool revoked = false;
  std::uint64_t serial = 0;
  sim::TimePoint not_after{};
  sim::TimePoint now{};   // The issuer's time when it answered.
};
DURO_CODEC_FIELDS(CertReply, found, issued, revoked, serial, not_after, now);

struct Certificate {
  std::uint64_t serial = 0;
  sim::TimePoint issued_at{};
  sim::TimePoint not_after{};
  std::optional<sim::TimePoint> revoked_at;
};

struct CertIssuerOptions {
  sim::Duration validity = std::chrono::hours{8};
  std::size_t idempotency_keys_max = 1 << 16;  // A bound on what it remembers.
  std::size_t certificates_per_name_max = 1024;
};

class CertIssuer final : public FakeService {
 public:
  CertIssuer(std::string name, FailureModel failure, CertIssuerOptions options = {});

  // A certificate that exists before the run (issued by someone earlier).
  void preissue(const std::string& name, sim::TimePoint issued_at, sim::TimePoint not_after);

  // Every certificate of `name`, oldest first (empty if none).
  const std::vector<Certificate>& certificates(const std::string& name) const;
  const std::map<std::string, std::vector<Certificate>, std::less<>>& all() const noexcept { return certs_; }
  const CertIssuerOptions& options() const noexcept { return options_; }

  // The handlers' logic, at the issuer's time `now` (for the RPC front and tests).
  CertReply issue(const CertIssueRequest& request, sim::TimePoint now);
  CertReply status(const std::string& name, sim::TimePoint now) const;
  CertReply revoke(const CertRevokeRequest& request, sim::TimePoint now);

 private:
  void register_methods(sim::RpcServer& server, sim::Env& env) override;
  CertReply describe(const std::string& name, sim::TimePoint now) const;
  const CertReply* remembered(const std::string& key) const;
  void remember(const std::string& key, const CertReply& reply);

  CertIssuerOptions options_;
  std::uint64_t next_serial_ = 1;
  std::map<std::string, std::vector<Certificate>, std::less<>> certs_;
  std::map<std::string, CertReply, std::less<>> answers_;
};

}  // namespace duro::scenarios
