// The agent's asynchronous path for Kamailio (docs/pcscf-plugin.md, "The
// asynchronous path"): the agent connects to Kamailio's evapi socket as its
// client. Kamailio suspends a REGISTER's transaction and sends the question
// as a netstring-framed JSON event; the agent answers on the same socket and
// Kamailio resumes the transaction. No SIP worker waits for the agent.
//
//   Kamailio -> agent  {"tindex": N, "tlabel": N, "request": {"op": "issue", ...}}
//                      {"request": {"op": "revoke", "impu": ..., "reason": ...}}
//   agent -> Kamailio  {"tindex": N, "tlabel": N, "status": HTTP status,
//                       "header": TURN-Credential value | "error": message}
//
// Each request is the body the HTTP API takes (POST /v1/credentials, POST
// /v1/credentials/revoke), handled by the same handler, so both paths give
// the same answers. A revoke carries no transaction and gets no answer.
#ifndef TURNBROKER_PCSCF_EVAPI_CLIENT_H_
#define TURNBROKER_PCSCF_EVAPI_CLIENT_H_

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "turnbroker/common/backoff.h"
#include "turnbroker/common/http_server.h"
#include "turnbroker/common/metrics.h"

namespace turnbroker::pcscf {

// Netstring framing (djb's netstrings, what evapi's netstring_format 1
// sends): "<decimal length>:<bytes>,". Not thread-safe.
class NetstringReader {
 public:
  explicit NetstringReader(size_t max_bytes) : max_bytes_(max_bytes) {}
  // Appends received bytes.
  void Feed(std::string_view bytes) { buffer_.append(bytes); }
  // True with the next whole message in *message; false when none is
  // complete yet; INVALID_ARGUMENT when the stream is not netstrings or a
  // message is longer than max_bytes (the connection must then be closed).
  absl::StatusOr<bool> Next(std::string* message);

 private:
  const size_t max_bytes_;
  std::string buffer_;
};

std::string Netstring(std::string_view payload);

struct EvapiClientOptions {
  // Kamailio's evapi bind_addr, HOST:PORT.
  std::string address;
  // Requests handled at once (each may wait for the broker's ack).
  int threads = 16;
  // Requests waiting for a thread; beyond, answered 503 at once.
  size_t max_queued = 10'000;
  size_t max_message_bytes = 16 * 1024;
  BackoffOptions reconnect{100, 5'000, 2.0};
};

class EvapiClient {
 public:
  // Answers a request as the HTTP API does (AgentApi::Handle).
  using Handler = std::function<HttpResponse(const HttpRequest&)>;

  EvapiClient(EvapiClientOptions options, Handler handler, MetricsRegistry* metrics = nullptr);
  ~EvapiClient();  // Stop()

  // Starts connecting (and reconnecting, with backoff) in the background.
  // INVALID_ARGUMENT naming --kamailio-evapi for a bad address.
  absl::Status Start();
  void Stop();

  bool connected() const { return connected_.load(); }

 private:
  struct Metrics;
  struct Work {
    uint64_t connection;
    std::string message;
  };
  void ConnectLoop();
  void ReadConnection(int fd, uint64_t connection);
  void WorkerLoop();
  void HandleMessage(const Work& work);
  // Writes `payload` framed to the connection, if it is still the current
  // one.
  void Send(uint64_t connection, std::string_view payload);
  void CloseCurrent();

  const EvapiClientOptions options_;
  const Handler handler_;
  std::unique_ptr<Metrics> metrics_;
  std::string host_;
  uint16_t port_ = 0;

  std::atomic<bool> stopping_{false};
  std::atomic<bool> connected_{false};
  std::mutex write_mu_;
  int fd_ = -1;              // guarded by write_mu_
  uint64_t connection_ = 0;  // guarded by write_mu_; which connection fd_ is

  std::mutex queue_mu_;
  std::condition_variable queue_cv_;
  std::deque<Work> queue_;  // guarded by queue_mu_

  std::mutex sleep_mu_;
  std::condition_variable sleep_cv_;
  std::thread connector_;
  std::vector<std::thread> workers_;
};

}  // namespace turnbroker::pcscf

#endif  // TURNBROKER_PCSCF_EVAPI_CLIENT_H_
