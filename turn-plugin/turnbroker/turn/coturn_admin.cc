#include "turnbroker/turn/coturn_admin.h"

#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

#include "turnbroker/common/strings.h"

namespace turnbroker::turn {
namespace {

constexpr std::string_view kPasswordPrompt = "Enter password:";

bool EndsWithPrompt(const std::string& out) {
  return out.size() >= 2 && out.compare(out.size() - 2, 2, "> ") == 0;
}

bool LoginDone(const std::string& out) {
  return EndsWithPrompt(out) || out.find(kPasswordPrompt) != std::string::npos;
}

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\r' || s.back() == '\t'))
    s.remove_suffix(1);
  return s;
}

// Characters a CLI argument may hold: one line, one word.
bool SafeArgument(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (c == ' ' || c == '\t' || c == '\r' || c == '\n' || static_cast<unsigned char>(c) < 0x20 ||
        static_cast<unsigned char>(c) >= 0x7f)
      return false;
  }
  return true;
}

}  // namespace

std::string StripTelnet(std::string_view in) {
  constexpr unsigned char kIac = 255, kSb = 250, kSe = 240, kWill = 251, kDont = 254;
  std::string out;
  out.reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    auto c = static_cast<unsigned char>(in[i]);
    if (c != kIac) {
      out.push_back(in[i]);
      continue;
    }
    if (i + 1 >= in.size()) break;
    auto cmd = static_cast<unsigned char>(in[i + 1]);
    if (cmd == kIac) {  // an escaped 255
      out.push_back(in[i]);
      ++i;
    } else if (cmd >= kWill && cmd <= kDont) {
      i += 2;  // IAC WILL/WONT/DO/DONT <option>
    } else if (cmd == kSb) {
      // Sub-negotiation up to IAC SE.
      size_t j = i + 2;
      while (j + 1 < in.size() && !(static_cast<unsigned char>(in[j]) == kIac &&
                                    static_cast<unsigned char>(in[j + 1]) == kSe))
        ++j;
      i = j + 1;
    } else {
      ++i;  // a two-byte command
    }
  }
  return out;
}

std::vector<std::string> ParseSessionIds(std::string_view output, std::string_view realm,
                                         std::string_view username) {
  std::vector<std::string> ids;
  std::string id;  // the block being read; empty: not one of the user's
  bool realm_ok = true;
  auto flush = [&] {
    if (!id.empty() && realm_ok) ids.push_back(id);
    id.clear();
    realm_ok = true;
  };
  size_t start = 0;
  while (start <= output.size()) {
    size_t end = output.find('\n', start);
    if (end == output.npos) end = output.size();
    std::string_view line = Trim(output.substr(start, end - start));
    start = end + 1;
    // "7) id=001000000000000003, user <alice>:"
    size_t at = line.find(") id=");
    if (at != line.npos) {
      flush();
      std::string_view rest = line.substr(at + 5);
      size_t comma = rest.find(", user <");
      if (comma == rest.npos) continue;
      std::string_view sid = rest.substr(0, comma);
      std::string_view user = rest.substr(comma + 8);
      if (user.size() < 2 || user.substr(user.size() - 2) != ">:") continue;
      user.remove_suffix(2);
      bool digits = !sid.empty();
      for (char c : sid) digits = digits && c >= '0' && c <= '9';
      if (digits && user == username) id = std::string(sid);
      continue;
    }
    if (!id.empty() && line.substr(0, 7) == "realm: ") realm_ok = line.substr(7) == realm;
  }
  flush();
  return ids;
}

CoturnCli::CoturnCli(CoturnCliOptions options) : options_(std::move(options)) {}

CoturnCli::~CoturnCli() { Close(); }

void CoturnCli::Close() {
  if (fd_ >= 0) close(fd_);
  fd_ = -1;
}

