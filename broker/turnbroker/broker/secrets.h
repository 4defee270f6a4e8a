// Approach 1 (docs/approach1.md): the rules of shared secrets that do not
// depend on a store. Field validation (messages name the field and never
// carry secret bytes), the approach-1 username form, the registry of TURN
// syncs' Acknowledge reports, and the staging progress that gates
// ActivateSecret.
#ifndef TURNBROKER_BROKER_SECRETS_H_
#define TURNBROKER_BROKER_SECRETS_H_

#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "turnbroker/broker/record.h"

namespace turnbroker::broker {

inline constexpr size_t kMinSecretBytes = 32;
inline constexpr size_t kMaxSecretBytes = 256;
inline constexpr size_t kMaxSecretIdBytes = 64;
// Known secrets per realm (a rotation needs three at most).
inline constexpr size_t kMaxSecretsPerRealm = 16;
// A sync that acknowledged within this long is one the activation waits for.
inline constexpr int64_t kSyncAckWindowMs = 30'000;
// Syncs remembered at once (their names are client-chosen).
inline constexpr size_t kMaxSyncs = 10'000;
// Realms listed in all those reports together (each lists up to 1,000, its
// Watch's): about 13 MB at most, whatever the reporters send.
inline constexpr size_t kMaxSyncRealms = 100'000;
// How far beyond --max-ttl the expiry in an approach-1 username may be
// (agents' clocks run ahead a little).
inline constexpr int64_t kMaxMintedSkewMs = 60'000;

// One shared-secret write (approach 1, docs/approach1.md).
struct SecretCommand {
  enum Kind { kAdd, kActivate, kRetire };
  Kind kind = kAdd;
  // kAdd: the secret as given (realm, id, secret, not_before_ms,
  // expires_at_ms); otherwise its realm and id.
  v1::SharedSecret secret;
  bool force = false;  // kRetire
};

// INVALID_ARGUMENT "<field>: ..." unless 1..64 of [A-Za-z0-9._-].
absl::Status ValidateSecretId(std::string_view id, std::string_view field);
// INVALID_ARGUMENT "<field>: N bytes, at least 32" and the like: 32..256
// bytes of printable ASCII (0x21..0x7e). The message gives sizes and
// offsets, never a byte of the secret.
absl::Status ValidateSecretBytes(std::string_view secret, std::string_view field);

// The expiry (Unix seconds) of a username in approach-1 form
// "<expiry unix s>:<id>" (expiry 1..19 digits; id 1..128 of base64url
// [A-Za-z0-9_-]), or nullopt if it is not in that form.
std::optional<int64_t> Approach1Expiry(std::string_view username);

// One TURN sync's last Acknowledge.
struct SyncAck {
  std::string name;
  std::string epoch;
  Revision revision = 0;
  std::vector<std::string> realms;  // empty: every realm
  std::string farm;
  int64_t at_ms = 0;  // when the broker received it (Unix ms)

  bool Covers(std::string_view realm) const;
};

// INVALID_ARGUMENT naming the field: watcher_name 1..128 of
// [A-Za-z0-9._:-], epoch required, at most 1000 valid realms, a valid farm.
absl::Status ValidateAcknowledge(const v1::AcknowledgeRequest& request);
SyncAck ToSyncAck(const v1::AcknowledgeRequest& request, int64_t at_ms);

// The syncs' reports, by name (a newer report replaces an older one).
// Thread-safe.
class SyncRegistry {
 public:
  // RESOURCE_EXHAUSTED when kMaxSyncs other names reported recently, or
  // when the reports would list more than kMaxSyncRealms realms in all.
  absl::Status Record(SyncAck ack);
  // Takes the newer of each name's report (the Redis store's copy of its
  // hash, read while this replica records reports of its own).
  void Merge(std::vector<SyncAck> acks);
  // Reports received within `window_ms` before `now_ms`, by name.
  std::vector<SyncAck> Recent(int64_t now_ms, int64_t window_ms = kSyncAckWindowMs) const;

 private:
  // Forgets the reports older than `horizon`.
  void ForgetLocked(int64_t horizon);
  // Whether replacing `name`'s report by one of `realms` realms stays
  // within kMaxSyncRealms.
  // Adds or replaces the report of ack.name, keeping realms_ its sum.
  void PutLocked(SyncAck ack);
  bool FitsLocked(const std::string& name, size_t realms) const;

  mutable std::mutex mu_;
  absl::flat_hash_map<std::string, SyncAck> acks_;  // guarded by mu_
  size_t realms_ = 0;                               // in acks_; guarded by mu_
};

// The broker's approach-1 settings.
struct SecretPolicy {
  // ActivateSecret stops waiting for syncs this long after staging
  // (--secret-stage-grace).
  int64_t stage_grace_ms = 60'000;
  int64_t ack_window_ms = kSyncAckWindowMs;
  // Until then (Unix ms) this broker may not have heard from every sync that
  // reported within ack_window_ms: it restarted on a store that keeps the
  // reports in memory (the embedded store), so "no sync pending" is not yet
  // "nothing to wait for". 0: every report is known (a new store, or the
  // Redis store, which keeps them in Redis).
  int64_t reports_complete_at_ms = 0;
  // The broker's --max-ttl: a secret's max_credential_ttl_ms.
  int64_t max_credential_ttl_ms = 24 * 3600'000;
};

// How far a staged secret has reached: of the recent syncs whose realms
// cover its realm, those that acknowledged (in `epoch`) a revision at or
// after `staged_revision`, and the others.
struct StagingProgress {
  std::vector<std::string> acknowledged;
  std::vector<std::string> pending;
  int64_t grace_ends_at_ms = 0;
  int64_t reports_complete_at_ms = 0;  // SecretPolicy's
  // Whether ActivateSecret may go ahead at `now_ms`.
  bool Ready(int64_t now_ms) const {
    return (pending.empty() && now_ms >= reports_complete_at_ms) || now_ms >= grace_ends_at_ms;
  }
};
StagingProgress Progress(const v1::SharedSecret& secret, Revision staged_revision,
                         const std::vector<SyncAck>& recent, std::string_view epoch,
                         const SecretPolicy& policy);

// The secret without its bytes.
v1::SharedSecret Redacted(const v1::SharedSecret& secret);
// "STAGED", "ACTIVE", "SUPERSEDED".
std::string_view SecretStateName(v1::SecretState state);

}  // namespace turnbroker::broker

#endif  // TURNBROKER_BROKER_SECRETS_H_
