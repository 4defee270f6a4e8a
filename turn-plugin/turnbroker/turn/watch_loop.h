// The Watch stream to the broker, kept open: on a broken stream, an
// unreachable broker or a failed frame it reconnects with jittered
// exponential backoff and resumes from the position the sink reports (the
// one stored in Redis), so no event is skipped. HTTP/2 keepalive (channel
// options) and an idle timeout (no frame, not even a PROGRESS marker) detect
// a dead broker. When the sink asks (shared-secret mode), the loop reports
// the applied position to the broker with Acknowledge: a failed report is
// counted and logged, never fatal (the broker's activation grace covers a
// sync that cannot report).
#ifndef TURNBROKER_TURN_WATCH_LOOP_H_
#define TURNBROKER_TURN_WATCH_LOOP_H_

#include <grpcpp/grpcpp.h>

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "turnbroker/common/backoff.h"
#include "turnbroker/common/clock.h"
#include "turnbroker/turn/sync_metrics.h"
#include "turnbroker/turn/userdb.h"
#include "turnbroker/v1/broker.grpc.pb.h"

namespace turnbroker::turn {

// Where frames go. Called from the loop's thread only.
class FrameSink {
 public:
  virtual ~FrameSink() = default;
  // Before each (re)connect: the position to resume from. An error is
  // retried after a backoff.
  virtual absl::StatusOr<Position> Prepare() = 0;
  // One frame. OK: applied, and its position stored if it carries one. An
  // error drops the stream; it is reopened after a backoff.
  virtual absl::Status OnFrame(const v1::WatchResponse& frame) = 0;
  // The stream ended (error or stop): an unfinished snapshot is abandoned.
  virtual void OnStreamEnd() = 0;
  // After OnFrame: a position to report to the broker now (Acknowledge), if
  // any. Default: never.
  virtual std::optional<Position> TakeAcknowledgement() { return std::nullopt; }
};

struct WatchLoopOptions {
  std::vector<std::string> realms;
  std::string farm;
  std::string watcher_name;
  // Record kinds asked for (WatchRequest.kinds); empty: long-term
  // credentials.
  std::vector<v1::RecordKind> kinds;
  // Deadline of an Acknowledge call.
  int64_t acknowledge_timeout_ms = 2'000;
  // PROGRESS marker interval asked of the broker.
  uint32_t progress_interval_ms = 5'000;
  // No frame for this long: the stream is dropped and reopened.
  // 0: 3 x progress_interval_ms + 5 s.
  int64_t idle_timeout_ms = 0;
  // Longest wait for a connection to the broker before backing off.
  int64_t connect_timeout_ms = 2'000;
  // At most 2 s: after a broker or Redis outage that ended several streams in
  // a row, a sync is back within 2 s of the broker's recovery (the HA
  // convergence bound of docs/operations.md), and a reconnect attempt costs
  // the broker next to nothing.
  BackoffOptions backoff{100, 2'000, 2.0};
};

class WatchLoop {
 public:
  // `channel`, `sink`, `metrics` and `clock` must outlive the loop.
  WatchLoop(std::shared_ptr<grpc::Channel> channel, WatchLoopOptions options, FrameSink* sink,
            SyncMetrics* metrics, const Clock* clock);
  ~WatchLoop();  // Stop()s

  // Runs the loop on its own thread.
  void Start();
  // Ends the stream and the loop; returns when the thread is done.
  void Stop();

 private:
  void Run();
  absl::Status RunStream(const Position& from);
  void Acknowledge(const Position& applied);
  // Waits (at most connect_timeout_ms) until the channel is connected. The
  // wait also drives the connection: a synchronous client has no other
  // poller between calls.
  absl::Status Connect();
  // Sleeps unless stopped; false if stopping.
  bool Sleep(int64_t ms);
  void Watchdog();

  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::CredentialBroker::Stub> stub_;
  const WatchLoopOptions options_;
  FrameSink* const sink_;
  SyncMetrics* const metrics_;
  const Clock* const clock_;
  Backoff backoff_;

  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;                                   // guarded by mu_
  grpc::ClientContext* stream_ = nullptr;                   // guarded by mu_
  int64_t last_frame_mono_ms_ = 0;                          // guarded by mu_
  grpc::StatusCode last_ack_error_ = grpc::StatusCode::OK;  // the loop's thread only
  std::thread thread_;
  std::thread watchdog_;
};

}  // namespace turnbroker::turn

#endif  // TURNBROKER_TURN_WATCH_LOOP_H_
