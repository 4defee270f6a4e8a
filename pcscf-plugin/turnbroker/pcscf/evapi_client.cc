#include "turnbroker/pcscf/evapi_client.h"

#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "turnbroker/common/log.h"
#include "turnbroker/common/net.h"

namespace turnbroker::pcscf {

using absl::StrCat;
using nlohmann::json;

// ---- Netstrings ------------------------------------------------------------

absl::StatusOr<bool> NetstringReader::Next(std::string* message) {
  size_t colon = buffer_.find(':');
  if (colon == std::string::npos) {
    // Only digits may come before the colon, at most as many as max_bytes has.
    if (buffer_.size() > std::to_string(max_bytes_).size() ||
        buffer_.find_first_not_of("0123456789") != std::string::npos)
      return absl::InvalidArgumentError("not a netstring: no length");
    return false;
  }
  if (colon == 0 || colon > std::to_string(max_bytes_).size() ||
      buffer_.find_first_not_of("0123456789") < colon)
    return absl::InvalidArgumentError("not a netstring: bad length");
  const size_t length = std::stoul(buffer_.substr(0, colon));
  if (length > max_bytes_)
    return absl::InvalidArgumentError(
        StrCat("message of ", length, " bytes, at most ", max_bytes_));
  if (buffer_.size() < colon + 1 + length + 1) return false;
  if (buffer_[colon + 1 + length] != ',')
    return absl::InvalidArgumentError("not a netstring: no ',' after the payload");
  message->assign(buffer_, colon + 1, length);
  buffer_.erase(0, colon + 1 + length + 1);
  return true;
}

std::string Netstring(std::string_view payload) {
  std::string out = std::to_string(payload.size());
  out += ':';
  out.append(payload);
  out += ',';
  return out;
}

// ---- The client ---------------------------------------------------------------

struct EvapiClient::Metrics {
  explicit Metrics(MetricsRegistry* r, EvapiClient* client) {
    r->AddGaugeFunction("pcscf_turn_evapi_connected",
                        "1 while connected to Kamailio's evapi socket (--kamailio-evapi)",
                        [client] { return client->connected() ? 1.0 : 0.0; });
    const char* help = "Messages from Kamailio's evapi socket, by outcome";
    answered = r->AddCounter("pcscf_turn_evapi_messages_total", help, "result=\"answered\"");
    revoked = r->AddCounter("pcscf_turn_evapi_messages_total", help, "result=\"revoke\"");
    malformed = r->AddCounter("pcscf_turn_evapi_messages_total", help, "result=\"malformed\"");
    overloaded = r->AddCounter("pcscf_turn_evapi_messages_total", help, "result=\"overloaded\"");
    connects = r->AddCounter("pcscf_turn_evapi_connects_total",
                             "Connections made to Kamailio's evapi socket");
  }
  Counter *answered, *revoked, *malformed, *overloaded, *connects;
};

EvapiClient::EvapiClient(EvapiClientOptions options, Handler handler, MetricsRegistry* metrics)
    : options_(std::move(options)), handler_(std::move(handler)) {
  if (metrics) metrics_ = std::make_unique<Metrics>(metrics, this);
}

EvapiClient::~EvapiClient() { Stop(); }

absl::Status EvapiClient::Start() {
  auto hp = ParseHostPort(options_.address, "--kamailio-evapi");
  if (!hp.ok()) return hp.status();
  host_ = hp->host;
  port_ = hp->port;
  for (int i = 0; i < std::max(1, options_.threads); ++i)
    workers_.emplace_back([this] { WorkerLoop(); });
  connector_ = std::thread([this] { ConnectLoop(); });
  return absl::OkStatus();
}

void EvapiClient::Stop() {
  if (stopping_.exchange(true)) return;
  {
    std::lock_guard lock(write_mu_);
    if (fd_ >= 0) shutdown(fd_, SHUT_RDWR);  // ends ReadConnection's recv
  }
  sleep_cv_.notify_all();
  queue_cv_.notify_all();
  if (connector_.joinable()) connector_.join();
  for (auto& w : workers_) w.join();
  workers_.clear();
}

namespace {

// A connected TCP socket, or -1 (errno-style reason in *error).
int ConnectTcp(const std::string& host, uint16_t port, std::string* error) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* list = nullptr;
  const std::string service = std::to_string(port);
  if (int rc = getaddrinfo(host.c_str(), service.c_str(), &hints, &list); rc != 0) {
    *error = gai_strerror(rc);
    return -1;
  }
  int fd = -1;
  for (addrinfo* a = list; a && fd < 0; a = a->ai_next) {
    fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) continue;
    if (connect(fd, a->ai_addr, a->ai_addrlen) != 0) {
      *error = std::strerror(errno);
      close(fd);
      fd = -1;
    }
  }
  freeaddrinfo(list);
  if (fd >= 0) {
    // Answers go out at once: with Nagle's algorithm an answer waited for
    // Kamailio to acknowledge the previous one, a fixed ~4.6 ms at p90
    // (docs/pcscf-plugin.md, "The asynchronous path").
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  return fd;
}

// Acknowledges what was just read at once rather than with the next answer
// or the delayed-ACK timer: Kamailio's evapi socket keeps Nagle's algorithm,
// so its next event waits for that acknowledgement. Linux clears the mode
// after use (tcp(7)), so it is set again after every read.
void AckNow(int fd) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof one);
}

// The answer to `event` (its transaction, the status and one of "header" or
// "error"), or "" when the event carries no transaction to answer.
std::string AnswerTo(const json& event, int status, std::string_view key, std::string_view value) {
  if (!event.is_object() || !event.contains("tindex") || !event.contains("tlabel") ||
      !event["tindex"].is_number_integer() || !event["tlabel"].is_number_integer())
    return "";
  json out = {{"tindex", event["tindex"]}, {"tlabel", event["tlabel"]}, {"status", status}};
  out[std::string(key)] = value;
  return out.dump();
}

}  // namespace

