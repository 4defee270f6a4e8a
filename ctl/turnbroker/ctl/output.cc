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
  } else {
    j["type"] = "unknown";
  }
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
