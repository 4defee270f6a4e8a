#include "turnbroker/broker/service.h"

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

// OK, or PERMISSION_DENIED naming what the method needs and what the peer's
// certificate grants.
absl::Status Authorize(grpc::CallbackServerContext* context, uint32_t needed,
                       std::string_view method) {
  auto auth = context->auth_context();
  uint32_t roles = PeerRoles(*auth);
  if (roles & needed) return absl::OkStatus();
  return absl::PermissionDeniedError(
      StrCat(method, " needs role ", RoleNames(needed), "; client '",
             PeerIdentity(*auth), "' has ", RoleNames(roles)));
}

grpc::ServerUnaryReactor* Done(grpc::CallbackServerContext* context,
                               const absl::Status& status) {
  auto* reactor = context->DefaultReactor();
  reactor->Finish(ToGrpcStatus(status));
  return reactor;
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
      latency[i] = r->AddHistogram("turnbroker_request_seconds",
                                   "Write request latency, until committed",
                                   StrCat("method=\"", i == 0 ? "publish" : "revoke", "\""));
    }
    credentials = r->AddCounter("turnbroker_published_credentials_total",
                                "Credentials made live or updated by Publish");
    revoked = r->AddCounter("turnbroker_revoked_credentials_total",
                            "Live credentials removed by Revoke");
    rate_limited = r->AddCounter("turnbroker_rate_limited_total",
                                 "Publish requests refused by the per-client rate limit");
    publish_streams_opened = r->AddCounter("turnbroker_publish_streams_opened_total",
                                           "PublishStream calls opened");
    publish_streams = r->AddGauge("turnbroker_publish_streams", "PublishStream calls open");
  }
  Counter* ok[2];
  Counter* failed[2];
  Histogram* latency[2];
  Counter* credentials;
  Counter* revoked;
  Counter* rate_limited;
  Counter* publish_streams_opened;
  Gauge* publish_streams;
};

BrokerService::BrokerService(Store* store, WatchHub* hub, MetricsRegistry* metrics,
                             std::string version, int64_t started_at_ms,
                             RateLimiter* limiter)
    : store_(store),
      hub_(hub),
      version_(std::move(version)),
      started_at_ms_(started_at_ms),
      limiter_(limiter),
      metrics_(std::make_unique<Metrics>(metrics)) {}

BrokerService::~BrokerService() = default;

template <typename Response>
void BrokerService::Account(int method, int64_t start_us, const absl::StatusOr<Response>& r,
                           const std::string& peer) {
  metrics_->latency[method]->ObserveMicros(MonotonicMicros() - start_us);
  if (!r.ok()) {
    metrics_->failed[method]->Inc();
    LogInfo(method == 0 ? "publish refused" : "revoke refused")
        .Kv("peer", peer)
        .Kv("error", r.status());
    return;
  }
  metrics_->ok[method]->Inc();
  if constexpr (std::is_same_v<Response, v1::PublishResponse>) {
    metrics_->credentials->Inc(r->applied());
  } else {
    metrics_->revoked->Inc(r->revoked());
  }
}

void BrokerService::CountPublishStream(int delta) {
  if (delta > 0) metrics_->publish_streams_opened->Inc();
  metrics_->publish_streams->Add(delta);
}

// PublishStream's answers are recorded from publish_stream.cc.
template void BrokerService::Account<v1::PublishResponse>(
    int, int64_t, const absl::StatusOr<v1::PublishResponse>&, const std::string&);

// Finishes a write call once the store answered; counts and logs it.
template <typename Response>
std::function<void(absl::StatusOr<Response>)> BrokerService::Answer(
    grpc::CallbackServerContext* context, grpc::ServerUnaryReactor* reactor,
    Response* response, int method) {
  return [this, reactor, response, method, start = MonotonicMicros(),
          peer = context->peer()](absl::StatusOr<Response> r) {
    Account(method, start, r, peer);
    if (!r.ok()) {
      reactor->Finish(ToGrpcStatus(r.status()));
      return;
    }
    *response = *std::move(r);
    reactor->Finish(grpc::Status::OK);
  };
}

std::string BrokerService::ClientKey(grpc::CallbackServerContext* context) {
  auto auth = context->auth_context();
  if (auth->IsPeerAuthenticated()) return PeerIdentity(*auth);
  // Plaintext peers are told apart by address, not port.
  std::string peer = context->peer();
  return peer.substr(0, peer.rfind(':'));
}

absl::Status BrokerService::Limit(const std::string& client, int credentials) {
  if (!limiter_) return absl::OkStatus();
  absl::Status s = limiter_->Take(client, credentials);
  if (!s.ok()) {
    metrics_->failed[0]->Inc();
    metrics_->rate_limited->Inc();
  }
  return s;
}

