#include "turnbroker/common/http_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>
#include <unordered_map>

#include "turnbroker/common/clock.h"
#include "turnbroker/common/log.h"
#include "turnbroker/common/metrics.h"
#include "turnbroker/common/net.h"
#include "turnbroker/common/strings.h"

namespace turnbroker {
namespace {

constexpr size_t kMaxChunkLine = 1024;  // chunk size and its extensions

bool IsTokenChar(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  return std::strchr("!#$%&'*+-.^_`|~", c) != nullptr && c != '\0';
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Percent-decoding; '+' is a space only in a query. False on a bad escape.
bool PercentDecode(std::string_view in, bool plus_is_space, std::string* out) {
  out->clear();
  for (size_t i = 0; i < in.size(); ++i) {
    char c = in[i];
    if (c == '%') {
      if (i + 2 >= in.size()) return false;
      int hi = HexValue(in[i + 1]), lo = HexValue(in[i + 2]);
      if (hi < 0 || lo < 0) return false;
      out->push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else if (c == '+' && plus_is_space) {
      out->push_back(' ');
    } else {
      out->push_back(c);
    }
  }
  return true;
}

bool HasToken(std::string_view list, std::string_view token) {
  // A comma-separated list of case-insensitive tokens.
  std::string l = Lower(list);
  size_t pos = 0;
  while (pos <= l.size()) {
    size_t comma = l.find(',', pos);
    if (comma == std::string::npos) comma = l.size();
    if (Trim(std::string_view(l).substr(pos, comma - pos)) == token) return true;
    pos = comma + 1;
  }
  return false;
}

const char* Reason(int status) {
  switch (status) {
    case 100:
      return "Continue";
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 204:
      return "No Content";
    case 400:
      return "Bad Request";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 409:
      return "Conflict";
    case 411:
      return "Length Required";
    case 413:
      return "Payload Too Large";
    case 415:
      return "Unsupported Media Type";
    case 417:
      return "Expectation Failed";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 505:
      return "HTTP Version Not Supported";
    default:
      return "Status";
  }
}

}  // namespace

const std::string* HttpRequest::Header(std::string_view lower_name) const {
  for (const auto& [k, v] : headers) {
    if (k == lower_name) return &v;
  }
  return nullptr;
}

const char* HttpCodeName(int status) {
  switch (status) {
    case 400:
      return "INVALID_ARGUMENT";
    case 404:
      return "NOT_FOUND";
    case 405:
      return "METHOD_NOT_ALLOWED";
    case 408:
      return "REQUEST_TIMEOUT";
    case 409:
      return "CONFLICT";
    case 411:
      return "LENGTH_REQUIRED";
    case 413:
      return "PAYLOAD_TOO_LARGE";
    case 415:
      return "UNSUPPORTED_MEDIA_TYPE";
    case 417:
      return "EXPECTATION_FAILED";
    case 431:
      return "HEADERS_TOO_LARGE";
    case 501:
      return "NOT_IMPLEMENTED";
    case 502:
      return "BROKER_REFUSED";
    case 503:
      return "UNAVAILABLE";
    case 505:
      return "HTTP_VERSION_NOT_SUPPORTED";
    default:
      return status >= 500 ? "INTERNAL" : "ERROR";
  }
}

HttpResponse HttpJsonError(int status, std::string_view message, std::string_view field) {
  HttpResponse r;
  r.status = status;
  nlohmann::json j = {{"error", std::string(message)}, {"code", HttpCodeName(status)}};
  if (!field.empty()) j["field"] = std::string(field);
  // Replace, not throw, on bytes that are not UTF-8 (a path echoed back).
  r.body = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return r;
}

// --- HttpRequestParser --------------------------------------------------------

HttpRequestParser::HttpRequestParser(HttpLimits limits) : limits_(limits) {}

void HttpRequestParser::Reset() {
  state_ = State::kHead;
  started_ = false;
  keep_alive_ = true;
  expect_continue_ = false;
  head_bytes_ = scan_from_ = 0;
  head_.clear();
  line_.clear();
  remaining_ = 0;
  body_seen_ = 0;
  request_ = HttpRequest();
  error_ = Error();
}

HttpRequestParser::Result HttpRequestParser::Fail(int status, std::string message,
                                                  std::string field) {
  state_ = State::kError;
  error_ = {status, std::move(message), std::move(field)};
  return Result::kError;
}

HttpRequestParser::Result HttpRequestParser::ParseHead(std::string_view head) {
  // head ends with "\r\n\r\n".
  size_t eol = head.find("\r\n");
  std::string_view line = head.substr(0, eol);
  size_t sp1 = line.find(' ');
  size_t sp2 = sp1 == line.npos ? line.npos : line.find(' ', sp1 + 1);
  if (sp2 == line.npos || line.find(' ', sp2 + 1) != line.npos)
    return Fail(400, "request line: want METHOD TARGET HTTP/1.1", "request");
  std::string_view method = line.substr(0, sp1);
  std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  std::string_view version = line.substr(sp2 + 1);
  if (method.empty()) return Fail(400, "request line: empty method", "method");
  for (char c : method) {
    if (!IsTokenChar(c)) return Fail(400, "request line: bad method", "method");
  }
  if (version.size() != 8 || version.substr(0, 5) != "HTTP/" || version[6] != '.' ||
      version[5] < '0' || version[5] > '9' || version[7] < '0' || version[7] > '9')
    return Fail(400, "request line: bad HTTP version", "version");
  if (version[5] != '1') return Fail(505, "only HTTP/1.0 and HTTP/1.1 are served", "version");
  request_.version_minor = version[7] - '0';
  if (target.empty() || target.front() != '/')
    return Fail(400, "request line: the target must be a path starting with /", "path");
  for (char c : target) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f)
      return Fail(400, "request line: control character in the target", "path");
  }
  request_.method = std::string(method);
  request_.target = std::string(target);
  size_t q = target.find('?');
  if (!PercentDecode(target.substr(0, q), false, &request_.path) ||
      request_.path.find('\0') != std::string::npos)
    return Fail(400, "path: bad percent-encoding", "path");
  if (q != target.npos) {
    std::string_view query = target.substr(q + 1);
    size_t pos = 0;
    while (pos <= query.size()) {
      size_t amp = query.find('&', pos);
      if (amp == query.npos) amp = query.size();
      std::string_view pair = query.substr(pos, amp - pos);
      if (!pair.empty()) {
        size_t eq = pair.find('=');
        std::string k, v;
        if (!PercentDecode(pair.substr(0, eq), true, &k) ||
            (eq != pair.npos && !PercentDecode(pair.substr(eq + 1), true, &v)))
          return Fail(400, "query: bad percent-encoding", "query");
        request_.query.emplace(std::move(k), std::move(v));
      }
      pos = amp + 1;
    }
  }

