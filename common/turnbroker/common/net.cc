#include "turnbroker/common/net.h"

#include <unistd.h>

#include <charconv>

#include "turnbroker/common/strings.h"

namespace turnbroker {

std::string HostPort::ToString() const {
  if (host.find(':') != std::string::npos) {
    return StrCat("[", host, "]:", port);
  }
  return StrCat(host, ":", port);
}

absl::StatusOr<HostPort> ParseHostPort(std::string_view text, std::string_view field,
                                       bool allow_port_zero) {
  auto bad = [&](std::string_view why) {
    return absl::InvalidArgumentError(StrCat(field, ": '", text, "' ", why, " (want HOST:PORT)"));
  };
  HostPort hp;
  std::string_view port;
  if (!text.empty() && text.front() == '[') {
    size_t close = text.find(']');
    if (close == text.npos || close + 1 >= text.size() || text[close + 1] != ':')
      return bad("is not [IPV6]:PORT");
    hp.host = std::string(text.substr(1, close - 1));
    port = text.substr(close + 2);
  } else {
    size_t colon = text.rfind(':');
    if (colon == text.npos) return bad("has no port");
    hp.host = std::string(text.substr(0, colon));
    if (hp.host.find(':') != std::string::npos) return bad("has an IPv6 host without brackets");
    port = text.substr(colon + 1);
  }
  if (hp.host.empty()) return bad("has no host");
  uint32_t p = 0;
  auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
  if (port.empty() || ec != std::errc() || ptr != port.data() + port.size() || p > 65535)
    return bad("has a bad port");
  if (p == 0 && !allow_port_zero) return bad("has port 0");
  hp.port = static_cast<uint16_t>(p);
  return hp;
}

absl::StatusOr<std::vector<HostPort>> ParseHostPortList(std::string_view text,
                                                        std::string_view field) {
  std::vector<HostPort> out;
  while (!text.empty()) {
    size_t comma = text.find(',');
    std::string_view item = text.substr(0, comma);
    text = comma == text.npos ? std::string_view() : text.substr(comma + 1);
    if (item.empty()) continue;
    auto hp = ParseHostPort(item, field);
    if (!hp.ok()) return hp.status();
    out.push_back(*std::move(hp));
  }
  if (out.empty()) {
    return absl::InvalidArgumentError(StrCat(field, ": give at least one HOST:PORT"));
  }
  return out;
}

bool IsLoopbackHost(std::string_view host) {
  return host == "localhost" || host == "::1" || host.starts_with("127.");
}

std::string HostNameAsId(std::string_view prefix, size_t max_chars, std::string_view fallback) {
  char host[256] = {};
  if (gethostname(host, sizeof host - 1) != 0 || host[0] == '\0') return std::string(fallback);
  std::string id(prefix);
  for (const char* p = host; *p && id.size() < prefix.size() + max_chars; ++p) {
    const char c = *p;
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '-';
    id.push_back(ok ? c : '-');
  }
  return id;
}

}  // namespace turnbroker
