#include "turnbroker/pcscf/agent_command_line.h"

#include <cstdio>
#include <cstring>
#include <utility>

#include "turnbroker/common/log.h"
#include "turnbroker/common/net.h"
#include "turnbroker/common/runtime.h"
#include "turnbroker/common/status.h"

namespace turnbroker::pcscf {
namespace {

int64_t Ms(double seconds) { return static_cast<int64_t>(seconds * 1000); }

// IssuerOptions errors name the option ("turn_uris[1]: ..."); say the flag.
std::string WithFlagName(std::string message) {
  static const std::pair<const char*, const char*> kFlags[] = {
      {"turn_uris", "--turn-uri"},
      {"scopes", "--scope"},
      {"realm", "--realm"},
      {"issuer", "--issuer"},
      {"min_ttl", "--min-ttl"},
      {"ttl", "--ttl"},
      {"publish_timeout", "--publish-timeout"},
      {"revoke_timeout", "--revoke-timeout"},
      {"publisher", "--max-batch/--max-in-flight"}};
  for (const auto& [option, flag] : kFlags) {
    if (message.rfind(option, 0) == 0) return flag + message.substr(std::strlen(option));
  }
  return message;
}

bool IsUnixSocket(const std::string& listen) { return listen.rfind("unix:", 0) == 0; }

}  // namespace

AgentCommandLine::AgentCommandLine(CLI::App* app) {
  o_.channel.target = "127.0.0.1:50051";
  o_.channel.max_reconnect_backoff_ms = 1'000;
  // Credential.issuer allows [A-Za-z0-9._:-].
  o_.issuer.issuer = HostNameAsId("pcscf-", 100, "pcscf");
  app->description(
      "pcscf-turn-agent: issues TURN credentials for SIP registrations over "
      "HTTP/JSON, publishes them to turn-broker and answers only once the "
      "broker acknowledged (docs/pcscf-plugin.md).\n"
      "Every flag can also be set by an environment variable, shown in [].");
  app->get_formatter()->column_width(44);
  auto env = [](const char* name) { return std::string("PCSCF_TURN_AGENT_") + name; };

  AddBrokerClientFlags(*app, &o_.channel, env("BROKER"), env(""),
                       "publisher (minter with --mode=shared-secret)");
  app->add_option("--mode", mode_,
                  "per-credential: each credential's key is published to the broker and handed "
                  "out once acknowledged (approach 2); shared-secret: minted locally with the "
                  "realm's active shared secret, watched from the broker as a minter, no broker "
                  "call per REGISTER (approach 1, docs/approach1.md)")
      ->envname(env("MODE"))
      ->capture_default_str()
      ->check(CLI::IsMember({"per-credential", "shared-secret"}));
  app->add_option("--listen", o_.http.listen,
                  "HTTP address HOST:PORT (port 0: any free port) or unix:/path/to/socket")
      ->envname(env("LISTEN"))
      ->capture_default_str();
  app->add_flag("--allow-remote", allow_remote_,
                "Allow a non-loopback --listen. The API has no authentication and returns "
                "passwords: only behind a network policy that admits the SIP server alone")
      ->envname(env("ALLOW_REMOTE"));
  app->add_option("--realm", o_.issuer.realm, "TURN realm of the farm that serves the clients")
      ->envname(env("REALM"))
      ->required();
  app->add_option("--turn-uri", o_.issuer.turn_uris,
                  "TURN/STUN URI for the WIC's iceServers, repeatable "
                  "(e.g. turn:turn.example.org:3478?transport=udp)")
      ->envname(env("TURN_URI"))
      ->required()
      ->delimiter(',');
  app->add_option("--scope", o_.issuer.scopes,
                  "TURN farm that receives the credentials, repeatable (default: every farm "
                  "of the realm)")
      ->envname(env("SCOPE"))
      ->delimiter(',');
  app->add_option("--issuer", o_.issuer.issuer,
                  "This eP-CSCF instance's id, for revoke-by-issuer ([A-Za-z0-9._:-])")
      ->envname(env("ISSUER"))
      ->capture_default_str();
  app->add_option("--ttl", o_.issuer.default_ttl_s,
                  "Credential lifetime when a request gives none, s")
      ->envname(env("TTL"))
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app->add_option("--min-ttl", o_.issuer.min_ttl_s, "Shortest lifetime a request may ask for, s")
      ->envname(env("MIN_TTL"))
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app->add_option("--max-ttl", o_.issuer.max_ttl_s,
                  "Longest lifetime a request may ask for, s (keep it within the broker's)")
      ->envname(env("MAX_TTL"))
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app->add_flag("--no-reuse", no_reuse_,
                "re-REGISTER policy: mint a new credential at every REGISTER (rotate) instead "
                "of handing the live one out again")
      ->envname(env("NO_REUSE"));
  app->add_option("--reuse-min-remaining", o_.issuer.reuse_min_remaining_s,
                  "re-REGISTER policy: reuse the live credential only while it has at least "
                  "this much lifetime left, s; otherwise rotate")
      ->envname(env("REUSE_MIN_REMAINING"))
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  app->add_option("--overlap", overlap_s_,
                  "After a refresh or rotation the old credential stays valid this long, then "
                  "is revoked, s (negative: never revoked, it expires)")
      ->envname(env("OVERLAP"))
      ->capture_default_str();
  app->add_option("--publish-timeout", publish_timeout_s_,
                  "Deadline for the broker's acknowledgement of a new credential, s; keep it "
                  "below the SIP server's HTTP timeout")
      ->envname(env("PUBLISH_TIMEOUT"))
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app->add_option("--revoke-timeout", revoke_timeout_s_,
                  "Deadline for the broker's acknowledgement of a revocation, s")
      ->envname(env("REVOKE_TIMEOUT"))
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app->add_option("--status-interval", status_interval_s_,
                  "How often the broker's status (epoch) is checked, s (0: never)")
      ->envname(env("STATUS_INTERVAL"))
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  app->add_option("--max-batch", o_.publisher.max_batch, "Credentials in one Publish call")
      ->envname(env("MAX_BATCH"))
      ->capture_default_str()
      ->check(CLI::Range(1, 10'000));
  app->add_option("--max-in-flight", o_.publisher.max_in_flight, "Publish calls in flight at once")
      ->envname(env("MAX_IN_FLIGHT"))
      ->capture_default_str()
      ->check(CLI::Range(1, 64));
  app->add_flag("--no-publish-stream", unary_publish_,
                "One Publish call per batch instead of one long-lived PublishStream (for a "
                "proxy that cannot carry long streams)")
      ->envname(env("NO_PUBLISH_STREAM"));
  app->add_option("--http-threads", o_.http.threads,
                  "HTTP requests handled at once (each may wait for the broker's ack; idle "
                  "connections hold no thread); give at least the SIP server's worker count")
      ->envname(env("HTTP_THREADS"))
      ->capture_default_str()
      ->check(CLI::Range(1, 1024));
  app->add_option("--http-idle-timeout", http_idle_timeout_s_,
                  "Close a connection that sends no request byte for this long (new or "
                  "keep-alive), s")
      ->envname(env("HTTP_IDLE_TIMEOUT"))
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app->add_option("--http-request-timeout", http_request_timeout_s_,
                  "A request must arrive whole within this long of its first byte (408), s")
      ->envname(env("HTTP_REQUEST_TIMEOUT"))
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app->add_option("--http-max-connections", o_.http.max_connections,
                  "Open HTTP connections in total; more are refused with 503")
      ->envname(env("HTTP_MAX_CONNECTIONS"))
      ->capture_default_str()
      ->check(CLI::Range(1, 100'000));
  app->add_option("--http-max-connections-per-peer", o_.http.max_connections_per_peer,
                  "Open HTTP connections per peer IP address; more are refused with 503")
      ->envname(env("HTTP_MAX_CONNECTIONS_PER_PEER"))
      ->capture_default_str()
      ->check(CLI::Range(1, 100'000));
  app->add_option("--http-answer-inline", o_.http.answer_inline,
                  "Answer the requests that wait on nothing (shared-secret minting, unknown "
                  "paths) on the HTTP server's I/O thread, without a hand-off to a worker")
      ->envname(env("HTTP_ANSWER_INLINE"))
      ->capture_default_str();
  app->add_option("--kamailio-evapi", o_.evapi.address,
                  "Also serve Kamailio's asynchronous path: connect to its evapi socket "
                  "(modparam evapi bind_addr, HOST:PORT) and answer the REGISTERs it suspends "
                  "(docs/pcscf-plugin.md, \"The asynchronous path\")")
      ->envname(env("KAMAILIO_EVAPI"));
  app->add_option("--evapi-threads", o_.evapi.threads,
                  "Requests from Kamailio's evapi socket handled at once (each may wait for "
                  "the broker's acknowledgement)")
      ->envname(env("EVAPI_THREADS"))
      ->capture_default_str()
      ->check(CLI::Range(1, 1024));
  log_flags_.Add(*app, "PCSCF_TURN_AGENT_");
  app->set_version_flag("--version", TURNBROKER_VERSION);
}

absl::StatusOr<AgentRunOptions> AgentCommandLine::Options() const {
  AgentRunOptions o = o_;
  auto log = log_flags_.Options();
  if (!log.ok()) return log.status();
  o.log = *log;
  if (!IsUnixSocket(o.http.listen)) {
    auto hp = ParseHostPort(o.http.listen, "--listen", /*allow_port_zero=*/true);
    if (!hp.ok()) return hp.status();
    if (!IsLoopbackHost(hp->host) && !allow_remote_) {
      return absl::InvalidArgumentError(
          StrCat("--listen: ", o.http.listen,
                 " is not a loopback address; the API returns passwords and has no "
                 "authentication (add --allow-remote to accept this)"));
    }
  }
  if (!o.evapi.address.empty()) {
    auto hp = ParseHostPort(o.evapi.address, "--kamailio-evapi");
    if (!hp.ok()) return hp.status();
    if (!IsLoopbackHost(hp->host) && !allow_remote_) {
      return absl::InvalidArgumentError(
          StrCat("--kamailio-evapi: ", o.evapi.address,
                 " is not a loopback address; evapi is plaintext and the answers carry "
                 "passwords (add --allow-remote to accept this)"));
    }
  }
  auto mode = ParseCredentialMode(mode_, "--mode");
  if (!mode.ok()) return mode.status();
  o.issuer.mode = *mode;
  o.issuer.reuse = !no_reuse_;
  o.http.idle_timeout_ms = Ms(http_idle_timeout_s_);
  o.http.request_timeout_ms = Ms(http_request_timeout_s_);
  o.issuer.overlap_ms = overlap_s_ < 0 ? -1 : Ms(overlap_s_);
  o.issuer.publish_timeout_ms = Ms(publish_timeout_s_);
  o.issuer.revoke_timeout_ms = Ms(revoke_timeout_s_);
  o.issuer.status_interval_ms = Ms(status_interval_s_);
  o.publisher.call_timeout_ms = o.issuer.publish_timeout_ms;
  o.publisher.publish_stream = !unary_publish_;
  return o;
}

int RunAgent(const AgentRunOptions& o) {
  InitLogging("pcscf-turn-agent", o.log.level, o.log.format);
  // Before any thread starts: every thread then inherits the blocked
  // signals. (When Connect's threads started first, a SIGTERM that came
  // before the main thread waited for it killed the agent by default action:
  // exit by signal, socket file left behind.)
  TerminationSignals signals;
  MetricsRegistry metrics;
  auto service = CredentialService::Connect(o.channel, o.publisher, o.issuer, &metrics);
  if (!service.ok()) {
    return UsageError(
        "pcscf-turn-agent",
        absl::InvalidArgumentError(WithFlagName(std::string(service.status().message()))));
  }
  AgentApi api(&(*service)->issuer(), &metrics);
  AgentServer server(&api);
  if (auto s = server.Start(o.http, &metrics); !s.ok()) {
    std::fprintf(stderr, "pcscf-turn-agent: %s\n", std::string(s.message()).c_str());
    return 1;
  }
  // The asynchronous path answers with the same handler as HTTP.
  EvapiClient evapi(
      o.evapi, [&api](const HttpRequest& r) { return api.Handle(r); }, &metrics);
  if (!o.evapi.address.empty()) {
    if (auto s = evapi.Start(); !s.ok()) {
      std::fprintf(stderr, "pcscf-turn-agent: %s\n", std::string(s.message()).c_str());
      return 2;
    }
  }
  const std::string where =
      IsUnixSocket(o.http.listen)
          ? o.http.listen
          : StrCat(ParseHostPort(o.http.listen, "", true)->host, ":", server.port());
  LogInfo("agent serving")
      .Kv("listen", where)
      .Kv("broker", o.channel.target)
      .Kv("tls", o.channel.tls.enabled())
      .Kv("mode", CredentialModeName(o.issuer.mode))
      .Kv("realm", o.issuer.realm)
      .Kv("issuer", o.issuer.issuer)
      .Kv("ttl_s", o.issuer.default_ttl_s)
      .Kv("reuse", o.issuer.reuse)
      .Kv("reuse_min_remaining_s", o.issuer.reuse_min_remaining_s);
  std::printf("pcscf-turn-agent listening on %s\n", where.c_str());
  std::fflush(stdout);
  signals.Wait();
  evapi.Stop();
  server.Stop();
  service->reset();
  return 0;
}

}  // namespace turnbroker::pcscf