  // Headers.
  size_t pos = eol + 2;
  while (pos < head.size()) {
    size_t end = head.find("\r\n", pos);
    std::string_view h = head.substr(pos, end - pos);
    pos = end + 2;
    if (h.empty()) break;  // the blank line
    if (h.front() == ' ' || h.front() == '\t')
      return Fail(400, "headers: folded header lines are not accepted", "headers");
    size_t colon = h.find(':');
    if (colon == h.npos || colon == 0)
      return Fail(400, "headers: a line without a name", "headers");
    for (char c : h.substr(0, colon)) {
      if (!IsTokenChar(c)) return Fail(400, "headers: bad header name", "headers");
    }
    std::string_view value = Trim(h.substr(colon + 1));
    for (char c : value) {
      if ((static_cast<unsigned char>(c) < 0x20 && c != '\t') || c == 0x7f)
        return Fail(400, "headers: control character in a value", std::string(h.substr(0, colon)));
    }
    if (request_.headers.size() >= limits_.max_headers)
      return Fail(431, StrCat("headers: more than ", limits_.max_headers), "headers");
    request_.headers.emplace_back(Lower(h.substr(0, colon)), std::string(value));
  }

  const std::string* connection = request_.Header("connection");
  keep_alive_ = request_.version_minor >= 1 ? !(connection && HasToken(*connection, "close"))
                                            : (connection && HasToken(*connection, "keep-alive"));
  if (const std::string* expect = request_.Header("expect")) {
    if (Lower(*expect) != "100-continue")
      return Fail(417, StrCat("Expect: '", *expect, "' is not supported"), "Expect");
    expect_continue_ = true;
  }
  if (const std::string* ce = request_.Header("content-encoding")) {
    if (Lower(*ce) != "identity")
      return Fail(
          415, StrCat("Content-Encoding: '", *ce, "' is not supported; send the body uncompressed"),
          "Content-Encoding");
  }

