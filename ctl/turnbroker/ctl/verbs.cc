#include "turnbroker/ctl/verbs.h"

#include <chrono>
#include <cstdio>
#include <fstream>
#include <iterator>

#include "absl/time/time.h"
#include "turnbroker/common/credential.h"
#include "turnbroker/common/random.h"
#include "turnbroker/common/status.h"
#include "turnbroker/common/strings.h"

namespace turnbroker::ctl {
namespace {

int Fail(const grpc::Status& s) {
  std::fprintf(stderr, "turnbrokerctl: %s\n", StatusLine(FromGrpcStatus(s)).c_str());
  const bool unreachable = s.error_code() == grpc::StatusCode::UNAVAILABLE ||
                           s.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED;
  return unreachable ? kUnreachable : kFailed;
}

int Usage(const std::string& message) {
  std::fprintf(stderr, "turnbrokerctl: %s\n", message.c_str());
  return kUsage;
}

void SetDeadline(grpc::ClientContext* context, const Broker& broker) {
  context->set_deadline(std::chrono::system_clock::now() +
                        std::chrono::milliseconds(broker.timeout_ms));
}

}  // namespace

int Publish(const Broker& broker, const PublishArgs& args, const Clock* clock, std::istream* input,
            const Printer& out) {
  if (args.password.empty() && args.key_hex.empty()) {
    return Usage("publish: give --password or --key");
  }
  if (args.ttl_s <= 0 || args.ttl_s > kMaxTtlSeconds) {
    return Usage(
        StrCat("--ttl: ", args.ttl_s, " is not between 1 and ", kMaxTtlSeconds, " seconds"));
  }
  v1::Credential credential = args.credential;
  std::string key;
  if (!args.key_hex.empty()) {
    if (!ParseHex(args.key_hex, &key) || key.size() != kKeyBytes) {
      return Usage("--key: want 32 hex digits");
    }
  } else {
    std::string password = args.password;
    if (password == "-" && !std::getline(*input, password)) {
      return Usage("--password -: nothing on stdin");
    }
    LongTermKey k = DeriveLongTermKey(credential.username(), credential.realm(), password);
    key.assign(reinterpret_cast<const char*>(k.data()), k.size());
  }
  credential.set_key(key);
  credential.set_issued_at_ms(clock->NowMs());
  credential.set_expires_at_ms(credential.issued_at_ms() + args.ttl_s * 1000);
  for (const std::string& scope : args.scopes) credential.add_scopes(scope);
  v1::PublishRequest request;
  *request.add_credentials() = credential;
  v1::PublishResponse response;
  grpc::ClientContext context;
  SetDeadline(&context, broker);
  grpc::Status s = broker.stub->Publish(&context, request, &response);
  if (!s.ok()) return Fail(s);
  out.Print({{"published", credential.username()},
             {"realm", credential.realm()},
             {"revision", response.revision()},
             {"expires_at_ms", credential.expires_at_ms()},
             {"changed", response.applied() > 0}});
  return kOk;
}

int Revoke(const Broker& broker, const RevokeArgs& args, const Printer& out) {
  v1::RevokeRequest request;
  v1::Selector* selector = request.mutable_selector();
  if (!args.username.empty()) {
    selector->mutable_username()->set_username(args.username);
    selector->mutable_username()->set_realm(args.realm);
  } else if (!args.subscriber.empty()) {
    selector->set_subscriber(args.subscriber);
  } else if (!args.issuer.empty()) {
    selector->set_issuer(args.issuer);
  } else {
    return Usage("revoke: give --username, --subscriber or --issuer");
  }
  request.set_reason(args.reason.empty() ? "turnbrokerctl" : args.reason);
  v1::RevokeResponse response;
  grpc::ClientContext context;
  SetDeadline(&context, broker);
  grpc::Status s = broker.stub->Revoke(&context, request, &response);
  if (!s.ok()) return Fail(s);
  out.Print({{"revoked", response.revoked()}, {"revision", response.revision()}});
  return kOk;
}

int Get(const Broker& broker, const GetArgs& args, const Printer& out) {
  v1::GetRequest request;
  request.mutable_ref()->set_username(args.username);
  request.mutable_ref()->set_realm(args.realm);
  v1::GetResponse response;
  grpc::ClientContext context;
  SetDeadline(&context, broker);
  grpc::Status s = broker.stub->Get(&context, request, &response);
  if (!s.ok()) return Fail(s);
  json j = CredentialJson(response.credential().credential());
  j["revision"] = response.credential().revision();
  out.Print(j);
  return kOk;
}

int List(const Broker& broker, ListArgs args, const Printer& out) {
  size_t printed = 0;
  v1::ListRequest& request = args.filter;
  request.set_page_size(1000);
  for (;;) {
    v1::ListResponse response;
    grpc::ClientContext context;
    SetDeadline(&context, broker);
    grpc::Status s = broker.stub->List(&context, request, &response);
    if (!s.ok()) return Fail(s);
    for (const auto& info : response.credentials()) {
      json j = CredentialJson(info.credential());
      j["revision"] = info.revision();
      out.Print(j);
      if (args.limit && ++printed >= args.limit) return kOk;
    }
    if (response.next_page_token().empty()) return kOk;
    request.set_page_token(response.next_page_token());
  }
}

int Watch(const Broker& broker, WatchArgs args, const Printer& out) {
  v1::WatchRequest& request = args.request;
  for (const std::string& realm : args.realms) request.add_realms(realm);
  request.set_watcher_name("turnbrokerctl");
  if (args.from != 0) {
    if (args.from_epoch.empty()) {
      v1::GetStatusResponse status;
      grpc::ClientContext context;
      SetDeadline(&context, broker);
      grpc::Status s = broker.stub->GetStatus(&context, v1::GetStatusRequest(), &status);
      if (!s.ok()) return Fail(s);
      args.from_epoch = status.epoch();
    }
    request.set_resume_revision(args.from);
    request.set_resume_epoch(args.from_epoch);
  }
  grpc::ClientContext context;
  auto reader = broker.stub->Watch(&context, request);
  v1::WatchResponse response;
  long events = 0;
  auto done = [&context] {
    context.TryCancel();
    return kOk;
  };
  while (reader->Read(&response)) {
    for (const auto& e : response.events()) {
      out.Print(EventJson(e));
      if (args.count >= 0 && ++events >= args.count) return done();
    }
    switch (response.marker()) {
      case v1::WatchResponse::SNAPSHOT_BEGIN:
        out.Print({{"marker", "snapshot-begin"},
                   {"epoch", response.epoch()},
                   {"reason", v1::WatchResponse::SnapshotReason_Name(response.snapshot_reason())}});
        break;
      case v1::WatchResponse::SYNCED:
        out.Print(
            {{"marker", "synced"}, {"revision", response.revision()}, {"epoch", response.epoch()}});
        if (args.until_synced) return done();
        break;
      case v1::WatchResponse::PROGRESS:
        out.Print({{"marker", "progress"}, {"revision", response.revision()}});
        break;
      default:
        break;
    }
    if (args.count == 0) return done();
  }
  return Fail(reader->Finish());
}

int Status(const Broker& broker, const Printer& out) {
  v1::GetStatusResponse st;
  grpc::ClientContext context;
  SetDeadline(&context, broker);
  grpc::Status s = broker.stub->GetStatus(&context, v1::GetStatusRequest(), &st);
  if (!s.ok()) return Fail(s);
  grpc::health::v1::HealthCheckResponse health;
  grpc::ClientContext health_context;
  SetDeadline(&health_context, broker);
  grpc::Status hs =
      broker.health->Check(&health_context, grpc::health::v1::HealthCheckRequest(), &health);
  out.Print({{"health",
              hs.ok() ? grpc::health::v1::HealthCheckResponse::ServingStatus_Name(health.status())
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

}  // namespace turnbroker::ctl

namespace turnbroker::ctl {

absl::StatusOr<int64_t> ParseNotBefore(const std::string& text) {
  if (!text.empty() && text.size() <= 12 &&
      text.find_first_not_of("0123456789") == std::string::npos) {
    return static_cast<int64_t>(std::stoll(text)) * 1000;
  }
  absl::Time t;
  std::string error;
  if (!absl::ParseTime(absl::RFC3339_full, text, &t, &error)) {
    return absl::InvalidArgumentError(
        StrCat("--not-before: '", text,
               "' is neither Unix seconds nor an RFC 3339 time like 2026-12-06T12:00:00Z"));
  }
  return absl::ToUnixMillis(t);
}

absl::StatusOr<std::string> ReadSecretFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::InvalidArgumentError(StrCat("--secret-file: cannot read '", path, "'"));
  std::string secret((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (!secret.empty() && secret.back() == '\n') secret.pop_back();
  if (!secret.empty() && secret.back() == '\r') secret.pop_back();
  if (secret.empty())
    return absl::InvalidArgumentError(StrCat("--secret-file: '", path, "' is empty"));
  return secret;
}

namespace {

bool ValidRef(const SecretArgs& args, const char* verb) {
  if (args.realm.empty() || args.id.empty()) {
    Usage(StrCat("secret ", verb, ": give --realm and --id"));
    return false;
  }
  return true;
}

void PrintWritten(const Printer& out, const char* what, const v1::SecretResponse& r) {
  json j = {{what, r.secret().id()}, {"realm", r.secret().realm()}};
  j["state"] = SecretStateText(r.secret().state());
  j["revision"] = r.revision();
  out.Print(j);
}

}  // namespace

int SecretAdd(const Broker& broker, const SecretArgs& args, const Clock* clock,
              const Printer& out) {
  if (!ValidRef(args, "add")) return kUsage;
  v1::AddSecretRequest request;
  v1::SharedSecret* s = request.mutable_secret();
  s->set_realm(args.realm);
  s->set_id(args.id);
  if (!args.secret_file.empty()) {
    auto secret = ReadSecretFile(args.secret_file);
    if (!secret.ok()) return Usage(std::string(secret.status().message()));
    s->set_secret(*secret);
  } else {
    s->set_secret(Base64Url(RandomBytes(32)));  // 256 bits, 43 characters
  }
  if (!args.not_before.empty()) {
    auto nb = ParseNotBefore(args.not_before);
    if (!nb.ok()) return Usage(std::string(nb.status().message()));
    s->set_not_before_ms(*nb);
  }
  if (args.expires_in_s < 0 || args.expires_in_s > kMaxTtlSeconds) {
    return Usage(StrCat("--expires-in: ", args.expires_in_s, " is not between 0 and ",
                        kMaxTtlSeconds, " seconds"));
  }
  if (args.expires_in_s > 0) s->set_expires_at_ms(clock->NowMs() + args.expires_in_s * 1000);
  v1::SecretResponse response;
  grpc::ClientContext context;
  SetDeadline(&context, broker);
  grpc::Status st = broker.stub->AddSecret(&context, request, &response);
  if (!st.ok()) return Fail(st);
  json j = {{"added", response.secret().id()},
            {"realm", response.secret().realm()},
            {"state", SecretStateText(response.secret().state())},
            {"revision", response.revision()}};
  if (args.show_secret) j["secret"] = s->secret();
  out.Print(j);
  return kOk;
}

int SecretActivate(const Broker& broker, const SecretArgs& args, const Printer& out) {
  if (!ValidRef(args, "activate")) return kUsage;
  v1::ActivateSecretRequest request;
  request.mutable_ref()->set_realm(args.realm);
  request.mutable_ref()->set_id(args.id);
  v1::SecretResponse response;
  grpc::ClientContext context;
  SetDeadline(&context, broker);
  grpc::Status st = broker.stub->ActivateSecret(&context, request, &response);
  if (!st.ok()) return Fail(st);
  PrintWritten(out, "activated", response);
  return kOk;
}

int SecretRetire(const Broker& broker, const SecretArgs& args, const Printer& out) {
  if (!ValidRef(args, "retire")) return kUsage;
  v1::RetireSecretRequest request;
  request.mutable_ref()->set_realm(args.realm);
  request.mutable_ref()->set_id(args.id);
  request.set_force(args.force);
  v1::SecretResponse response;
  grpc::ClientContext context;
  SetDeadline(&context, broker);
  grpc::Status st = broker.stub->RetireSecret(&context, request, &response);
  if (!st.ok()) return Fail(st);
  json j = {{"retired", response.secret().id()},
            {"realm", response.secret().realm()},
            {"revision", response.revision()}};
  out.Print(j);
  return kOk;
}

int SecretList(const Broker& broker, const SecretArgs& args, const Clock* clock,
               const Printer& out) {
  v1::ListSecretsRequest request;
  request.set_realm(args.realm);
  request.set_include_secret(args.show_secret);
  v1::ListSecretsResponse response;
  grpc::ClientContext context;
  SetDeadline(&context, broker);
  grpc::Status st = broker.stub->ListSecrets(&context, request, &response);
  if (!st.ok()) return Fail(st);
  const int64_t now = clock->NowMs();
  auto names = [](const auto& list) {
    std::string s;
    for (const std::string& n : list) StrAppend(&s, s.empty() ? "" : ",", n);
    return s;
  };
  for (const v1::SecretInfo& info : response.secrets()) {
    const v1::SharedSecret& s = info.secret();
    json j = SecretJson(s, args.show_secret);
    j["revision"] = info.revision();
    j["staged_revision"] = info.staged_revision();
    j["syncs_acknowledged"] = names(info.syncs_acknowledged());
    j["syncs_pending"] = names(info.syncs_pending());
    if (s.state() == v1::SECRET_STATE_STAGED) {
      j["stage_grace_ends_at_ms"] = info.stage_grace_ends_at_ms();
      const bool ready = (info.syncs_pending_size() == 0 && now >= info.reports_complete_at_ms()) ||
                         now >= info.stage_grace_ends_at_ms();
      if (info.reports_complete_at_ms() > now)
        j["reports_complete_at_ms"] = info.reports_complete_at_ms();
      j["activation"] = ready ? "ready" : "waiting";
    } else if (s.state() == v1::SECRET_STATE_SUPERSEDED) {
      const int64_t at = s.superseded_at_ms() + s.max_credential_ttl_ms();
      j["retire_allowed_at_ms"] = at;
      j["retirement"] = now >= at ? "ready" : "waiting";
    }
    out.Print(j);
  }
  return kOk;
}

}  // namespace turnbroker::ctl
