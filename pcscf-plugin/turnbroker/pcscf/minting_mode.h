// How a credential the Issuer hands out comes to be valid at the TURN side:
// the seam between the credential lifecycle (issuer.h: registry, reuse,
// rotation, revocation) and the two approaches of docs/approach1.md.
//
//   per-credential (approach 2, the default): a random username and
//     password; the key is published to the broker, which carries it to
//     every TURN node, and the credential is handed out once the broker
//     acknowledged it.
//   shared-secret (approach 1): username "<expiry>:<opaque id>", password
//     base64(HMAC-SHA1(secret, username)) with the realm's active secret,
//     which the agent watches; minted locally, no broker call per REGISTER.
#ifndef TURNBROKER_PCSCF_MINTING_MODE_H_
#define TURNBROKER_PCSCF_MINTING_MODE_H_

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "turnbroker/common/clock.h"
#include "turnbroker/common/metrics.h"
#include "turnbroker/pcscf/minter.h"
#include "turnbroker/pcscf/publisher.h"
#include "turnbroker/pcscf/registry.h"
#include "turnbroker/pcscf/secret_book.h"

namespace turnbroker::pcscf {

enum class CredentialMode { kPerCredential, kSharedSecret };

// "per-credential", "shared-secret".
std::string_view CredentialModeName(CredentialMode mode);
// INVALID_ARGUMENT naming `field` for any other name.
absl::StatusOr<CredentialMode> ParseCredentialMode(std::string_view name, std::string_view field);

// Thread-safe implementations; SIP workers call them concurrently.
class MintingMode {
 public:
  virtual ~MintingMode() = default;
  virtual CredentialMode mode() const = 0;

  // A new credential for a registration with a lifetime of at most ttl_s
  // (username, password, realm, issued_at_ms, expires_at_ms; the key or the
  // secret id), made here and valid nowhere until Commit. UNAVAILABLE when
  // nothing can be minted now (shared-secret: no usable active secret).
  virtual absl::StatusOr<IssuedCredential> Mint(int64_t ttl_s) = 0;
  // Whether a credential minted earlier may be handed out again as it is; if
  // not, the issuer rotates (shared-secret: its secret is no longer the
  // realm's active one).
  virtual bool Current(const IssuedCredential& held) const = 0;
  // Makes `c` valid at the TURN side before it is handed out, within
  // timeout_ms: per-credential publishes its key and waits for the broker's
  // acknowledgement (Publisher::Publish's errors); shared-secret has nothing
  // to do (the TURN node recomputes the password).
  virtual absl::Status Commit(const IssuedCredential& c, int64_t timeout_ms) = 0;
  virtual void CommitAsync(const IssuedCredential& c, int64_t timeout_ms,
                           std::function<void(absl::Status)> done) = 0;
  // Whether the broker holds each credential this mode hands out, so that
  // the issuer publishes its live credentials again after the broker's
  // store was made anew.
  virtual bool broker_holds_credentials() const = 0;
  // The revocations that end every credential of `impu` at the broker:
  // per-credential, one by subscriber (it also covers credentials issued
  // before a restart of this agent); shared-secret, one per username this
  // agent holds (a minter revokes usernames only).
  virtual std::vector<v1::RevokeRequest> SubscriberRevocations(
      std::string_view impu, const std::vector<IssuedCredential>& held,
      std::string_view reason) const = 0;
  // Whether credentials can be handed out now, given the broker's answer to
  // a status request: per-credential needs the broker; shared-secret needs
  // a usable active secret only (it mints while the broker is down).
  virtual absl::Status Ready(const absl::Status& broker) const = 0;
};

// Approach 2: the credential's key goes to the broker.
class PublishedMinting final : public MintingMode {
 public:
  // `publisher` and `clock` must outlive this.
  PublishedMinting(Publisher* publisher, std::string realm, std::string issuer,
                   std::vector<std::string> scopes, const Clock* clock);

  CredentialMode mode() const override { return CredentialMode::kPerCredential; }
  absl::StatusOr<IssuedCredential> Mint(int64_t ttl_s) override;
  bool Current(const IssuedCredential&) const override { return true; }
  absl::Status Commit(const IssuedCredential& c, int64_t timeout_ms) override;
  void CommitAsync(const IssuedCredential& c, int64_t timeout_ms,
                   std::function<void(absl::Status)> done) override;
  bool broker_holds_credentials() const override { return true; }
  std::vector<v1::RevokeRequest> SubscriberRevocations(std::string_view impu,
                                                       const std::vector<IssuedCredential>& held,
                                                       std::string_view reason) const override;
  absl::Status Ready(const absl::Status& broker) const override { return broker; }

 private:
  v1::Credential ToProto(const IssuedCredential& c) const;

  Publisher* const publisher_;
  const Minter minter_;
  const std::string issuer_;
  const std::vector<std::string> scopes_;
  const Clock* const clock_;
};

// Approach 1: minted with the realm's active shared secret from `secrets`
// (kept by a SecretWatcher). A credential's expiry is at most
// min(now + ttl, now + secret.max_credential_ttl_ms, secret.expires_at_ms),
// rounded down to the second the username carries; a secret is never used
// before its not_before_ms. A lifetime below `min_ttl_s` left by those
// bounds is UNAVAILABLE rather than a credential that expires at once.
class SharedSecretMinting final : public MintingMode {
 public:
  // `secrets`, `clock` and `metrics` (may be null) must outlive this.
  SharedSecretMinting(const SecretBook* secrets, std::string realm, int64_t min_ttl_s,
                      const Clock* clock, MetricsRegistry* metrics = nullptr);

  CredentialMode mode() const override { return CredentialMode::kSharedSecret; }
  absl::StatusOr<IssuedCredential> Mint(int64_t ttl_s) override;
  bool Current(const IssuedCredential& held) const override;
  absl::Status Commit(const IssuedCredential&, int64_t) override { return absl::OkStatus(); }
  void CommitAsync(const IssuedCredential&, int64_t,
                   std::function<void(absl::Status)> done) override {
    done(absl::OkStatus());
  }
  bool broker_holds_credentials() const override { return false; }
  std::vector<v1::RevokeRequest> SubscriberRevocations(std::string_view impu,
                                                       const std::vector<IssuedCredential>& held,
                                                       std::string_view reason) const override;
  absl::Status Ready(const absl::Status& broker) const override;

  // Credentials minted with each secret id since the start.
  std::map<std::string, uint64_t> MintsBySecret() const;

 private:
  const SecretBook* const secrets_;
  const std::string realm_;
  const int64_t min_ttl_ms_;
  const Clock* const clock_;
  mutable std::mutex mu_;
  std::map<std::string, uint64_t> mints_;  // guarded by mu_
  std::string last_secret_id_;             // guarded by mu_
};

}  // namespace turnbroker::pcscf

#endif  // TURNBROKER_PCSCF_MINTING_MODE_H_
