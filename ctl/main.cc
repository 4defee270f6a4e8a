// turnbrokerctl: the operator's command line for turn-broker (like etcdctl).
//
// Exit codes: 0 success; 1 the broker answered with an error (the reason is
// printed as "turnbrokerctl: CODE: message"); 2 bad usage; 3 the broker is
// unreachable or did not answer in time.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "grpc/health/v1/health.grpc.pb.h"
#include "turnbroker/common/channel.h"
#include "turnbroker/common/clock.h"
#include "turnbroker/common/credential.h"
#include "turnbroker/common/flags.h"
#include "turnbroker/common/runtime.h"
#include "turnbroker/common/status.h"
#include "turnbroker/common/strings.h"
#include "turnbroker/v1/broker.grpc.pb.h"

namespace turnbroker::ctl {
namespace {

namespace v1 = ::turnbroker::v1;
using json = nlohmann::ordered_json;  // keeps fields in the order written

enum ExitCode { kOk = 0, kFailed = 1, kUsage = 2, kUnreachable = 3 };

struct Globals {
  ChannelOptions channel{"127.0.0.1:50051"};
  double timeout_s = 5;
  bool json = false;
};

int Fail(const grpc::Status& s) {
  std::fprintf(stderr, "turnbrokerctl: %s\n",
               StatusLine(FromGrpcStatus(s)).c_str());
  bool unreachable = s.error_code() == grpc::StatusCode::UNAVAILABLE ||
                     s.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED;
  return unreachable ? kUnreachable : kFailed;
}

int Usage(const std::string& message) {
  std::fprintf(stderr, "turnbrokerctl: %s\n", message.c_str());
  return kUsage;
}

void Deadline(grpc::ClientContext* context, const Globals& g) {
  context->set_deadline(
      std::chrono::system_clock::now() +
      std::chrono::milliseconds(static_cast<int64_t>(g.timeout_s * 1000)));
}

json CredentialJson(const v1::Credential& c) {
  json j = {{"username", c.username()},
            {"realm", c.realm()},
            {"expires_at_ms", c.expires_at_ms()},
            {"issued_at_ms", c.issued_at_ms()}};
  if (!c.subscriber().empty()) j["subscriber"] = c.subscriber();
  if (!c.issuer().empty()) j["issuer"] = c.issuer();
  if (c.scopes_size() > 0)
    j["scopes"] =
        std::vector<std::string>(c.scopes().begin(), c.scopes().end());
  return j;
}

// key=value on one line; values with spaces quoted.
std::string Line(const json& j) {
  std::string out;
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (!out.empty()) out += ' ';
    std::string v = it->is_string() ? it->get<std::string>() : it->dump();
    bool quote = v.empty() || v.find(' ') != std::string::npos;
    StrAppend(&out, it.key(), "=", quote ? "\"" + v + "\"" : v);
  }
  return out;
}

void Print(const Globals& g, const json& j) {
  std::cout << (g.json ? j.dump() : Line(j)) << std::endl;
}

json EventJson(const v1::Event& e) {
  json j = {{"revision", e.revision()}};
  if (e.has_put()) {
    j["type"] = "put";
    json credential = CredentialJson(e.put());
    for (auto& [k, v] : credential.items()) j[k] = v;
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

std::optional<std::string> ReadPassword(const std::string& given) {
  if (given != "-") return given;
  std::string line;
  if (!std::getline(std::cin, line)) return std::nullopt;
  return line;
}

}  // namespace
}  // namespace turnbroker::ctl

int main(int argc, char** argv) {
  using namespace turnbroker;
  using namespace turnbroker::ctl;
  turnbroker::InitRuntime();
  Globals g;
  CLI::App app{
      "turnbrokerctl: operate a turn-broker (publish, revoke, get, list, "
      "watch, status).\n"
      "Exit codes: 0 ok, 1 the broker refused (reason on stderr), 2 usage, "
      "3 broker unreachable."};
  app.require_subcommand(1);
  // TLS from TURNBROKERCTL_TLS_*: TURNBROKER_TLS_* are the broker's own
  // (server certificate), often set in the same shell or container.
  AddBrokerClientFlags(app, &g.channel, "TURNBROKER_BROKER", "TURNBROKERCTL_",
                       "publisher or operator");
  app.add_option("--timeout", g.timeout_s, "Deadline of each call, seconds")
      ->capture_default_str();
  app.add_flag("--json", g.json,
               "Print JSON objects instead of key=value lines");
  app.set_version_flag("--version", TURNBROKER_VERSION);

  // publish
  v1::Credential cred;
  std::string password, key_hex;
  int64_t ttl = 0;
  std::vector<std::string> scopes;
  auto* publish =
      app.add_subcommand("publish",
                         "Make a credential live (the key is computed here; "
                         "the password is never sent)");
  publish->add_option("--realm", *cred.mutable_realm(), "TURN realm")
      ->required();
  publish->add_option("--username", *cred.mutable_username(), "TURN username")
      ->required();
  auto* pw = publish->add_option("--password", password,
                                 "Password ('-': read a line from stdin)");
  auto* kh = publish->add_option(
      "--key", key_hex,
      "The long-term key as 32 hex digits, instead of --password");
  pw->excludes(kh);
  publish->add_option("--ttl", ttl, "Lifetime, seconds")
      ->required()
      ->check(CLI::PositiveNumber);
  publish->add_option("--subscriber", *cred.mutable_subscriber(),
                      "IMPU/IMPI it is issued to");
  publish->add_option("--issuer", *cred.mutable_issuer(),
                      "Issuing eP-CSCF instance");
  publish->add_option("--scope", scopes,
                      "TURN farm allowed to serve it (repeatable)");

  // revoke
  std::string rv_username, rv_realm, rv_subscriber, rv_issuer, rv_reason;
  auto* revoke =
      app.add_subcommand("revoke", "Revoke credentials before their expiry");
  auto* ru = revoke->add_option("--username", rv_username, "One username");
  revoke->add_option("--realm", rv_realm, "...in this realm only");
  auto* rs = revoke->add_option("--subscriber", rv_subscriber,
                                "Every credential of this IMPU/IMPI");
  auto* ri = revoke->add_option("--issuer", rv_issuer,
                                "Every credential of this eP-CSCF");
  revoke->add_option("--reason", rv_reason, "Audit text");
  ru->excludes(rs)->excludes(ri);
  rs->excludes(ri);

  // get
  std::string get_username, get_realm;
  auto* get = app.add_subcommand(
      "get", "Show one live credential (fails if revoked, expired or unknown)");
  get->add_option("--username", get_username, "Username")->required();
  get->add_option("--realm", get_realm, "Realm (default: any)");

  // list
  v1::ListRequest list_req;
  size_t list_limit = 0;
  auto* list = app.add_subcommand("list", "List live credentials, one a line");
  list->add_option("--realm", *list_req.mutable_realm(), "Only this realm");
  list->add_option("--subscriber", *list_req.mutable_subscriber(),
                   "Only this subscriber");
  list->add_option("--issuer", *list_req.mutable_issuer(), "Only this issuer");
  list->add_option("--limit", list_limit, "At most this many (0: all)");

  // watch
  v1::WatchRequest watch_req;
  uint64_t from = 0;
  std::string from_epoch;
  std::vector<std::string> watch_realms;
  long watch_count = -1;
  bool until_synced = false;
  auto* watch = app.add_subcommand(
      "watch", "Stream changes, one event a line (markers too)");
  watch->add_option("--from", from,
                    "Resume after this revision (default: snapshot)");
  watch->add_option("--epoch", from_epoch,
                    "Epoch of --from (default: the broker's current)");
  watch->add_option("--realm", watch_realms, "Only these realms (repeatable)");
  watch->add_option("--farm", *watch_req.mutable_farm(),
                    "This TURN farm's name (for scoped credentials)");
  watch->add_flag(
      "--all-scopes", [&](int64_t) { watch_req.set_all_scopes(true); },
      "Receive scoped credentials of every farm");
  watch->add_option("--count", watch_count, "Exit after this many events");
  watch->add_flag("--until-synced", until_synced, "Exit at the SYNCED marker");

  auto* status = app.add_subcommand("status", "Broker status and health");

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    return Usage(e.what());
  }