  // Framing: Content-Length or chunked, never both (request smuggling).
  const std::string* length = nullptr;
  const std::string* te = nullptr;
  for (const auto& [k, v] : request_.headers) {
    if (k == "content-length") {
      if (length && *length != v)
        return Fail(400, "Content-Length: given twice with different values", "Content-Length");
      length = &v;
    } else if (k == "transfer-encoding") {
      if (te) return Fail(501, "Transfer-Encoding: give it once, as chunked", "Transfer-Encoding");
      te = &v;
    }
  }
  if (te) {
    if (length)
      return Fail(400, "Content-Length and Transfer-Encoding: give one of them",
                  "Transfer-Encoding");
    if (Lower(*te) != "chunked")
      return Fail(501, StrCat("Transfer-Encoding: '", *te, "' is not supported (only chunked)"),
                  "Transfer-Encoding");
    state_ = State::kChunkSize;
    return Result::kNeedMore;
  }
  if (length) {
    if (length->empty() || length->size() > 18 ||
        !std::all_of(length->begin(), length->end(), [](char c) { return c >= '0' && c <= '9'; }))
      return Fail(400, "Content-Length: not a decimal number", "Content-Length");
    uint64_t n = std::stoull(*length);
    if (n > limits_.max_body_bytes)
      return Fail(413,
                  StrCat("body: ", n, " bytes is larger than the ", limits_.max_body_bytes,
                         " this server accepts"),
                  "body");
    remaining_ = n;
    state_ = n == 0 ? State::kDone : State::kBody;
    return n == 0 ? Result::kDone : Result::kNeedMore;
  }
  if (request_.method == "POST" || request_.method == "PUT" || request_.method == "PATCH")
    return Fail(411,
                StrCat("Content-Length: required for ", request_.method,
                       " (or Transfer-Encoding: chunked)"),
                "Content-Length");
  state_ = State::kDone;
  return Result::kDone;
}

bool HttpRequestParser::TakeLine(std::string_view data, size_t* pos, size_t max, std::string* line,
                                 bool* done) {
  *done = false;
  while (*pos < data.size()) {
    char c = data[(*pos)++];
    ++head_bytes_;
    if (c == '\n') {
      if (line->empty() || line->back() != '\r') return false;
      line->pop_back();
      *done = true;
      return true;
    }
    line->push_back(c);
    if (line->size() > max) return false;
  }
  return true;
}

HttpRequestParser::Result HttpRequestParser::Feed(std::string_view data, size_t* consumed) {
  size_t pos = 0;
  auto done = [&](Result r) {
    *consumed = pos;
    return r;
  };
  // Chunked framing may add this much to the body's bytes.
  const size_t framing_budget = limits_.max_header_bytes + 4 * limits_.max_body_bytes;
  while (true) {
    switch (state_) {
      case State::kDone:
        return done(Result::kDone);
      case State::kError:
        return done(Result::kError);
      case State::kHead: {
        // Blank lines before a request are skipped (RFC 9112 §2.2).
        while (head_.empty() && pos < data.size() && (data[pos] == '\r' || data[pos] == '\n')) {
          ++pos;
          if (++head_bytes_ > limits_.max_header_bytes)
            return done(Fail(431, "request: too many blank lines", "headers"));
        }
        if (pos == data.size()) return done(Result::kNeedMore);
        started_ = true;
        size_t old = head_.size();
        size_t room = limits_.max_header_bytes + 1 - std::min(old, limits_.max_header_bytes);
        size_t take = std::min(data.size() - pos, room);
        head_.append(data.substr(pos, take));
        size_t end = head_.find("\r\n\r\n", scan_from_);
        if (end == std::string::npos) {
          pos += take;
          scan_from_ = head_.size() >= 3 ? head_.size() - 3 : 0;
          if (head_.size() > limits_.max_header_bytes)
            return done(Fail(431,
                             StrCat("headers: larger than ", limits_.max_header_bytes, " bytes"),
                             "headers"));
          return done(Result::kNeedMore);
        }
        size_t head_len = end + 4;
        pos += head_len - old;
        head_.resize(head_len);
        head_bytes_ += head_len;
        Result r = ParseHead(head_);
        head_.clear();
        if (r != Result::kNeedMore) return done(r);
        break;
      }
      case State::kBody:
      case State::kChunkData: {
        size_t take = static_cast<size_t>(std::min<uint64_t>(remaining_, data.size() - pos));
        request_.body.append(data.substr(pos, take));
        pos += take;
        remaining_ -= take;
        body_seen_ += take;
        if (remaining_ > 0) return done(Result::kNeedMore);
        state_ = state_ == State::kBody ? State::kDone : State::kChunkDataEnd;
        break;
      }
      case State::kChunkSize:
      case State::kChunkDataEnd:
      case State::kTrailers: {
        if (head_bytes_ > framing_budget)
          return done(Fail(413, "body: chunked framing larger than this server accepts", "body"));
        bool complete = false;
        size_t max = state_ == State::kChunkSize      ? kMaxChunkLine
                     : state_ == State::kChunkDataEnd ? 1
                                                      : limits_.max_header_bytes;
        if (!TakeLine(data, &pos, max, &line_, &complete))
          return done(Fail(400, "body: malformed chunked framing", "Transfer-Encoding"));
        if (!complete) return done(Result::kNeedMore);
        std::string line = std::move(line_);
        line_.clear();
        if (state_ == State::kChunkDataEnd) {
          if (!line.empty())
            return done(Fail(400, "body: chunk data longer than its size", "Transfer-Encoding"));
          state_ = State::kChunkSize;
        } else if (state_ == State::kTrailers) {
          if (line.empty()) state_ = State::kDone;
        } else {
          size_t end = line.find(';');
          std::string_view hex = Trim(std::string_view(line).substr(0, end));
          if (hex.empty() || hex.size() > 15)
            return done(Fail(400, "body: bad chunk size", "Transfer-Encoding"));
          uint64_t size = 0;
          for (char c : hex) {
            int v = HexValue(c);
            if (v < 0) return done(Fail(400, "body: bad chunk size", "Transfer-Encoding"));
            size = size * 16 + static_cast<uint64_t>(v);
          }
          if (size == 0) {
            state_ = State::kTrailers;
          } else if (size > limits_.max_body_bytes - std::min(limits_.max_body_bytes, body_seen_)) {
            return done(Fail(413,
                             StrCat("body: larger than the ", limits_.max_body_bytes,
                                    " bytes this server accepts"),
                             "body"));
          } else {
            remaining_ = size;
            state_ = State::kChunkData;
          }
        }
        break;
      }
    }
  }
}

// --- BindHttpListener ---------------------------------------------------------

absl::StatusOr<HttpListener> BindHttpListener(std::string_view listen, std::string_view flag) {
  HttpListener l;
  auto unavailable = [&](std::string_view why) {
    return absl::UnavailableError(StrCat(flag, ": cannot bind ", listen, ": ", why));
  };
  if (listen.rfind("unix:", 0) == 0) {
    l.unix_path = std::string(listen.substr(5));
    sockaddr_un addr{};
    if (l.unix_path.empty())
      return absl::InvalidArgumentError(StrCat(flag, ": unix: needs a path"));
    if (l.unix_path.size() >= sizeof addr.sun_path)
      return absl::InvalidArgumentError(StrCat(flag, ": the socket path is too long"));
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, l.unix_path.data(), l.unix_path.size());
    ::unlink(l.unix_path.c_str());  // a stale socket from a previous run
    l.fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (l.fd < 0) return unavailable(std::strerror(errno));
    if (::bind(l.fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::listen(l.fd, SOMAXCONN) != 0) {
      std::string why = std::strerror(errno);
      ::close(l.fd);
      return unavailable(why);
    }
    return l;
  }
  auto hp = ParseHostPort(listen, flag, /*allow_port_zero=*/true);
  if (!hp.ok()) return hp.status();
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  addrinfo* res = nullptr;
  std::string port = StrCat(hp->port);
  if (int rc = ::getaddrinfo(hp->host.c_str(), port.c_str(), &hints, &res); rc != 0)
    return unavailable(gai_strerror(rc));
  std::string why = "no address";
  for (addrinfo* ai = res; ai; ai = ai->ai_next) {
    int fd =
        ::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
    if (fd < 0) continue;
    int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (::bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && ::listen(fd, SOMAXCONN) == 0) {
      sockaddr_storage bound{};
      socklen_t len = sizeof bound;
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &len);
      l.port =
          ntohs(bound.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                                            : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
      l.fd = fd;
      break;
    }
    why = std::strerror(errno);
    ::close(fd);
  }
  ::freeaddrinfo(res);
  if (l.fd < 0) return unavailable(why);
  return l;
}

// --- HttpServer ---------------------------------------------------------------

namespace {

enum class Phase { kIdle, kReading, kBusy, kDraining };

struct Conn {
  uint64_t id = 0;
  int fd = -1;
  std::string peer;  // IP address, or "" for a UNIX socket peer
  HttpRequestParser parser;
  std::string in;  // bytes read and not yet parsed (a pipelined request)
  Phase phase = Phase::kIdle;
  int64_t deadline_ms = 0;
  size_t requests = 0;
  size_t drained = 0;
  bool continue_sent = false;
  bool peer_closed = false;
  // An answer the I/O thread could not write whole without waiting: the
  // rest, which a worker writes before anything else.
  std::string unsent;
  bool unsent_keep_alive = false;
  explicit Conn(HttpLimits limits) : parser(limits) {}
};

constexpr uint64_t kListenId = 0;
constexpr uint64_t kWakeId = 1;
constexpr size_t kDrainMax = 256 * 1024;  // read and dropped after an error
constexpr int64_t kDrainMs = 1'000;
// Answers written but not yet read by the peer, beyond which a connection
// that keeps sending requests is closed rather than answered: a worker
// would otherwise block on a peer that never reads (see Serve).
constexpr int kMaxUnreadAnswerBytes = 256 * 1024;

// Best effort, never blocks: for answers the I/O thread writes itself.
void SendNow(int fd, std::string_view data) {
  (void)::send(fd, data.data(), data.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
}

std::string Serialize(const HttpResponse& r, bool head, bool keep_alive) {
  std::string out = StrCat("HTTP/1.1 ", r.status, " ", Reason(r.status), "\r\n");
  bool no_body = r.status == 204 || r.status == 304 || r.status < 200;
  if (!no_body) {
    if (!r.body.empty()) StrAppend(&out, "Content-Type: ", r.content_type, "\r\n");
    StrAppend(&out, "Content-Length: ", r.body.size(), "\r\n");
  }
  for (const auto& [k, v] : r.headers) StrAppend(&out, k, ": ", v, "\r\n");
  StrAppend(&out, "Connection: ", keep_alive ? "keep-alive" : "close", "\r\n\r\n");
  if (!no_body && !head) out += r.body;
  return out;
}

bool WriteAll(int fd, std::string_view data, int64_t timeout_ms) {
  int64_t deadline = MonotonicMicros() / 1000 + timeout_ms;
  while (!data.empty()) {
    ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n > 0) {
      data.remove_prefix(static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      int64_t left = deadline - MonotonicMicros() / 1000;
      if (left <= 0) return false;
      pollfd p{fd, POLLOUT, 0};
      ::poll(&p, 1, static_cast<int>(left));
      continue;
    }
    return false;
  }
  return true;
}

}  // namespace

struct HttpServer::Impl {
  HttpServerOptions options;
  HttpHandler handler;
  HttpAnswersInline answers_inline;
  HttpListener listener;
  int epoll_fd = -1;
  int wake_fd = -1;
  std::atomic<bool> stopping{false};
  std::thread io_thread;
  std::vector<std::thread> workers;

