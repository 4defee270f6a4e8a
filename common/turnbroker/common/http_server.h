// A small HTTP/1.1 server for the parts' local HTTP endpoints: the eP-CSCF
// agent's API and every part's /metrics and /healthz (docs/security.md,
// "The agent's HTTP server").
//
// One thread waits on every connection with epoll; an idle or slow
// connection costs a file descriptor, never a thread. A request is handed
// to a worker only once it has been read whole, so `threads` bounds the
// requests being handled at once, not the connections; a request whose
// answer waits on nothing may be answered by the I/O thread itself. Every connection has
// deadlines (the first byte of each request, the whole request once begun),
// bodies are bounded by the bytes actually read whatever the framing
// (Content-Length or chunked), content encodings are refused, and
// connections are capped in total and per peer address.
#ifndef TURNBROKER_COMMON_HTTP_SERVER_H_
#define TURNBROKER_COMMON_HTTP_SERVER_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace turnbroker {

class MetricsRegistry;

struct HttpRequest {
  std::string method;  // as sent, e.g. "POST"
  std::string target;  // as sent, e.g. "/v1/credentials?impu=sip%3Aa%40b"
  std::string path;    // percent-decoded, without the query
  std::multimap<std::string, std::string> query;  // percent-decoded ('+' is a space)
  // Header names in lower case, values without surrounding blanks.
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;       // decoded from the framing (chunked or not)
  int version_minor = 1;  // HTTP/1.0 or HTTP/1.1

  // The first header of that lower-case name, or nullptr.
  const std::string* Header(std::string_view lower_name) const;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
};

// The JSON error every HTTP endpoint of this project answers with:
// {"error": message, "code": CODE, "field": field} (field only when given).
HttpResponse HttpJsonError(int status, std::string_view message, std::string_view field = "");
// "INVALID_ARGUMENT" for 400, "PAYLOAD_TOO_LARGE" for 413, ...
const char* HttpCodeName(int status);

struct HttpLimits {
  size_t max_header_bytes = 8 * 1024;  // request line, headers and chunked trailers
  size_t max_headers = 64;
  size_t max_body_bytes = 16 * 1024;  // decoded body bytes
};

// Incremental parser of one HTTP/1.x request (no I/O; fuzzed by
// fuzz/http_request_fuzzer.cc). Feed it bytes as they arrive; it stops at
// the end of the request, so bytes of a pipelined next request are left to
// the caller.
class HttpRequestParser {
 public:
  enum class Result { kNeedMore, kDone, kError };
  struct Error {
    int status = 400;
    std::string message;
    std::string field;
  };

  explicit HttpRequestParser(HttpLimits limits = {});

  // Consumes a prefix of `data` (*consumed bytes). kDone: request() is
  // complete. kError: error() says what to answer; the connection must then
  // close (the framing is lost). Feed nothing after kDone or kError before
  // Reset().
  Result Feed(std::string_view data, size_t* consumed);
  void Reset();

  // Whether any byte of this request arrived.
  bool started() const { return started_; }
  // The header block is complete and the request said "Expect: 100-continue"
  // and its body has not arrived yet: the server may send 100 Continue.
  bool wants_continue() const {
    return state_ == State::kBody && expect_continue_ && body_seen_ == 0;
  }
  // Whether the connection may carry another request after this one.
  bool keep_alive() const { return keep_alive_; }

  HttpRequest& request() { return request_; }
  const Error& error() const { return error_; }

 private:
  enum class State {
    kHead,
    kBody,
    kChunkSize,
    kChunkData,
    kChunkDataEnd,
    kTrailers,
    kDone,
    kError
  };
  Result Fail(int status, std::string message, std::string field = "");
  Result ParseHead(std::string_view head);
  // Chunked framing: a line ending in CRLF, bounded in length.
  bool TakeLine(std::string_view data, size_t* pos, size_t max, std::string* line, bool* done);

  HttpLimits limits_;
  State state_ = State::kHead;
  bool started_ = false;
  bool keep_alive_ = true;
  bool expect_continue_ = false;
  size_t head_bytes_ = 0;   // bytes of the head (and trailers) so far
  size_t scan_from_ = 0;    // where to look for the end of the head
  std::string head_;        // the head until it is complete
  std::string line_;        // a partial chunk-size or trailer line
  uint64_t remaining_ = 0;  // body bytes left (Content-Length or chunk)
  size_t body_seen_ = 0;
  HttpRequest request_;
  Error error_;
};

struct HttpServerOptions {
  // "HOST:PORT" (port 0: any free port) or "unix:/path/to/socket".
  std::string listen = "127.0.0.1:0";
  // The flag named in bind errors, e.g. "--listen".
  std::string flag = "--listen";
  int threads = 4;  // requests handled at once
  HttpLimits limits;
  // Waiting for the first byte of a request (a new connection or an idle
  // keep-alive one): closed after this.
  int64_t idle_timeout_ms = 5'000;
  // From a request's first byte until it has been read whole (slowloris).
  int64_t request_timeout_ms = 5'000;
  // Writing one response (a peer that does not read).
  int64_t write_timeout_ms = 5'000;
  int max_connections = 1'000;
  int max_connections_per_peer = 128;  // by IP address; UNIX sockets share one
  size_t keep_alive_max_requests = 1'000'000;
  // Metric name prefix, e.g. "pcscf_turn_agent_http" (none when empty).
  std::string metrics_prefix;
};

using HttpHandler = std::function<HttpResponse(const HttpRequest&)>;
// Whether a request's answer waits on nothing (no I/O, no call to another
// process, no lock held across a wait). Such a request is answered on the
// I/O thread as soon as it has been read, without a hand-off to a worker
// (docs/pcscf-plugin.md, "The agent"); one per connection and wake-up,
// so a pipelining peer still goes to a worker after its first.
using HttpAnswersInline = std::function<bool(const HttpRequest&)>;

// A bound, listening socket: TCP (HOST:PORT, port 0 any) or UNIX
// ("unix:/path", a stale socket file is replaced). UNAVAILABLE naming
// `flag` if it cannot be bound, INVALID_ARGUMENT for a malformed address.
struct HttpListener {
  int fd = -1;
  int port = 0;           // the bound TCP port; 0 for a UNIX socket
  std::string unix_path;  // removed by the server at Stop()
};
absl::StatusOr<HttpListener> BindHttpListener(std::string_view listen, std::string_view flag);

class HttpServer {
 public:
  HttpServer();
  ~HttpServer();  // stops

  // Binds and starts serving on background threads. `handler` is called on
  // a worker thread, concurrently up to `threads`. `metrics` (may be null)
  // gets the server's own metrics; it must outlive the server and Start
  // must come before anything renders it.
  // `answers_inline` (may be empty: none) picks the requests answered on
  // the I/O thread.
  absl::Status Start(const HttpServerOptions& options, HttpHandler handler,
                     MetricsRegistry* metrics = nullptr, HttpAnswersInline answers_inline = {});
  int port() const;
  // Closes the listener and every connection; requests being handled are
  // answered first. Idempotent.
  void Stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace turnbroker

#endif  // TURNBROKER_COMMON_HTTP_SERVER_H_
