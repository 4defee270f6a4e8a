// The eP-CSCF's side of the credential lifecycle (docs/design.md, The credential lifecycle and The
// eP-CSCF side): issue at REGISTER (reuse or rotate at re-REGISTER), refresh, revoke at de-REGISTER
// or registration expiry, re-assert after the broker's epoch changed.
#ifndef TURNBROKER_PCSCF_ISSUER_H_
#define TURNBROKER_PCSCF_ISSUER_H_

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "turnbroker/common/channel.h"
#include "turnbroker/common/clock.h"
#include "turnbroker/common/metrics.h"
#include "turnbroker/pcscf/minting_mode.h"
#include "turnbroker/pcscf/publisher.h"
#include "turnbroker/pcscf/registry.h"
#include "turnbroker/pcscf/scheduler.h"
#include "turnbroker/pcscf/secret_watcher.h"

namespace turnbroker::pcscf {

struct IssuerOptions {
  // How credentials become valid at the TURN side (minting_mode.h,
  // docs/approach1.md). CredentialService::Connect builds the mode from it;
  // an Issuer built directly is given its MintingMode.
  CredentialMode mode = CredentialMode::kPerCredential;
  // TURN realm of the farm that serves these clients.
  std::string realm;
  // This eP-CSCF instance (Credential.issuer, for revoke-by-issuer).
  std::string issuer;
  // TURN/STUN URIs for the WIC's iceServers (at least one).
  std::vector<std::string> turn_uris;
  // TURN farms that receive the credentials; empty: every farm of the realm.
  std::vector<std::string> scopes;
  // Lifetime when the caller gives none, and the bounds it may ask for.
  int64_t default_ttl_s = 3600;
  int64_t min_ttl_s = 60;
  int64_t max_ttl_s = 86'400;
  // re-REGISTER policy: hand the subscriber's current credential out again
  // while it has at least this much lifetime left; otherwise mint a new one
  // (rotate). With `reuse` false, every REGISTER rotates.
  bool reuse = true;
  int64_t reuse_min_remaining_s = 600;
  // After a refresh or rotation the old credential stays valid this long
  // (so the WIC can switch), then it is revoked. Negative: never revoked,
  // it just expires.
  int64_t overlap_ms = 30'000;
  // Deadline for the broker's acknowledgement of a new credential, and of a
  // revocation. Keep it below the SIP server's HTTP timeout, so the agent
  // answers (503) before the SIP server gives up on it.
  int64_t publish_timeout_ms = 800;
  int64_t revoke_timeout_ms = 800;
  // How often the broker is asked for its status (epoch, reachability);
  // 0: never.
  int64_t status_interval_ms = 2'000;
  // Revocations the broker has not acknowledged yet are retried in the
  // background until acknowledged or until the credential expires; at most
  // this many wait at once (beyond, the oldest are dropped: they expire).
  size_t max_pending_revocations = 100'000;
  // Acknowledged revocations are remembered until the credential would have
  // expired, and sent again after a broker epoch change (a dataset that lost
  // writes may have lost a revocation); at most this many (beyond, the ones
  // expiring first are forgotten).
  size_t max_remembered_revocations = 200'000;

  // OK, or INVALID_ARGUMENT naming the option (realm, issuer, turn_uris[i],
  // scopes[i], ttl bounds).
  absl::Status Validate() const;
};

// Thread-safe: SIP workers call it concurrently. The Publisher (and the
// MintingMode, if given) must outlive the Issuer. What is minted, and whether
// the broker must acknowledge it before it is handed out, is the
// MintingMode's: the lifecycle here is the same in both modes.
//
// Errors: INVALID_ARGUMENT naming the field (impu, impi, ttl, username);
// NOT_FOUND (refresh of a username this issuer does not hold);
// UNAVAILABLE (the broker did not acknowledge in time: nothing was handed
// out, and a credential that may have reached the broker is revoked in the
// background); the broker's own refusals otherwise (PERMISSION_DENIED,
// FAILED_PRECONDITION, ...).
class Issuer {
 public:
  // `mode` null: per-credential (a PublishedMinting over `publisher`).
  Issuer(Publisher* publisher, IssuerOptions options, const Clock* clock = Clock::System(),
         MetricsRegistry* metrics = nullptr, MintingMode* mode = nullptr);
  ~Issuer();
  Issuer(const Issuer&) = delete;
  Issuer& operator=(const Issuer&) = delete;

  // A credential for a registration of `impu`: the current one again if the
  // re-REGISTER policy allows, `impi` (the authenticated identity) is the
  // one it was issued to and the mode still accepts it (shared-secret: its
  // secret is still the active one) (reused = true), else a new one,
  // returned only once valid at the TURN side (per-credential: the broker
  // acknowledged it; shared-secret: UNAVAILABLE without a usable active
  // secret). A reused one is published again first
  // (a no-op at the broker): if the broker refuses it as revoked (an
  // operator revoked it meanwhile) a new one is minted; if the broker does
  // not answer, UNAVAILABLE, as for a new one. ttl_s 0: the default.
  absl::StatusOr<IssuedCredential> Issue(std::string_view impu, std::string_view impi,
                                         int64_t ttl_s);
  // A new credential for the registration `username` belongs to; the old
  // one is revoked after the overlap. ttl_s 0: the old one's lifetime.
  absl::StatusOr<IssuedCredential> Refresh(std::string_view username, int64_t ttl_s);
  // Revokes one username (also one this issuer does not hold, e.g. from
  // before a restart), or every credential of a subscriber (shared-secret:
  // every one this issuer holds, each by username). OK once the broker
  // acknowledged; UNAVAILABLE if it did not, in which case the revocation is
  // retried in the background (by username: a retried revocation by
  // subscriber could remove a credential issued since).
  absl::Status RevokeUsername(std::string_view username, std::string_view reason);
  absl::Status RevokeSubscriber(std::string_view impu, std::string_view reason);