  std::mutex mu;  // guards conns, per_peer, queue, next_id, and every Conn's phase
  std::condition_variable work_cv;
  std::unordered_map<uint64_t, std::unique_ptr<Conn>> conns;
  std::unordered_map<std::string, int> per_peer;
  std::deque<uint64_t> queue;
  uint64_t next_id = 2;

  Gauge* m_connections = nullptr;
  Counter* m_refused_total = nullptr;
  Counter* m_refused_peer = nullptr;
  Counter* m_idle_timeouts = nullptr;
  Counter* m_request_timeouts = nullptr;
  Counter* m_bad_requests = nullptr;

  static int64_t NowMs() { return MonotonicMicros() / 1000; }

  void Arm(Conn* c) {  // mu held (so a closed fd number is never re-armed)
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLRDHUP | EPOLLONESHOT;
    ev.data.u64 = c->id;
    if (::epoll_ctl(epoll_fd, EPOLL_CTL_MOD, c->fd, &ev) != 0) {
      ::epoll_ctl(epoll_fd, EPOLL_CTL_ADD, c->fd, &ev);
    }
  }

  void CloseLocked(uint64_t id) {
    auto it = conns.find(id);
    if (it == conns.end()) return;
    Conn* c = it->second.get();
    ::close(c->fd);
    if (!c->peer.empty()) {
      auto p = per_peer.find(c->peer);
      if (p != per_peer.end() && --p->second <= 0) per_peer.erase(p);
    }
    conns.erase(it);
    if (m_connections) m_connections->Add(-1);
  }

