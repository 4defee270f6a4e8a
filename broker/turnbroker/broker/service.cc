#include "turnbroker/broker/service.h"

#include <optional>

#include "turnbroker/broker/planner.h"
#include "turnbroker/broker/refuse.h"
#include "turnbroker/common/clock.h"
#include "turnbroker/common/credential.h"
#include "turnbroker/common/log.h"
#include "turnbroker/common/status.h"
#include "turnbroker/common/strings.h"
#include "turnbroker/common/tls.h"

namespace turnbroker::broker {
namespace {

constexpr uint32_t kDefaultPageSize = 100;
constexpr uint32_t kMaxPageSize = 1000;
constexpr size_t kMaxExaminedPerPage = 10'000;

// Finishes a unary call; a refusal is logged with the caller.
grpc::ServerUnaryReactor* Done(grpc::CallbackServerContext* context, const absl::Status& status,
                               std::string_view method = {}) {
  if (!status.ok() && !method.empty()) {
    LogRefused(method, PeerOf(*context->auth_context()), context->peer(), status);
  }
  auto* reactor = context->DefaultReactor();
  reactor->Finish(ToGrpcStatus(status));
  return reactor;
}

absl::Status NoIssuerIdentity(const Peer& peer) {
  return absl::PermissionDeniedError(
      StrCat("client '", peer.name,
             "' has no issuer identity: its certificate needs one URI SAN "
             "urn:turnbroker:issuer:<id> or a CN of [A-Za-z0-9._:-] (docs/security.md)"));
}

absl::StatusOr<Peer> Authorize(grpc::CallbackServerContext* context, uint32_t needed,
                               std::string_view method) {
  Peer peer = PeerOf(*context->auth_context());
  if (peer.roles & needed) return peer;
  return absl::PermissionDeniedError(StrCat(method, " needs role ", RoleNames(needed), "; client '",
                                            peer.name, "' has ", RoleNames(peer.roles)));
}

absl::Status CheckPublishIssuers(const Peer& peer, const v1::PublishRequest& request) {
  if (peer.roles & kRoleOperator) return absl::OkStatus();  // acts for any issuer
  if (peer.issuer.empty()) return NoIssuerIdentity(peer);
  for (int i = 0; i < request.credentials_size(); ++i) {
    const std::string& issuer = request.credentials(i).issuer();
    if (issuer != peer.issuer) {
      return absl::PermissionDeniedError(
          StrCat("credentials[", i, "].issuer: '", issuer, "' is not this client's issuer '",
                 peer.issuer, "' (a publisher publishes under its own issuer only)"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<bool> CheckRevokeIssuer(const Peer& peer, const v1::RevokeRequest& request,
                                       const CredentialState& state) {
  const v1::Selector& selector = request.selector();
  if (peer.roles & kRoleOperator) {
    // A username already revoked and not live: recording it again would only
    // add an event and extend its tombstone.
    if (selector.has_username() && state.Matching(selector).empty() &&
        state.IsRevoked(selector.username().realm(), selector.username().username()))
      return false;
    return true;
  }
  if (peer.issuer.empty()) return NoIssuerIdentity(peer);
  if (selector.has_issuer()) {
    if (selector.issuer() != peer.issuer) {
      return absl::PermissionDeniedError(
          StrCat("selector.issuer: '", selector.issuer(), "' is not this client's issuer '",
                 peer.issuer, "' (a publisher revokes its own credentials only)"));
    }
    // Nothing of it live: nothing to queue nor record (an index lookup, so
    // a publisher at its revoke rate costs no scan of the live set).
    return !state.Matching(selector).empty();
  }
  // By username or subscriber: only the credentials this publisher issued
  // (the store revokes with the publisher's issuer as its scope, so another
  // issuer's credential, live now or made live before the commit, stays).
  // A credential of another issuer beside its own does not stop it: else
  // any publisher could block another's de-REGISTER by publishing a
  // credential for the same subscriber.
  std::vector<RecordRef> matches = state.Matching(selector);
  const Record* other = nullptr;
  bool own = false;
  for (const RecordRef& r : matches) {
    if (r->issuer() == peer.issuer)
      own = true;
    else if (!other)
      other = r.get();
  }
  if (other && !own) {
    return absl::PermissionDeniedError(
        StrCat(selector.has_username() ? "selector.username" : "selector.subscriber",
               ": matches a credential issued by '", other->issuer(), "', not by this client ('",
               peer.issuer, "'); only an operator revokes another issuer's credentials"));
  }
  // A username in every realm: refused as soon as another issuer's
  // credential matches (the planner checks it again in the commit group).
  if (other) {
    if (auto s = CheckEveryRealmScope(selector, peer.issuer, other->issuer()); !s.ok()) return s;
  }
  // Nothing of this publisher's is live there: nothing to record (no event,
  // no tombstone for a username nobody can tell is this client's).
  return own;
}

// One username in approach-1 form, of a realm where a shared secret is
// known, not live as a published credential.
bool IsMintedRevocation(const v1::RevokeRequest& request, const CredentialState& state) {
  const v1::Selector& selector = request.selector();
  if (!selector.has_username() || selector.username().realm().empty()) return false;
  const v1::CredentialRef& ref = selector.username();
  return Approach1Expiry(ref.username()).has_value() && !state.Secrets(ref.realm()).empty() &&
         !state.Find(ref.realm(), ref.username());
}

}  // namespace

struct BrokerService::Metrics {
  explicit Metrics(MetricsRegistry* r) {
    for (int i = 0; i < 2; ++i) {
      const char* method = i == 0 ? "publish" : "revoke";
      ok[i] = r->AddCounter("turnbroker_requests_total", "Write requests by method and result",
                            StrCat("method=\"", method, "\",result=\"ok\""));
      failed[i] = r->AddCounter("turnbroker_requests_total", "Write requests by method and result",
                                StrCat("method=\"", method, "\",result=\"error\""));
    }
    for (int i = 0; i < 2; ++i) {
      latency[i] =
          r->AddHistogram("turnbroker_request_seconds", "Write request latency, until committed",
                          StrCat("method=\"", i == 0 ? "publish" : "revoke", "\""));
    }
    credentials = r->AddCounter("turnbroker_published_credentials_total",
                                "Credentials made live or updated by Publish");
    revoked =
        r->AddCounter("turnbroker_revoked_credentials_total", "Live credentials removed by Revoke");
    rate_limited =
        r->AddCounter("turnbroker_rate_limited_total",
                      "Requests refused by the per-client rate limits", "method=\"publish\"");
    revoke_rate_limited =
        r->AddCounter("turnbroker_rate_limited_total",
                      "Requests refused by the per-client rate limits", "method=\"revoke\"");
    publish_streams_opened =
        r->AddCounter("turnbroker_publish_streams_opened_total", "PublishStream calls opened");
    publish_streams = r->AddGauge("turnbroker_publish_streams", "PublishStream calls open");
    secret_ok = r->AddCounter("turnbroker_secret_writes_total",
                              "AddSecret, ActivateSecret and RetireSecret calls by result",
                              "result=\"ok\"");
    secret_failed = r->AddCounter("turnbroker_secret_writes_total",
                                  "AddSecret, ActivateSecret and RetireSecret calls by result",
                                  "result=\"error\"");
    acknowledged = r->AddCounter("turnbroker_acknowledgements_received_total",
                                 "Acknowledge calls received from TURN syncs");
  }
  Counter* secret_ok;
  Counter* secret_failed;
  Counter* acknowledged;
  Counter* ok[2];
  Counter* failed[2];
  Histogram* latency[2];
  Counter* credentials;
  Counter* revoked;
  Counter* rate_limited;
  Counter* revoke_rate_limited;
  Counter* publish_streams_opened;
  Gauge* publish_streams;
};

BrokerService::BrokerService(Store* store, WatchHub* hub, MetricsRegistry* metrics,
                             std::string version, int64_t started_at_ms, RateLimiter* limiter,
                             RateLimiter* revoke_limiter)
    : store_(store),
      hub_(hub),
      version_(std::move(version)),
      started_at_ms_(started_at_ms),
      limiter_(limiter),
      revoke_limiter_(revoke_limiter),
      metrics_(std::make_unique<Metrics>(metrics)) {}

BrokerService::~BrokerService() = default;

template <typename Response>
void BrokerService::Account(int method, int64_t start_us, const absl::StatusOr<Response>& r,
                            const std::string& peer) {
  metrics_->latency[method]->ObserveMicros(MonotonicMicros() - start_us);
  if (!r.ok()) {
    metrics_->failed[method]->Inc();
    LogInfo(method == 0 ? "publish refused" : "revoke refused")
        .Kv("client", peer)
        .Kv("error", r.status());
    return;
  }
  metrics_->ok[method]->Inc();
  if constexpr (std::is_same_v<Response, v1::PublishResponse>) {
    metrics_->credentials->Inc(r->applied());
  } else {
    metrics_->revoked->Inc(r->revoked());
    // Every revocation is on record with who asked for it.
    LogInfo("revoked").Kv("client", peer).Kv("revision", r->revision()).Kv("revoked", r->revoked());
  }
}

void BrokerService::CountPublishStream(int delta) {
  if (delta > 0) metrics_->publish_streams_opened->Inc();
  metrics_->publish_streams->Add(delta);
}

// PublishStream's answers are recorded from publish_stream.cc.
template void BrokerService::Account<v1::PublishResponse>(
    int, int64_t, const absl::StatusOr<v1::PublishResponse>&, const std::string&);

std::string BrokerService::CallerName(grpc::CallbackServerContext* context, const Peer& peer) {
  return broker::CallerName(peer, context->peer());
}

// Finishes a write call once the store answered; counts and logs it.
template <typename Response>
std::function<void(absl::StatusOr<Response>)> BrokerService::Answer(
    grpc::CallbackServerContext* context, grpc::ServerUnaryReactor* reactor, Response* response,
    int method) {
  return
      [this, reactor, response, method, start = MonotonicMicros(),
       peer = CallerName(context, PeerOf(*context->auth_context()))](absl::StatusOr<Response> r) {
        Account(method, start, r, peer);
        if (!r.ok()) {
          reactor->Finish(ToGrpcStatus(r.status()));
          return;
        }
        *response = *std::move(r);
        reactor->Finish(grpc::Status::OK);
      };
}

std::string BrokerService::ClientKey(grpc::CallbackServerContext* context, const Peer& peer) {
  if (!peer.plaintext) return peer.name;
  // Plaintext peers are told apart by address, not port.
  std::string address = context->peer();
  return address.substr(0, address.rfind(':'));
}

absl::Status BrokerService::Limit(const std::string& client, int credentials) {
  if (!limiter_) return absl::OkStatus();
  absl::Status s = limiter_->Take(client, credentials);
  // Counted in turnbroker_requests_total by Account, like every answer.
  if (!s.ok()) metrics_->rate_limited->Inc();
  return s;
}

absl::Status BrokerService::CheckPublish(const Peer& peer, const std::string& client,
                                         const v1::PublishRequest& request) {
  if (auto s = CheckPublishIssuers(peer, request); !s.ok()) return s;
  return Limit(client, request.credentials_size());
}

grpc::ServerUnaryReactor* BrokerService::Publish(grpc::CallbackServerContext* context,
                                                 const v1::PublishRequest* request,
                                                 v1::PublishResponse* response) {
  int64_t start = MonotonicMicros();
  auto peer = Authorize(context, kRolePublisher, "Publish");
  if (!peer.ok()) return Done(context, peer.status(), "Publish");
  if (auto s = CheckPublish(*peer, ClientKey(context, *peer), *request); !s.ok()) {
    Account(0, start, absl::StatusOr<v1::PublishResponse>(s), CallerName(context, *peer));
    return Done(context, s);
  }
  // DefaultReactor() constructs the reactor: call it once.
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  store_->Publish(request, Answer(context, reactor, response, 0));
  return reactor;
}

grpc::ServerBidiReactor<v1::PublishStreamRequest, v1::PublishStreamResponse>*
BrokerService::PublishStream(grpc::CallbackServerContext* context) {
  auto peer = Authorize(context, kRolePublisher, "PublishStream");
  if (!peer.ok()) {
    LogRefused("PublishStream", PeerOf(*context->auth_context()), context->peer(), peer.status());
    return Refuse<grpc::ServerBidiReactor<v1::PublishStreamRequest, v1::PublishStreamResponse>>(
        peer.status());
  }
  return OpenPublishStream(context, *std::move(peer));
}

grpc::ServerUnaryReactor* BrokerService::Revoke(grpc::CallbackServerContext* context,
                                                const v1::RevokeRequest* request,
                                                v1::RevokeResponse* response) {
  int64_t start = MonotonicMicros();
  auto peer = Authorize(context, kRolePublisher | kRoleMinter, "Revoke");
  if (!peer.ok()) return Done(context, peer.status(), "Revoke");
  // A minter's revocation of an approach-1 username; for a client that is
  // also a publisher (or plaintext), only when it is one (else its publisher
  // rules would find nothing of its own live and record nothing).
  if ((peer->roles & kRoleMinter) &&
      (!(peer->roles & kRolePublisher) || IsMintedRevocation(*request, store_->state()))) {
    return RevokeMinted(context, request, response, *peer, start);
  }
  const std::string caller = CallerName(context, *peer);
  auto refuse = [&](const absl::Status& s) {
    Account(1, start, absl::StatusOr<v1::RevokeResponse>(s), caller);
    return Done(context, s);
  };
  if (auto s = ValidateSelector(request->selector(), "selector"); !s.ok()) return refuse(s);
  if (revoke_limiter_) {
    if (auto s = revoke_limiter_->Take(ClientKey(context, *peer), 1); !s.ok()) {
      metrics_->revoke_rate_limited->Inc();
      return refuse(s);
    }
  }
  auto record = CheckRevokeIssuer(*peer, *request, store_->state());
  if (!record.ok()) return refuse(record.status());
  if (!*record) {
    // Nothing to revoke that this caller may revoke, and nothing worth
    // recording: answered from the state, no event.
    const CredentialState& state = store_->state();
    response->set_epoch(state.epoch());
    response->set_revision(state.head());
    response->set_revoked(0);
    Account(1, start, absl::StatusOr<v1::RevokeResponse>(*response), caller);
    return Done(context, absl::OkStatus());
  }
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  // A publisher revokes under its own issuer only; an operator (or a
  // plaintext peer) under any.
  std::string only_issuer = (peer->roles & kRoleOperator) ? std::string() : peer->issuer;
  store_->Revoke(request, std::move(only_issuer), Answer(context, reactor, response, 1));
  return reactor;
}

grpc::ServerWriteReactor<grpc::ByteBuffer>* BrokerService::Watch(
    grpc::CallbackServerContext* context, const grpc::ByteBuffer* request) {
  auto peer = Authorize(context, kRoleSubscriber | kRoleOperator | kRoleMinter, "Watch");
  if (!peer.ok()) {
    LogRefused("Watch", PeerOf(*context->auth_context()), context->peer(), peer.status());
    return Refuse<grpc::ServerWriteReactor<grpc::ByteBuffer>>(peer.status());
  }
  return hub_->Open(context, request, *peer);
}

grpc::ServerUnaryReactor* BrokerService::Get(grpc::CallbackServerContext* context,
                                             const v1::GetRequest* request,
                                             v1::GetResponse* response) {
  if (auto p = Authorize(context, kRoleOperator | kRolePublisher, "Get"); !p.ok())
    return Done(context, p.status(), "Get");
  const v1::CredentialRef& ref = request->ref();
  if (auto s = ValidateUsername(ref.username(), "ref.username"); !s.ok())
    return Done(context, s, "Get");
  if (!ref.realm().empty()) {
    if (auto s = ValidateRealm(ref.realm(), "ref.realm"); !s.ok()) return Done(context, s, "Get");
  }
  const CredentialState& state = store_->state();
  RecordRef r = ref.realm().empty() ? state.FindInAnyRealm(ref.username())
                                    : state.Find(ref.realm(), ref.username());
  if (!r) {
    bool revoked = !ref.realm().empty() && state.IsRevoked(ref.realm(), ref.username());
    return Done(context, absl::NotFoundError(StrCat(
                             "ref: no live credential '", ref.username(), "'",
                             ref.realm().empty() ? "" : StrCat(" in realm '", ref.realm(), "'"),
                             revoked ? " (revoked)" : " (unknown, expired or revoked)")));
  }
  r->ToProto(response->mutable_credential()->mutable_credential(), /*include_key=*/false);
  response->mutable_credential()->set_revision(r->revision());
  return Done(context, absl::OkStatus());
}

grpc::ServerUnaryReactor* BrokerService::List(grpc::CallbackServerContext* context,
                                              const v1::ListRequest* request,
                                              v1::ListResponse* response) {
  if (auto p = Authorize(context, kRoleOperator | kRolePublisher, "List"); !p.ok())
    return Done(context, p.status(), "List");
  if (!request->realm().empty()) {
    if (auto s = ValidateRealm(request->realm(), "realm"); !s.ok()) return Done(context, s, "List");
  }
  if (auto s = ValidateSubscriber(request->subscriber(), "subscriber"); !s.ok())
    return Done(context, s, "List");
  if (auto s = ValidateIssuer(request->issuer(), "issuer"); !s.ok())
    return Done(context, s, "List");
  if (request->page_size() > kMaxPageSize) {
    return Done(context, absl::InvalidArgumentError(StrCat("page_size: at most ", kMaxPageSize)),
                "List");
  }
  Revision after = 0;
  if (!request->page_token().empty()) {
    auto [p, ec] =
        std::from_chars(request->page_token().data(),
                        request->page_token().data() + request->page_token().size(), after);
    if (ec != std::errc() || p != request->page_token().data() + request->page_token().size()) {
      return Done(context, absl::InvalidArgumentError("page_token: not a token from List"), "List");
    }
  }
  uint32_t page = request->page_size() ? request->page_size() : kDefaultPageSize;
  std::vector<RecordRef> records;
  const CredentialState& state = store_->state();
  // The live set is examined a bounded chunk at a time under the state's
  // read lock, whatever the filters: a page may be short.
  Revision next = state.Scan(
      after, page, kMaxExaminedPerPage,
      [request](const Record& r) {
        return (request->realm().empty() || r.realm() == request->realm()) &&
               (request->subscriber().empty() || r.subscriber() == request->subscriber()) &&
               (request->issuer().empty() || r.issuer() == request->issuer());
      },
      &records);
  for (const RecordRef& r : records) {
    v1::CredentialInfo* info = response->add_credentials();
    r->ToProto(info->mutable_credential(), /*include_key=*/false);
    info->set_revision(r->revision());
  }
  if (next != 0) response->set_next_page_token(StrCat(next));
  response->set_revision(state.head());
  return Done(context, absl::OkStatus());
}

grpc::ServerUnaryReactor* BrokerService::GetStatus(grpc::CallbackServerContext* context,
                                                   const v1::GetStatusRequest*,
                                                   v1::GetStatusResponse* response) {
  if (auto p = Authorize(context, kAllRoles, "GetStatus"); !p.ok())
    return Done(context, p.status(), "GetStatus");
  StateStats stats = store_->state().stats();
  response->set_epoch(store_->state().epoch());
  response->set_revision(stats.head);
  response->set_history_first_revision(stats.history_first);
  response->set_live_credentials(stats.live);
  response->set_revoked_usernames(stats.tombstones);
  response->set_watchers(static_cast<uint32_t>(hub_->size()));
  response->set_store(store_->description());
  response->set_version(version_);
  response->set_started_at_ms(started_at_ms_);
  response->set_shared_secrets(stats.secrets);
  return Done(context, absl::OkStatus());
}

grpc::ServerUnaryReactor* BrokerService::RevokeMinted(grpc::CallbackServerContext* context,
                                                      const v1::RevokeRequest* request,
                                                      v1::RevokeResponse* response,
                                                      const Peer& peer, int64_t start) {
  const std::string caller = CallerName(context, peer);
  auto refuse = [&](const absl::Status& s) {
    Account(1, start, absl::StatusOr<v1::RevokeResponse>(s), caller);
    return Done(context, s);
  };
  const v1::Selector& selector = request->selector();
  if (!selector.has_username() || selector.username().realm().empty()) {
    return refuse(absl::PermissionDeniedError(
        StrCat("selector: a minter revokes one approach-1 username of one realm "
               "(selector.username with its realm); client '",
               peer.name, "' has ", RoleNames(peer.roles))));
  }
  if (auto s = ValidateSelector(selector, "selector"); !s.ok()) return refuse(s);
  const std::string& realm = selector.username().realm();
  const std::string& username = selector.username().username();
  std::optional<int64_t> expiry = Approach1Expiry(username);
  if (!expiry) {
    return refuse(absl::PermissionDeniedError(
        StrCat("selector.username.username: '", username,
               "' is not an approach-1 username \"<expiry unix s>:<id>\"; a minter revokes "
               "only those (client '",
               peer.name, "' has ", RoleNames(peer.roles), ")")));
  }
  if (revoke_limiter_) {
    if (auto s = revoke_limiter_->Take(ClientKey(context, peer), 1); !s.ok()) {
      metrics_->revoke_rate_limited->Inc();
      return refuse(s);
    }
  }
  const CredentialState& state = store_->state();
  const int64_t now = state.clock()->NowMs();
  const int64_t max_ttl = store_->secret_policy().max_credential_ttl_ms;
  if (*expiry > (now + max_ttl + kMaxMintedSkewMs) / 1000) {
    return refuse(absl::InvalidArgumentError(
        StrCat("selector.username.username: its expiry ", *expiry,
               " is further ahead than the longest credential lifetime (--max-ttl ", max_ttl / 1000,
               " s)")));
  }
  if (state.Secrets(realm).empty()) {
    return refuse(absl::FailedPreconditionError(
        StrCat("selector.username.realm: no shared secret is known in realm '", realm,
               "': approach 1 is not in use there")));
  }
  if (state.Find(realm, username)) {
    return refuse(absl::PermissionDeniedError(
        StrCat("selector.username: '", username, "' is live in realm '", realm,
               "' as a published credential; a minter revokes its approach-1 usernames only")));
  }
  const int64_t until = *expiry * 1000;
  if (until <= now || state.IsRevoked(realm, username)) {
    // Expired already, or revoked already: nothing worth recording.
    response->set_epoch(state.epoch());
    response->set_revision(state.head());
    response->set_revoked(0);
    Account(1, start, absl::StatusOr<v1::RevokeResponse>(*response), caller);
    return Done(context, absl::OkStatus());
  }
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  store_->RevokeMinted(request, until, Answer(context, reactor, response, 1));
  return reactor;
}

grpc::ServerUnaryReactor* BrokerService::WriteSecret(grpc::CallbackServerContext* context,
                                                     SecretCommand command,
                                                     v1::SecretResponse* response,
                                                     std::string_view method) {
  auto peer = Authorize(context, kRoleSecretAdmin, method);
  if (!peer.ok()) {
    metrics_->secret_failed->Inc();
    return Done(context, peer.status(), method);
  }
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  // Realm and id only: the command's bytes never reach a log line.
  std::string realm = command.secret.realm(), id = command.secret.id();
  // The answer of a retirement carries the secret as it was before.
  const bool retire = command.kind == SecretCommand::kRetire;
  store_->WriteSecret(std::move(command), [this, reactor, response, method = std::string(method),
                                           realm = std::move(realm), id = std::move(id), retire,
                                           caller = CallerName(context, *peer)](
                                              absl::StatusOr<v1::SecretResponse> r) {
    if (!r.ok()) {
      metrics_->secret_failed->Inc();
      LogInfo("secret write refused")
          .Kv("method", method)
          .Kv("client", caller)
          .Kv("realm", realm)
          .Kv("id", id)
          .Kv("error", r.status());
      reactor->Finish(ToGrpcStatus(r.status()));
      return;
    }
    metrics_->secret_ok->Inc();
    LogInfo("secret written")
        .Kv("method", method)
        .Kv("client", caller)
        .Kv("realm", realm)
        .Kv("id", id)
        .Kv("state", retire ? std::string_view("RETIRED") : SecretStateName(r->secret().state()))
        .Kv("revision", r->revision());
    *response = *std::move(r);
    reactor->Finish(grpc::Status::OK);
  });
  return reactor;
}

grpc::ServerUnaryReactor* BrokerService::AddSecret(grpc::CallbackServerContext* context,
                                                   const v1::AddSecretRequest* request,
                                                   v1::SecretResponse* response) {
  SecretCommand command;
  command.kind = SecretCommand::kAdd;
  command.secret = request->secret();
  return WriteSecret(context, std::move(command), response, "AddSecret");
}

grpc::ServerUnaryReactor* BrokerService::ActivateSecret(grpc::CallbackServerContext* context,
                                                        const v1::ActivateSecretRequest* request,
                                                        v1::SecretResponse* response) {
  SecretCommand command;
  command.kind = SecretCommand::kActivate;
  command.secret.set_realm(request->ref().realm());
  command.secret.set_id(request->ref().id());
  return WriteSecret(context, std::move(command), response, "ActivateSecret");
}

grpc::ServerUnaryReactor* BrokerService::RetireSecret(grpc::CallbackServerContext* context,
                                                      const v1::RetireSecretRequest* request,
                                                      v1::SecretResponse* response) {
  SecretCommand command;
  command.kind = SecretCommand::kRetire;
  command.secret.set_realm(request->ref().realm());
  command.secret.set_id(request->ref().id());
  command.force = request->force();
  return WriteSecret(context, std::move(command), response, "RetireSecret");
}

grpc::ServerUnaryReactor* BrokerService::ListSecrets(grpc::CallbackServerContext* context,
                                                     const v1::ListSecretsRequest* request,
                                                     v1::ListSecretsResponse* response) {
  auto peer = Authorize(context, kRoleSecretAdmin | kRoleOperator, "ListSecrets");
  if (!peer.ok()) return Done(context, peer.status(), "ListSecrets");
  if (request->include_secret() && !(peer->roles & kRoleSecretAdmin)) {
    return Done(
        context,
        absl::PermissionDeniedError(StrCat("include_secret: needs role secret-admin; client '",
                                           peer->name, "' has ", RoleNames(peer->roles))),
        "ListSecrets");
  }
  if (!request->realm().empty()) {
    if (auto s = ValidateRealm(request->realm(), "realm"); !s.ok())
      return Done(context, s, "ListSecrets");
  }
  const CredentialState& state = store_->state();
  const std::vector<SyncAck> syncs = store_->RecentSyncs();
  const std::string epoch = state.epoch();
  response->set_revision(state.head());
  for (const SecretEntryRef& e : state.Secrets(request->realm())) {
    v1::SecretInfo* info = response->add_secrets();
    *info->mutable_secret() = request->include_secret() ? e->secret() : Redacted(e->secret());
    info->set_staged_revision(e->staged_revision);
    info->set_revision(e->revision);
    StagingProgress p =
        Progress(e->secret(), e->staged_revision, syncs, epoch, store_->secret_policy());
    for (const auto& n : p.acknowledged) info->add_syncs_acknowledged(n);
    for (const auto& n : p.pending) info->add_syncs_pending(n);
    info->set_stage_grace_ends_at_ms(p.grace_ends_at_ms);
    info->set_reports_complete_at_ms(p.reports_complete_at_ms);
  }
  if (request->include_secret()) {
    LogInfo("secret bytes listed")
        .Kv("client", CallerName(context, *peer))
        .Kv("realm", request->realm())
        .Kv("secrets", response->secrets_size());
  }
  return Done(context, absl::OkStatus());
}

grpc::ServerUnaryReactor* BrokerService::Acknowledge(grpc::CallbackServerContext* context,
                                                     const v1::AcknowledgeRequest* request,
                                                     v1::AcknowledgeResponse*) {
  auto peer = Authorize(context, kRoleSubscriber, "Acknowledge");
  if (!peer.ok()) return Done(context, peer.status(), "Acknowledge");
  if (auto s = ValidateAcknowledge(*request); !s.ok()) return Done(context, s, "Acknowledge");
  metrics_->acknowledged->Inc();
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  store_->Acknowledge(ToSyncAck(*request, store_->state().clock()->NowMs()),
                      [reactor](absl::Status s) { reactor->Finish(ToGrpcStatus(s)); });
  return reactor;
}

}  // namespace turnbroker::broker
