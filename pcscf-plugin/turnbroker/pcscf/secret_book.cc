#include "turnbroker/pcscf/secret_book.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "turnbroker/common/credential.h"
#include "turnbroker/common/log.h"
#include "turnbroker/common/random.h"
#include "turnbroker/common/strings.h"

namespace turnbroker::pcscf {
namespace {

constexpr size_t kMinSecretBytes = 32;
constexpr size_t kMaxSecretBytes = 256;
constexpr size_t kMaxSecretIdBytes = 64;

// The rules of docs/approach1.md, The secret record. The problem is named,
// never the bytes.
absl::Status CheckSecret(const v1::SharedSecret& s) {
  if (auto st = ValidateRealm(s.realm(), "realm"); !st.ok()) return st;
  if (s.id().empty() || s.id().size() > kMaxSecretIdBytes)
    return absl::InvalidArgumentError("id: must be 1..64 characters");
  for (char c : s.id()) {
    const bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    if (!alnum && c != '.' && c != '_' && c != '-')
      return absl::InvalidArgumentError("id: only [A-Za-z0-9._-]");
  }
  if (s.secret().size() < kMinSecretBytes || s.secret().size() > kMaxSecretBytes)
    return absl::InvalidArgumentError(
        StrCat("secret: must be 32..256 bytes, got ", s.secret().size()));
  for (char c : s.secret()) {
    if (c < 0x21 || c > 0x7e) return absl::InvalidArgumentError("secret: must be printable ASCII");
  }
  return absl::OkStatus();
}

}  // namespace

std::string TurnRestPassword(std::string_view secret, std::string_view username) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int mac_len = 0;
  HMAC(EVP_sha1(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(username.data()), username.size(), mac, &mac_len);
  // 20 bytes: 28 characters with one '=' of padding, and the terminator.
  unsigned char text[4 * ((EVP_MAX_MD_SIZE + 2) / 3) + 1];
  int n = EVP_EncodeBlock(text, mac, static_cast<int>(mac_len));
  return std::string(reinterpret_cast<const char*>(text), static_cast<size_t>(n));
}

std::string MintOpaqueId() { return Base64Url(RandomBytes(kOpaqueIdRandomBytes)); }

std::string ApproachOneUsername(int64_t expires_at_s, std::string_view opaque_id) {
  return StrCat(expires_at_s, ":", opaque_id);
}

SecretBook::SecretBook(const Clock* clock) : clock_(clock) {}

void SecretBook::ResetLocked() {
  position_ = WatchPosition();
  positioned_ = false;
  in_snapshot_ = false;
  snapshot_.clear();
}

void SecretBook::ApplyEventsLocked(const v1::WatchResponse& frame, Realms* into) {
  for (const v1::Event& e : frame.events()) {
    if (e.has_secret()) {
      const v1::SharedSecret& s = e.secret();
      if (auto st = CheckSecret(s); !st.ok()) {
        LogWarn("shared secret from the broker skipped")
            .Kv("realm", s.realm())
            .Kv("id", s.id())
            .Kv("error", st);
        continue;
      }
      (*into)[s.realm()][s.id()] = std::make_shared<const v1::SharedSecret>(s);
    } else if (e.has_secret_retired()) {
      auto realm = into->find(e.secret_retired().realm());
      if (realm == into->end()) continue;
      realm->second.erase(e.secret_retired().id());
      if (realm->second.empty()) into->erase(realm);
    }
    // Credentials and revocations are not this book's.
  }
}

absl::Status SecretBook::Apply(const v1::WatchResponse& frame) {
  std::lock_guard lock(mu_);
  switch (frame.marker()) {
    case v1::WatchResponse::SNAPSHOT_BEGIN:
      in_snapshot_ = true;
      snapshot_.clear();
      position_ = WatchPosition{frame.epoch(), 0};
      positioned_ = false;
      ApplyEventsLocked(frame, &snapshot_);
      return absl::OkStatus();
    case v1::WatchResponse::SYNCED:
      if (in_snapshot_) {
        ApplyEventsLocked(frame, &snapshot_);
        known_.swap(snapshot_);
        snapshot_.clear();
        in_snapshot_ = false;
      } else if (!positioned_ || frame.epoch() != position_.epoch) {
        ResetLocked();
        return absl::DataLossError("watch: SYNCED without a snapshot or a resume point");
      } else {
        ApplyEventsLocked(frame, &known_);  // a resumed stream's replay
      }
      position_ = WatchPosition{frame.epoch(), frame.revision()};
      positioned_ = true;
      synced_ = true;
      return absl::OkStatus();
    case v1::WatchResponse::EVENTS:
    case v1::WatchResponse::PROGRESS:
      if (in_snapshot_) {
        ApplyEventsLocked(frame, &snapshot_);
        return absl::OkStatus();
      }
      if (!positioned_ || frame.epoch() != position_.epoch) {
        const std::string had = position_.epoch;
        ResetLocked();
        return absl::DataLossError(StrCat("watch: events of epoch '", frame.epoch(),
                                          "' without a snapshot (resuming '", had, "')"));
      }
      ApplyEventsLocked(frame, &known_);
      if (frame.revision() != 0) position_.revision = frame.revision();
      return absl::OkStatus();
    default:
      return absl::OkStatus();  // a marker of a later version: nothing to apply
  }
}

void SecretBook::StreamEnded() {
  std::lock_guard lock(mu_);
  if (in_snapshot_) ResetLocked();
}

WatchPosition SecretBook::position() const {
  std::lock_guard lock(mu_);
  return position_;
}

bool SecretBook::synced() const {
  std::lock_guard lock(mu_);
  return synced_;
}

absl::StatusOr<std::shared_ptr<const v1::SharedSecret>> SecretBook::Active(
    std::string_view realm) const {
  const int64_t now = clock_->NowMs();
  std::shared_ptr<const v1::SharedSecret> active;
  {
    std::lock_guard lock(mu_);
    if (!synced_) {
      return absl::UnavailableError(
          "no shared secret received from the broker yet (the broker has been unreachable since "
          "the start)");
    }
    auto r = known_.find(realm);
    if (r != known_.end()) {
      for (const auto& [id, s] : r->second) {
        if (s->state() != v1::SECRET_STATE_ACTIVE) continue;
        if (!active || s->activated_at_ms() > active->activated_at_ms()) active = s;
      }
    }
  }
  if (!active) {
    return absl::UnavailableError(
        StrCat("no active shared secret for realm '", realm, "' (turnbrokerctl secret activate)"));
  }
  if (active->expires_at_ms() != 0 && active->expires_at_ms() <= now) {
    return absl::UnavailableError(StrCat("the active shared secret '", active->id(),
                                         "' expired at ", active->expires_at_ms(), " (Unix ms)"));
  }
  if (active->not_before_ms() > now) {
    return absl::UnavailableError(StrCat("the active shared secret '", active->id(),
                                         "' may not be used before ", active->not_before_ms(),
                                         " (Unix ms)"));
  }
  return active;
}

SecretCounts SecretBook::Counts() const {
  const int64_t now = clock_->NowMs();
  SecretCounts c;
  std::lock_guard lock(mu_);
  for (const auto& [realm, secrets] : known_) {
    for (const auto& [id, s] : secrets) {
      if (s->expires_at_ms() != 0 && s->expires_at_ms() <= now) continue;
      switch (s->state()) {
        case v1::SECRET_STATE_STAGED:
          ++c.staged;
          break;
        case v1::SECRET_STATE_ACTIVE:
          ++c.active;
          break;
        case v1::SECRET_STATE_SUPERSEDED:
          ++c.superseded;
          break;
        default:
          break;
      }
    }
  }
  return c;
}

}  // namespace turnbroker::pcscf