  void Close(uint64_t id) {
    std::lock_guard<std::mutex> lock(mu);
    CloseLocked(id);
  }

  // Answers an error the server found itself, then reads and drops what
  // the peer still sends for a moment (so it reads the answer rather than a
  // reset), then closes. Called by the thread that owns `c`.
  void FailConnection(Conn* c, const HttpResponse& r) {
    if (m_bad_requests) m_bad_requests->Inc();
    SendNow(c->fd, Serialize(r, false, false));
    ::shutdown(c->fd, SHUT_WR);
    std::lock_guard<std::mutex> lock(mu);
    c->phase = Phase::kDraining;
    c->deadline_ms = NowMs() + kDrainMs;
    Arm(c);
  }

  void Accept() {
    while (true) {
      sockaddr_storage addr{};
      socklen_t len = sizeof addr;
      int fd = ::accept4(listener.fd, reinterpret_cast<sockaddr*>(&addr), &len,
                         SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) {
        if (errno == EINTR || errno == ECONNABORTED) continue;
        return;  // EAGAIN, or out of descriptors (tried again at the next event)
      }
      std::string peer;
      char buf[INET6_ADDRSTRLEN] = {};
      if (addr.ss_family == AF_INET) {
        ::inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(&addr)->sin_addr, buf, sizeof buf);
        peer = buf;
      } else if (addr.ss_family == AF_INET6) {
        ::inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6*>(&addr)->sin6_addr, buf, sizeof buf);
        peer = buf;
      }
      if (!peer.empty()) {
        int one = 1;
        ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      }
      std::unique_lock<std::mutex> lock(mu);
      const char* refused = nullptr;
      if (static_cast<int>(conns.size()) >= options.max_connections) {
        refused = "total";
      } else if (!peer.empty() && per_peer[peer] >= options.max_connections_per_peer) {
        refused = "peer";
      }
      if (refused) {
        if (!peer.empty() && per_peer[peer] == 0) per_peer.erase(peer);
        lock.unlock();
        bool by_peer = refused[0] == 'p';
        if (Counter* m = by_peer ? m_refused_peer : m_refused_total) m->Inc();
        HttpResponse r =
            HttpJsonError(503,
                          by_peer ? StrCat("connections: ", peer, " already has ",
                                           options.max_connections_per_peer, " open connections")
                                  : StrCat("connections: the server already has ",
                                           options.max_connections, " open connections"),
                          "connections");
        r.headers.emplace_back("Retry-After", "1");
        SendNow(fd, Serialize(r, false, false));
        ::close(fd);
        LogWarn("HTTP connection refused").Kv("peer", peer).Kv("limit", refused);
        continue;
      }
      auto c = std::make_unique<Conn>(options.limits);
      c->id = next_id++;
      c->fd = fd;
      c->peer = peer;
      c->deadline_ms = NowMs() + options.idle_timeout_ms;
      if (!peer.empty()) ++per_peer[peer];
      if (m_connections) m_connections->Add(1);
      Conn* raw = c.get();
      conns.emplace(raw->id, std::move(c));
      Arm(raw);
    }
  }

