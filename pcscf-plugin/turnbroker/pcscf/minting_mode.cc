#include "turnbroker/pcscf/minting_mode.h"

#include <algorithm>

#include "turnbroker/common/log.h"
#include "turnbroker/common/strings.h"

namespace turnbroker::pcscf {

std::string_view CredentialModeName(CredentialMode mode) {
  return mode == CredentialMode::kSharedSecret ? "shared-secret" : "per-credential";
}

absl::StatusOr<CredentialMode> ParseCredentialMode(std::string_view name, std::string_view field) {
  if (name == "per-credential") return CredentialMode::kPerCredential;
  if (name == "shared-secret") return CredentialMode::kSharedSecret;
  return absl::InvalidArgumentError(
      StrCat(field, ": '", name, "' is not a mode (per-credential or shared-secret)"));
}

// --- per-credential ----------------------------------------------------------

PublishedMinting::PublishedMinting(Publisher* publisher, std::string realm, std::string issuer,
                                   std::vector<std::string> scopes, const Clock* clock)
    : publisher_(publisher),
      minter_(std::move(realm)),
      issuer_(std::move(issuer)),
      scopes_(std::move(scopes)),
      clock_(clock) {}

absl::StatusOr<IssuedCredential> PublishedMinting::Mint(int64_t ttl_s) {
  MintedSecret secret = minter_.Mint();
  IssuedCredential c;
  c.username = std::move(secret.username);
  c.password = std::move(secret.password);
  c.key = secret.key;
  c.realm = minter_.realm();
  c.issued_at_ms = clock_->NowMs();
  c.expires_at_ms = c.issued_at_ms + ttl_s * 1000;
  return c;
}

v1::Credential PublishedMinting::ToProto(const IssuedCredential& c) const {
  v1::Credential p;
  p.set_realm(c.realm);
  p.set_username(c.username);
  p.set_key(std::string(reinterpret_cast<const char*>(c.key.data()), c.key.size()));
  p.set_expires_at_ms(c.expires_at_ms);
  p.set_subscriber(c.subscriber);
  p.set_issuer(issuer_);
  for (const auto& s : scopes_) p.add_scopes(s);
  return p;
}

absl::Status PublishedMinting::Commit(const IssuedCredential& c, int64_t timeout_ms) {
  return publisher_->Publish(ToProto(c), timeout_ms);
}

void PublishedMinting::CommitAsync(const IssuedCredential& c, int64_t timeout_ms,
                                   std::function<void(absl::Status)> done) {
  publisher_->PublishAsync(ToProto(c), timeout_ms, std::move(done));
}

std::vector<v1::RevokeRequest> PublishedMinting::SubscriberRevocations(
    std::string_view impu, const std::vector<IssuedCredential>&, std::string_view reason) const {
  v1::RevokeRequest request;
  request.mutable_selector()->set_subscriber(std::string(impu));
  request.set_reason(std::string(reason));
  return {std::move(request)};
}

// --- shared-secret -----------------------------------------------------------

SharedSecretMinting::SharedSecretMinting(const SecretBook* secrets, std::string realm,
                                         int64_t min_ttl_s, const Clock* clock,
                                         MetricsRegistry* metrics)
    : secrets_(secrets), realm_(std::move(realm)), min_ttl_ms_(min_ttl_s * 1000), clock_(clock) {
  if (metrics) {
    metrics->AddCounterFamilyFunction(
        "pcscf_turn_shared_secret_mints_total",
        "Credentials minted with each shared secret (approach 1), by secret id", [this] {
          MetricsRegistry::Samples out;
          for (const auto& [id, n] : MintsBySecret()) {
            out.emplace_back(StrCat("secret=\"", id, "\""), static_cast<double>(n));
          }
          return out;
        });
  }
}

absl::StatusOr<IssuedCredential> SharedSecretMinting::Mint(int64_t ttl_s) {
  auto secret = secrets_->Active(realm_);
  if (!secret.ok()) return secret.status();
  const v1::SharedSecret& s = **secret;
  const int64_t now = clock_->NowMs();
  int64_t until = now + ttl_s * 1000;
  if (s.max_credential_ttl_ms() > 0) until = std::min(until, now + s.max_credential_ttl_ms());
  if (s.expires_at_ms() > 0) until = std::min(until, s.expires_at_ms());
  // The username carries whole seconds: round down, so the credential never
  // outlives any of the bounds.
  const int64_t expires_at_s = until / 1000;
  if (expires_at_s * 1000 - now < min_ttl_ms_) {
    return absl::UnavailableError(StrCat("the active shared secret '", s.id(), "' allows only ",
                                         std::max<int64_t>(0, expires_at_s * 1000 - now) / 1000,
                                         " s of credential lifetime, below the minimum ",
                                         min_ttl_ms_ / 1000, " s"));
  }
  IssuedCredential c;
  c.username = ApproachOneUsername(expires_at_s, MintOpaqueId());
  c.password = TurnRestPassword(s.secret(), c.username);
  c.realm = realm_;
  c.secret_id = s.id();
  c.issued_at_ms = now;
  c.expires_at_ms = expires_at_s * 1000;
  bool changed;
  {
    std::lock_guard lock(mu_);
    ++mints_[s.id()];
    changed = last_secret_id_ != s.id();
    if (changed) last_secret_id_ = s.id();
  }
  if (changed) LogInfo("minting with shared secret").Kv("realm", realm_).Kv("id", s.id());
  return c;
}

bool SharedSecretMinting::Current(const IssuedCredential& held) const {
  auto secret = secrets_->Active(realm_);
  return secret.ok() && (*secret)->id() == held.secret_id;
}

std::vector<v1::RevokeRequest> SharedSecretMinting::SubscriberRevocations(
    std::string_view, const std::vector<IssuedCredential>& held, std::string_view reason) const {
  std::vector<v1::RevokeRequest> out;
  for (const IssuedCredential& c : held) {
    v1::RevokeRequest request;
    auto* ref = request.mutable_selector()->mutable_username();
    ref->set_realm(c.realm);
    ref->set_username(c.username);
    request.set_reason(std::string(reason));
    out.push_back(std::move(request));
  }
  return out;
}

absl::Status SharedSecretMinting::Ready(const absl::Status&) const {
  auto secret = secrets_->Active(realm_);
  return secret.ok() ? absl::OkStatus() : secret.status();
}

std::map<std::string, uint64_t> SharedSecretMinting::MintsBySecret() const {
  std::lock_guard lock(mu_);
  return mints_;
}

}  // namespace turnbroker::pcscf
