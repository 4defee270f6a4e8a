// The live credentials this eP-CSCF issued, by username and by IMPU: for the
// re-REGISTER policy, refresh, revocation and re-assertion after the broker's
// epoch changed.
#ifndef TURNBROKER_PCSCF_REGISTRY_H_
#define TURNBROKER_PCSCF_REGISTRY_H_

#include <cstdint>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "turnbroker/common/clock.h"
#include "turnbroker/common/credential.h"

namespace turnbroker::pcscf {

// One credential as issued to a registration. The password stays in this
// process (the WIC gets it again when a re-REGISTER reuses the credential);
// it is never logged and never sent to the broker.
struct IssuedCredential {
  std::string username;
  std::string password;
  std::string realm;
  LongTermKey key{};       // per-credential mode: what the broker carries
  std::string secret_id;   // shared-secret mode: the secret it was minted with
  std::string subscriber;  // IMPU: the registration it belongs to
  std::string impi;        // who authenticated; reuse only to the same; may be empty
  int64_t issued_at_ms = 0;
  int64_t expires_at_ms = 0;
  // Set on the copies Issue returns: handed out again, not newly minted.
  bool reused = false;
};

// Thread-safe. Expired entries are dropped lazily and by RemoveExpired().
class CredentialRegistry {
 public:
  explicit CredentialRegistry(const Clock* clock) : clock_(clock) {}

  // The subscriber's current credential, if it is live for at least
  // `min_remaining_ms` more and not retiring.
  std::optional<IssuedCredential> Reusable(std::string_view subscriber,
                                           int64_t min_remaining_ms) const;
  // Records `credential` as its subscriber's current one. Returns the
  // previous current one if it is still live: it is now retiring (never
  // reused; the caller revokes it after an overlap).
  std::optional<IssuedCredential> Add(IssuedCredential credential);
  std::optional<IssuedCredential> Find(std::string_view username) const;
  // Removes and returns the credential, if live.
  std::optional<IssuedCredential> Remove(std::string_view username);
  // Removes and returns every live credential of the subscriber.
  std::vector<IssuedCredential> RemoveSubscriber(std::string_view subscriber);
  // Every live credential (retiring ones too).
  std::vector<IssuedCredential> Live() const;
  // Costs the expired entries, not the registry: it runs every few seconds
  // under the lock every REGISTER takes.
  size_t RemoveExpired();
  size_t size() const;

 private:
  struct Entry {
    IssuedCredential credential;
    bool retiring = false;
  };
  void EraseLocked(const std::string& username);

  const Clock* const clock_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, Entry> by_username_;  // guarded by mu_
  // Subscriber -> usernames, the current one last. Guarded by mu_.
  std::unordered_map<std::string, std::vector<std::string>> by_subscriber_;
  // (expiry, username) of every entry, soonest first. Guarded by mu_.
  std::set<std::pair<int64_t, std::string>> by_expiry_;
};

// Usernames whose revocation the broker acknowledged, each kept until the
// credential would have expired. After an epoch change they are revoked
// again: a Redis dataset that lost acknowledged writes may have kept a
// credential and lost its revocation (docs/design.md, "Epoch changes").
// Thread-safe. At most `max` entries: beyond, the ones expiring first are
// forgotten (they are the least useful to revoke again).
class RevokedUsernames {
 public:
  RevokedUsernames(const Clock* clock, size_t max) : clock_(clock), max_(max) {}

  // Returns how many entries were forgotten to make room (0 or 1).
  size_t Add(const std::string& username, int64_t expires_at_ms);
  // The entries not yet expired, as (username, expires_at_ms); drops the
  // expired ones.
  std::vector<std::pair<std::string, int64_t>> Live();
  size_t size() const;

 private:
  void DropExpiredLocked(int64_t now);

  const Clock* const clock_;
  const size_t max_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, int64_t> expiry_;      // guarded by mu_
  std::set<std::pair<int64_t, std::string>> by_expiry_;  // guarded by mu_
};

}  // namespace turnbroker::pcscf

#endif  // TURNBROKER_PCSCF_REGISTRY_H_
