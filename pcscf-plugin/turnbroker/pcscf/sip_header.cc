#include "turnbroker/pcscf/sip_header.h"

#include <charconv>

#include "turnbroker/common/strings.h"

namespace turnbroker::pcscf {
namespace {

absl::Status Invalid(std::string_view field, std::string_view problem) {
  return absl::InvalidArgumentError(StrCat(field, ": ", problem));
}

// Characters allowed inside a quoted value: printable ASCII without the
// ones a simple `split(';')` / `split(' ')` parser or a comma-splitting SIP
// stack would trip over.
bool IsSafe(char c) {
  return c > 0x20 && c < 0x7f && c != '"' && c != '\\' && c != ';' && c != ',';
}

absl::Status CheckQuotable(std::string_view value, std::string_view field) {
  if (value.empty()) return Invalid(field, "must not be empty");
  for (size_t i = 0; i < value.size(); ++i) {
    if (!IsSafe(value[i])) {
      return Invalid(field, StrCat("character at offset ", i,
                                   " cannot be carried in the header (no "
                                   "quote, backslash, ';', ',', space or "
                                   "control character)"));
    }
  }
  return absl::OkStatus();
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool ParseInt(std::string_view s, int64_t* out) {
  if (s.empty()) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && p == s.data() + s.size() && *out >= 0;
}

}  // namespace

absl::Status ValidateIceServerUrl(std::string_view url, std::string_view field) {
  if (auto s = CheckQuotable(url, field); !s.ok()) return s;
  size_t colon = url.find(':');
  std::string scheme = AsciiLower(url.substr(0, colon == url.npos ? 0 : colon));
  if (scheme != "turn" && scheme != "turns" && scheme != "stun" && scheme != "stuns") {
    return Invalid(field, "must start with turn:, turns:, stun: or stuns:");
  }
  std::string_view rest = url.substr(colon + 1);
  if (rest.empty() || rest.front() == '?' || rest.front() == '/') {
    return Invalid(field, "has no host after the scheme");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> FormatTurnCredentialHeader(const TurnCredentialHeader& h) {
  if (auto s = CheckQuotable(h.username, "username"); !s.ok()) return s;
  if (auto s = CheckQuotable(h.password, "password"); !s.ok()) return s;
  if (h.ttl_s < 0) return Invalid("ttl", "must not be negative");
  if (h.expires_at_s <= 0) return Invalid("expires_at", "must be positive");
  if (h.urls.empty()) return Invalid("urls", "must have at least one URL");
  std::string urls;
  for (size_t i = 0; i < h.urls.size(); ++i) {
    if (auto s = ValidateIceServerUrl(h.urls[i], StrCat("urls[", i, "]")); !s.ok()) return s;
    if (i > 0) urls.push_back(' ');
    urls += h.urls[i];
  }
  return StrCat("username=\"", h.username, "\";password=\"", h.password, "\";ttl=", h.ttl_s,
                ";expires_at=", h.expires_at_s, ";urls=\"", urls, "\"");
}

absl::StatusOr<TurnCredentialHeader> ParseTurnCredentialHeader(std::string_view value) {
  TurnCredentialHeader h;
  bool have_ttl = false, have_expires = false, have_urls = false;
  while (!value.empty()) {
    size_t semi = value.find(';');
    std::string_view param = Trim(value.substr(0, semi));
    value = semi == value.npos ? std::string_view() : value.substr(semi + 1);
    if (param.empty()) continue;
    size_t eq = param.find('=');
    std::string name = AsciiLower(Trim(param.substr(0, eq)));
    std::string_view v = eq == param.npos ? std::string_view() : Trim(param.substr(eq + 1));
    if (v.size() >= 2 && v.front() == '"' && v.back() == '"') {
      v = v.substr(1, v.size() - 2);
    }
    if (name == "username") {
      h.username = std::string(v);
    } else if (name == "password") {
      h.password = std::string(v);
    } else if (name == "ttl") {
      if (!ParseInt(v, &h.ttl_s)) return Invalid("ttl", "is not a number");
      have_ttl = true;
    } else if (name == "expires_at") {
      if (!ParseInt(v, &h.expires_at_s)) return Invalid("expires_at", "is not a number");
      have_expires = true;
    } else if (name == "urls") {
      have_urls = true;
      while (!v.empty()) {
        size_t sp = v.find(' ');
        std::string_view url = v.substr(0, sp);
        v = sp == v.npos ? std::string_view() : v.substr(sp + 1);
        if (!url.empty()) h.urls.emplace_back(url);
      }
    }
  }
  if (h.username.empty()) return Invalid("username", "is missing");
  if (h.password.empty()) return Invalid("password", "is missing");
  if (!have_ttl) return Invalid("ttl", "is missing");
  if (!have_expires) return Invalid("expires_at", "is missing");
  if (!have_urls || h.urls.empty()) return Invalid("urls", "is missing");
  return h;
}

}  // namespace turnbroker::pcscf