  auto channel = MakeChannel(g.channel);
  if (!channel.ok()) return Usage(std::string(channel.status().message()));
  auto stub = v1::CredentialBroker::NewStub(*channel);

  if (*publish) {
    if (password.empty() && key_hex.empty())
      return Usage("publish: give --password or --key");
    std::string key;
    if (!key_hex.empty()) {
      if (!ParseHex(key_hex, &key) || key.size() != kKeyBytes)
        return Usage("--key: want 32 hex digits");
    } else {
      auto p = ReadPassword(password);
      if (!p) return Usage("--password -: nothing on stdin");
      LongTermKey k = DeriveLongTermKey(cred.username(), cred.realm(), *p);
      key.assign(reinterpret_cast<const char*>(k.data()), k.size());
    }
    cred.set_key(key);
    cred.set_issued_at_ms(Clock::System()->NowMs());
    cred.set_expires_at_ms(cred.issued_at_ms() + ttl * 1000);
    for (auto& s : scopes) cred.add_scopes(s);
    v1::PublishRequest req;
    *req.add_credentials() = cred;
    v1::PublishResponse resp;
    grpc::ClientContext ctx;
    Deadline(&ctx, g);
    grpc::Status s = stub->Publish(&ctx, req, &resp);
    if (!s.ok()) return Fail(s);
    Print(g, {{"published", cred.username()},
              {"realm", cred.realm()},
              {"revision", resp.revision()},
              {"expires_at_ms", cred.expires_at_ms()},
              {"changed", resp.applied() > 0}});
    return kOk;
  }