void EvapiClient::ConnectLoop() {
  Backoff backoff(options_.reconnect);
  bool logged_failure = false;
  while (!stopping_) {
    std::string error;
    int fd = ConnectTcp(host_, port_, &error);
    if (fd >= 0) {
      uint64_t connection;
      {
        std::lock_guard lock(write_mu_);
        fd_ = fd;
        connection = ++connection_;
      }
      if (stopping_) shutdown(fd, SHUT_RDWR);
      connected_ = true;
      if (metrics_) metrics_->connects->Inc();
      LogInfo("connected to Kamailio's evapi socket").Kv("address", options_.address);
      logged_failure = false;
      backoff.Reset();
      ReadConnection(fd, connection);
      connected_ = false;
      CloseCurrent();
      if (stopping_) return;
      LogWarn("Kamailio's evapi socket closed; reconnecting").Kv("address", options_.address);
    } else if (!logged_failure) {
      // Once per outage: Kamailio restarting is routine.
      LogWarn("cannot connect to Kamailio's evapi socket; retrying")
          .Kv("address", options_.address)
          .Kv("error", error);
      logged_failure = true;
    }
    std::unique_lock lock(sleep_mu_);
    sleep_cv_.wait_for(lock, std::chrono::milliseconds(backoff.NextDelayMs()),
                       [this] { return stopping_.load(); });
  }
}

void EvapiClient::ReadConnection(int fd, uint64_t connection) {
  NetstringReader reader(options_.max_message_bytes);
  char buf[16 * 1024];
  for (;;) {
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n > 0) AckNow(fd);
    if (n == 0) return;
    if (n < 0) {
      if (errno == EINTR) continue;
      return;
    }
    reader.Feed(std::string_view(buf, static_cast<size_t>(n)));
    for (;;) {
      std::string message;
      auto got = reader.Next(&message);
      if (!got.ok()) {
        // The stream is out of step: nothing after this can be framed.
        if (metrics_) metrics_->malformed->Inc();
        LogWarn("evapi stream is not netstrings; reconnecting").Kv("error", got.status());
        return;
      }
      if (!*got) break;
      std::unique_lock lock(queue_mu_);
      if (queue_.size() >= options_.max_queued) {
        lock.unlock();
        if (metrics_) metrics_->overloaded->Inc();
        const std::string refusal =
            AnswerTo(json::parse(message, nullptr, false), 503, "error", "agent overloaded");
        if (!refusal.empty()) Send(connection, refusal);
        continue;
      }
      queue_.push_back(Work{connection, std::move(message)});
      lock.unlock();
      queue_cv_.notify_one();
    }
  }
}

void EvapiClient::WorkerLoop() {
  for (;;) {
    Work work;
    {
      std::unique_lock lock(queue_mu_);
      queue_cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping
      work = std::move(queue_.front());
      queue_.pop_front();
    }
    HandleMessage(work);
  }
}

void EvapiClient::HandleMessage(const Work& work) {
  const json event = json::parse(work.message, nullptr, /*allow_exceptions=*/false);
  auto answer = [&](int status, std::string_view key, std::string_view value) {
    const std::string out = AnswerTo(event, status, key, value);
    if (out.empty()) return;
    Send(work.connection, out);
    if (metrics_) metrics_->answered->Inc();
  };
  if (!event.is_object() || !event.contains("request") || !event["request"].is_object()) {
    if (metrics_) metrics_->malformed->Inc();
    LogWarn("evapi event without a request object; ignored");
    answer(400, "error", "request: must be a JSON object");
    return;
  }
  json request = event["request"];
  const json op = request["op"];
  request.erase("op");
  HttpRequest http;
  http.method = "POST";
  http.headers = {{"content-type", "application/json"}};
  if (op == "issue") {
    http.target = http.path = "/v1/credentials";
  } else if (op == "revoke") {
    http.target = http.path = "/v1/credentials/revoke";
  } else {
    if (metrics_) metrics_->malformed->Inc();
    LogWarn("evapi event with an unknown op; ignored");
    answer(400, "error", "request.op: must be \"issue\" or \"revoke\"");
    return;
  }
  http.body = request.dump();
  const HttpResponse response = handler_(http);
  if (op == "revoke") {
    if (metrics_) metrics_->revoked->Inc();
    if (response.status != 204)
      LogWarn("revocation from Kamailio not acknowledged").Kv("status", response.status);
    return;
  }
  const json body = json::parse(response.body, nullptr, false);
  auto field = [&](const char* name) {
    return body.is_object() && body.contains(name) && body[name].is_string()
               ? body[name].get<std::string>()
               : std::string();
  };
  if (response.status == 200 || response.status == 201) {
    answer(response.status, "header", field("header"));
  } else {
    answer(response.status, "error", field("error"));
  }
}

void EvapiClient::Send(uint64_t connection, std::string_view payload) {
  const std::string framed = Netstring(payload);
  std::lock_guard lock(write_mu_);
  if (fd_ < 0 || connection != connection_) return;  // that connection is gone
  size_t sent = 0;
  while (sent < framed.size()) {
    ssize_t n = send(fd_, framed.data() + sent, framed.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      shutdown(fd_, SHUT_RDWR);  // the reader reconnects
      return;
    }
    sent += static_cast<size_t>(n);
  }
}

void EvapiClient::CloseCurrent() {
  std::lock_guard lock(write_mu_);
  if (fd_ >= 0) close(fd_);
  fd_ = -1;
}

}  // namespace turnbroker::pcscf
