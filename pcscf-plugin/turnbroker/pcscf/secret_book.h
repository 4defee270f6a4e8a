// Approach 1 on the eP-CSCF side (docs/approach1.md): the realm's shared
// secrets as the broker's Watch delivers them, and the TURN REST API
// credential computed from one.
#ifndef TURNBROKER_PCSCF_SECRET_BOOK_H_
#define TURNBROKER_PCSCF_SECRET_BOOK_H_

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "turnbroker/common/clock.h"
#include "turnbroker/v1/broker.pb.h"

namespace turnbroker::pcscf {

namespace v1 = ::turnbroker::v1;

// coturn's TURN REST API password: base64(HMAC-SHA1(secret, username)),
// standard base64 with padding (28 characters), as coturn computes it with
// --use-auth-secret. `secret` is used verbatim as the key.
std::string TurnRestPassword(std::string_view secret, std::string_view username);

// The random part of an approach-1 username: 128 bits, base64url without
// padding (22 characters, never ':'). Never derived from the subscriber.
inline constexpr size_t kOpaqueIdRandomBytes = 16;
std::string MintOpaqueId();

// "<expires_at_s>:<opaque id>": the username coturn splits at the first
// ':' to read the expiry (Unix seconds).
std::string ApproachOneUsername(int64_t expires_at_s, std::string_view opaque_id);

// The Watch stream's resume point: the epoch and the revision of the last
// frame applied (revision 0: none; the next stream starts with a snapshot).
struct WatchPosition {
  std::string epoch;
  uint64_t revision = 0;
};

// Counts of the known secrets by state, for metrics and health.
struct SecretCounts {
  size_t staged = 0;
  size_t active = 0;
  size_t superseded = 0;
};

// The shared secrets of the watched realms, kept equal to the broker's by
// applying its Watch frames in order (docs/contract.md, Watch): a snapshot
// (SNAPSHOT_BEGIN, one Event.secret per known secret, SYNCED) replaces what
// is known, and a secret not sent again since SNAPSHOT_BEGIN is gone; until
// its SYNCED the secrets known before stay in use. Event.secret replaces a
// secret (a new state), Event.secret_retired removes it, expired ones are
// skipped at use. Thread-safe: the watcher applies frames while SIP workers
// mint.
class SecretBook {
 public:
  // `clock` must outlive the book.
  explicit SecretBook(const Clock* clock = Clock::System());

  // Applies one frame. An error (a frame out of order: an epoch change
  // without a snapshot, an event before the first snapshot without a resume
  // point) means the stream cannot be trusted: the caller drops it, and the
  // position is reset so that the next stream starts with a snapshot. Events
  // of other kinds (credentials, revocations) are ignored. A secret that
  // breaks the record's rules (docs/approach1.md, The secret record) is
  // skipped with a warning naming its id, never its bytes.
  absl::Status Apply(const v1::WatchResponse& frame);
  // The stream ended: a snapshot it had begun is abandoned (what was known
  // before stays in use).
  void StreamEnded();

  // Where the next stream resumes.
  WatchPosition position() const;
  // Whether a snapshot has completed since the start.
  bool synced() const;

  // The secret to mint with now for `realm`: its ACTIVE secret, once its
  // not_before_ms has come and while not expired. UNAVAILABLE otherwise,
  // saying why (nothing received from the broker yet, no active secret, not
  // yet usable, expired). The message never carries secret bytes.
  absl::StatusOr<std::shared_ptr<const v1::SharedSecret>> Active(std::string_view realm) const;

  // Known secrets that have not expired, by state.
  SecretCounts Counts() const;

 private:
  using Realms =
      std::map<std::string, std::map<std::string, std::shared_ptr<const v1::SharedSecret>>,
               std::less<>>;
  void ApplyEventsLocked(const v1::WatchResponse& frame, Realms* into);
  void ResetLocked();

  const Clock* const clock_;
  mutable std::mutex mu_;
  Realms known_;              // guarded by mu_
  Realms snapshot_;           // guarded by mu_: being received
  bool in_snapshot_ = false;  // guarded by mu_
  // position_ is a resume point: a SYNCED of its epoch was applied (its
  // revision may be 0: a store with no event yet). Guarded by mu_.
  bool positioned_ = false;
  bool synced_ = false;     // guarded by mu_
  WatchPosition position_;  // guarded by mu_
};

}  // namespace turnbroker::pcscf

#endif  // TURNBROKER_PCSCF_SECRET_BOOK_H_
