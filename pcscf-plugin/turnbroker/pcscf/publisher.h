// Publishes credentials to the broker with batching, and carries the other
// broker calls of the eP-CSCF side (Revoke, GetStatus) over the same client.
#ifndef TURNBROKER_PCSCF_PUBLISHER_H_
#define TURNBROKER_PCSCF_PUBLISHER_H_

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "turnbroker/common/clock.h"
#include "turnbroker/common/metrics.h"
#include "turnbroker/pcscf/broker_client.h"

namespace turnbroker::pcscf {

struct PublisherOptions {
  // Credentials in one Publish call (the broker's --max-batch is 10000).
  size_t max_batch = 500;
  // Publish calls in flight at once. While all are busy, new credentials
  // queue and leave together in the next call: many SIP workers publishing
  // at once share calls, and an idle publisher adds no delay. Fewer calls
  // batch more (less CPU per credential at the broker and here); more than
  // one keeps a slow call from holding every credential back.
  int max_in_flight = 2;
  // Calls go over one long-lived PublishStream (less work per publish and a
  // lower latency tail than a unary call each); false: unary Publish calls
  // (for a proxy that cannot carry long streams, or to compare). A broker
  // without PublishStream is detected and gets unary calls either way.
  bool publish_stream = true;
  // Deadline of one Publish call; a credential's own deadline may be shorter.
  int64_t call_timeout_ms = 500;
  // Backoff between attempts of a credential whose call failed transiently:
  // doubling from the initial delay up to the maximum, with equal jitter
  // (common/backoff.h).
  int64_t initial_backoff_ms = 20;
  int64_t max_backoff_ms = 200;
  // UNAVAILABLE is retried only while the broker answered within this long
  // (a restart or a blip); beyond, the broker is taken as down and a
  // publish fails at once rather than hold a SIP worker until its deadline.
  int64_t retry_unavailable_for_ms = 2'000;
};

// Thread-safe. The BrokerClient must outlive the Publisher.
//
// Retries: Publish is idempotent (the same credential twice is one
// credential), so a credential whose call failed with UNAVAILABLE,
// DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED, ABORTED or INTERNAL is sent again
// with backoff until its own deadline; UNAVAILABLE only within
// retry_unavailable_for_ms of the broker's last answer (a restart or a
// blip), so when the broker is down a publish fails at once instead of
// holding a SIP worker. A batch is
// atomic at the broker, so when a batch of several is refused for one bad
// credential, each is sent again alone and only the bad one fails. Revoke
// and GetStatus are single attempts: the caller decides (a revocation by
// subscriber retried later could remove a credential issued since).
class Publisher {
 public:
  using Done = std::function<void(absl::Status)>;

  // Deadlines, backoffs and the broker's reachability are kept in `clock`'s
  // monotonic time; `clock` must outlive the publisher.
  Publisher(BrokerClient* client, PublisherOptions options, MetricsRegistry* metrics = nullptr,
            const Clock* clock = Clock::System());
  // Fails queued credentials with UNAVAILABLE and waits for calls in flight.
  ~Publisher();
  Publisher(const Publisher&) = delete;
  Publisher& operator=(const Publisher&) = delete;

  // Sends `credential` at once if a call slot is free (from this thread),
  // else queues it for the next call. `done` runs once, on any thread (a
  // gRPC thread, the publisher's, or this one), with OK when the broker committed it,
  // DEADLINE_EXCEEDED when `timeout_ms` passed first, or the last error. After a transient error
  // the credential may still have been committed.
  void PublishAsync(v1::Credential credential, int64_t timeout_ms, Done done);
  // The same, blocking.
  absl::Status Publish(v1::Credential credential, int64_t timeout_ms);

  void RevokeAsync(v1::RevokeRequest request, int64_t timeout_ms,
                   BrokerClient::Callback<v1::RevokeResponse> done);
  absl::StatusOr<v1::RevokeResponse> Revoke(v1::RevokeRequest request, int64_t timeout_ms);
  void GetStatusAsync(int64_t timeout_ms, BrokerClient::Callback<v1::GetStatusResponse> done);
  absl::StatusOr<v1::GetStatusResponse> GetStatus(int64_t timeout_ms);

  // The broker epoch of the last response ("" before the first).
  std::string epoch() const;
  // Whether the last call reached the broker (false before the first).
  bool broker_reachable() const;
  // Called, outside any lock, when a response carries an epoch other than
  // the previous one (not for the first): the broker's store was made anew
  // and publishers should re-assert their live credentials. Replacing the
  // listener (e.g. with nullptr) waits for a call of the old one to return.
  void SetEpochListener(
      std::function<void(const std::string& previous, const std::string& current)> listener);

 private:
  struct Pending {
    v1::Credential credential;
    int64_t deadline_us = 0;  // monotonic
    int64_t not_before_us = 0;
    int attempts = 0;
    bool alone = false;  // send in a batch of its own
    Done done;
  };
  struct Metrics;

  // With `lock` holding mu_: sends queued credentials while a call slot is
  // free (unlocking around each call).
  void DispatchLocked(std::unique_lock<std::mutex>& lock);
  // The worker: ends backoffs, fails what passed its deadline.
  void Run();
  void OnPublished(std::vector<Pending> batch, int64_t started_us,
                   absl::StatusOr<v1::PublishResponse> result);
  // Records reachability and epoch from a call's result.
  void Observe(const absl::Status& status, const std::string& epoch);

  BrokerClient* const client_;
  const PublisherOptions options_;
  const Clock* const clock_;
  std::unique_ptr<Metrics> metrics_;
  std::mutex listener_mu_;  // held while the listener runs
  std::function<void(const std::string&, const std::string&)>
      epoch_listener_;  // guarded by listener_mu_

  mutable std::mutex mu_;
  std::condition_variable wake_;            // the worker: a new deadline or backoff
  std::condition_variable drained_;         // the destructor: no call in flight
  std::deque<Pending> queue_;               // guarded by mu_
  std::vector<Pending> delayed_;            // guarded by mu_: waiting for backoff
  int in_flight_ = 0;                       // guarded by mu_: Publish calls
  int other_calls_ = 0;                     // guarded by mu_: Revoke, GetStatus
  bool stopping_ = false;                   // guarded by mu_
  bool reachable_ = false;                  // guarded by mu_
  int64_t last_answer_us_ = INT64_MIN / 2;  // guarded by mu_: monotonic
  std::string epoch_;                       // guarded by mu_
  std::thread worker_;
};

}  // namespace turnbroker::pcscf

#endif  // TURNBROKER_PCSCF_PUBLISHER_H_
