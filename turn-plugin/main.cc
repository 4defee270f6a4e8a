// turn-credential-sync: keeps a coturn Redis user database equal to the
// broker's live credentials for its realms. Flags and environment are
// documented by --help and docs/turn-plugin.md.
#include <signal.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <string_view>

#include "turnbroker/common/channel.h"
#include "turnbroker/common/credential.h"
#include "turnbroker/common/flags.h"
#include "turnbroker/common/log.h"
#include "turnbroker/common/metrics.h"
#include "turnbroker/common/redis.h"
#include "turnbroker/common/runtime.h"
#include "turnbroker/common/status.h"
#include "turnbroker/common/strings.h"
#include "turnbroker/turn/coturn_admin.h"
#include "turnbroker/turn/schema.h"
#include "turnbroker/turn/session_canceller.h"
#include "turnbroker/turn/sync.h"
#include "turnbroker/turn/watch_loop.h"

namespace {

// The host name, made a valid sync name.
std::string DefaultName() {
  char host[256] = {};
  if (gethostname(host, sizeof host - 1) != 0 || host[0] == '\0')
    return "turn-credential-sync";
  std::string name;
  for (const char* p = host; *p && name.size() < 64; ++p) {
    char c = *p;
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
    name.push_back(ok ? c : '-');
  }
  return name;
}

int Usage(const std::string& message) {
  std::fprintf(stderr, "turn-credential-sync: %s\n", message.c_str());
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace turnbroker;
  using namespace turnbroker::turn;
  InitRuntime();

  ChannelOptions channel;
  channel.target = "127.0.0.1:50051";
  std::string redis_url = "redis://127.0.0.1:6379/0";
  int redis_timeout_ms = 5'000;
  SyncOptions sync;
  sync.name = DefaultName();
  std::string coturn_admin, admin_password, admin_password_file;
  std::string metrics_listen;
  int64_t unhealthy_after_s = 30;
  WatchLoopOptions watch;
  int64_t keepalive_s = 10;
  LogFlags log_flags;

  CLI::App app{
      "turn-credential-sync: keeps coturn's Redis user database (turnserver "
      "--redis-userdb, "
      "--lt-cred-mech) equal to the turn-broker's live credentials for the "
      "given realms.\n"
      "It writes turn/realm/<realm>/user/<username>/key (the HA1 as hex, with "
      "an absolute "
      "expiry), deletes revoked keys, never touches keys it did not write, and "
      "ends the coturn "
      "sessions of revoked users through coturn's CLI (--coturn-admin).\n"
      "Every flag can also be set by an environment variable, shown in []."};
  app.get_formatter()->column_width(44);
  auto env = [](const char* name) { return StrCat("TURNBROKER_SYNC_", name); };

  AddBrokerClientFlags(app, &channel, "TURNBROKER_BROKER", env(""),
                       "subscriber");
  app.add_option("--redis-url", redis_url,
                 "coturn's Redis: redis://[:PASSWORD@]HOST:PORT/DB (the "
                 "database coturn's "
                 "--redis-userdb names; prefer the environment variable for a "
                 "password)")
      ->envname(env("REDIS_URL"))
      ->capture_default_str();
  app.add_option("--redis-timeout", redis_timeout_ms,
                 "Redis connect and reply timeout, ms")
      ->envname(env("REDIS_TIMEOUT"))
      ->capture_default_str()
      ->check(CLI::Range(100, 600'000));
  app.add_option("--realm", sync.realms,
                 "A TURN realm this coturn serves (repeatable; at least one). "
                 "Records of other "
                 "realms are refused")
      ->envname(env("REALM"))
      ->required()
      ->delimiter(',');
  app.add_option("--farm", sync.farm,
                 "This TURN farm's name: also receive credentials scoped to it")
      ->envname(env("FARM"));
  app.add_option("--name", sync.name,
                 "Name of this sync: keys its position and index in Redis "
                 "(turnbroker/sync/<name>/...); unique per Redis database")
      ->envname(env("NAME"))
      ->default_str("the host name");
  app.add_option("--coturn-admin", coturn_admin,
                 "coturn's telnet CLI HOST:PORT (--cli-ip/--cli-port), to end "
                 "the sessions of "
                 "revoked users (empty: off; revocation then only stops new "
                 "allocations)")
      ->envname(env("COTURN_ADMIN"));
  auto* pw =
      app.add_option(
             "--coturn-admin-password", admin_password,
             "coturn's --cli-password (prefer the environment variable or "
             "--coturn-admin-password-file)")
          ->envname(env("COTURN_ADMIN_PASSWORD"));
  app.add_option("--coturn-admin-password-file", admin_password_file,
                 "File whose first line is coturn's --cli-password")
      ->envname(env("COTURN_ADMIN_PASSWORD_FILE"))
      ->excludes(pw)
      ->check(CLI::ExistingFile);
  app.add_option("--metrics-listen", metrics_listen,
                 "Prometheus /metrics and /healthz on HOST:PORT (port 0: any; "
                 "empty: off)")
      ->envname(env("METRICS_LISTEN"));
  app.add_option("--unhealthy-after", unhealthy_after_s,
                 "/healthz fails when Redis is down, or the stream has not "
                 "been synced for "
                 "this long, seconds")
      ->envname(env("UNHEALTHY_AFTER"))
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--progress-interval", watch.progress_interval_ms,
                 "PROGRESS marker asked of the broker on an idle stream, ms")
      ->envname(env("PROGRESS_INTERVAL"))
      ->capture_default_str()
      ->check(CLI::Range(100, 3'600'000));
  app.add_option("--idle-timeout", watch.idle_timeout_ms,
                 "Reconnect after this long without a frame, ms (0: 3 x "
                 "--progress-interval + 5 s)")
      ->envname(env("IDLE_TIMEOUT"))
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  app.add_option(
         "--connect-timeout", watch.connect_timeout_ms,
         "Longest wait for a connection to the broker before backing off, ms")
      ->envname(env("CONNECT_TIMEOUT"))
      ->capture_default_str()
      ->check(CLI::Range(100, 600'000));
  app.add_option("--backoff-initial", watch.backoff.initial_ms,
                 "First reconnect/retry delay, ms (doubles, jittered)")
      ->envname(env("BACKOFF_INITIAL"))
      ->capture_default_str()
      ->check(CLI::Range(1, 60'000));
  app.add_option("--backoff-max", watch.backoff.max_ms,
                 "Longest reconnect/retry delay, ms")
      ->envname(env("BACKOFF_MAX"))
      ->capture_default_str()
      ->check(CLI::Range(1, 600'000));
  app.add_option("--keepalive", keepalive_s,
                 "HTTP/2 keepalive ping to the broker, seconds (a dead broker "
                 "is noticed "
                 "within this plus 5 s)")
      ->envname(env("KEEPALIVE"))
      ->capture_default_str()
      ->check(CLI::Range(1, 3600));
  log_flags.Add(app, "TURNBROKER_SYNC_");
  app.set_version_flag("--version", TURNBROKER_VERSION);
  CLI11_PARSE(app, argc, argv);

  if (auto s = log_flags.Init("turn-credential-sync"); !s.ok())
    return Usage(std::string(s.message()));

  // ---- Configuration checks: a broken configuration stops here. ----------
  if (auto s = ParseHostPort(channel.target, "--broker"); !s.ok()) {
    return Usage(std::string(s.status().message()));
  }
  auto url = ParseRedisUrl(redis_url, "--redis-url");
  if (!url.ok()) return Usage(std::string(url.status().message()));
  for (size_t i = 0; i < sync.realms.size(); ++i) {
    if (auto s = ValidateRealm(sync.realms[i], "--realm"); !s.ok()) {
      return Usage(std::string(s.message()));
    }
  }
  if (!sync.farm.empty()) {
    if (auto s = ValidateScope(sync.farm, "--farm"); !s.ok())
      return Usage(std::string(s.message()));
  }
  if (auto s = ValidateSyncName(sync.name, "--name"); !s.ok()) {
    return Usage(std::string(s.message()));
  }
  if (watch.backoff.initial_ms > watch.backoff.max_ms) {
    return Usage("--backoff-initial: above --backoff-max");
  }
  std::optional<HostPort> admin_address;
  if (coturn_admin.empty() && !admin_password_file.empty()) {
    return Usage(
        "--coturn-admin-password-file: given without --coturn-admin (the "
        "password is for "
        "coturn's CLI, which is off)");
  }
  // On the command line without --coturn-admin: a mistake. From the
  // environment, which may be shared by several units: a warning below.
  const bool password_flag = std::any_of(argv + 1, argv + argc, [](const char* a) {
    return std::string_view(a).substr(0, 23) == "--coturn-admin-password" &&
           std::string_view(a).substr(0, 28) != "--coturn-admin-password-file";
  });
  if (coturn_admin.empty() && !admin_password.empty() && password_flag) {
    return Usage(
        "--coturn-admin-password: given without --coturn-admin (the password "
        "is for coturn's CLI, which is off)");
  }
  if (!coturn_admin.empty()) {
    auto hp = ParseHostPort(coturn_admin, "--coturn-admin");
    if (!hp.ok()) return Usage(std::string(hp.status().message()));
    admin_address = *hp;
    if (!admin_password_file.empty()) {
      std::ifstream in(admin_password_file);
      if (!in || !std::getline(in, admin_password)) {
        return Usage("--coturn-admin-password-file: cannot read a line");
      }
    }
  }
  std::optional<HostPort> metrics_address;
  if (!metrics_listen.empty()) {
    auto hp = ParseHostPort(metrics_listen, "--metrics-listen",
                            /*allow_port_zero=*/true);
    if (!hp.ok()) return Usage(std::string(hp.status().message()));
    metrics_address = *hp;
  }
  channel.keepalive_time_ms = static_cast<int>(keepalive_s * 1000);
  channel.max_reconnect_backoff_ms = static_cast<int>(watch.backoff.max_ms);
  auto grpc_channel = MakeChannel(channel);
  if (!grpc_channel.ok())
    return Usage(std::string(grpc_channel.status().message()));
  sync.cancel_sessions = admin_address.has_value();
  watch.realms = sync.realms;
  watch.farm = sync.farm;
  watch.watcher_name = sync.name;

  // Signals are taken by sigwait below, not by a handler on a random thread.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  // ---- Wiring --------------------------------------------------------------
  const Clock* clock = Clock::System();
  MetricsRegistry registry;
  SyncMetrics metrics(&registry, clock);
  RedisOptions redis_options;
  redis_options.url = *url;
  redis_options.connect_timeout_ms = redis_timeout_ms;
  redis_options.io_timeout_ms = redis_timeout_ms;
  HiredisClient redis(redis_options);
  CredentialSync credential_sync(sync, &redis, clock, &metrics);
  WatchLoop loop(*grpc_channel, watch, &credential_sync, &metrics, clock);

  std::unique_ptr<HiredisClient> canceller_redis;
  std::unique_ptr<CoturnCli> cli;
  std::unique_ptr<SessionCanceller> canceller;
  if (admin_address) {
    canceller_redis = std::make_unique<HiredisClient>(redis_options);
    cli = std::make_unique<CoturnCli>(
        CoturnCliOptions{*admin_address, admin_password});
    canceller = std::make_unique<SessionCanceller>(
        SessionCancellerOptions{}, canceller_redis.get(),
        SyncKeys::For(sync.name), cli.get(), clock, &metrics);
    credential_sync.SetCancellationListener(
        [c = canceller.get()] { c->Notify(); });
  }

  MetricsServer metrics_server;
  if (metrics_address) {
    const int64_t grace_ms = unhealthy_after_s * 1000;
    auto s = metrics_server.Start(
        *metrics_address, &registry, [&metrics, clock, grace_ms] {
          return metrics.Healthy(clock->NowMs(), grace_ms);
        });
    if (!s.ok()) {
      LogError("cannot start the metrics server").Kv("error", StatusLine(s));
      return 1;
    }
  }

  std::string realms;
  for (const std::string& r : sync.realms)
    StrAppend(&realms, realms.empty() ? "" : ",", r);
  LogInfo("turn-credential-sync starting")
      .Kv("sync", sync.name)
      .Kv("broker", channel.target)
      .Kv("tls", channel.tls.enabled())
      .Kv("redis", url->Redacted())
      .Kv("realms", realms)
      .Kv("farm", sync.farm)
      .Kv("coturn_admin", admin_address ? admin_address->ToString() : "off");
  if (!admin_address && !admin_password.empty()) {
    LogWarn("coturn admin password set without --coturn-admin: ignored; live sessions of "
            "revoked users are not ended")
        .Kv("from", env("COTURN_ADMIN_PASSWORD"));
  }
  if (canceller) canceller->Start();
  loop.Start();
  // Tools and tests read the metrics port from this line.
  std::printf(
      "turn-credential-sync running sync=%s metrics=%s\n", sync.name.c_str(),
      metrics_address
          ? StrCat(metrics_address->host, ":", metrics_server.port()).c_str()
          : "off");
  std::fflush(stdout);

  int sig = 0;
  sigwait(&signals, &sig);
  LogInfo("signal received")
      .Kv("signal", sig == SIGTERM ? "SIGTERM" : "SIGINT");
  loop.Stop();
  if (canceller) canceller->Stop();
  metrics_server.Stop();
  LogInfo("turn-credential-sync stopped")
      .Kv("revision", credential_sync.position().revision);
  return 0;
}
