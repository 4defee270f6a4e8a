#include "turnbroker/broker/command_line.h"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>

#include "turnbroker/common/log.h"
#include "turnbroker/common/runtime.h"
#include "turnbroker/common/status.h"

namespace turnbroker::broker {

BrokerCommandLine::BrokerCommandLine(CLI::App* app) {
  app->description(
      "turn-broker: distributes TURN long-term credentials from eP-CSCFs to "
      "TURN servers (gRPC turnbroker.v1.CredentialBroker).\n"
      "Every flag can also be set by an environment variable, shown in [].\n"
      "With no flags it serves plaintext on 127.0.0.1:50051 with a durable "
      "store in " +
      DefaultDataDir() + ".");
  app->get_formatter()->column_width(42);
  auto env = [](const char* name) { return std::string("TURNBROKER_") + name; };

  app->add_option("--listen", listen_, "gRPC address HOST:PORT (port 0: any free port)")
      ->envname(env("LISTEN"))
      ->capture_default_str();
  app->add_option("--tls-cert", o_.tls.cert, "PEM certificate chain of this broker (enables mTLS)")
      ->envname(env("TLS_CERT"));
  app->add_option("--tls-key", o_.tls.key, "PEM private key of --tls-cert")
      ->envname(env("TLS_KEY"));
  app->add_option("--tls-ca", o_.tls.ca, "PEM CA bundle that client certificates must chain to")
      ->envname(env("TLS_CA"));
  app->add_flag("--insecure", o_.insecure,
                "Allow plaintext on a non-loopback --listen (development only)")
      ->envname(env("INSECURE"));
  app->add_option("--data-dir", o_.data_dir, "Directory of the durable store")
      ->envname(env("DATA_DIR"))
      ->default_str(DefaultDataDir());
  app->add_flag("--ephemeral", o_.ephemeral,
                "Keep everything in memory only: a new epoch at every start "
                "(development, tests)")
      ->envname(env("EPHEMERAL"));
  // Two flags, not "--fsync,!--no-fsync": CLI11 shows that one as
  // "--fsync,--no-fsync{false}", which reads as if fsync were off.
  app->add_flag("--fsync", o_.fsync,
                "fsync each group commit (survives power loss). Default: on; "
                "TURNBROKER_FSYNC=false turns it off")
      ->envname(env("FSYNC"));
  app->add_flag_callback(
      "--no-fsync", [this] { o_.fsync = false; },
      "Do not fsync: survives a crash of the broker, not of the host "
      "(wins over --fsync and TURNBROKER_FSYNC)");
  app->add_flag("--new-epoch", o_.new_epoch,
                "Give the data directory's store a new epoch at start: after "
                "restoring a backup, so watchers resync instead of resuming")
      ->envname(env("NEW_EPOCH"));
  app->add_option("--min-ttl", min_ttl_s_, "Shortest credential lifetime accepted, seconds")
      ->envname(env("MIN_TTL"))
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app->add_option("--max-ttl", max_ttl_s_, "Longest credential lifetime accepted, seconds")
      ->envname(env("MAX_TTL"))
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app->add_option("--max-batch", o_.store.max_batch, "Credentials in one Publish")
      ->envname(env("MAX_BATCH"))
      ->capture_default_str()
      ->check(CLI::Range(1, 100'000));
  app->add_option("--max-publish-rate", o_.max_publish_rate,
                  "Published credentials per second per client (certificate CN, "
                  "or address); "
                  "0: unlimited")
      ->envname(env("MAX_PUBLISH_RATE"))
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  app->add_option("--max-publish-burst", o_.max_publish_burst,
                  "...and how many at once (at least the rate)")
      ->envname(env("MAX_PUBLISH_BURST"))
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  app->add_option("--max-revoke-rate", o_.max_revoke_rate,
                  "Revoke calls per second per client (certificate CN, or address); 0: unlimited")
      ->envname(env("MAX_REVOKE_RATE"))
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  app->add_option("--max-revoke-burst", o_.max_revoke_burst,
                  "...and how many at once (at least the rate)")
      ->envname(env("MAX_REVOKE_BURST"))
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  app->add_option("--max-queue", o_.store.max_queue,
                  "Write requests waiting to commit; beyond, RESOURCE_EXHAUSTED")
      ->envname(env("MAX_QUEUE"))
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app->add_option("--min-commit-interval-us", o_.store.min_commit_interval_us,
                  "Embedded store: under load, start a group commit at most this often, "
                  "microseconds: fewer, larger groups (less CPU per credential: fewer fsyncs and "
                  "Watch frames) for up to this much more latency; 0: commit as soon as the "
                  "previous commit is done")
      ->envname(env("MIN_COMMIT_INTERVAL_US"))
      ->capture_default_str()
      ->check(CLI::Range(0, 100'000));
  app->add_option("--history-max-events", o_.store.state.history_max_events,
                  "Events retained so watchers resume without a snapshot")
      ->envname(env("HISTORY_MAX_EVENTS"))
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app->add_option("--history-max-age", history_max_age_s_, "...and at most this old, seconds")
      ->envname(env("HISTORY_MAX_AGE"))
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app->add_option("--secret-stage-grace", secret_stage_grace_s_,
                  "Approach 1: ActivateSecret stops waiting for TURN syncs that have not "
                  "acknowledged a staged secret this long after it was staged, seconds")
      ->envname(env("SECRET_STAGE_GRACE"))
      ->capture_default_str()
      ->check(CLI::Range(0, 86'400 * 30));
  app->add_option("--progress-interval", o_.watch.default_progress_interval_ms,
                  "PROGRESS marker on idle Watch streams, milliseconds")
      ->envname(env("PROGRESS_INTERVAL"))
      ->capture_default_str()
      ->check(CLI::Range(100, 3'600'000));
  app->add_option("--min-frame-interval-us", o_.watch.min_frame_interval_us,
                  "A caught-up Watch stream starts a frame at most this often, microseconds: what "
                  "commits meanwhile leaves in one frame (fewer writes per credential) for up to "
                  "this much more latency; 0: a frame per commit")
      ->envname(env("MIN_FRAME_INTERVAL_US"))
      ->capture_default_str()
      ->check(CLI::Range(0, 100'000));
  app->add_option("--max-watchers", o_.watch.max_watchers, "Open Watch streams at most")
      ->envname(env("MAX_WATCHERS"))
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app->add_option("--max-watchers-per-client", o_.watch.max_watchers_per_client,
                  "Open Watch streams of one client (certificate CN and address; address for "
                  "plaintext) at most")
      ->envname(env("MAX_WATCHERS_PER_CLIENT"))
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app->add_option("--metrics-listen", o_.metrics_listen,
                  "Prometheus /metrics and /healthz on HOST:PORT (empty: off)")
      ->envname(env("METRICS_LISTEN"));
  app->add_option("--keepalive", keepalive_s_, "HTTP/2 keepalive ping interval, seconds")
      ->envname(env("KEEPALIVE"))
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app->add_option("--max-connection-age", max_connection_age_s_,
                  "Ask clients to reconnect after this long, seconds, to "
                  "rebalance across "
                  "replicas (0: never)")
      ->envname(env("MAX_CONNECTION_AGE"))
      ->capture_default_str();
  store_flags_.Add(*app, "TURNBROKER_");
  log_flags_.Add(*app, "TURNBROKER_");
  app->set_version_flag("--version", TURNBROKER_VERSION);
}

absl::StatusOr<BrokerRunOptions> BrokerCommandLine::Options() const {
  BrokerRunOptions run;
  auto log = log_flags_.Options();
  if (!log.ok()) return log.status();
  run.log = *log;
  BrokerOptions& o = run.broker;
  o = o_;
  auto hp = ParseHostPort(listen_, "--listen", /*allow_port_zero=*/true);
  if (!hp.ok()) return hp.status();
  o.listen = *hp;
  if (auto s = store_flags_.Apply(&o); !s.ok()) return s;
  if (min_ttl_s_ > max_ttl_s_) {
    return absl::InvalidArgumentError(
        StrCat("--min-ttl: ", min_ttl_s_, " is above --max-ttl ", max_ttl_s_));
  }
  o.store.limits.min_ttl_ms = min_ttl_s_ * 1000;
  o.store.limits.max_ttl_ms = max_ttl_s_ * 1000;
  o.store.state.max_ttl_ms = o.store.limits.max_ttl_ms;
  o.store.state.history_max_age_ms = history_max_age_s_ * 1000;
  o.store.secrets.stage_grace_ms = secret_stage_grace_s_ * 1000;
  o.store.secrets.max_credential_ttl_ms = o.store.limits.max_ttl_ms;
  o.keepalive_time_ms = keepalive_s_ * 1000;
  o.max_connection_age_ms = max_connection_age_s_ * 1000;
  return run;
}

int RunBroker(const BrokerRunOptions& options) {
  InitLogging("turn-broker", options.log.level, options.log.format);
  TerminationSignals signals;
  // A failed store ends the process like a signal does, with exit code 1.
  std::atomic<bool> store_failed{false};
  auto server =
      BrokerServer::Start(options.broker, Clock::System(), [&store_failed](const absl::Status&) {
        store_failed = true;
        kill(getpid(), SIGTERM);
      });
  if (!server.ok()) {
    LogError("cannot start").Kv("error", StatusLine(server.status()));
    std::fprintf(stderr, "turn-broker: %s\n", std::string(server.status().message()).c_str());
    return 1;
  }
  std::printf("turn-broker listening on %s:%d\n", options.broker.listen.host.c_str(),
              (*server)->port());
  std::fflush(stdout);
  signals.Wait();
  (*server)->Shutdown();
  return store_failed ? 1 : 0;
}

}  // namespace turnbroker::broker