  if (*revoke) {
    v1::RevokeRequest req;
    if (!rv_username.empty()) {
      req.mutable_selector()->mutable_username()->set_username(rv_username);
      req.mutable_selector()->mutable_username()->set_realm(rv_realm);
    } else if (!rv_subscriber.empty()) {
      req.mutable_selector()->set_subscriber(rv_subscriber);
    } else if (!rv_issuer.empty()) {
      req.mutable_selector()->set_issuer(rv_issuer);
    } else {
      return Usage("revoke: give --username, --subscriber or --issuer");
    }
    req.set_reason(rv_reason.empty() ? "turnbrokerctl" : rv_reason);
    v1::RevokeResponse resp;
    grpc::ClientContext ctx;
    Deadline(&ctx, g);
    grpc::Status s = stub->Revoke(&ctx, req, &resp);
    if (!s.ok()) return Fail(s);
    Print(g, {{"revoked", resp.revoked()}, {"revision", resp.revision()}});
    return kOk;
  }

  if (*get) {
    v1::GetRequest req;
    req.mutable_ref()->set_username(get_username);
    req.mutable_ref()->set_realm(get_realm);
    v1::GetResponse resp;
    grpc::ClientContext ctx;
    Deadline(&ctx, g);
    grpc::Status s = stub->Get(&ctx, req, &resp);
    if (!s.ok()) return Fail(s);
    json j = CredentialJson(resp.credential().credential());
    j["revision"] = resp.credential().revision();
    Print(g, j);
    return kOk;
  }

  if (*list) {
    size_t printed = 0;
    for (;;) {
      v1::ListResponse resp;
      grpc::ClientContext ctx;
      Deadline(&ctx, g);
      list_req.set_page_size(1000);
      grpc::Status s = stub->List(&ctx, list_req, &resp);
      if (!s.ok()) return Fail(s);
      for (const auto& info : resp.credentials()) {
        json j = CredentialJson(info.credential());
        j["revision"] = info.revision();
        Print(g, j);
        if (list_limit && ++printed >= list_limit) return kOk;
      }
      if (resp.next_page_token().empty()) return kOk;
      list_req.set_page_token(resp.next_page_token());
    }
  }

  if (*watch) {
    for (auto& r : watch_realms) watch_req.add_realms(r);
    watch_req.set_watcher_name("turnbrokerctl");
    if (from != 0) {
      if (from_epoch.empty()) {
        v1::GetStatusResponse st;
        grpc::ClientContext ctx;
        Deadline(&ctx, g);
        grpc::Status s = stub->GetStatus(&ctx, v1::GetStatusRequest(), &st);
        if (!s.ok()) return Fail(s);
        from_epoch = st.epoch();
      }
      watch_req.set_resume_revision(from);
      watch_req.set_resume_epoch(from_epoch);
    }
    grpc::ClientContext ctx;
    auto reader = stub->Watch(&ctx, watch_req);
    v1::WatchResponse resp;
    long events = 0;
    while (reader->Read(&resp)) {
      for (const auto& e : resp.events()) {
        Print(g, EventJson(e));
        if (watch_count >= 0 && ++events >= watch_count) {
          ctx.TryCancel();
          return kOk;
        }
      }
      switch (resp.marker()) {
        case v1::WatchResponse::SNAPSHOT_BEGIN:
          Print(g, {{"marker", "snapshot-begin"},
                    {"epoch", resp.epoch()},
                    {"reason", v1::WatchResponse::SnapshotReason_Name(
                                   resp.snapshot_reason())}});
          break;
        case v1::WatchResponse::SYNCED:
          Print(g, {{"marker", "synced"},
                    {"revision", resp.revision()},
                    {"epoch", resp.epoch()}});
          if (until_synced) {
            ctx.TryCancel();
            return kOk;
          }
          break;
        case v1::WatchResponse::PROGRESS:
          Print(g, {{"marker", "progress"}, {"revision", resp.revision()}});
          break;
        default:
          break;
      }
      if (watch_count == 0) {
        ctx.TryCancel();
        return kOk;
      }
    }
    return Fail(reader->Finish());
  }

  if (*status) {
    v1::GetStatusResponse st;
    grpc::ClientContext ctx;
    Deadline(&ctx, g);
    grpc::Status s = stub->GetStatus(&ctx, v1::GetStatusRequest(), &st);
    if (!s.ok()) return Fail(s);
    auto health = grpc::health::v1::Health::NewStub(*channel);
    grpc::health::v1::HealthCheckResponse hr;
    grpc::ClientContext hctx;
    Deadline(&hctx, g);
    grpc::Status hs =
        health->Check(&hctx, grpc::health::v1::HealthCheckRequest(), &hr);
    Print(g,
          {{"health",
            hs.ok() ? grpc::health::v1::HealthCheckResponse::ServingStatus_Name(
                          hr.status())
                    : "UNKNOWN"},
           {"epoch", st.epoch()},
           {"revision", st.revision()},
           {"history_first_revision", st.history_first_revision()},
           {"live_credentials", st.live_credentials()},
           {"revoked_usernames", st.revoked_usernames()},
           {"watchers", st.watchers()},
           {"store", st.store()},
           {"version", st.version()},
           {"started_at_ms", st.started_at_ms()}});
    return kOk;
  }
  return kUsage;
}
