// The C ABI (include/pcscf_turn.h) over CredentialService. No C++ exception
// or type crosses it.
#include <openssl/crypto.h>

#include <algorithm>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>

#include "pcscf_turn.h"
#include "turnbroker/pcscf/issuer.h"
#include "turnbroker/pcscf/sip_header.h"

struct pcscf_turn {
  std::unique_ptr<turnbroker::pcscf::CredentialService> service;
};

namespace {

using turnbroker::pcscf::CredentialService;
using turnbroker::pcscf::IssuedCredential;

pcscf_turn_status Fail(const absl::Status& s, char* err, size_t err_len) {
  if (err && err_len > 0) {
    std::string m(s.message());
    size_t n = std::min(m.size(), err_len - 1);
    std::memcpy(err, m.data(), n);
    err[n] = '\0';
  }
  return static_cast<pcscf_turn_status>(s.code());
}

pcscf_turn_status Ok(char* err, size_t err_len) {
  if (err && err_len > 0) err[0] = '\0';
  return PCSCF_TURN_OK;
}

char* Dup(const std::string& s) {
  char* p = static_cast<char*>(std::malloc(s.size() + 1));
  if (p) std::memcpy(p, s.c_str(), s.size() + 1);
  return p;
}

// Whether the caller's struct (of `struct_size` bytes) has `field`.
#define PCSCF_HAS(opts, field) \
  ((opts)->struct_size >= offsetof(pcscf_turn_options, field) + sizeof((opts)->field))

// The first version of pcscf_turn_credential ends at `reused`: a caller's
// struct must hold at least that much.
constexpr size_t kCredentialV1Size = offsetof(pcscf_turn_credential, reused) + sizeof(int32_t);

// Bytes of the caller's credential struct that this library may touch: what
// both its version and ours know.
size_t CredentialBytes(const pcscf_turn_credential* c) {
  return std::min(c->struct_size, sizeof(pcscf_turn_credential));
}

// Zeroes every field after struct_size that both versions know.
void ZeroCredential(pcscf_turn_credential* c) {
  size_t n = CredentialBytes(c);
  constexpr size_t kFirst = offsetof(pcscf_turn_credential, username);
  if (n > kFirst) std::memset(reinterpret_cast<char*>(c) + kFirst, 0, n - kFirst);
}

absl::Status CheckCredentialStruct(const pcscf_turn_credential* out) {
  if (out->struct_size < kCredentialV1Size) {
    return absl::InvalidArgumentError("out.struct_size: set it to sizeof(pcscf_turn_credential)");
  }
  return absl::OkStatus();
}

pcscf_turn_status Fill(const turnbroker::pcscf::Issuer& issuer, const IssuedCredential& c,
                       pcscf_turn_credential* out, char* err, size_t err_len) {
  ZeroCredential(out);
  out->username = Dup(c.username);
  out->password = Dup(c.password);
  out->realm = Dup(c.realm);
  out->header = Dup(issuer.HeaderValue(c));
  out->expires_at_ms = c.expires_at_ms;
  out->ttl_s = issuer.RemainingSeconds(c);
  out->reused = c.reused ? 1 : 0;
  if (!out->username || !out->password || !out->realm || !out->header) {
    pcscf_turn_credential_clear(out);
    return Fail(absl::ResourceExhaustedError("out of memory"), err, err_len);
  }
  return Ok(err, err_len);
}

}  // namespace

