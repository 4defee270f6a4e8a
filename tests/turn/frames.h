// Builders of Watch frames and events for TURN-side tests.
#ifndef TURNBROKER_TESTS_TURN_FRAMES_H_
#define TURNBROKER_TESTS_TURN_FRAMES_H_

#include <cstdint>
#include <string>
#include <vector>

#include "turnbroker/common/credential.h"
#include "turnbroker/v1/broker.pb.h"

namespace turnbroker::turn::testing {

namespace v1 = ::turnbroker::v1;

inline std::string KeyOf(const std::string& username, const std::string& realm,
                         const std::string& password) {
  LongTermKey k = DeriveLongTermKey(username, realm, password);
  return std::string(reinterpret_cast<const char*>(k.data()), k.size());
}

inline v1::Credential Cred(const std::string& realm, const std::string& username,
                           int64_t expires_at_ms, const std::string& subscriber = "",
                           const std::string& issuer = "") {
  v1::Credential c;
  c.set_realm(realm);
  c.set_username(username);
  c.set_key(KeyOf(username, realm, "pw-" + username));
  c.set_expires_at_ms(expires_at_ms);
  c.set_subscriber(subscriber);
  c.set_issuer(issuer);
  return c;
}

inline v1::Event Put(uint64_t revision, const v1::Credential& c) {
  v1::Event e;
  e.set_revision(revision);
  *e.mutable_put() = c;
  return e;
}

// A revocation by selector, listing the credentials the broker removed.
inline v1::Event Revoke(uint64_t revision, const v1::Selector& selector,
                        const std::vector<v1::CredentialRef>& removed = {}) {
  v1::Event e;
  e.set_revision(revision);
  *e.mutable_revoke()->mutable_selector() = selector;
  for (const auto& r : removed) *e.mutable_revoke()->add_credentials() = r;
  e.mutable_revoke()->set_reason("test");
  return e;
}

inline v1::CredentialRef Ref(const std::string& realm, const std::string& username,
                             int64_t expires_at_ms = 0) {
  v1::CredentialRef r;
  r.set_realm(realm);
  r.set_username(username);
  r.set_expires_at_ms(expires_at_ms);
  return r;
}

inline v1::Selector ByUsername(const std::string& username, const std::string& realm = "") {
  v1::Selector s;
  *s.mutable_username() = Ref(realm, username);
  return s;
}

inline v1::Selector BySubscriber(const std::string& subscriber) {
  v1::Selector s;
  s.set_subscriber(subscriber);
  return s;
}

inline v1::Selector ByIssuer(const std::string& issuer) {
  v1::Selector s;
  s.set_issuer(issuer);
  return s;
}

// Approach 1: a secret in its current state, and its retirement.
inline v1::Event SecretEvent(uint64_t revision, const std::string& realm, const std::string& id,
                             const std::string& bytes, int64_t expires_at_ms = 0,
                             int64_t max_credential_ttl_ms = 3'600'000) {
  v1::Event e;
  e.set_revision(revision);
  v1::SharedSecret* s = e.mutable_secret();
  s->set_realm(realm);
  s->set_id(id);
  s->set_secret(bytes);
  s->set_expires_at_ms(expires_at_ms);
  s->set_state(v1::SECRET_STATE_STAGED);
  s->set_max_credential_ttl_ms(max_credential_ttl_ms);
  return e;
}

inline v1::Event SecretRetired(uint64_t revision, const std::string& realm, const std::string& id) {
  v1::Event e;
  e.set_revision(revision);
  e.mutable_secret_retired()->set_realm(realm);
  e.mutable_secret_retired()->set_id(id);
  return e;
}

inline v1::WatchResponse Frame(const std::string& epoch, uint64_t revision,
                               v1::WatchResponse::Marker marker,
                               const std::vector<v1::Event>& events = {}) {
  v1::WatchResponse f;
  f.set_epoch(epoch);
  f.set_revision(revision);
  f.set_marker(marker);
  for (const auto& e : events) *f.add_events() = e;
  return f;
}

inline v1::WatchResponse SnapshotBegin(const std::string& epoch,
                                       v1::WatchResponse::SnapshotReason reason) {
  v1::WatchResponse f = Frame(epoch, 0, v1::WatchResponse::SNAPSHOT_BEGIN);
  f.set_snapshot_reason(reason);
  return f;
}

inline v1::WatchResponse Events(const std::string& epoch, uint64_t revision,
                                const std::vector<v1::Event>& events) {
  return Frame(epoch, revision, v1::WatchResponse::EVENTS, events);
}

inline v1::WatchResponse Synced(const std::string& epoch, uint64_t revision) {
  return Frame(epoch, revision, v1::WatchResponse::SYNCED);
}

}  // namespace turnbroker::turn::testing

#endif  // TURNBROKER_TESTS_TURN_FRAMES_H_
