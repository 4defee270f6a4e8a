// The broker's Watch of shared secrets behind the SecretSource seam: the test
// sends frames to the open stream, ends it, makes the broker unreachable, and
// reads the requests the watcher made.
#ifndef TURNBROKER_TESTS_PCSCF_FAKE_SECRET_SOURCE_H_
#define TURNBROKER_TESTS_PCSCF_FAKE_SECRET_SOURCE_H_

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "turnbroker/pcscf/secret_watcher.h"

namespace turnbroker::pcscf::testing {

// A secret record as the broker would send it.
v1::SharedSecret MakeSecret(const std::string& realm, const std::string& id, v1::SecretState state,
                            const std::string& bytes, int64_t max_credential_ttl_ms = 86'400'000,
                            int64_t not_before_ms = 0, int64_t expires_at_ms = 0,
                            int64_t activated_at_ms = 0);
// The frames of a snapshot: SNAPSHOT_BEGIN with one Event.secret per secret,
// then SYNCED at `revision`.
std::vector<v1::WatchResponse> SnapshotFrames(const std::string& epoch, uint64_t revision,
                                              const std::vector<v1::SharedSecret>& secrets);
// An EVENTS frame at `revision` carrying `secret` in its new state.
v1::WatchResponse SecretEvent(const std::string& epoch, uint64_t revision,
                              const v1::SharedSecret& secret);
v1::WatchResponse RetiredEvent(const std::string& epoch, uint64_t revision,
                               const std::string& realm, const std::string& id);

class FakeSecretSource : public SecretSource {
 public:
  FakeSecretSource();
  ~FakeSecretSource() override;
  std::unique_ptr<SecretStream> Open(const v1::WatchRequest& request) override;

  // Queues frames for the open stream (or the next one opened).
  void Send(const v1::WatchResponse& frame);
  void Send(const std::vector<v1::WatchResponse>& frames);
  // Ends the open stream with `status` (after the frames queued before).
  void End(absl::Status status);
  // While unreachable, a stream opened fails at once with UNAVAILABLE.
  void SetUnreachable(bool unreachable);

  std::vector<v1::WatchRequest> requests() const;
  // Streams opened so far.
  size_t opened() const;

 private:
  struct Shared;
  class Stream;
  std::shared_ptr<Shared> shared_;
};

}  // namespace turnbroker::pcscf::testing

#endif  // TURNBROKER_TESTS_PCSCF_FAKE_SECRET_SOURCE_H_
