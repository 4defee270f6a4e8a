#include "turnbroker/turn/sync_command_line.h"

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>

#include "turnbroker/common/credential.h"
#include "turnbroker/common/log.h"
#include "turnbroker/common/metrics.h"
#include "turnbroker/common/runtime.h"
#include "turnbroker/common/status.h"
#include "turnbroker/common/strings.h"
#include "turnbroker/turn/coturn_admin.h"
#include "turnbroker/turn/schema.h"
#include "turnbroker/turn/session_canceller.h"

namespace turnbroker::turn {
namespace {

constexpr char kPasswordVariable[] = "TURNBROKER_SYNC_COTURN_ADMIN_PASSWORD";

}  // namespace

SyncCommandLine::SyncCommandLine(CLI::App* app) {
  channel_.target = "127.0.0.1:50051";
  sync_.name = HostNameAsId("", 64, "turn-credential-sync");
  app->description(
      "turn-credential-sync: keeps coturn's Redis user database (turnserver "
      "--redis-userdb, "
      "--lt-cred-mech) equal to the turn-broker's live credentials for the "
      "given realms.\n"
      "It writes turn/realm/<realm>/user/<username>/key (the HA1 as hex, with "
      "an absolute "
      "expiry), deletes revoked keys, never touches keys it did not write, and "
      "ends the coturn "
      "sessions of revoked users through coturn's CLI (--coturn-admin).\n"
      "With --auth-mode=shared-secret (coturn --use-auth-secret, approach 1) it keeps "
      "turn/realm/<realm>/secret equal to the realm's shared secrets instead.\n"
      "Every flag can also be set by an environment variable, shown in [].");
  app->get_formatter()->column_width(44);
  auto env = [](const char* name) { return StrCat("TURNBROKER_SYNC_", name); };

  AddBrokerClientFlags(*app, &channel_, "TURNBROKER_BROKER", env(""), "subscriber");
  app->add_option("--redis-url", redis_url_,
                  "coturn's Redis: redis://[:PASSWORD@]HOST:PORT/DB (the "
                  "database coturn's "
                  "--redis-userdb names; prefer the environment variable for a "
                  "password)")
      ->envname(env("REDIS_URL"))
      ->capture_default_str();
  app->add_option("--redis-timeout", redis_timeout_ms_, "Redis connect and reply timeout, ms")
      ->envname(env("REDIS_TIMEOUT"))
      ->capture_default_str()
      ->check(CLI::Range(100, 600'000));
  app->add_option("--auth-mode", auth_mode_,
                  "What coturn authenticates with: per-credential (long-term keys in "
                  "turn/realm/<realm>/user/<username>/key; coturn --lt-cred-mech) or "
                  "shared-secret (the realm's TURN REST API secrets in turn/realm/<realm>/secret; "
                  "coturn --use-auth-secret). One coturn serves one mode")
      ->envname(env("AUTH_MODE"))
      ->capture_default_str()
      ->check(CLI::IsMember({"per-credential", "shared-secret"}));
  app->add_option("--realm", sync_.realms,
                  "A TURN realm this coturn serves (repeatable; at least one). "
                  "Records of other "
                  "realms are refused")
      ->envname(env("REALM"))
      ->required()
      ->delimiter(',');
  app->add_option("--farm", sync_.farm,
                  "This TURN farm's name: also receive credentials scoped to it")
      ->envname(env("FARM"));
  app->add_option("--name", sync_.name,
                  "Name of this sync: keys its position and index in Redis "
                  "(turnbroker/sync/<name>/...); unique per Redis database")
      ->envname(env("NAME"))
      ->default_str("the host name");
  app->add_option("--coturn-admin", coturn_admin_,
                  "coturn's telnet CLI HOST:PORT (--cli-ip/--cli-port), to end "
                  "the sessions of "
                  "revoked users (empty: off; revocation then only stops new "
                  "allocations)")
      ->envname(env("COTURN_ADMIN"));
  // Not CLI11's envname: on the command line without --coturn-admin the
  // password is a mistake, in the environment (which several units may share)
  // only a warning, and CLI11 cannot tell the two apart. Options() reads
  // TURNBROKER_SYNC_COTURN_ADMIN_PASSWORD itself.
  auto* pw = app->add_option("--coturn-admin-password", admin_password_flag_,
                             "coturn's --cli-password [env: TURNBROKER_SYNC_COTURN_ADMIN_PASSWORD] "
                             "(prefer the environment variable or --coturn-admin-password-file, "
                             "which wins over the variable)");
  app->add_option("--coturn-admin-password-file", admin_password_file_,
                  "File whose first line is coturn's --cli-password")
      ->envname(env("COTURN_ADMIN_PASSWORD_FILE"))
      ->excludes(pw)
      ->check(CLI::ExistingFile);
  app->add_option("--metrics-listen", metrics_listen_,
                  "Prometheus /metrics and /healthz on HOST:PORT (port 0: any; "
                  "empty: off)")
      ->envname(env("METRICS_LISTEN"));
  app->add_option("--unhealthy-after", unhealthy_after_s_,
                  "/healthz fails when Redis is down, or the stream has not "
                  "been synced for "
                  "this long, seconds")
      ->envname(env("UNHEALTHY_AFTER"))
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app->add_option("--progress-interval", watch_.progress_interval_ms,
                  "PROGRESS marker asked of the broker on an idle stream, ms")
      ->envname(env("PROGRESS_INTERVAL"))
      ->capture_default_str()
      ->check(CLI::Range(100, 3'600'000));
  app->add_option("--idle-timeout", watch_.idle_timeout_ms,
                  "Reconnect after this long without a frame, ms (0: 3 x "
                  "--progress-interval + 5 s)")
      ->envname(env("IDLE_TIMEOUT"))
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  app->add_option("--connect-timeout", watch_.connect_timeout_ms,
                  "Longest wait for a connection to the broker before backing off, ms")
      ->envname(env("CONNECT_TIMEOUT"))
      ->capture_default_str()
      ->check(CLI::Range(100, 600'000));
  app->add_option("--backoff-initial", watch_.backoff.initial_ms,
                  "First reconnect/retry delay, ms (doubles, jittered)")
      ->envname(env("BACKOFF_INITIAL"))
      ->capture_default_str()
      ->check(CLI::Range(1, 60'000));
  app->add_option("--backoff-max", watch_.backoff.max_ms, "Longest reconnect/retry delay, ms")
      ->envname(env("BACKOFF_MAX"))
      ->capture_default_str()
      ->check(CLI::Range(1, 600'000));
  app->add_option("--keepalive", keepalive_s_,
                  "HTTP/2 keepalive ping to the broker, seconds (a dead broker "
                  "is noticed "
                  "within this plus 5 s)")
      ->envname(env("KEEPALIVE"))
      ->capture_default_str()
      ->check(CLI::Range(1, 3600));
  log_flags_.Add(*app, "TURNBROKER_SYNC_");
  app->set_version_flag("--version", TURNBROKER_VERSION);
}

absl::StatusOr<SyncRunOptions> SyncCommandLine::Options() const {
  SyncRunOptions o;
  auto log = log_flags_.Options();
  if (!log.ok()) return log.status();
  o.log = *log;
  o.channel = channel_;
  o.sync = sync_;
  o.watch = watch_;
  if (auto hps = ParseHostPortList(channel_.target, "--broker"); !hps.ok()) return hps.status();
  auto url = ParseRedisUrl(redis_url_, "--redis-url");
  if (!url.ok()) return url.status();
  o.redis.url = *url;
  o.redis.connect_timeout_ms = redis_timeout_ms_;
  o.redis.io_timeout_ms = redis_timeout_ms_;
  for (const std::string& realm : sync_.realms) {
    if (auto s = ValidateRealm(realm, "--realm"); !s.ok()) return s;
  }
  if (!sync_.farm.empty()) {
    if (auto s = ValidateScope(sync_.farm, "--farm"); !s.ok()) return s;
  }
  if (auto s = ValidateSyncName(sync_.name, "--name"); !s.ok()) return s;
  if (watch_.backoff.initial_ms > watch_.backoff.max_ms) {
    return absl::InvalidArgumentError("--backoff-initial: above --backoff-max");
  }

  const char* password_variable = std::getenv(kPasswordVariable);
  if (coturn_admin_.empty()) {
    if (!admin_password_file_.empty()) {
      return absl::InvalidArgumentError(
          "--coturn-admin-password-file: given without --coturn-admin (the password is for "
          "coturn's CLI, which is off)");
    }
    if (!admin_password_flag_.empty()) {
      return absl::InvalidArgumentError(
          "--coturn-admin-password: given without --coturn-admin (the password is for "
          "coturn's CLI, which is off)");
    }
    o.ignored_password_in_environment = password_variable && *password_variable;
  } else {
    auto hp = ParseHostPort(coturn_admin_, "--coturn-admin");
    if (!hp.ok()) return hp.status();
    o.coturn_admin = *hp;
    if (!admin_password_file_.empty()) {
      std::ifstream in(admin_password_file_);
      if (!in || !std::getline(in, o.coturn_admin_password)) {
        return absl::InvalidArgumentError("--coturn-admin-password-file: cannot read a line");
      }
    } else if (!admin_password_flag_.empty()) {
      o.coturn_admin_password = admin_password_flag_;
    } else if (password_variable) {
      o.coturn_admin_password = password_variable;
    }
  }
  if (!metrics_listen_.empty()) {
    auto hp = ParseHostPort(metrics_listen_, "--metrics-listen", /*allow_port_zero=*/true);
    if (!hp.ok()) return hp.status();
    o.metrics_listen = *hp;
  }
  o.unhealthy_after_ms = unhealthy_after_s_ * 1000;
  o.channel.keepalive_time_ms = static_cast<int>(keepalive_s_ * 1000);
  o.channel.max_reconnect_backoff_ms = static_cast<int>(watch_.backoff.max_ms);
  o.sync.cancel_sessions = o.coturn_admin.has_value();
  o.sync.auth_mode =
      auth_mode_ == "shared-secret" ? AuthMode::kSharedSecret : AuthMode::kPerCredential;
  o.watch.kinds = WatchKinds(o.sync.auth_mode);
  o.watch.realms = o.sync.realms;
  o.watch.farm = o.sync.farm;
  o.watch.watcher_name = o.sync.name;
  return o;
}

int RunSync(const SyncRunOptions& o) {
  InitLogging("turn-credential-sync", o.log.level, o.log.format);
  // Before any thread starts (gRPC starts its own with the first channel),
  // so that every thread inherits the blocked signals.
  TerminationSignals signals;
  auto grpc_channel = MakeChannel(o.channel);
  if (!grpc_channel.ok()) return UsageError("turn-credential-sync", grpc_channel.status());

  const Clock* clock = Clock::System();
  MetricsRegistry registry;
  SyncMetrics metrics(&registry, clock);
  HiredisClient redis(o.redis);
  CredentialSync credential_sync(o.sync, &redis, clock, &metrics);
  WatchLoop loop(*grpc_channel, o.watch, &credential_sync, &metrics, clock);
  std::unique_ptr<SecretExpiryTimer> expiry;
  if (credential_sync.shared_secret()) {
    expiry = std::make_unique<SecretExpiryTimer>(&credential_sync, clock);
  }

  // Ending the sessions of revoked users: its own Redis connection and
  // coturn's CLI, woken by the sync when it applied a revocation.
  std::unique_ptr<HiredisClient> canceller_redis;
  std::unique_ptr<CoturnCli> cli;
  std::unique_ptr<SessionCanceller> canceller;
  if (o.coturn_admin) {
    canceller_redis = std::make_unique<HiredisClient>(o.redis);
    cli = std::make_unique<CoturnCli>(CoturnCliOptions{*o.coturn_admin, o.coturn_admin_password});
    canceller =
        std::make_unique<SessionCanceller>(SessionCancellerOptions{}, canceller_redis.get(),
                                           SyncKeys::For(o.sync.name), cli.get(), clock, &metrics);
    credential_sync.SetCancellationListener([c = canceller.get()] { c->Notify(); });
  }

  MetricsServer metrics_server;
  if (o.metrics_listen) {
    const int64_t grace_ms = o.unhealthy_after_ms;
    auto s = metrics_server.Start(*o.metrics_listen, &registry, [&metrics, clock, grace_ms] {
      return metrics.Healthy(clock->NowMs(), grace_ms);
    });
    if (!s.ok()) {
      LogError("cannot start the metrics server").Kv("error", StatusLine(s));
      return 1;
    }
  }

  std::string realms;
  for (const std::string& r : o.sync.realms) StrAppend(&realms, realms.empty() ? "" : ",", r);
  LogInfo("turn-credential-sync starting")
      .Kv("sync", o.sync.name)
      .Kv("broker", o.channel.target)
      .Kv("tls", o.channel.tls.enabled())
      .Kv("redis", o.redis.url.Redacted())
      .Kv("realms", realms)
      .Kv("farm", o.sync.farm)
      .Kv("auth_mode", credential_sync.shared_secret() ? "shared-secret" : "per-credential")
      .Kv("coturn_admin", o.coturn_admin ? o.coturn_admin->ToString() : "off");
  if (o.ignored_password_in_environment) {
    LogWarn(
        "coturn admin password set without --coturn-admin: ignored; live sessions of "
        "revoked users are not ended")
        .Kv("from", kPasswordVariable);
  }
  if (credential_sync.shared_secret() && !o.coturn_admin) {
    // coturn recomputes an approach-1 password from the secret: without its
    // CLI a revocation changes nothing at all (docs/approach1.md).
    LogWarn(
        "shared-secret mode without --coturn-admin: revocations cannot end the live "
        "allocations of revoked users");
  }
  if (canceller) canceller->Start();
  if (expiry) expiry->Start();
  loop.Start();
  std::printf("turn-credential-sync running sync=%s metrics=%s\n", o.sync.name.c_str(),
              o.metrics_listen ? StrCat(o.metrics_listen->host, ":", metrics_server.port()).c_str()
                               : "off");
  std::fflush(stdout);

  signals.Wait();
  loop.Stop();
  if (expiry) expiry->Stop();
  if (canceller) canceller->Stop();
  metrics_server.Stop();
  LogInfo("turn-credential-sync stopped").Kv("revision", credential_sync.position().revision);
  return 0;
}

}  // namespace turnbroker::turn
