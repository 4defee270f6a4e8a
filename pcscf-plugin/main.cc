// pcscf-turn-agent: the eP-CSCF's local HTTP/JSON agent. It mints TURN
// credentials for registrations, publishes them to turn-broker and answers
// only once the broker acknowledged. Flags and environment: --help and
// docs/pcscf-plugin.md.
#include <signal.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstring>

#include "turnbroker/common/log.h"
#include "turnbroker/common/flags.h"
#include "turnbroker/common/net.h"
#include "turnbroker/common/runtime.h"
#include "turnbroker/common/status.h"
#include "turnbroker/common/tls.h"
#include "turnbroker/pcscf/agent_api.h"
#include "turnbroker/pcscf/issuer.h"

namespace {

// The host name as an issuer id: Credential.issuer allows [A-Za-z0-9._:-].
std::string DefaultIssuer() {
  char host[256] = {};
  if (gethostname(host, sizeof host - 1) != 0 || !host[0]) return "pcscf";
  std::string out;
  for (const char* p = host; *p && out.size() < 100; ++p) {
    char c = *p;
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-';
    out.push_back(ok ? c : '-');
  }
  return "pcscf-" + out;
}

int64_t Ms(double seconds) { return static_cast<int64_t>(seconds * 1000); }

// IssuerOptions errors name the option ("turn_uris[1]: ..."); say the flag.
std::string WithFlagName(std::string message) {
  static const std::pair<const char*, const char*> kFlags[] = {
      {"turn_uris", "--turn-uri"}, {"scopes", "--scope"},       {"realm", "--realm"},
      {"issuer", "--issuer"},      {"min_ttl", "--min-ttl"},    {"ttl", "--ttl"},
      {"publish_timeout", "--publish-timeout"}, {"revoke_timeout", "--revoke-timeout"},
      {"publisher", "--max-batch/--max-in-flight"}};
  for (const auto& [option, flag] : kFlags) {
    if (message.rfind(option, 0) == 0) return flag + message.substr(std::strlen(option));
  }
  return message;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace turnbroker;
  using namespace turnbroker::pcscf;
  InitRuntime();

  ChannelOptions channel;
  channel.target = "127.0.0.1:50051";
  channel.max_reconnect_backoff_ms = 1'000;
  PublisherOptions publisher;
  IssuerOptions issuer;
  issuer.issuer = DefaultIssuer();
  AgentServerOptions http;
  bool allow_remote = false, no_reuse = false;
  double overlap_s = 30, publish_timeout_s = 0.8, revoke_timeout_s = 0.8,
         status_interval_s = 2;
  LogFlags log_flags;

  CLI::App app{
      "pcscf-turn-agent: issues TURN credentials for SIP registrations over "
      "HTTP/JSON, publishes them to turn-broker and answers only once the "
      "broker acknowledged (docs/pcscf-plugin.md).\n"
      "Every flag can also be set by an environment variable, shown in []."};
  app.get_formatter()->column_width(44);
  auto env = [](const char* name) { return std::string("PCSCF_TURN_AGENT_") + name; };

  AddBrokerClientFlags(app, &channel, env("BROKER"), env(""), "publisher");
  app.add_option("--listen", http.listen,
                 "HTTP address HOST:PORT (port 0: any free port) or unix:/path/to/socket")
      ->envname(env("LISTEN"))->capture_default_str();
  app.add_flag("--allow-remote", allow_remote,
               "Allow a non-loopback --listen. The API has no authentication and returns "
               "passwords: only behind a network policy that admits the SIP server alone")
      ->envname(env("ALLOW_REMOTE"));
  app.add_option("--realm", issuer.realm, "TURN realm of the farm that serves the clients")
      ->envname(env("REALM"))->required();
  app.add_option("--turn-uri", issuer.turn_uris,
                 "TURN/STUN URI for the WIC's iceServers, repeatable "
                 "(e.g. turn:turn.example.org:3478?transport=udp)")
      ->envname(env("TURN_URI"))->required()->delimiter(',');
  app.add_option("--scope", issuer.scopes,
                 "TURN farm that receives the credentials, repeatable (default: every farm "
                 "of the realm)")
      ->envname(env("SCOPE"))->delimiter(',');
  app.add_option("--issuer", issuer.issuer,
                 "This eP-CSCF instance's id, for revoke-by-issuer ([A-Za-z0-9._:-])")
      ->envname(env("ISSUER"))->capture_default_str();
  app.add_option("--ttl", issuer.default_ttl_s, "Credential lifetime when a request gives none, s")
      ->envname(env("TTL"))->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--min-ttl", issuer.min_ttl_s, "Shortest lifetime a request may ask for, s")
      ->envname(env("MIN_TTL"))->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--max-ttl", issuer.max_ttl_s,
                 "Longest lifetime a request may ask for, s (keep it within the broker's)")
      ->envname(env("MAX_TTL"))->capture_default_str()->check(CLI::PositiveNumber);
  app.add_flag("--no-reuse", no_reuse,
               "re-REGISTER policy: mint a new credential at every REGISTER (rotate) instead "
               "of handing the live one out again")
      ->envname(env("NO_REUSE"));
  app.add_option("--reuse-min-remaining", issuer.reuse_min_remaining_s,
                 "re-REGISTER policy: reuse the live credential only while it has at least "
                 "this much lifetime left, s; otherwise rotate")
      ->envname(env("REUSE_MIN_REMAINING"))->capture_default_str()->check(CLI::NonNegativeNumber);
  app.add_option("--overlap", overlap_s,
                 "After a refresh or rotation the old credential stays valid this long, then "
                 "is revoked, s (negative: never revoked, it expires)")
      ->envname(env("OVERLAP"))->capture_default_str();
  app.add_option("--publish-timeout", publish_timeout_s,
                 "Deadline for the broker's acknowledgement of a new credential, s; keep it "
                 "below the SIP server's HTTP timeout")
      ->envname(env("PUBLISH_TIMEOUT"))->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--revoke-timeout", revoke_timeout_s,
                 "Deadline for the broker's acknowledgement of a revocation, s")
      ->envname(env("REVOKE_TIMEOUT"))->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--status-interval", status_interval_s,
                 "How often the broker's status (epoch) is checked, s (0: never)")
      ->envname(env("STATUS_INTERVAL"))->capture_default_str()->check(CLI::NonNegativeNumber);
  app.add_option("--max-batch", publisher.max_batch, "Credentials in one Publish call")
      ->envname(env("MAX_BATCH"))->capture_default_str()->check(CLI::Range(1, 10'000));
  app.add_option("--max-in-flight", publisher.max_in_flight, "Publish calls in flight at once")
      ->envname(env("MAX_IN_FLIGHT"))->capture_default_str()->check(CLI::Range(1, 64));
  bool unary_publish = false;
  app.add_flag("--no-publish-stream", unary_publish,
               "One Publish call per batch instead of one long-lived PublishStream (for a "
               "proxy that cannot carry long streams)")
      ->envname(env("NO_PUBLISH_STREAM"));
  app.add_option("--http-threads", http.threads,
                 "HTTP connections served at once (a keep-alive connection holds one; give "
                 "at least the SIP server's worker count)")
      ->envname(env("HTTP_THREADS"))->capture_default_str()->check(CLI::Range(1, 1024));
  log_flags.Add(app, "PCSCF_TURN_AGENT_");
  app.set_version_flag("--version", TURNBROKER_VERSION);
  CLI11_PARSE(app, argc, argv);

  if (auto s = log_flags.Init("pcscf-turn-agent"); !s.ok()) {
    std::fprintf(stderr, "%s\n", std::string(s.message()).c_str());
    return 2;
  }
  if (http.listen.rfind("unix:", 0) != 0) {
    auto hp = ParseHostPort(http.listen, "--listen", /*allow_port_zero=*/true);
    if (!hp.ok()) {
      std::fprintf(stderr, "%s\n", std::string(hp.status().message()).c_str());
      return 2;
    }
    if (!IsLoopbackHost(hp->host) && !allow_remote) {
      std::fprintf(stderr,
                   "--listen: %s is not a loopback address; the API returns passwords and has "
                   "no authentication (add --allow-remote to accept this)\n",
                   http.listen.c_str());
      return 2;
    }
  }
  issuer.reuse = !no_reuse;
  issuer.overlap_ms = overlap_s < 0 ? -1 : Ms(overlap_s);
  issuer.publish_timeout_ms = Ms(publish_timeout_s);
  issuer.revoke_timeout_ms = Ms(revoke_timeout_s);
  issuer.status_interval_ms = Ms(status_interval_s);
  publisher.call_timeout_ms = issuer.publish_timeout_ms;

  MetricsRegistry metrics;
  publisher.publish_stream = !unary_publish;
  auto service = CredentialService::Connect(channel, publisher, issuer, &metrics);
  if (!service.ok()) {
    std::fprintf(stderr, "pcscf-turn-agent: %s\n",
                 WithFlagName(std::string(service.status().message())).c_str());
    return 2;
  }
  AgentApi api(&(*service)->issuer(), &metrics);
  AgentServer server(&api);

  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  if (auto s = server.Start(http); !s.ok()) {
    std::fprintf(stderr, "pcscf-turn-agent: %s\n", std::string(s.message()).c_str());
    return 1;
  }
  std::string where = http.listen.rfind("unix:", 0) == 0
                          ? http.listen
                          : StrCat(ParseHostPort(http.listen, "", true)->host, ":", server.port());
  LogInfo("agent serving")
      .Kv("listen", where)
      .Kv("broker", channel.target)
      .Kv("tls", channel.tls.enabled())
      .Kv("realm", issuer.realm)
      .Kv("issuer", issuer.issuer)
      .Kv("ttl_s", issuer.default_ttl_s)
      .Kv("reuse", issuer.reuse)
      .Kv("reuse_min_remaining_s", issuer.reuse_min_remaining_s);
  // Tools and tests read the bound address from this line.
  std::printf("pcscf-turn-agent listening on %s\n", where.c_str());
  std::fflush(stdout);

  int sig = 0;
  sigwait(&signals, &sig);
  LogInfo("signal received").Kv("signal", sig == SIGTERM ? "SIGTERM" : "SIGINT");
  server.Stop();
  service->reset();
  return 0;
}
