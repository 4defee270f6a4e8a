#include "turnbroker/pcscf/issuer.h"

#include <algorithm>
#include <set>

#include "turnbroker/common/backoff.h"
#include "turnbroker/common/log.h"
#include "turnbroker/common/strings.h"
#include "turnbroker/pcscf/sip_header.h"

namespace turnbroker::pcscf {
namespace {

absl::Status Invalid(std::string_view field, std::string_view problem) {
  return absl::InvalidArgumentError(StrCat(field, ": ", problem));
}

// A refused-for-now background revocation, or re-assertion, is retried after
// these delays.
constexpr BackoffOptions kRevokeBackoff{500, 30'000, 2.0};
constexpr int64_t kSweepIntervalMs = 10'000;
constexpr int64_t kReassertTimeoutMs = 10'000;

}  // namespace

absl::Status IssuerOptions::Validate() const {
  if (auto s = ValidateRealm(realm, "realm"); !s.ok()) return s;
  if (auto s = ValidateIssuer(issuer, "issuer"); !s.ok()) return s;
  if (turn_uris.empty()) return Invalid("turn_uris", "needs at least one TURN URI");
  for (size_t i = 0; i < turn_uris.size(); ++i) {
    if (auto s = ValidateIceServerUrl(turn_uris[i], StrCat("turn_uris[", i, "]")); !s.ok())
      return s;
  }
  if (scopes.size() > kMaxScopes) return Invalid("scopes", StrCat("at most ", kMaxScopes));
  for (size_t i = 0; i < scopes.size(); ++i) {
    if (auto s = ValidateScope(scopes[i], StrCat("scopes[", i, "]")); !s.ok()) return s;
  }
  if (min_ttl_s <= 0 || min_ttl_s > max_ttl_s)
    return Invalid("min_ttl", "must be positive and at most max_ttl");
  if (default_ttl_s < min_ttl_s || default_ttl_s > max_ttl_s)
    return Invalid("ttl", StrCat("default ", default_ttl_s, " s is outside ", min_ttl_s, "..",
                                 max_ttl_s, " s"));
  if (publish_timeout_ms <= 0) return Invalid("publish_timeout", "must be positive");
  if (revoke_timeout_ms <= 0) return Invalid("revoke_timeout", "must be positive");
  return absl::OkStatus();
}

struct Issuer::Metrics {
  explicit Metrics(MetricsRegistry* r, Issuer* issuer) {
    const char* help = "Credentials handed out, newly minted or reused at re-REGISTER";
    minted = r->AddCounter("pcscf_turn_issued_total", help, "kind=\"minted\"");
    reused = r->AddCounter("pcscf_turn_issued_total", help, "kind=\"reused\"");
    refreshed = r->AddCounter("pcscf_turn_issued_total", help, "kind=\"refreshed\"");
    issue_failed = r->AddCounter("pcscf_turn_issue_failures_total",
                                 "Issue/refresh requests the broker did not acknowledge");
    const char* rhelp = "Revocations by result";
    revoked = r->AddCounter("pcscf_turn_revocations_total", rhelp, "result=\"ok\"");
    revoke_retried = r->AddCounter("pcscf_turn_revocations_total", rhelp, "result=\"retry\"");
    revoke_failed = r->AddCounter("pcscf_turn_revocations_total", rhelp, "result=\"error\"");
    reasserted = r->AddCounter("pcscf_turn_reasserted_total",
                               "Credentials published again after a broker epoch change");
    revocations_forgotten = r->AddCounter(
        "pcscf_turn_revocations_forgotten_total",
        "Acknowledged revocations no longer remembered for an epoch change (the limit reached)");
    r->AddGaugeFunction(
        "pcscf_turn_remembered_revocations",
        "Acknowledged revocations kept to be sent again after a broker epoch change",
        [issuer] { return static_cast<double>(issuer->remembered_revocations()); });
    r->AddGaugeFunction("pcscf_turn_live_credentials", "Live credentials this agent issued",
                        [issuer] { return static_cast<double>(issuer->live_credentials()); });
    r->AddGauge("pcscf_turn_credential_mode", "The minting mode (docs/approach1.md), always 1",
                StrCat("mode=\"", CredentialModeName(issuer->mode()), "\""))
        ->Set(1);
    r->AddGaugeFunction("pcscf_turn_pending_revocations",
                        "Revocations waiting for the broker's acknowledgement",
                        [issuer] { return static_cast<double>(issuer->pending_revocations()); });
  }
  Counter *minted, *reused, *refreshed, *issue_failed;
  Counter *revoked, *revoke_retried, *revoke_failed, *reasserted, *revocations_forgotten;
};

Issuer::Issuer(Publisher* publisher, IssuerOptions options, const Clock* clock,
               MetricsRegistry* metrics, MintingMode* mode)
    : publisher_(publisher),
      options_(std::move(options)),
      clock_(clock),
      owned_mode_(mode ? nullptr
                       : std::make_unique<PublishedMinting>(
                             publisher, options_.realm, options_.issuer, options_.scopes, clock)),
      mode_(mode ? mode : owned_mode_.get()),
      registry_(clock),
      revoked_(clock, options_.max_remembered_revocations),
      scheduler_(clock) {
  if (metrics) metrics_ = std::make_unique<Metrics>(metrics, this);
  publisher_->SetEpochListener([this](const std::string&, const std::string&) { Reassert(); });
  scheduler_.RunAfter(0, [this] { PollBroker(); });
}

Issuer::~Issuer() {
  publisher_->SetEpochListener(nullptr);
  scheduler_.Stop();
  std::unique_lock lock(calls_mu_);
  calls_done_.wait(lock, [this] { return calls_ == 0; });
}

void Issuer::CallStarted() {
  std::lock_guard lock(calls_mu_);
  ++calls_;
}

void Issuer::CallFinished() {
  std::lock_guard lock(calls_mu_);
  if (--calls_ == 0) calls_done_.notify_all();
}

absl::Status Issuer::ValidateTtl(int64_t ttl_s) const {
  if (ttl_s < options_.min_ttl_s || ttl_s > options_.max_ttl_s) {
    return Invalid("ttl", StrCat("must be between ", options_.min_ttl_s, " and ",
                                 options_.max_ttl_s, " seconds, got ", ttl_s));
  }
  return absl::OkStatus();
}

absl::StatusOr<IssuedCredential> Issuer::Issue(std::string_view impu, std::string_view impi,
                                               int64_t ttl_s) {
  if (impu.empty()) return Invalid("impu", "must not be empty");
  if (auto s = ValidateSubscriber(impu, "impu"); !s.ok()) return s;
  if (auto s = ValidateSubscriber(impi, "impi"); !s.ok()) return s;
  if (ttl_s == 0) ttl_s = options_.default_ttl_s;
  if (auto s = ValidateTtl(ttl_s); !s.ok()) return s;
  if (options_.reuse) {
    // Handed out again only to the identity it was issued to: a REGISTER
    // authenticated as another IMPI (or not at all, when the first was)
    // gets a new credential and the old one retires (docs/security.md).
    auto c = registry_.Reusable(impu, options_.reuse_min_remaining_s * 1000);
    if (c && c->impi != impi) {
      LogInfo("re-REGISTER by another identity; rotating").Kv("impu", impu);
      c.reset();
    }
    // Shared-secret: minted with a secret that is no longer the active one.
    // It rotates: the new one is minted with the active secret and the old
    // one retires after the overlap like any replaced credential.
    if (c && !mode_->Current(*c)) c.reset();
    if (c) {
      auto held = Recommit(*c);
      if (!held.ok()) return held.status();
      if (*held) {
        c->reused = true;
        if (metrics_) metrics_->reused->Inc();
        return *c;
      }
      // Revoked at the broker meanwhile: dropped, a new one is minted below.
    }
  }
  auto c = MintAndCommit(std::string(impu), std::string(impi), ttl_s);
  if (!c.ok()) return c.status();
  if (metrics_) metrics_->minted->Inc();
  if (auto previous = registry_.Add(*c)) Retire(*previous);
  return c;
}

absl::StatusOr<bool> Issuer::Recommit(const IssuedCredential& c) {
  // Per-credential: the same record again, a no-op at the broker (Publish is
  // idempotent) unless an operator revoked it (by username, subscriber or
  // issuer) or the broker lost it; the answer says whether the TURN side
  // will accept it.
  absl::Status s = mode_->Commit(c, options_.publish_timeout_ms);
  if (s.ok()) return true;
  if (s.code() == absl::StatusCode::kFailedPrecondition ||
      s.code() == absl::StatusCode::kAlreadyExists) {
    // FAILED_PRECONDITION: the broker refuses a revoked username until it
    // would have expired (broker/planner.cc). ALREADY_EXISTS: the username
    // is live there with another key. Either way the TURN side would refuse
    // it: forget it (no revocation needed) and mint a new one.
    registry_.Remove(c.username);
    LogInfo("reusable credential refused by the broker; minting a new one")
        .Kv("username", c.username)
        .Kv("impu", c.subscriber)
        .Kv("error", s);
    return false;
  }
  if (metrics_) metrics_->issue_failed->Inc();
  if (IsTransient(s)) {
    // Nothing handed out, as for a new credential. The credential stays
    // held: the WIC still has it from the previous REGISTER and the broker
    // still holds it (or it was revoked, which the next REGISTER learns).
    LogWarn("reused credential not acknowledged").Kv("impu", c.subscriber).Kv("error", s);
    return absl::UnavailableError(
        StrCat("broker did not acknowledge the credential: ", s.message()));
  }
  LogWarn("reused credential refused by the broker").Kv("impu", c.subscriber).Kv("error", s);
  return s;
}

absl::StatusOr<IssuedCredential> Issuer::MintAndCommit(std::string subscriber, std::string impi,
                                                       int64_t ttl_s) {
  for (int attempt = 0;; ++attempt) {
    auto minted = mode_->Mint(ttl_s);
    if (!minted.ok()) {
      // Nothing was made (shared-secret: no usable active secret).
      if (metrics_) metrics_->issue_failed->Inc();
      LogWarn("no credential minted").Kv("impu", subscriber).Kv("error", minted.status());
      return minted.status();
    }
    IssuedCredential c = std::move(*minted);
    c.subscriber = subscriber;
    c.impi = impi;
    absl::Status s = mode_->Commit(c, options_.publish_timeout_ms);
    if (s.ok()) {
      LogDebug("credential issued")
          .Kv("username", c.username)
          .Kv("impu", c.subscriber)
          .Kv("ttl_s", ttl_s);
      return c;
    }
    // Two 96-bit random usernames colliding: mint once more.
    if (s.code() == absl::StatusCode::kAlreadyExists && attempt == 0) continue;
    if (metrics_) metrics_->issue_failed->Inc();
    if (IsTransient(s)) {
      // It may have been committed without our hearing of it: nothing is
      // handed out, and the username is revoked as soon as the broker
      // answers again, so no credential lingers that nobody holds.
      RevokeLater(c.username, c.expires_at_ms, "publish not acknowledged", 0);
      LogWarn("credential not acknowledged").Kv("impu", c.subscriber).Kv("error", s);
      return absl::UnavailableError(
          StrCat("broker did not acknowledge the credential: ", s.message()));
    }
    LogWarn("credential refused by the broker").Kv("impu", c.subscriber).Kv("error", s);
    return s;
  }
}

absl::StatusOr<IssuedCredential> Issuer::Refresh(std::string_view username, int64_t ttl_s) {
  if (auto s = ValidateUsername(username, "username"); !s.ok()) return s;
  auto old = registry_.Find(username);
  if (!old) {
    return absl::NotFoundError(
        StrCat("username: no live credential '", username, "' issued by this agent"));
  }
  if (ttl_s == 0) {
    ttl_s = std::clamp((old->expires_at_ms - old->issued_at_ms) / 1000, options_.min_ttl_s,
                       options_.max_ttl_s);
  }
  if (auto s = ValidateTtl(ttl_s); !s.ok()) return s;
  auto c = MintAndCommit(old->subscriber, old->impi, ttl_s);
  if (!c.ok()) return c.status();
  if (metrics_) metrics_->refreshed->Inc();
  auto previous = registry_.Add(*c);
  if (previous && previous->username != old->username) Retire(*previous);
  Retire(*old);
  return c;
}

void Issuer::Retire(const IssuedCredential& old) {
  if (options_.overlap_ms < 0) return;  // it expires by itself
  // Shared-secret: the TURN side cannot refuse a replaced approach-1
  // credential (coturn recomputes its password), so revoking it would only
  // end the calls still relayed with it, e.g. every call after a secret
  // rotation. It stays held, retiring, until it expires, and a de-REGISTER
  // revokes it with the rest (docs/approach1.md, "Revocation").
  if (!mode_->broker_holds_credentials()) return;
  if (clock_->NowMs() + options_.overlap_ms >= old.expires_at_ms) return;
  RevokeLater(old.username, old.expires_at_ms, "replaced", options_.overlap_ms);
}

absl::Status Issuer::RevokeUsername(std::string_view username, std::string_view reason) {
  if (auto s = ValidateUsername(username, "username"); !s.ok()) return s;
  if (auto s = ValidateReason(reason, "reason"); !s.ok()) return s;
  auto held = registry_.Remove(username);
  v1::RevokeRequest request;
  auto* ref = request.mutable_selector()->mutable_username();
  ref->set_realm(options_.realm);
  ref->set_username(std::string(username));
  request.set_reason(std::string(reason));
  auto r = publisher_->Revoke(std::move(request), options_.revoke_timeout_ms);
  const int64_t until = held ? held->expires_at_ms : clock_->NowMs() + options_.max_ttl_s * 1000;
  if (r.ok()) {
    if (metrics_) metrics_->revoked->Inc();
    Remember(std::string(username), until);
    LogDebug("credential revoked").Kv("username", username).Kv("reason", reason);
    return absl::OkStatus();
  }
  if (IsTransient(r.status())) {
    RevokeLater(std::string(username), until, std::string(reason), 500);
    return absl::UnavailableError(
        StrCat("broker did not acknowledge the revocation (retrying in the background): ",
               r.status().message()));
  }
  if (metrics_) metrics_->revoke_failed->Inc();
  return r.status();
}

absl::Status Issuer::RevokeSubscriber(std::string_view impu, std::string_view reason) {
  if (impu.empty()) return Invalid("impu", "must not be empty");
  if (auto s = ValidateSubscriber(impu, "impu"); !s.ok()) return s;
  if (auto s = ValidateReason(reason, "reason"); !s.ok()) return s;
  std::vector<IssuedCredential> held = registry_.RemoveSubscriber(impu);
  std::vector<v1::RevokeRequest> requests = mode_->SubscriberRevocations(impu, held, reason);
  std::vector<absl::StatusOr<v1::RevokeResponse>> results = RevokeAll(requests);
  // Which held credentials an acknowledged request covered: all of them for
  // a revocation by subscriber, else the one it names.
  std::set<std::string> covered;
  bool all_covered = false;
  absl::Status transient, refused;
  uint32_t revoked = 0;
  for (size_t i = 0; i < requests.size(); ++i) {
    if (results[i].ok()) {
      revoked += results[i]->revoked();
      if (requests[i].selector().has_subscriber()) all_covered = true;
      if (requests[i].selector().has_username())
        covered.insert(requests[i].selector().username().username());
    } else if (IsTransient(results[i].status())) {
      transient = results[i].status();
    } else if (refused.ok()) {
      refused = results[i].status();
    }
  }
  if (!transient.ok()) {
    size_t later = 0;
    for (const auto& c : held) {
      if (all_covered || covered.count(c.username)) {
        Remember(c.username, c.expires_at_ms);
        continue;
      }
      RevokeLater(c.username, c.expires_at_ms, std::string(reason), 500);
      ++later;
    }
    return absl::UnavailableError(
        StrCat("broker did not acknowledge the revocation (the ", later,
               " credentials this agent holds for it are revoked in the background): ",
               transient.message()));
  }
  if (!refused.ok()) {
    if (metrics_) metrics_->revoke_failed->Inc();
    return refused;
  }
  if (metrics_) metrics_->revoked->Inc();
  for (const auto& c : held) Remember(c.username, c.expires_at_ms);
  LogDebug("subscriber revoked")
      .Kv("impu", impu)
      .Kv("requests", requests.size())
      .Kv("revoked", revoked)
      .Kv("reason", reason);
  return absl::OkStatus();
}

std::vector<absl::StatusOr<v1::RevokeResponse>> Issuer::RevokeAll(
    std::vector<v1::RevokeRequest> requests) {
  std::vector<absl::StatusOr<v1::RevokeResponse>> results(requests.size(),
                                                          absl::UnknownError("not answered"));
  if (requests.size() == 1) {
    results[0] = publisher_->Revoke(std::move(requests[0]), options_.revoke_timeout_ms);
    return results;
  }
  std::mutex mu;
  std::condition_variable answered;
  size_t left = requests.size();
  for (size_t i = 0; i < requests.size(); ++i) {
    publisher_->RevokeAsync(std::move(requests[i]), options_.revoke_timeout_ms,
                            [&, i](absl::StatusOr<v1::RevokeResponse> r) {
                              std::lock_guard lock(mu);
                              results[i] = std::move(r);
                              if (--left == 0) answered.notify_all();
                            });
  }
  std::unique_lock lock(mu);
  answered.wait(lock, [&] { return left == 0; });
  return results;
}

void Issuer::RevokeLater(std::string username, int64_t expires_at_ms, std::string reason,
                         int64_t delay_ms) {
  if (pending_revocations_.load() >= options_.max_pending_revocations) {
    LogWarn("too many pending revocations; this credential will expire instead")
        .Kv("username", username);
    return;
  }
  ++pending_revocations_;
  ScheduleRevoke(std::move(username), expires_at_ms, std::move(reason), delay_ms, 0);
}

void Issuer::ScheduleRevoke(std::string username, int64_t expires_at_ms, std::string reason,
                            int64_t delay_ms, int attempt) {
  scheduler_.RunAfter(delay_ms, [this, username = std::move(username), expires_at_ms,
                                 reason = std::move(reason), attempt] {
    registry_.Remove(username);
    if (clock_->NowMs() >= expires_at_ms) {
      --pending_revocations_;  // expired: nothing left to revoke
      return;
    }
    v1::RevokeRequest request;
    auto* ref = request.mutable_selector()->mutable_username();
    ref->set_realm(options_.realm);
    ref->set_username(username);
    request.set_reason(reason);
    CallStarted();
    publisher_->RevokeAsync(
        std::move(request), options_.revoke_timeout_ms,
        [this, username, expires_at_ms, reason, attempt](absl::StatusOr<v1::RevokeResponse> r) {
          if (r.ok() || !IsTransient(r.status())) {
            --pending_revocations_;
            if (metrics_) (r.ok() ? metrics_->revoked : metrics_->revoke_failed)->Inc();
            if (r.ok()) Remember(username, expires_at_ms);
            if (!r.ok()) {
              LogWarn("background revocation refused")
                  .Kv("username", username)
                  .Kv("error", r.status());
            }
          } else {
            if (metrics_) metrics_->revoke_retried->Inc();
            const int64_t backoff = BackoffDelayMs(kRevokeBackoff, attempt + 1);
            ScheduleRevoke(username, expires_at_ms, reason, backoff, attempt + 1);
          }
          CallFinished();
        });
  });
}

void Issuer::ReassertOne(IssuedCredential c, int attempt) {
  CallStarted();
  IssuedCredential sent = c;
  mode_->CommitAsync(sent, kReassertTimeoutMs, [this, c = std::move(c), attempt](absl::Status s) {
    if (s.ok()) {
      if (metrics_) metrics_->reasserted->Inc();
    } else if (s.code() == absl::StatusCode::kFailedPrecondition) {
      // Revoked meanwhile (by this issuer, or an operator): as in
      // Recommit, forget it.
      registry_.Remove(c.username);
      LogInfo("re-asserted credential was revoked meanwhile").Kv("username", c.username);
    } else if (IsTransient(s) && clock_->NowMs() < c.expires_at_ms && registry_.Find(c.username)) {
      // The broker is still away (a new epoch often comes with a failover):
      // again after a backoff, until it answers or the credential expires
      // or is revoked (docs/operations.md, "Redis lost data").
      // Once per credential at warning level: an outage retries them all.
      (attempt == 0 ? LogWarn("re-assertion failed; retrying")
                    : LogDebug("re-assertion failed; retrying"))
          .Kv("username", c.username)
          .Kv("error", s);
      const int64_t backoff = BackoffDelayMs(kRevokeBackoff, attempt + 1);
      scheduler_.RunAfter(backoff, [this, c, attempt] { ReassertOne(c, attempt + 1); });
    } else {
      LogWarn("re-assertion failed").Kv("username", c.username).Kv("error", s);
    }
    CallFinished();
  });
}

void Issuer::PollBroker() {
  registry_.RemoveExpired();
  if (options_.status_interval_ms <= 0) {
    scheduler_.RunAfter(kSweepIntervalMs, [this] { PollBroker(); });
    return;
  }
  CallStarted();
  publisher_->GetStatusAsync(
      options_.revoke_timeout_ms, [this](absl::StatusOr<v1::GetStatusResponse>) {
        // Publisher::Observe noted reachability and epoch.
        scheduler_.RunAfter(options_.status_interval_ms, [this] { PollBroker(); });
        CallFinished();
      });
}

absl::StatusOr<v1::GetStatusResponse> Issuer::CheckBroker(int64_t timeout_ms) {
  return publisher_->GetStatus(timeout_ms);
}

void Issuer::Remember(const std::string& username, int64_t expires_at_ms) {
  if (revoked_.Add(username, expires_at_ms) > 0 && metrics_) metrics_->revocations_forgotten->Inc();
}

void Issuer::Reassert() {
  scheduler_.RunAfter(0, [this] {
    // Shared-secret: the broker holds no credential of this agent's to
    // publish again; its revocations are re-asserted all the same.
    std::vector<IssuedCredential> live;
    if (mode_->broker_holds_credentials()) live = registry_.Live();
    std::vector<std::pair<std::string, int64_t>> revoked = revoked_.Live();
    LogInfo("re-asserting live credentials and revocations after a broker epoch change")
        .Kv("credentials", live.size())
        .Kv("revocations", revoked.size());
    // Revoked again through the background queue, which retries until the
    // broker acknowledges (its per-client revoke rate limit included).
    const size_t room = options_.max_pending_revocations -
                        std::min(options_.max_pending_revocations, pending_revocations_.load());
    if (revoked.size() > room) {
      LogWarn("too many revocations to re-assert; the rest will expire instead")
          .Kv("re_asserted", room)
          .Kv("left", revoked.size() - room);
      // The ones expiring last matter most: Live() is in expiry order.
      revoked.erase(revoked.begin(), revoked.end() - static_cast<ptrdiff_t>(room));
    }
    for (auto& [username, expires_at_ms] : revoked) {
      RevokeLater(std::move(username), expires_at_ms, "re-asserted after a broker epoch change", 0);
    }
    for (auto& c : live) ReassertOne(std::move(c), 0);
  });
}

int64_t Issuer::RemainingSeconds(const IssuedCredential& c) const {
  return std::max<int64_t>(0, (c.expires_at_ms - clock_->NowMs()) / 1000);
}

std::string Issuer::HeaderValue(const IssuedCredential& c) const {
  TurnCredentialHeader h;
  h.username = c.username;
  h.password = c.password;
  h.ttl_s = RemainingSeconds(c);
  h.expires_at_s = c.expires_at_ms / 1000;
  h.urls = options_.turn_uris;
  auto v = FormatTurnCredentialHeader(h);
  // Options were validated and minted values are base64url: cannot fail.
  return v.ok() ? *v : std::string();
}

CredentialService::~CredentialService() {
  issuer_.reset();
  if (watcher_) watcher_->Stop();
  mode_.reset();
  watcher_.reset();
  secret_source_.reset();
  secrets_.reset();
  publisher_.reset();
  client_.reset();
}

absl::StatusOr<std::unique_ptr<CredentialService>> CredentialService::Connect(
    const ChannelOptions& channel, const PublisherOptions& publisher, const IssuerOptions& issuer,
    MetricsRegistry* metrics, const Clock* clock, SecretWatchOptions watch) {
  if (auto s = issuer.Validate(); !s.ok()) return s;
  if (publisher.max_batch < 1 || publisher.max_in_flight < 1)
    return Invalid("publisher", "max_batch and max_in_flight must be positive");
  auto ch = MakeChannel(channel);
  if (!ch.ok()) return ch.status();
  std::unique_ptr<CredentialService> service(new CredentialService);
  service->client_ = NewGrpcBrokerClient(
      *ch, GrpcBrokerClientOptions{.publish_stream = publisher.publish_stream, .clock = clock});
  service->publisher_ =
      std::make_unique<Publisher>(service->client_.get(), publisher, metrics, clock);
  if (issuer.mode == CredentialMode::kSharedSecret) {
    if (watch.realms.empty()) watch.realms = {issuer.realm};
    if (watch.watcher_name.empty()) watch.watcher_name = issuer.issuer;
    service->secrets_ = std::make_unique<SecretBook>(clock);
    service->secret_source_ = NewGrpcSecretSource(*ch);
    service->watcher_ = std::make_unique<SecretWatcher>(
        service->secret_source_.get(), service->secrets_.get(), std::move(watch), metrics);
    service->mode_ = std::make_unique<SharedSecretMinting>(service->secrets_.get(), issuer.realm,
                                                           issuer.min_ttl_s, clock, metrics);
    service->watcher_->Start();
  }
  service->issuer_ = std::make_unique<Issuer>(service->publisher_.get(), issuer, clock, metrics,
                                              service->mode_.get());
  return service;
}

}  // namespace turnbroker::pcscf
