// Keys learned from an earlier broker epoch that the current broker has not
// sent again. The broker no longer knows them, so its revocations do not list
// them; a revocation's selector (username, subscriber, issuer) is applied to
// them here instead (docs/design.md, The TURN side). A mirror in memory of the sync's `legacy`
// set and the owners of its members; it shrinks as they expire.
//
// Not thread-safe: used by the sync's one applying thread.
#ifndef TURNBROKER_TURN_LEGACY_INDEX_H_
#define TURNBROKER_TURN_LEGACY_INDEX_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "turnbroker/v1/broker.pb.h"

namespace turnbroker::turn {

struct LegacyKey {
  std::string member;  // "<realm>/<username>"
  int64_t expires_at_ms = 0;
  std::string issuer;
  std::string subscriber;
};

class LegacyIndex {
 public:
  void Add(LegacyKey key);
  void Remove(const std::string& member);
  bool Contains(const std::string& member) const;
  // The expiry of a member, or 0 if absent.
  int64_t ExpiresAt(const std::string& member) const;
  // Members the selector covers (a username selector without realm: in
  // every realm), unexpired at `now_ms`.
  std::vector<std::string> Match(const ::turnbroker::v1::Selector& selector, int64_t now_ms) const;
  size_t size() const { return keys_.size(); }
  void Clear();

 private:
  using Members = absl::flat_hash_set<std::string>;
  static void Unlink(absl::flat_hash_map<std::string, Members>* index, const std::string& value,
                     const std::string& member);
  void Collect(const absl::flat_hash_map<std::string, Members>& index, const std::string& value,
               int64_t now_ms, std::vector<std::string>* out) const;

  absl::flat_hash_map<std::string, LegacyKey> keys_;
  absl::flat_hash_map<std::string, Members> by_username_;
  absl::flat_hash_map<std::string, Members> by_subscriber_;
  absl::flat_hash_map<std::string, Members> by_issuer_;
};

}  // namespace turnbroker::turn

#endif  // TURNBROKER_TURN_LEGACY_INDEX_H_