extern "C" {

const char* pcscf_turn_version(void) { return "1.1.0"; }

const char* pcscf_turn_header_name(void) { return turnbroker::pcscf::kTurnCredentialHeader.data(); }

pcscf_turn_status pcscf_turn_open(const pcscf_turn_options* o, pcscf_turn** out, char* err,
                                  size_t err_len) {
  if (!out) return Fail(absl::InvalidArgumentError("out: must not be NULL"), err, err_len);
  *out = nullptr;
  if (!o) return Fail(absl::InvalidArgumentError("options: must not be NULL"), err, err_len);
  if (o->struct_size < offsetof(pcscf_turn_options, turn_uris) + sizeof(o->turn_uris)) {
    return Fail(
        absl::InvalidArgumentError("options.struct_size: set it to sizeof(pcscf_turn_options)"),
        err, err_len);
  }
  if (!o->broker || !*o->broker)
    return Fail(absl::InvalidArgumentError("broker: must be HOST:PORT"), err, err_len);
  if (!o->realm) return Fail(absl::InvalidArgumentError("realm: must not be NULL"), err, err_len);

  turnbroker::ChannelOptions channel;
  channel.target = o->broker;
  channel.max_reconnect_backoff_ms = 1'000;
  turnbroker::pcscf::IssuerOptions issuer;
  issuer.realm = o->realm;
  if (o->turn_uris) {
    for (const char* const* u = o->turn_uris; *u; ++u) issuer.turn_uris.emplace_back(*u);
  }
  if (PCSCF_HAS(o, issuer) && o->issuer) issuer.issuer = o->issuer;
  if (PCSCF_HAS(o, tls_ca)) {
    if (o->tls_cert) channel.tls.cert = o->tls_cert;
    if (o->tls_key) channel.tls.key = o->tls_key;
    if (o->tls_ca) channel.tls.ca = o->tls_ca;
  }
  if (PCSCF_HAS(o, default_ttl_s) && o->default_ttl_s) issuer.default_ttl_s = o->default_ttl_s;
  if (PCSCF_HAS(o, min_ttl_s) && o->min_ttl_s) issuer.min_ttl_s = o->min_ttl_s;
  if (PCSCF_HAS(o, max_ttl_s) && o->max_ttl_s) issuer.max_ttl_s = o->max_ttl_s;
  if (PCSCF_HAS(o, reuse) && o->reuse >= 0) issuer.reuse = o->reuse != 0;
  if (PCSCF_HAS(o, reuse_min_remaining_s) && o->reuse_min_remaining_s)
    issuer.reuse_min_remaining_s = o->reuse_min_remaining_s;
  if (PCSCF_HAS(o, overlap_ms) && o->overlap_ms) issuer.overlap_ms = o->overlap_ms;
  if (PCSCF_HAS(o, publish_timeout_ms) && o->publish_timeout_ms)
    issuer.publish_timeout_ms = o->publish_timeout_ms;
  if (PCSCF_HAS(o, revoke_timeout_ms) && o->revoke_timeout_ms)
    issuer.revoke_timeout_ms = o->revoke_timeout_ms;
  if (PCSCF_HAS(o, mode) && o->mode) {
    auto mode = turnbroker::pcscf::ParseCredentialMode(o->mode, "mode");
    if (!mode.ok()) return Fail(mode.status(), err, err_len);
    issuer.mode = *mode;
  }

  auto service = CredentialService::Connect(channel, turnbroker::pcscf::PublisherOptions(), issuer);
  if (!service.ok()) return Fail(service.status(), err, err_len);
  *out = new pcscf_turn{std::move(*service)};
  return Ok(err, err_len);
}

void pcscf_turn_close(pcscf_turn* handle) { delete handle; }

pcscf_turn_status pcscf_turn_issue(pcscf_turn* h, const char* impu, const char* impi, int64_t ttl_s,
                                   pcscf_turn_credential* out, char* err, size_t err_len) {
  if (!h || !out)
    return Fail(absl::InvalidArgumentError("handle, out: must not be NULL"), err, err_len);
  if (!impu) return Fail(absl::InvalidArgumentError("impu: must not be NULL"), err, err_len);
  if (auto s = CheckCredentialStruct(out); !s.ok()) return Fail(s, err, err_len);
  auto& issuer = h->service->issuer();
  auto c = issuer.Issue(impu, impi ? impi : "", ttl_s);
  if (!c.ok()) return Fail(c.status(), err, err_len);
  return Fill(issuer, *c, out, err, err_len);
}

pcscf_turn_status pcscf_turn_refresh(pcscf_turn* h, const char* username, int64_t ttl_s,
                                     pcscf_turn_credential* out, char* err, size_t err_len) {
  if (!h || !out)
    return Fail(absl::InvalidArgumentError("handle, out: must not be NULL"), err, err_len);
  if (!username)
    return Fail(absl::InvalidArgumentError("username: must not be NULL"), err, err_len);
  if (auto s = CheckCredentialStruct(out); !s.ok()) return Fail(s, err, err_len);
  auto& issuer = h->service->issuer();
  auto c = issuer.Refresh(username, ttl_s);
  if (!c.ok()) return Fail(c.status(), err, err_len);
  return Fill(issuer, *c, out, err, err_len);
}

pcscf_turn_status pcscf_turn_revoke_username(pcscf_turn* h, const char* username,
                                             const char* reason, char* err, size_t err_len) {
  if (!h) return Fail(absl::InvalidArgumentError("handle: must not be NULL"), err, err_len);
  if (!username)
    return Fail(absl::InvalidArgumentError("username: must not be NULL"), err, err_len);
  auto s = h->service->issuer().RevokeUsername(username, reason ? reason : "");
  return s.ok() ? Ok(err, err_len) : Fail(s, err, err_len);
}

pcscf_turn_status pcscf_turn_revoke_subscriber(pcscf_turn* h, const char* impu, const char* reason,
                                               char* err, size_t err_len) {
  if (!h) return Fail(absl::InvalidArgumentError("handle: must not be NULL"), err, err_len);
  if (!impu) return Fail(absl::InvalidArgumentError("impu: must not be NULL"), err, err_len);
  auto s = h->service->issuer().RevokeSubscriber(impu, reason ? reason : "");
  return s.ok() ? Ok(err, err_len) : Fail(s, err, err_len);
}

int pcscf_turn_broker_reachable(pcscf_turn* h, int64_t timeout_ms) {
  if (!h) return 0;
  return h->service->issuer().CheckBroker(timeout_ms > 0 ? timeout_ms : 1000).ok() ? 1 : 0;
}

void pcscf_turn_credential_clear(pcscf_turn_credential* c) {
  // Too short for the first version: never filled (issue/refresh refuse it).
  if (!c || c->struct_size < kCredentialV1Size) return;
  if (c->password) OPENSSL_cleanse(c->password, std::strlen(c->password));
  std::free(c->username);
  std::free(c->password);
  std::free(c->realm);
  std::free(c->header);
  ZeroCredential(c);
}

}  // extern "C"
