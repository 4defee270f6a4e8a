// The eP-CSCF's Watch of the broker's shared secrets (approach 1,
// docs/approach1.md): as role `minter`, kinds = [RECORD_KIND_SHARED_SECRET],
// kept open for the agent's life and applied to a SecretBook.
#ifndef TURNBROKER_PCSCF_SECRET_WATCHER_H_
#define TURNBROKER_PCSCF_SECRET_WATCHER_H_

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "turnbroker/common/backoff.h"
#include "turnbroker/common/metrics.h"
#include "turnbroker/pcscf/secret_book.h"

namespace turnbroker::pcscf {

// One Watch stream as the watcher reads it.
class SecretStream {
 public:
  virtual ~SecretStream() = default;
  // Blocks for the next frame; false once the stream is over, and Finish()
  // then says why (OK: the broker ended it).
  virtual bool Read(v1::WatchResponse* frame) = 0;
  virtual absl::Status Finish() = 0;
  // From any thread: ends a Read in progress (it returns false).
  virtual void Cancel() = 0;
};

// Opens Watch streams: the seam between the watcher and gRPC (tests put a
// fake behind it). Thread-safe.
class SecretSource {
 public:
  virtual ~SecretSource() = default;
  // A stream for `request`; a broker that cannot be reached gives a stream
  // whose first Read is false and whose Finish() is UNAVAILABLE.
  virtual std::unique_ptr<SecretStream> Open(const v1::WatchRequest& request) = 0;
};

// Watch over `channel` (common/channel.h: keepalive, TLS; the client
// certificate needs the `minter` role). The call fails fast when the broker
// is unreachable, and the watcher's backoff paces the next attempt.
std::unique_ptr<SecretSource> NewGrpcSecretSource(std::shared_ptr<grpc::Channel> channel);

struct SecretWatchOptions {
  // Realms asked for (the agent's realm).
  std::vector<std::string> realms;
  // WatchRequest.watcher_name, for the broker's logs and metrics.
  std::string watcher_name;
  // How often the broker sends PROGRESS on an idle stream.
  uint32_t progress_interval_ms = 5'000;
  // No frame for this long (not even PROGRESS): the stream is taken as dead,
  // cancelled and opened again. 0: 3 x progress_interval_ms + 5 s.
  int64_t idle_timeout_ms = 0;
  // Between two streams, after a failure (jittered, doubling; reset once a
  // stream has SYNCED).
  BackoffOptions backoff{100, 5'000, 2.0};
};

// Keeps one Watch stream open on its own thread and applies its frames to
// `book`: a stream that ends, fails, sends a frame out of order or stays
// silent past the idle timeout is opened again after a backoff, resuming
// from the book's position (or with a snapshot: a new epoch, a lost
// history). While no stream is open, the book keeps what it knows, so an
// agent that has the active secret keeps minting with it.
class SecretWatcher {
 public:
  // `source`, `book` and `metrics` (may be null) must outlive the watcher.
  SecretWatcher(SecretSource* source, SecretBook* book, SecretWatchOptions options,
                MetricsRegistry* metrics = nullptr);
  ~SecretWatcher();  // Stop()s
  SecretWatcher(const SecretWatcher&) = delete;
  SecretWatcher& operator=(const SecretWatcher&) = delete;

  void Start();
  // Ends the stream and the threads; idempotent.
  void Stop();

  // A stream is open and has delivered SYNCED.
  bool synced() const { return synced_.load(); }
  // Streams opened so far.
  uint64_t streams() const { return streams_.load(); }

 private:
  void Run();
  // Runs one stream to its end; the reason it ended.
  absl::Status RunStream();
  void Watchdog();
  bool SleepMs(int64_t ms);  // false: stopping

  SecretSource* const source_;
  SecretBook* const book_;
  const SecretWatchOptions options_;
  const int64_t idle_timeout_ms_;
  Backoff backoff_;
  Counter* streams_metric_ = nullptr;

  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;           // guarded by mu_
  SecretStream* stream_ = nullptr;  // guarded by mu_: the one being read
  int64_t last_frame_us_ = 0;       // guarded by mu_: monotonic
  std::atomic<bool> synced_{false};
  std::atomic<uint64_t> streams_{0};
  std::thread thread_;
  std::thread watchdog_;
};

}  // namespace turnbroker::pcscf

#endif  // TURNBROKER_PCSCF_SECRET_WATCHER_H_