absl::Status CoturnCli::Connect() {
  if (fd_ >= 0) return absl::OkStatus();
  const std::string where = options_.address.ToString();
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  std::string port = StrCat(options_.address.port);
  if (int rc = getaddrinfo(options_.address.host.c_str(), port.c_str(), &hints, &found); rc != 0) {
    return absl::UnavailableError(StrCat("coturn cli ", where, ": ", gai_strerror(rc)));
  }
  int fd = socket(found->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) {
    freeaddrinfo(found);
    return absl::UnavailableError(StrCat("coturn cli: socket: ", std::strerror(errno)));
  }
  int rc = connect(fd, found->ai_addr, found->ai_addrlen);
  freeaddrinfo(found);
  if (rc != 0 && errno == EINPROGRESS) {
    pollfd p{fd, POLLOUT, 0};
    rc = poll(&p, 1, options_.timeout_ms) == 1 ? 0 : -1;
    int err = 0;
    socklen_t len = sizeof err;
    if (rc == 0 && (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0)) {
      errno = err;
      rc = -1;
    } else if (rc != 0) {
      errno = ETIMEDOUT;
    }
  }
  if (rc != 0) {
    std::string why = std::strerror(errno);
    close(fd);
    return absl::UnavailableError(StrCat("coturn cli ", where, ": connect: ", why));
  }
  fd_ = fd;
  auto greeting = ReadUntil(LoginDone);
  if (!greeting.ok()) return greeting.status();
  if (greeting->find(kPasswordPrompt) == std::string::npos) return absl::OkStatus();
  if (options_.password.empty()) {
    Close();
    return absl::PermissionDeniedError(
        StrCat("coturn cli ", where, ": asks for a password (--coturn-admin-password)"));
  }
  if (auto s = Send(options_.password); !s.ok()) return s;
  auto answer = ReadUntil(LoginDone);
  if (!answer.ok()) return answer.status();
  if (!EndsWithPrompt(*answer)) {
    Close();
    return absl::PermissionDeniedError(StrCat("coturn cli ", where, ": password refused"));
  }
  return absl::OkStatus();
}

absl::Status CoturnCli::Send(std::string_view line) {
  std::string data = StrCat(line, "\r\n");
  size_t off = 0;
  int64_t deadline = NowMs() + options_.timeout_ms;
  while (off < data.size()) {
    ssize_t n = send(fd_, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (n > 0) {
      off += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) && NowMs() < deadline) {
      pollfd p{fd_, POLLOUT, 0};
      poll(&p, 1, 50);
      continue;
    }
    std::string why = n < 0 ? std::strerror(errno) : "timeout";
    Close();
    return absl::UnavailableError(StrCat("coturn cli: send: ", why));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> CoturnCli::ReadUntil(bool (*done)(const std::string&)) {
  std::string raw;
  int64_t deadline = NowMs() + options_.timeout_ms;
  char buf[4096];
  for (;;) {
    std::string text = StripTelnet(raw);
    if (done(text)) return text;
    int64_t left = deadline - NowMs();
    if (left <= 0) {
      Close();
      return absl::UnavailableError("coturn cli: no prompt within the timeout");
    }
    pollfd p{fd_, POLLIN, 0};
    int rc = poll(&p, 1, static_cast<int>(left));
    if (rc < 0 && errno == EINTR) continue;
    if (rc <= 0) continue;  // timeout: checked above
    ssize_t n = recv(fd_, buf, sizeof buf, 0);
    if (n > 0) {
      raw.append(buf, static_cast<size_t>(n));
    } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
      std::string why = n == 0 ? "connection closed" : std::strerror(errno);
      Close();
      return absl::UnavailableError(StrCat("coturn cli: ", why));
    }
  }
}

absl::StatusOr<std::string> CoturnCli::Run(std::string_view line) {
  if (auto s = Connect(); !s.ok()) return s;
  if (auto s = Send(line); !s.ok()) return s;
  return ReadUntil(EndsWithPrompt);
}

absl::StatusOr<std::vector<std::string>> CoturnCli::Sessions(std::string_view realm,
                                                             std::string_view username) {
  if (!SafeArgument(username)) {
    return absl::InvalidArgumentError("coturn cli: username not usable as a CLI argument");
  }
  auto out = Run(StrCat("ps ", username));
  if (!out.ok()) return out.status();
  return ParseSessionIds(*out, realm, username);
}

absl::Status CoturnCli::Cancel(std::string_view session_id) {
  if (!SafeArgument(session_id)) return absl::InvalidArgumentError("coturn cli: bad session id");
  auto out = Run(StrCat("cs ", session_id));
  return out.ok() ? absl::OkStatus() : out.status();
}

}  // namespace turnbroker::turn
