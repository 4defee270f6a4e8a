// The HTTP/JSON API of pcscf-turn-agent (docs/pcscf-plugin.md), for SIP
// servers that call HTTP (Kamailio's http_client, OpenSIPS rest_client).
#ifndef TURNBROKER_PCSCF_AGENT_API_H_
#define TURNBROKER_PCSCF_AGENT_API_H_

#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "turnbroker/common/metrics.h"
#include "turnbroker/pcscf/issuer.h"

namespace turnbroker::pcscf {

struct ApiRequest {
  std::string method;  // "GET", "POST", ...
  std::string path;    // decoded, without the query
  std::multimap<std::string, std::string> query;
  std::string body;
};

struct ApiResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
};

// Routes and validates requests and turns Issuer results into HTTP answers;
// no sockets here (AgentServer serves it). Thread-safe.
//
//   POST   /v1/credentials                      201 new, 200 reused
//   POST   /v1/credentials/{username}/refresh   201
//   DELETE /v1/credentials/{username}           204
//   DELETE /v1/credentials?impu=...             204
//   POST   /v1/credentials/revoke               204 ({"impu"} or {"username"})
//   GET    /healthz                             200 / 503
//   GET    /metrics                             Prometheus text
//
// Errors are JSON {"error": message, "field": name, "code": CODE}: 400 bad
// input (the field named), 404 unknown path or username, 405 wrong method,
// 409 refused by the broker as a conflict, 502 the broker refused this
// agent, 503 the broker did not acknowledge (nothing was handed out).
class AgentApi {
 public:
  // `metrics` also receives the API's own metrics; both must outlive this.
  AgentApi(Issuer* issuer, MetricsRegistry* metrics);
  ~AgentApi();

  ApiResponse Handle(const ApiRequest& request);

  // A JSON error response for `status` (used for errors the HTTP layer
  // finds itself, e.g. 413).
  static ApiResponse Error(int status, std::string_view message,
                           std::string_view field = "");

 private:
  struct Metrics;
  ApiResponse Issue(const ApiRequest& r);
  ApiResponse Refresh(const ApiRequest& r, std::string_view username);
  ApiResponse RevokeUsername(const ApiRequest& r, std::string_view username);
  ApiResponse RevokeSubscriber(const ApiRequest& r);
  ApiResponse RevokeFromBody(const ApiRequest& r);
  ApiResponse Health();
  ApiResponse Credential(const IssuedCredential& c, int status);

  Issuer* const issuer_;
  MetricsRegistry* const registry_;
  std::unique_ptr<Metrics> metrics_;
};

struct AgentServerOptions {
  // "HOST:PORT" (port 0: any free port) or "unix:/path/to/socket".
  std::string listen = "127.0.0.1:8480";
  int threads = 32;  // connections served at once (keep-alive holds one)
  size_t max_body_bytes = 16 * 1024;
  size_t keep_alive_max_requests = 1'000'000;
  int keep_alive_timeout_s = 30;
};

// Serves an AgentApi over HTTP/1.1 with keep-alive (cpp-httplib).
class AgentServer {
 public:
  explicit AgentServer(AgentApi* api);
  ~AgentServer();  // stops

  // Binds and starts serving on a background thread. UNAVAILABLE naming
  // --listen if the address cannot be bound.
  absl::Status Start(const AgentServerOptions& options);
  // The bound TCP port (0 for a UNIX socket).
  int port() const { return port_; }
  void Stop();

 private:
  struct Impl;
  AgentApi* const api_;
  std::unique_ptr<Impl> impl_;
  int port_ = 0;
};

}  // namespace turnbroker::pcscf

#endif  // TURNBROKER_PCSCF_AGENT_API_H_
