#include "turnbroker/broker/server.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>

#include "turnbroker/common/log.h"
#include "turnbroker/common/strings.h"

#ifndef TURNBROKER_VERSION
#define TURNBROKER_VERSION "dev"
#endif

namespace turnbroker::broker {

std::string DefaultDataDir() {
  if (geteuid() == 0) return "/var/lib/turn-broker";
  if (const char* xdg = std::getenv("XDG_STATE_HOME"); xdg && *xdg)
    return StrCat(xdg, "/turn-broker");
  if (const char* home = std::getenv("HOME"); home && *home)
    return StrCat(home, "/.local/state/turn-broker");
  return "./turn-broker-data";
}

absl::StatusOr<std::unique_ptr<Store>> OpenStore(
    const BrokerOptions& options, const Clock* clock, MetricsRegistry* metrics,
    std::function<void(const absl::Status&)> on_failure) {
  if (options.use_redis) {
    RedisStoreOptions ro = options.redis;
    ro.limits = options.store.limits;
    ro.state = options.store.state;
    ro.max_batch = options.store.max_batch;
    ro.max_queue = options.store.max_queue;
    ro.max_group_credentials = options.store.max_group_credentials;
    ro.secrets = options.store.secrets;
    ro.secrets.max_credential_ttl_ms = options.store.limits.max_ttl_ms;
    auto store = RedisStore::Open(ro, clock, metrics);
    if (!store.ok()) return store.status();
    return std::unique_ptr<Store>(std::move(*store));
  }
  std::unique_ptr<Journal> journal;
  if (options.ephemeral) {
    journal = NewMemoryJournal();
  } else {
    SqliteJournalOptions jo;
    jo.data_dir = options.data_dir.empty() ? DefaultDataDir() : options.data_dir;
    jo.fsync = options.fsync;
    jo.new_epoch = options.new_epoch;
    auto j = OpenSqliteJournal(jo);
    if (!j.ok()) return j.status();
    journal = std::move(*j);
  }
  auto store =
      EmbeddedStore::Open(std::move(journal), options.store, clock, metrics, std::move(on_failure));
  if (!store.ok()) return store.status();
  return std::unique_ptr<Store>(std::move(*store));
}

MetricsRegistry::Samples SecretSyncSamples(const Store& store) {
  MetricsRegistry::Samples out;
  const CredentialState& state = store.state();
  const std::vector<SyncAck> syncs = store.RecentSyncs();
  const std::string epoch = state.epoch();
  // Realms and ids are [A-Za-z0-9._-]: nothing to escape.
  for (const SecretEntryRef& e : state.Secrets()) {
    StagingProgress p =
        Progress(e->secret(), e->staged_revision, syncs, epoch, store.secret_policy());
    std::string labels =
        StrCat("realm=\"", e->secret().realm(), "\",id=\"", e->secret().id(), "\",state=");
    out.emplace_back(StrCat(labels, "\"acknowledged\""), p.acknowledged.size());
    out.emplace_back(StrCat(labels, "\"pending\""), p.pending.size());
  }
  return out;
}

// Each known secret's expiry (Unix seconds), for secrets that have one: an
// ACTIVE secret that expires leaves every shared-secret agent answering 503
// (docs/operations.md, "What to monitor").
MetricsRegistry::Samples SecretExpirySamples(const CredentialState& state) {
  MetricsRegistry::Samples out;
  for (const SecretEntryRef& e : state.Secrets()) {
    const v1::SharedSecret& s = e->secret();
    if (s.expires_at_ms() <= 0) continue;
    std::string name(SecretStateName(s.state()));
    std::transform(name.begin(), name.end(), name.begin(), ::tolower);
    out.emplace_back(StrCat("realm=\"", s.realm(), "\",id=\"", s.id(), "\",state=\"", name, "\""),
                     static_cast<double>(s.expires_at_ms() / 1000));
  }
  return out;
}

absl::StatusOr<std::unique_ptr<BrokerServer>> BrokerServer::Start(
    const BrokerOptions& options, const Clock* clock,
    std::function<void(const absl::Status&)> on_store_failure) {
  if (!options.tls.enabled() && !options.insecure && !IsLoopbackHost(options.listen.host)) {
    return absl::InvalidArgumentError(
        StrCat("--listen: ", options.listen.ToString(),
               " is not loopback; give --tls-cert/--tls-key/--tls-ca (mTLS), or "
               "--insecure to serve plaintext (development only)"));
  }
  auto creds = MakeServerCredentials(options.tls);
  if (!creds.ok()) return creds.status();

  std::unique_ptr<BrokerServer> b(new BrokerServer);
  b->options_ = options;
  b->registry_ = std::make_unique<MetricsRegistry>();

  auto store = OpenStore(options, clock, b->registry_.get(), std::move(on_store_failure));
  if (!store.ok()) return store.status();
  b->store_ = std::move(*store);
  b->hub_ = std::make_unique<WatchHub>(b->store_->state(), options.watch, b->registry_.get());
  WatchHub* hub = b->hub_.get();
  b->store_->SetCommitListener([hub] { hub->Notify(); });

  const CredentialState* state = &b->store_->state();
  b->registry_->AddGaugeFunction("turnbroker_live_credentials", "Live credentials",
                                 [state] { return static_cast<double>(state->stats().live); });
  b->registry_->AddGaugeFunction("turnbroker_revision", "Head revision",
                                 [state] { return static_cast<double>(state->head()); });
  b->registry_->AddGaugeFunction(
      "turnbroker_revoked_usernames", "Revoked usernames not yet expired",
      [state] { return static_cast<double>(state->stats().tombstones); });
  b->registry_->AddGaugeFunction(
      "turnbroker_history_events", "Events retained for resume",
      [state] { return static_cast<double>(state->stats().history_events); });
  b->registry_->AddGaugeFunction("turnbroker_shared_secrets",
                                 "Shared secrets known (approach 1: staged, active, superseded)",
                                 [state] { return static_cast<double>(state->stats().secrets); });
  const Store* secret_store = b->store_.get();
  b->registry_->AddGaugeFamilyFunction(
      "turnbroker_secret_syncs",
      "Approach 1: per known secret, the TURN syncs reporting within 30 s that have "
      "acknowledged its staging, and those still pending",
      [secret_store] { return SecretSyncSamples(*secret_store); });
  b->registry_->AddGaugeFamilyFunction(
      "turnbroker_secret_expiry_seconds",
      "Approach 1: per known secret with an expiry, when it expires (Unix seconds); alert well "
      "before the active one does",
      [state] { return SecretExpirySamples(*state); });

  int64_t started = clock->NowMs();
  if (options.max_publish_rate > 0) {
    b->limiter_ =
        std::make_unique<RateLimiter>(options.max_publish_rate, options.max_publish_burst, clock);
  }
  if (options.max_revoke_rate > 0) {
    b->revoke_limiter_ =
        std::make_unique<RateLimiter>(options.max_revoke_rate, options.max_revoke_burst, clock,
                                      "revokes", "broker flag --max-revoke-burst");
  }
  b->service_ =
      std::make_unique<BrokerService>(b->store_.get(), hub, b->registry_.get(), TURNBROKER_VERSION,
                                      started, b->limiter_.get(), b->revoke_limiter_.get());

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  builder.AddListeningPort(options.listen.ToString(), *creds, &b->port_);
  // gRPC binds with SO_REUSEPORT by default: a second broker on the same
  // --listen would then share the port (and the traffic) silently.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.RegisterService(b->service_.get());
  builder.SetMaxReceiveMessageSize(static_cast<int>(options.max_message_bytes));
  builder.SetMaxSendMessageSize(static_cast<int>(options.max_message_bytes));
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS,
                             static_cast<int>(options.keepalive_time_ms));
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS,
                             static_cast<int>(options.keepalive_timeout_ms));
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  // Clients (watchers) may ping every 5 s without being told off.
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 5'000);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PING_STRIKES, 0);
  if (options.max_connection_age_ms > 0) {
    builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_AGE_MS,
                               static_cast<int>(options.max_connection_age_ms));
    builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_AGE_GRACE_MS, 30'000);
  }
  b->server_ = builder.BuildAndStart();
  if (!b->server_ || b->port_ == 0) {
    return absl::UnavailableError(StrCat("--listen: cannot listen on ", options.listen.ToString()));
  }
  b->server_->GetHealthCheckService()->SetServingStatus(true);

  if (!options.metrics_listen.empty()) {
    auto hp = ParseHostPort(options.metrics_listen, "--metrics-listen", true);
    if (!hp.ok()) return hp.status();
    const Store* s = b->store_.get();
    if (auto st = b->metrics_.Start(*hp, b->registry_.get(), [s] { return s->healthy(); });
        !st.ok())
      return st;
  }
  LogInfo("broker serving")
      .Kv("listen", HostPort{options.listen.host, static_cast<uint16_t>(b->port_)}.ToString())
      .Kv("tls", options.tls.enabled())
      .Kv("store", b->store_->description())
      .Kv("epoch", b->store_->state().epoch())
      .Kv("revision", b->store_->state().head())
      .Kv("live", b->store_->state().stats().live)
      .Kv("metrics", b->metrics_.port());
  return b;
}

BrokerServer::~BrokerServer() { Shutdown(); }

void BrokerServer::Shutdown() {
  if (shut_down_.exchange(true)) return;
  // Start() may have failed part way (journal or store not opened, port not
  // bound): only what was built is stopped.
  const bool serving = server_ != nullptr;
  if (serving) {
    LogInfo("broker draining");
    server_->GetHealthCheckService()->SetServingStatus(false);
  }
  // Writes: answer everything queued, refuse the rest; publish streams end
  // with UNAVAILABLE once answered (their clients reconnect).
  if (store_) store_->Shutdown();
  if (service_) service_->CloseStreams();
  // Watchers: reconnect (to another replica, or to us after restart).
  if (hub_) hub_->Shutdown();
  if (serving) {
    LogDebug("watchers closed");
    // Writes and streams are done; what remains are short reads. (Waiting
    // longer would only wait for idle client connections to go away.)
    server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
    LogDebug("grpc server stopped");
  }
  metrics_.Stop();
  server_.reset();
  service_.reset();
  hub_.reset();
  store_.reset();  // joins the commit thread, closes the journal cleanly
  if (serving) LogInfo("broker stopped");
}

}  // namespace turnbroker::broker