  // Parses what `c` holds. Returns true when a request is complete (the
  // caller dispatches it); otherwise the connection has been re-armed,
  // failed or closed.
  bool Parse(Conn* c) {
    size_t used = 0;
    auto r = c->parser.Feed(c->in, &used);
    c->in.erase(0, used);
    if (r == HttpRequestParser::Result::kDone) return true;
    if (r == HttpRequestParser::Result::kError) {
      const auto& e = c->parser.error();
      LogDebug("HTTP request refused")
          .Kv("peer", c->peer)
          .Kv("status", e.status)
          .Kv("error", e.message);
      FailConnection(c, HttpJsonError(e.status, e.message, e.field));
      return false;
    }
    if (c->peer_closed) {
      Close(c->id);
      return false;
    }
    if (c->parser.wants_continue() && !c->continue_sent) {
      c->continue_sent = true;
      SendNow(c->fd, "HTTP/1.1 100 Continue\r\n\r\n");
    }
    std::lock_guard<std::mutex> lock(mu);
    if (c->parser.started() && c->phase != Phase::kReading) {
      c->phase = Phase::kReading;
      c->deadline_ms = NowMs() + options.request_timeout_ms;
    } else if (!c->parser.started() && c->phase == Phase::kBusy) {
      // A worker's leftover was blank lines only: idle again.
      c->phase = Phase::kIdle;
      c->deadline_ms = NowMs() + options.idle_timeout_ms;
    }
    Arm(c);
    return false;
  }

  void OnReadable(Conn* c) {
    char buf[16 * 1024];
    size_t budget = 64 * 1024;  // per wake-up, so one peer cannot hog the loop
    while (budget > 0) {
      ssize_t n = ::recv(c->fd, buf, sizeof buf, 0);
      if (n > 0) {
        budget -= std::min(budget, static_cast<size_t>(n));
        if (c->phase == Phase::kDraining) {
          c->drained += static_cast<size_t>(n);
          if (c->drained > kDrainMax) {
            Close(c->id);
            return;
          }
          continue;
        }
        c->in.append(buf, static_cast<size_t>(n));
        // Never hold more than one request's worth unparsed.
        if (c->in.size() > 2 * (options.limits.max_header_bytes + options.limits.max_body_bytes))
          break;
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
      c->peer_closed = true;  // EOF or error
      break;
    }
    if (c->phase == Phase::kDraining) {
      if (c->peer_closed) {
        Close(c->id);
      } else {
        std::lock_guard<std::mutex> lock(mu);
        Arm(c);
      }
      return;
    }
    if (c->in.empty() && c->peer_closed && !c->parser.started()) {
      Close(c->id);
      return;
    }
    if (!Parse(c)) return;
    if (answers_inline && answers_inline(c->parser.request())) {
      AnswerInline(c);
    } else {
      Dispatch(c);
    }
  }

  // On the I/O thread: answers the request `c` holds and writes what the
  // socket takes without waiting; the rest, or a pipelined request behind
  // it, goes to a worker.
  void AnswerInline(Conn* c) {
    {
      std::lock_guard<std::mutex> lock(mu);
      c->phase = Phase::kBusy;  // as for a worker: no deadline or event touches it
    }
    if (!PeerReadsItsAnswers(c)) return;
    bool keep = false;
    std::string out = Answer(c, &keep);
    ssize_t n = ::send(c->fd, out.data(), out.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n == static_cast<ssize_t>(out.size())) {
      if (Next(c, keep)) Dispatch(c);
      return;
    }
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
      Close(c->id);
      return;
    }
    c->unsent = out.substr(n > 0 ? static_cast<size_t>(n) : 0);
    c->unsent_keep_alive = keep;
    Dispatch(c);
  }