grpc::ServerUnaryReactor* BrokerService::Publish(
    grpc::CallbackServerContext* context, const v1::PublishRequest* request,
    v1::PublishResponse* response) {
  if (auto s = Authorize(context, kRolePublisher, "Publish"); !s.ok())
    return Done(context, s);
  if (limiter_) {
    if (auto s = Limit(ClientKey(context), request->credentials_size()); !s.ok())
      return Done(context, s);
  }
  // DefaultReactor() constructs the reactor: call it once.
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  store_->Publish(request, Answer(context, reactor, response, 0));
  return reactor;
}

grpc::ServerBidiReactor<v1::PublishStreamRequest, v1::PublishStreamResponse>*
BrokerService::PublishStream(grpc::CallbackServerContext* context) {
  if (auto s = Authorize(context, kRolePublisher, "PublishStream"); !s.ok())
    return RefuseStream(s);
  return OpenPublishStream(context);
}

grpc::ServerUnaryReactor* BrokerService::Revoke(
    grpc::CallbackServerContext* context, const v1::RevokeRequest* request,
    v1::RevokeResponse* response) {
  if (auto s = Authorize(context, kRolePublisher, "Revoke"); !s.ok())
    return Done(context, s);
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  store_->Revoke(request, Answer(context, reactor, response, 1));
  return reactor;
}

grpc::ServerWriteReactor<grpc::ByteBuffer>* BrokerService::Watch(
    grpc::CallbackServerContext* context, const grpc::ByteBuffer* request) {
  if (auto s = Authorize(context, kRoleSubscriber | kRoleOperator, "Watch"); !s.ok()) {
    struct Refused : grpc::ServerWriteReactor<grpc::ByteBuffer> {
      explicit Refused(grpc::Status s) { Finish(std::move(s)); }
      void OnDone() override { delete this; }
    };
    return new Refused(ToGrpcStatus(s));
  }
  return hub_->Open(context, request);
}

grpc::ServerUnaryReactor* BrokerService::Get(grpc::CallbackServerContext* context,
                                             const v1::GetRequest* request,
                                             v1::GetResponse* response) {
  if (auto s = Authorize(context, kRoleOperator | kRolePublisher, "Get"); !s.ok())
    return Done(context, s);
  const v1::CredentialRef& ref = request->ref();
  if (auto s = ValidateUsername(ref.username(), "ref.username"); !s.ok())
    return Done(context, s);
  if (!ref.realm().empty()) {
    if (auto s = ValidateRealm(ref.realm(), "ref.realm"); !s.ok()) return Done(context, s);
  }
  const CredentialState& state = store_->state();
  RecordRef r = ref.realm().empty() ? state.FindInAnyRealm(ref.username())
                                    : state.Find(ref.realm(), ref.username());
  if (!r) {
    bool revoked = !ref.realm().empty() && state.IsRevoked(ref.realm(), ref.username());
    return Done(context,
                absl::NotFoundError(StrCat(
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
  if (auto s = Authorize(context, kRoleOperator | kRolePublisher, "List"); !s.ok())
    return Done(context, s);
  if (!request->realm().empty()) {
    if (auto s = ValidateRealm(request->realm(), "realm"); !s.ok()) return Done(context, s);
  }
  if (auto s = ValidateSubscriber(request->subscriber(), "subscriber"); !s.ok())
    return Done(context, s);
  if (auto s = ValidateIssuer(request->issuer(), "issuer"); !s.ok()) return Done(context, s);
  if (request->page_size() > kMaxPageSize) {
    return Done(context, absl::InvalidArgumentError(
                             StrCat("page_size: at most ", kMaxPageSize)));
  }
  Revision after = 0;
  if (!request->page_token().empty()) {
    auto [p, ec] = std::from_chars(request->page_token().data(),
                                   request->page_token().data() + request->page_token().size(),
                                   after);
    if (ec != std::errc() || p != request->page_token().data() + request->page_token().size()) {
      return Done(context, absl::InvalidArgumentError("page_token: not a token from List"));
    }
  }
  uint32_t page = request->page_size() ? request->page_size() : kDefaultPageSize;
  std::vector<RecordRef> records;
  const CredentialState& state = store_->state();
  Revision next = state.Scan(
      after, page, page * 64,
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
  if (auto s = Authorize(context, kAllRoles, "GetStatus"); !s.ok()) return Done(context, s);
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
  return Done(context, absl::OkStatus());
}

}  // namespace turnbroker::broker