  // The TURN-Credential header value for `credential` (docs/sip-header.md).
  std::string HeaderValue(const IssuedCredential& credential) const;
  // Seconds of lifetime left, rounded down.
  int64_t RemainingSeconds(const IssuedCredential& credential) const;

  // Asks the broker for its status now (also notices an epoch change).
  absl::StatusOr<v1::GetStatusResponse> CheckBroker(int64_t timeout_ms);
  // Whether credentials can be handed out, given the broker's status
  // (MintingMode::Ready).
  absl::Status Ready(const absl::Status& broker) const { return mode_->Ready(broker); }
  CredentialMode mode() const { return mode_->mode(); }
  // Publishes every live credential again (per-credential mode) and revokes every remembered
  // revoked username again (after an epoch change). Returns at once; the
  // work runs in the background.
  void Reassert();

  const IssuerOptions& options() const { return options_; }
  size_t live_credentials() const { return registry_.size(); }
  size_t pending_revocations() const { return pending_revocations_.load(); }
  size_t remembered_revocations() const { return revoked_.size(); }

 private:
  struct Metrics;
  absl::StatusOr<IssuedCredential> MintAndCommit(std::string subscriber, std::string impi,
                                                 int64_t ttl_s);
  // Commits a reusable credential again (per-credential: publishes it and
  // waits for the broker): true if it is still valid, false if the broker
  // refused it as revoked (the credential is dropped from the registry), an
  // error (UNAVAILABLE, a refusal) else.
  absl::StatusOr<bool> Recommit(const IssuedCredential& c);
  // Sends the requests at once and waits for every answer.
  std::vector<absl::StatusOr<v1::RevokeResponse>> RevokeAll(
      std::vector<v1::RevokeRequest> requests);
  absl::Status ValidateTtl(int64_t ttl_s) const;
  // Revokes `username` after `delay_ms` in the background, retrying with
  // backoff until acknowledged or until `expires_at_ms`.
  void RevokeLater(std::string username, int64_t expires_at_ms, std::string reason,
                   int64_t delay_ms);
  void ScheduleRevoke(std::string username, int64_t expires_at_ms, std::string reason,
                      int64_t delay_ms, int attempt);
  void Retire(const IssuedCredential& old);
  void Remember(const std::string& username, int64_t expires_at_ms);
  // Publishes `c` again after an epoch change; a transient failure is
  // retried with backoff while `c` is held and live.
  void ReassertOne(IssuedCredential c, int attempt);
  void PollBroker();

  Publisher* const publisher_;
  const IssuerOptions options_;
  const Clock* const clock_;
  std::unique_ptr<MintingMode> owned_mode_;
  MintingMode* const mode_;
  std::unique_ptr<Metrics> metrics_;
  CredentialRegistry registry_;
  RevokedUsernames revoked_;
  std::atomic<size_t> pending_revocations_{0};
  // Asynchronous broker calls whose callbacks use this object; the
  // destructor waits for them.
  std::mutex calls_mu_;
  std::condition_variable calls_done_;
  int calls_ = 0;  // guarded by calls_mu_
  void CallStarted();
  void CallFinished();
  // Last: its thread runs tasks that use the members above.
  Scheduler scheduler_;
};

// One eP-CSCF's connection to the broker, wired: the channel, the gRPC
// client, the batching publisher, the minting mode (shared-secret: with the
// watcher of the realm's secrets) and the issuer.
class CredentialService {
 public:
  // Errors: INVALID_ARGUMENT naming an option; a TLS file that cannot be
  // read. Does not wait for the broker. `watch` tunes the shared-secret
  // mode's Watch (its realms and watcher_name default to the issuer's realm
  // and id).
  static absl::StatusOr<std::unique_ptr<CredentialService>> Connect(
      const ChannelOptions& channel, const PublisherOptions& publisher, const IssuerOptions& issuer,
      MetricsRegistry* metrics = nullptr, const Clock* clock = Clock::System(),
      SecretWatchOptions watch = {});
  ~CredentialService();

  Issuer& issuer() { return *issuer_; }
  Publisher& publisher() { return *publisher_; }
  // Shared-secret mode only (null otherwise).
  SecretBook* secrets() { return secrets_.get(); }
  SecretWatcher* secret_watcher() { return watcher_.get(); }

 private:
  CredentialService() = default;
  std::unique_ptr<BrokerClient> client_;
  std::unique_ptr<Publisher> publisher_;
  std::unique_ptr<SecretBook> secrets_;
  std::unique_ptr<SecretSource> secret_source_;
  std::unique_ptr<SecretWatcher> watcher_;
  std::unique_ptr<MintingMode> mode_;
  std::unique_ptr<Issuer> issuer_;
};

}  // namespace turnbroker::pcscf

#endif  // TURNBROKER_PCSCF_ISSUER_H_