  void Dispatch(Conn* c) {
    std::lock_guard<std::mutex> lock(mu);
    c->phase = Phase::kBusy;
    queue.push_back(c->id);
    work_cv.notify_one();
  }

  void ExpireDeadlines() {
    int64_t now = NowMs();
    std::vector<std::pair<Conn*, Phase>> expired;
    {
      std::lock_guard<std::mutex> lock(mu);
      for (auto& [id, c] : conns) {
        if (c->phase != Phase::kBusy && c->deadline_ms <= now) {
          expired.emplace_back(c.get(), c->phase);
          c->phase = Phase::kBusy;  // ours now: no worker, no event touches it
        }
      }
    }
    for (auto [c, phase] : expired) {
      if (phase == Phase::kReading) {
        if (m_request_timeouts) m_request_timeouts->Inc();
        LogInfo("HTTP request not complete in time; closing")
            .Kv("peer", c->peer)
            .Kv("timeout_ms", options.request_timeout_ms);
        SendNow(c->fd, Serialize(HttpJsonError(408,
                                               StrCat("request: not received whole within ",
                                                      options.request_timeout_ms, " ms"),
                                               "request"),
                                 false, false));
      } else if (phase == Phase::kIdle && m_idle_timeouts) {
        m_idle_timeouts->Inc();
      }
      Close(c->id);
    }
  }

  void IoLoop() {
    epoll_event events[64];
    int64_t next_scan = 0;
    while (!stopping.load()) {
      int n = ::epoll_wait(epoll_fd, events, 64, 100);
      for (int i = 0; i < n; ++i) {
        uint64_t id = events[i].data.u64;
        if (id == kListenId) {
          Accept();
          continue;
        }
        if (id == kWakeId) {
          uint64_t v;
          (void)!::read(wake_fd, &v, sizeof v);
          continue;
        }
        Conn* c = nullptr;
        {
          std::lock_guard<std::mutex> lock(mu);
          auto it = conns.find(id);
          if (it != conns.end() && it->second->phase != Phase::kBusy) c = it->second.get();
        }
        if (c) OnReadable(c);
      }
      int64_t now = NowMs();
      if (now >= next_scan) {
        ExpireDeadlines();
        next_scan = now + 100;
      }
    }
  }

  void Work() {
    while (true) {
      uint64_t id;
      Conn* c;
      {
        std::unique_lock<std::mutex> lock(mu);
        work_cv.wait(lock, [&] { return !queue.empty() || stopping.load(); });
        if (queue.empty()) return;
        id = queue.front();
        queue.pop_front();
        c = conns.at(id).get();  // a busy connection is closed only by its owner
      }
      Serve(c);
    }
  }

  // On a worker: the rest of an answer the I/O thread began, then the
  // request `c` holds and every complete pipelined one behind it.
  void Serve(Conn* c) {
    if (!c->unsent.empty()) {
      bool written = WriteAll(c->fd, c->unsent, options.write_timeout_ms);
      c->unsent.clear();
      if (!Next(c, written && c->unsent_keep_alive)) return;
    }
    while (PeerReadsItsAnswers(c)) {
      bool keep = false;
      std::string out = Answer(c, &keep);
      bool written = WriteAll(c->fd, out, options.write_timeout_ms);
      if (!Next(c, written && keep)) return;
    }
  }

  // A peer that sends requests but does not read the answers (they pile up
  // in the socket) would hold a worker in WriteAll: closed instead.
  bool PeerReadsItsAnswers(Conn* c) {
    int unread = 0;
    if (::ioctl(c->fd, TIOCOUTQ, &unread) == 0 && unread > kMaxUnreadAnswerBytes) {
      LogWarn("HTTP peer does not read its answers; closing").Kv("peer", c->peer);
      Close(c->id);
      return false;
    }
    return true;
  }

