#include "turnbroker/pcscf/agent_api.h"

#include <nlohmann/json.hpp>

#include "turnbroker/common/clock.h"
#include "turnbroker/common/log.h"
#include "turnbroker/common/status.h"
#include "turnbroker/common/strings.h"
#include "turnbroker/pcscf/sip_header.h"

namespace turnbroker::pcscf {
namespace {

using json = nlohmann::json;

constexpr std::string_view kCredentials = "/v1/credentials";
constexpr int64_t kHealthTimeoutMs = 500;

// Appends `s` as a JSON string. What the credential answer writes this way
// (minted usernames and passwords, the formatted header) is ASCII; a string
// with any other byte goes through nlohmann-json, so the answer is JSON
// whatever it holds.
void AppendJsonString(std::string* out, std::string_view s) {
  for (unsigned char ch : s) {
    if (ch >= 0x80) {
      out->append(json(std::string(s)).dump(-1, ' ', false, json::error_handler_t::replace));
      return;
    }
  }
  out->push_back('"');
  for (char ch : s) {
    if (ch == '"' || ch == '\\') {
      out->push_back('\\');
      out->push_back(ch);
    } else if (static_cast<unsigned char>(ch) < 0x20) {
      static constexpr char kHex[] = "0123456789abcdef";
      out->append("\\u00");
      out->push_back(kHex[(ch >> 4) & 0xf]);
      out->push_back(kHex[ch & 0xf]);
    } else {
      out->push_back(ch);
    }
  }
  out->push_back('"');
}

int HttpStatusOf(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kInvalidArgument:
      return 400;
    case absl::StatusCode::kNotFound:
      return 404;
    case absl::StatusCode::kAlreadyExists:
    case absl::StatusCode::kFailedPrecondition:
      return 409;
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kDeadlineExceeded:
    case absl::StatusCode::kResourceExhausted:
    case absl::StatusCode::kAborted:
      return 503;
    case absl::StatusCode::kPermissionDenied:
    case absl::StatusCode::kUnauthenticated:
      return 502;
    default:
      return 500;
  }
}

// Errors from the Issuer read "<field>: <problem>"; the field is what a
// caller fixes.
std::string FieldOf(std::string_view message) {
  size_t colon = message.find(": ");
  if (colon == message.npos || colon > 40) return "";
  std::string_view f = message.substr(0, colon);
  for (char c : f) {
    if (c == ' ') return "";
  }
  return std::string(f);
}

ApiResponse FromStatus(const absl::Status& s) {
  int status = HttpStatusOf(s.code());
  std::string message(s.message());
  std::string field = status == 400 || status == 404 ? FieldOf(message) : "";
  ApiResponse r = AgentApi::Error(status, message, field);
  if (status == 503) r.headers.emplace_back("Retry-After", "1");
  return r;
}

// Parses a JSON object body and checks that it has only `allowed` members.
// An empty body is an empty object when `empty_ok`.
absl::StatusOr<json> ParseObject(std::string_view body,
                                 std::initializer_list<std::string_view> allowed, bool empty_ok) {
  if (body.empty() && empty_ok) return json::object();
  json j = json::parse(body.begin(), body.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return absl::InvalidArgumentError("body: is not valid JSON");
  if (!j.is_object()) return absl::InvalidArgumentError("body: must be a JSON object");
  for (auto it = j.begin(); it != j.end(); ++it) {
    bool known = false;
    for (auto a : allowed) known |= it.key() == a;
    if (!known) {
      return absl::InvalidArgumentError(StrCat(
          it.key(), ": unknown field (allowed: ",
          [&] {
            std::string s;
            for (auto a : allowed) StrAppend(&s, s.empty() ? "" : ", ", a);
            return s;
          }(),
          ")"));
    }
  }
  return j;
}

absl::Status GetString(const json& j, const char* name, bool required, std::string* out) {
  auto it = j.find(name);
  if (it == j.end() || it->is_null()) {
    if (required) return absl::InvalidArgumentError(StrCat(name, ": is required"));
    return absl::OkStatus();
  }
  if (!it->is_string()) return absl::InvalidArgumentError(StrCat(name, ": must be a string"));
  *out = it->get<std::string>();
  return absl::OkStatus();
}

absl::Status GetTtl(const json& j, int64_t* out) {
  auto it = j.find("ttl");
  if (it == j.end() || it->is_null()) return absl::OkStatus();
  if (!it->is_number_integer())
    return absl::InvalidArgumentError("ttl: must be an integer number of seconds");
  if (it->is_number_unsigned() && it->get<uint64_t>() > (1ULL << 40))
    return absl::InvalidArgumentError("ttl: is too large");
  *out = it->get<int64_t>();
  if (*out <= 0) return absl::InvalidArgumentError("ttl: must be positive");
  return absl::OkStatus();
}

}  // namespace

struct AgentApi::Metrics {
  enum Route { kIssue, kRefresh, kRevoke, kHealth, kMetrics, kOther, kRoutes };
  explicit Metrics(MetricsRegistry* r) {
    static constexpr const char* kNames[kRoutes] = {"issue",  "refresh", "revoke",
                                                    "health", "metrics", "other"};
    for (int i = 0; i < kRoutes; ++i) {
      for (int c = 0; c < 4; ++c) {
        static constexpr const char* kClasses[] = {"2xx", "4xx", "5xx", "other"};
        requests[i][c] = r->AddCounter(
            "pcscf_turn_agent_requests_total", "HTTP requests by route and status class",
            StrCat("route=\"", kNames[i], "\",code=\"", kClasses[c], "\""));
      }
    }
    for (int i = 0; i < kRoutes; ++i) {
      latency[i] =
          r->AddHistogram("pcscf_turn_agent_request_seconds", "HTTP request latency by route",
                          StrCat("route=\"", kNames[i], "\""));
    }
  }
  void Observe(Route route, int status, int64_t micros) {
    int c = status >= 200 && status < 300   ? 0
            : status >= 400 && status < 500 ? 1
            : status >= 500                 ? 2
                                            : 3;
    requests[route][c]->Inc();
    latency[route]->ObserveMicros(micros);
  }
  Counter* requests[kRoutes][4];
  Histogram* latency[kRoutes];
};

AgentApi::AgentApi(Issuer* issuer, MetricsRegistry* metrics)
    : issuer_(issuer), registry_(metrics), metrics_(std::make_unique<Metrics>(metrics)) {
  // The fields every credential answer carries unchanged, serialized once.
  std::string fixed = json({{"uris", issuer_->options().turn_uris},
                            {"header_name", std::string(kTurnCredentialHeader)}})
                          .dump();
  fixed_fields_ = fixed.substr(1, fixed.size() - 2);  // without the braces
}

AgentApi::~AgentApi() = default;

ApiResponse AgentApi::Error(int status, std::string_view message, std::string_view field) {
  return HttpJsonError(status, message, field);
}

ApiResponse AgentApi::Handle(const ApiRequest& request) {
  int64_t start = MonotonicMicros();
  const std::string& m = request.method;
  const std::string_view path = request.path;
  Metrics::Route route = Metrics::kOther;
  ApiResponse response;
  auto not_allowed = [](std::string allow) {
    ApiResponse r = Error(405, StrCat("method not allowed; allowed: ", allow), "method");
    r.headers.emplace_back("Allow", std::move(allow));
    return r;
  };
  if (path == "/healthz") {
    route = Metrics::kHealth;
    response = m == "GET" || m == "HEAD" ? Health() : not_allowed("GET");
  } else if (path == "/metrics") {
    route = Metrics::kMetrics;
    if (m == "GET" || m == "HEAD") {
      response.content_type = "text/plain; version=0.0.4";
      response.body = registry_->Render();
    } else {
      response = not_allowed("GET");
    }
  } else if (path == kCredentials) {
    if (m == "POST") {
      route = Metrics::kIssue;
      response = Issue(request);
    } else if (m == "DELETE") {
      route = Metrics::kRevoke;
      response = RevokeSubscriber(request);
    } else {
      response = not_allowed("POST, DELETE");
    }
  } else if (path == StrCat(kCredentials, "/revoke")) {
    // The revoke verb. "revoke" is never a username this agent mints (16
    // base64url characters), so DELETE here is a mistake, not a revocation.
    route = Metrics::kRevoke;
    response = m == "POST" ? RevokeFromBody(request) : not_allowed("POST");
  } else if (path.substr(0, kCredentials.size() + 1) == StrCat(kCredentials, "/")) {
    std::string_view rest = path.substr(kCredentials.size() + 1);
    size_t slash = rest.find('/');
    std::string_view username = rest.substr(0, slash);
    std::string_view tail = slash == rest.npos ? "" : rest.substr(slash);
    if (tail.empty()) {
      route = Metrics::kRevoke;
      response = m == "DELETE" ? RevokeUsername(request, username) : not_allowed("DELETE");
    } else if (tail == "/refresh") {
      route = Metrics::kRefresh;
      response = m == "POST" ? Refresh(request, username) : not_allowed("POST");
    } else {
      response = Error(404, StrCat("path: no such endpoint: ", path), "path");
    }
  } else {
    response = Error(404, StrCat("path: no such endpoint: ", path), "path");
  }
  metrics_->Observe(route, response.status, MonotonicMicros() - start);
  LogDebug("http request").Kv("method", m).Kv("path", path).Kv("status", response.status);
  return response;
}

bool AgentApi::AnswersWithoutWaiting(const ApiRequest& request) const {
  const std::string_view path = request.path;
  const bool under_credentials =
      path.substr(0, kCredentials.size() + 1) == StrCat(kCredentials, "/");
  if (path != "/healthz" && path != "/metrics" && path != kCredentials && !under_credentials)
    return true;  // 404
  if (issuer_->mode() != CredentialMode::kSharedSecret || request.method != "POST") return false;
  if (path == kCredentials) return true;
  std::string_view rest = path.substr(kCredentials.size() + 1);
  size_t slash = rest.find('/');
  return slash != rest.npos && rest.substr(slash) == "/refresh";
}

ApiResponse AgentApi::Credential(const IssuedCredential& c, int status) {
  ApiResponse r;
  r.status = status;
  // Written directly: nlohmann-json's object, built and dumped, was half of
  // a shared-secret mint's instructions (docs/pcscf-plugin.md#benchmarks).
  const std::string header = issuer_->HeaderValue(c);
  std::string& b = r.body;
  b.reserve(160 + fixed_fields_.size() + c.username.size() + c.password.size() + header.size());
  b += "{\"username\":";
  AppendJsonString(&b, c.username);
  b += ",\"password\":";
  AppendJsonString(&b, c.password);
  StrAppend(&b, ",\"ttl\":", issuer_->RemainingSeconds(c),
            ",\"expires_at\":", c.expires_at_ms / 1000, ",\"realm\":");
  AppendJsonString(&b, c.realm);
  StrAppend(&b, ",", fixed_fields_, ",\"header\":");
  AppendJsonString(&b, header);
  StrAppend(&b, ",\"reused\":", c.reused ? "true" : "false", "}");
  r.headers.emplace_back("Cache-Control", "no-store");
  return r;
}

ApiResponse AgentApi::Issue(const ApiRequest& r) {
  auto j = ParseObject(r.body, {"impu", "impi", "ttl"}, /*empty_ok=*/false);
  if (!j.ok()) return FromStatus(j.status());
  std::string impu, impi;
  int64_t ttl = 0;
  if (auto s = GetString(*j, "impu", true, &impu); !s.ok()) return FromStatus(s);
  if (auto s = GetString(*j, "impi", false, &impi); !s.ok()) return FromStatus(s);
  if (auto s = GetTtl(*j, &ttl); !s.ok()) return FromStatus(s);
  auto c = issuer_->Issue(impu, impi, ttl);
  if (!c.ok()) return FromStatus(c.status());
  return Credential(*c, c->reused ? 200 : 201);
}

ApiResponse AgentApi::Refresh(const ApiRequest& r, std::string_view username) {
  auto j = ParseObject(r.body, {"ttl"}, /*empty_ok=*/true);
  if (!j.ok()) return FromStatus(j.status());
  int64_t ttl = 0;
  if (auto s = GetTtl(*j, &ttl); !s.ok()) return FromStatus(s);
  auto c = issuer_->Refresh(username, ttl);
  if (!c.ok()) return FromStatus(c.status());
  return Credential(*c, 201);
}

ApiResponse AgentApi::RevokeUsername(const ApiRequest& r, std::string_view username) {
  std::string reason = "revoked by the SIP server";
  auto q = r.query.find("reason");
  if (q != r.query.end()) reason = q->second;
  if (auto s = issuer_->RevokeUsername(username, reason); !s.ok()) return FromStatus(s);
  ApiResponse ok;
  ok.status = 204;
  return ok;
}

ApiResponse AgentApi::RevokeSubscriber(const ApiRequest& r) {
  auto q = r.query.find("impu");
  if (q == r.query.end())
    return Error(400, "impu: query parameter is required (DELETE /v1/credentials?impu=...)",
                 "impu");
  std::string reason = "de-REGISTER";
  auto rq = r.query.find("reason");
  if (rq != r.query.end()) reason = rq->second;
  if (auto s = issuer_->RevokeSubscriber(q->second, reason); !s.ok()) return FromStatus(s);
  ApiResponse ok;
  ok.status = 204;
  return ok;
}

ApiResponse AgentApi::RevokeFromBody(const ApiRequest& r) {
  auto j = ParseObject(r.body, {"impu", "username", "reason"}, /*empty_ok=*/false);
  if (!j.ok()) return FromStatus(j.status());
  std::string impu, username, reason;
  if (auto s = GetString(*j, "impu", false, &impu); !s.ok()) return FromStatus(s);
  if (auto s = GetString(*j, "username", false, &username); !s.ok()) return FromStatus(s);
  if (auto s = GetString(*j, "reason", false, &reason); !s.ok()) return FromStatus(s);
  bool has_impu = j->contains("impu") && !(*j)["impu"].is_null();
  bool has_username = j->contains("username") && !(*j)["username"].is_null();
  if (has_impu == has_username)
    return Error(400, "impu, username: give exactly one of them", has_impu ? "username" : "impu");
  absl::Status s = has_impu
                       ? issuer_->RevokeSubscriber(impu, reason.empty() ? "de-REGISTER" : reason)
                       : issuer_->RevokeUsername(
                             username, reason.empty() ? "revoked by the SIP server" : reason);
  if (!s.ok()) return FromStatus(s);
  ApiResponse ok;
  ok.status = 204;
  return ok;
}

ApiResponse AgentApi::Health() {
  auto st = issuer_->CheckBroker(kHealthTimeoutMs);
  // Per-credential: healthy while the broker answers. Shared-secret: while
  // there is a usable active secret, the broker answering or not.
  absl::Status ready = issuer_->Ready(st.status());
  ApiResponse r;
  json j = {{"status", ready.ok() ? "ok" : "unavailable"},
            {"broker", st.ok() ? "reachable" : "unreachable"},
            {"mode", CredentialModeName(issuer_->mode())},
            {"live_credentials", issuer_->live_credentials()},
            {"pending_revocations", issuer_->pending_revocations()}};
  if (st.ok()) {
    j["epoch"] = st->epoch();
    j["revision"] = st->revision();
  }
  if (!ready.ok()) {
    r.status = 503;
    j["error"] = StatusLine(ready);
  } else if (!st.ok()) {
    j["error"] = StatusLine(st.status());
  }
  r.body = j.dump();
  return r;
}

// --- HTTP server -------------------------------------------------------------

AgentServer::AgentServer(AgentApi* api) : api_(api) {}

AgentServer::~AgentServer() { Stop(); }

absl::Status AgentServer::Start(const AgentServerOptions& options, MetricsRegistry* metrics) {
  HttpServerOptions http;
  http.listen = options.listen;
  http.flag = "--listen";
  http.threads = options.threads;
  http.limits.max_body_bytes = options.max_body_bytes;
  http.keep_alive_max_requests = options.keep_alive_max_requests;
  http.idle_timeout_ms = options.idle_timeout_ms;
  http.request_timeout_ms = options.request_timeout_ms;
  http.max_connections = options.max_connections;
  http.max_connections_per_peer = options.max_connections_per_peer;
  http.metrics_prefix = "pcscf_turn_agent_http";
  HttpAnswersInline answers_inline;
  if (options.answer_inline) {
    answers_inline = [this](const HttpRequest& r) { return api_->AnswersWithoutWaiting(r); };
  }
  return server_.Start(
      http, [this](const HttpRequest& request) { return api_->Handle(request); }, metrics,
      std::move(answers_inline));
}

void AgentServer::Stop() { server_.Stop(); }

}  // namespace turnbroker::pcscf
