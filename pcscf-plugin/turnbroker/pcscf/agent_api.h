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
#include "turnbroker/common/http_server.h"
#include "turnbroker/common/metrics.h"
#include "turnbroker/pcscf/issuer.h"

namespace turnbroker::pcscf {

// A request as the HTTP server read it (method, decoded path and query,
// body) and the answer to write.
using ApiRequest = HttpRequest;
using ApiResponse = HttpResponse;

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
// agent, 503 the broker did not acknowledge (nothing was handed out). The
// HTTP server answers framing errors itself, in the same shape: 408 request
// not read whole in time, 411 POST without Content-Length, 413 body too
// large, 415 a Content-Encoding, 431 headers too large, 503 too many
// connections (docs/pcscf-plugin.md).
class AgentApi {
 public:
  // `metrics` also receives the API's own metrics; both must outlive this.
  AgentApi(Issuer* issuer, MetricsRegistry* metrics);
  ~AgentApi();

  ApiResponse Handle(const ApiRequest& request);

  // Whether Handle answers `request` without waiting on anything, so the
  // HTTP server may answer it on its I/O thread: issue and refresh in
  // shared-secret mode (minted locally, no broker call), and a path that is
  // no endpoint (404). Everything else may wait for the broker.
  bool AnswersWithoutWaiting(const ApiRequest& request) const;

  // A JSON error response for `status` (used for errors the HTTP layer
  // finds itself, e.g. 413).
  static ApiResponse Error(int status, std::string_view message, std::string_view field = "");

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
  std::string fixed_fields_;  // "uris", "header_name" as JSON members
  std::unique_ptr<Metrics> metrics_;
};

struct AgentServerOptions {
  // "HOST:PORT" (port 0: any free port) or "unix:/path/to/socket".
  std::string listen = "127.0.0.1:8480";
  // Requests handled at once (each may wait for the broker's ack). Idle and
  // slow connections hold no thread.
  int threads = 32;
  size_t max_body_bytes = 16 * 1024;
  size_t keep_alive_max_requests = 1'000'000;
  // No request byte for this long (a new or an idle keep-alive
  // connection): closed. The SIP server reconnects at its next request.
  int64_t idle_timeout_ms = 5'000;
  // From a request's first byte until it has been read whole (slowloris).
  int64_t request_timeout_ms = 5'000;
  int max_connections = 1'000;
  // Per peer IP address (a UNIX socket's peers only count toward
  // max_connections).
  int max_connections_per_peer = 128;
  // Answer the requests that wait on nothing (AgentApi::AnswersWithoutWaiting)
  // on the HTTP server's I/O thread, without a hand-off to a worker.
  bool answer_inline = true;
};

// Serves an AgentApi over HTTP/1.1 with keep-alive (HttpServer: one epoll
// thread for every connection, `threads` workers for complete requests).
class AgentServer {
 public:
  explicit AgentServer(AgentApi* api);
  ~AgentServer();  // stops

  // Binds and starts serving on background threads. UNAVAILABLE naming
  // --listen if the address cannot be bound. `metrics` (may be null) gets
  // the server's connection metrics; call before anything renders it.
  absl::Status Start(const AgentServerOptions& options, MetricsRegistry* metrics = nullptr);
  // The bound TCP port (0 for a UNIX socket).
  int port() const { return server_.port(); }
  void Stop();

 private:
  AgentApi* const api_;
  HttpServer server_;
};

}  // namespace turnbroker::pcscf

#endif  // TURNBROKER_PCSCF_AGENT_API_H_
