// Watch streams. Each stream is a cursor into the shared state: in a snapshot
// it walks the live set in revision order, otherwise it reads the retained
// history after the last revision it sent. Nothing is queued per watcher:
// one frame is built when the previous write completed (one write in
// flight), so a slow watcher costs one frame of memory and only lags; if it
// falls behind the retained history it is given a new snapshot. Publishers
// and other watchers never wait for it.
//
// Frames are WatchResponse messages encoded by hand from the records'
// encodings (see wire.h): fan-out costs a memcpy per event and watcher.
#ifndef TURNBROKER_BROKER_WATCH_H_
#define TURNBROKER_BROKER_WATCH_H_

#include <grpcpp/grpcpp.h>
#include <grpcpp/support/byte_buffer.h>

#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "turnbroker/broker/state.h"
#include "turnbroker/common/metrics.h"
#include "turnbroker/common/tls.h"

namespace turnbroker::broker {

// Bounds on a WatchRequest's lists (INVALID_ARGUMENT beyond). A TURN farm
// serves a few realms; kinds has four values.
inline constexpr size_t kMaxWatchRealms = 1'000;
inline constexpr size_t kMaxWatchKinds = 16;

struct WatchOptions {
  int64_t default_progress_interval_ms = 5'000;
  int64_t min_progress_interval_ms = 100;
  size_t max_frame_bytes = 1 << 20;
  size_t max_frame_events = 4'096;
  size_t max_watchers = 10'000;
  // Open streams of one client (certificate CN and address, or address for
  // plaintext): one certificate must not take every slot.
  size_t max_watchers_per_client = 256;
  // A caught-up stream starts a frame at most once per this many µs: what
  // commits within the interval waits and leaves in one frame, sent by the
  // hub thread when the interval is over (fewer writes per credential, for
  // up to this much more latency). 0: a frame per commit.
  int64_t min_frame_interval_us = 0;
};

class WatchStream;

class WatchHub {
 public:
  WatchHub(const CredentialState& state, WatchOptions options, MetricsRegistry* metrics);
  ~WatchHub();  // Shutdown() first

  // Validates the request and starts a stream for it. Errors (bad request,
  // too many watchers, shutting down, a minter asking for more than shared
  // secrets) are returned as a finished reactor. What the stream carries
  // depends on the caller's roles (docs/approach1.md): a minter-only watcher
  // gets shared secrets only; any other gets revocations whatever its kinds;
  // secret bytes go to subscribers and minters, not to operators.
  grpc::ServerWriteReactor<grpc::ByteBuffer>* Open(grpc::CallbackServerContext* context,
                                                   const grpc::ByteBuffer* request,
                                                   const Peer& peer);

  // A new head revision was committed: live streams with no write in flight
  // build and start their next frame, on the calling thread (the commit
  // thread: a thread hop per commit costs more than building eight frames).
  // Streams in a snapshot are left to the hub thread and their own writes,
  // so a snapshot's walk of the live set never runs on the commit thread.
  void Notify();

  // Finishes every stream with UNAVAILABLE ("reconnect") and refuses new
  // ones. Waits up to 2 s for them to be done (a stream stuck behind a
  // client that stopped reading ends when the server cancels its call).
  void Shutdown();

  size_t size() const;

 private:
  friend class WatchStream;
  struct Metrics;
  void Loop();
  void Remove(WatchStream* stream);
  // A stream held a frame back (min_frame_interval_us): the hub thread pumps
  // every stream once the interval has passed. Takes only wake_mu_.
  void Defer();

  const CredentialState& state_;
  const WatchOptions options_;
  std::unique_ptr<Metrics> metrics_;

  mutable std::mutex mu_;
  std::condition_variable cv_;                // Shutdown waits on it for the streams to go
  std::unordered_set<WatchStream*> streams_;  // guarded by mu_
  // Open streams per client (WatchStream::client(); guarded by mu_).
  std::unordered_map<std::string, size_t> per_client_;
  bool stopping_ = false;  // guarded by mu_
  // The hub thread sleeps on these (a leaf lock: taken with a stream's mutex
  // or mu_ held, never the other way round).
  std::mutex wake_mu_;
  std::condition_variable wake_cv_;
  bool deferred_ = false;  // guarded by wake_mu_
  bool exit_ = false;      // guarded by wake_mu_; set by Shutdown
  std::thread thread_;
};

// Checks a WatchRequest; INVALID_ARGUMENT names the field.
absl::Status ValidateWatchRequest(const v1::WatchRequest& request, const WatchOptions& options);

}  // namespace turnbroker::broker

#endif  // TURNBROKER_BROKER_WATCH_H_
