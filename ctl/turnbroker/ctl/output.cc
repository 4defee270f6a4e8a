#include "turnbroker/ctl/output.h"

#include <vector>

#include "turnbroker/common/strings.h"

namespace turnbroker::ctl {

json CredentialJson(const v1::Credential& c) {
  json j = {{"username", c.username()},
            {"realm", c.realm()},
            {"expires_at_ms", c.expires_at_ms()},
            {"issued_at_ms", c.issued_at_ms()}};
  if (!c.subscriber().empty()) j["subscriber"] = c.subscriber();
  if (!c.issuer().empty()) j["issuer"] = c.issuer();
  if (c.scopes_size() > 0)
    j["scopes"] = std::vector<std::string>(c.scopes().begin(), c.scopes().end());
  return j;
}

json EventJson(const v1::Event& e) {
  json j = {{"revision", e.revision()}};
  if (e.has_put()) {
    j["type"] = "put";
    const json credential = CredentialJson(e.put());  // outlives the loop over its items
    for (const auto& [k, v] : credential.items()) j[k] = v;
  } else if (e.has_revoke()) {
    j["type"] = "revoke";
    const auto& sel = e.revoke().selector();
    if (sel.has_username()) {
      j["username"] = sel.username().username();
      if (!sel.username().realm().empty()) j["realm"] = sel.username().realm();
    } else if (sel.by_case() == v1::Selector::kSubscriber) {
      j["subscriber"] = sel.subscriber();
    } else if (sel.by_case() == v1::Selector::kIssuer) {
      j["issuer"] = sel.issuer();
    }
    j["revoked"] = e.revoke().credentials_size();
    if (!e.revoke().reason().empty()) j["reason"] = e.revoke().reason();
  } else if (e.has_secret()) {
    j["type"] = "secret";
    const json secret = SecretJson(e.secret(), false);
    for (const auto& [k, v] : secret.items()) j[k] = v;
  } else if (e.has_secret_retired()) {
    j["type"] = "secret-retired";
    j["realm"] = e.secret_retired().realm();
    j["id"] = e.secret_retired().id();
  } else {
    j["type"] = "unknown";
  }
  return j;
}

std::string SecretStateText(v1::SecretState state) {
  // "SECRET_STATE_ACTIVE" -> "ACTIVE".
  std::string_view name = v1::SecretState_Name(state);
  constexpr std::string_view kPrefix = "SECRET_STATE_";
  if (name.starts_with(kPrefix)) name.remove_prefix(kPrefix.size());
  return std::string(name);
}

json SecretJson(const v1::SharedSecret& s, bool show_secret) {
  json j = {{"realm", s.realm()},
            {"id", s.id()},
            {"state", SecretStateText(s.state())},
            {"added_at_ms", s.added_at_ms()}};
  if (s.activated_at_ms() != 0) j["activated_at_ms"] = s.activated_at_ms();
  if (s.superseded_at_ms() != 0) j["superseded_at_ms"] = s.superseded_at_ms();
  if (s.not_before_ms() != 0) j["not_before_ms"] = s.not_before_ms();
  if (s.expires_at_ms() != 0) j["expires_at_ms"] = s.expires_at_ms();
  j["max_credential_ttl_ms"] = s.max_credential_ttl_ms();
  if (show_secret) j["secret"] = s.secret();
  return j;
}

std::string KeyValueLine(const json& object) {
  std::string out;
  for (auto it = object.begin(); it != object.end(); ++it) {
    if (!out.empty()) out += ' ';
    std::string v = it->is_string() ? it->get<std::string>() : it->dump();
    const bool quote = v.empty() || v.find(' ') != std::string::npos;
    StrAppend(&out, it.key(), "=", quote ? "\"" + v + "\"" : v);
  }
  return out;
}

void Printer::Print(const json& object) const {
  *out_ << (json_ ? object.dump() : KeyValueLine(object)) << std::endl;
}

}  // namespace turnbroker::ctl