  // The handler's answer to the request `c` holds, serialized;
  // *keep_alive: whether the connection stays open after it.
  std::string Answer(Conn* c, bool* keep_alive) {
    HttpRequest& req = c->parser.request();
    HttpResponse res;
    try {
      res = handler(req);
    } catch (const std::exception& e) {
      LogError("HTTP handler failed").Kv("path", req.path).Kv("error", e.what());
      res = HttpJsonError(500, "internal error");
    }
    ++c->requests;
    *keep_alive = c->parser.keep_alive() && !c->peer_closed && !stopping.load() &&
                  c->requests < options.keep_alive_max_requests;
    return Serialize(res, req.method == "HEAD", *keep_alive);
  }

  // After an answer: closes the connection unless `keep`; otherwise true
  // when a pipelined request is complete (the caller serves it), else the
  // connection waits for more (re-armed, or failed by Parse).
  bool Next(Conn* c, bool keep) {
    if (!keep) {
      Close(c->id);
      return false;
    }
    c->parser.Reset();
    c->continue_sent = false;
    if (!c->in.empty()) return Parse(c);
    std::lock_guard<std::mutex> lock(mu);
    c->phase = Phase::kIdle;
    c->deadline_ms = NowMs() + options.idle_timeout_ms;
    Arm(c);
    return false;
  }
};

HttpServer::HttpServer() = default;
HttpServer::~HttpServer() { Stop(); }

int HttpServer::port() const { return impl_ ? impl_->listener.port : 0; }

absl::Status HttpServer::Start(const HttpServerOptions& options, HttpHandler handler,
                               MetricsRegistry* metrics, HttpAnswersInline answers_inline) {
  Stop();
  auto listener = BindHttpListener(options.listen, options.flag);
  if (!listener.ok()) return listener.status();
  impl_ = std::make_unique<Impl>();
  Impl& s = *impl_;
  s.options = options;
  s.options.threads = std::max(1, options.threads);
  s.handler = std::move(handler);
  s.answers_inline = std::move(answers_inline);
  s.listener = *listener;
  s.epoll_fd = ::epoll_create1(EPOLL_CLOEXEC);
  s.wake_fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = kListenId;
  ::epoll_ctl(s.epoll_fd, EPOLL_CTL_ADD, s.listener.fd, &ev);
  ev.data.u64 = kWakeId;
  ::epoll_ctl(s.epoll_fd, EPOLL_CTL_ADD, s.wake_fd, &ev);
  if (metrics && !options.metrics_prefix.empty()) {
    const std::string& p = options.metrics_prefix;
    s.m_connections = metrics->AddGauge(StrCat(p, "_connections"), "Open HTTP connections");
    std::string refused = StrCat(p, "_connections_refused_total");
    const char* help = "HTTP connections refused at the connection limits";
    s.m_refused_total = metrics->AddCounter(refused, help, "limit=\"total\"");
    s.m_refused_peer = metrics->AddCounter(refused, help, "limit=\"peer\"");
    std::string timeouts = StrCat(p, "_timeouts_total");
    help = "HTTP connections closed at a deadline (idle: no request; request: not read whole)";
    s.m_idle_timeouts = metrics->AddCounter(timeouts, help, "phase=\"idle\"");
    s.m_request_timeouts = metrics->AddCounter(timeouts, help, "phase=\"request\"");
    s.m_bad_requests = metrics->AddCounter(
        StrCat(p, "_bad_requests_total"),
        "HTTP requests refused before routing (framing, size, encoding, headers)");
  }
  s.io_thread = std::thread([&s] { s.IoLoop(); });
  for (int i = 0; i < s.options.threads; ++i) s.workers.emplace_back([&s] { s.Work(); });
  return absl::OkStatus();
}

void HttpServer::Stop() {
  if (!impl_) return;
  Impl& s = *impl_;
  s.stopping.store(true);
  uint64_t one = 1;
  (void)!::write(s.wake_fd, &one, sizeof one);
  if (s.io_thread.joinable()) s.io_thread.join();
  ::close(s.listener.fd);
  {
    std::lock_guard<std::mutex> lock(s.mu);
    s.work_cv.notify_all();
  }
  for (auto& w : s.workers) w.join();  // answer the requests already read
  {
    std::lock_guard<std::mutex> lock(s.mu);
    std::vector<uint64_t> ids;
    for (auto& [id, c] : s.conns) ids.push_back(id);
    for (uint64_t id : ids) s.CloseLocked(id);
  }
  ::close(s.epoll_fd);
  ::close(s.wake_fd);
  if (!s.listener.unix_path.empty()) ::unlink(s.listener.unix_path.c_str());
  impl_.reset();
}

}  // namespace turnbroker
