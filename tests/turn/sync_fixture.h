// Integration-test helpers: a gRPC client of a real broker, and a
// turn-credential-sync run in process (the library's CredentialSync and
// WatchLoop, as main.cc wires them) so tests can read its metrics.
#ifndef TURNBROKER_TESTS_TURN_SYNC_FIXTURE_H_
#define TURNBROKER_TESTS_TURN_SYNC_FIXTURE_H_

#include <gtest/gtest.h>

#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "../broker/broker_client.h"
#include "frames.h"
#include "process.h"
#include "turnbroker/common/channel.h"
#include "turnbroker/common/clock.h"
#include "turnbroker/common/metrics.h"
#include "turnbroker/common/redis.h"
#include "turnbroker/turn/sync.h"
#include "turnbroker/turn/watch_loop.h"
#include "turnbroker/v1/broker.grpc.pb.h"

namespace turnbroker::turn::testing {

// The broker test client (tests/broker) with the shortcuts TURN-side tests
// use: credentials with password "pw-<username>", revision results.
class BrokerClient {
 public:
  explicit BrokerClient(const std::string& address) : client_(Channel(address)) {}

  // Publishes a credential valid for `ttl_ms`; its revision.
  uint64_t Publish(const std::string& realm, const std::string& username, int64_t ttl_ms,
                   const std::string& subscriber = "", const std::string& issuer = "") {
    v1::PublishResponse resp;
    grpc::Status s = client_.Publish(
        {Cred(realm, username, Clock::System()->NowMs() + ttl_ms, subscriber, issuer)}, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return resp.revision();
  }

  // Publish, retried while the broker is UNAVAILABLE (just restarted: the
  // first call may meet the closing connection) for up to 5 s.
  uint64_t PublishOnceServing(const std::string& realm, const std::string& username,
                              int64_t ttl_ms) {
    v1::PublishResponse resp;
    grpc::Status s;
    turnbroker::testing::WaitUntil(
        [&] {
          s = client_.Publish({Cred(realm, username, Clock::System()->NowMs() + ttl_ms)}, &resp);
          return s.error_code() != grpc::StatusCode::UNAVAILABLE;
        },
        std::chrono::seconds(5));
    EXPECT_TRUE(s.ok()) << s.error_message();
    return resp.revision();
  }

  uint64_t Revoke(const v1::Selector& selector) {
    v1::RevokeRequest req;
    *req.mutable_selector() = selector;
    req.set_reason("test");
    v1::RevokeResponse resp;
    grpc::Status s = client_.Revoke(req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return resp.revision();
  }

  std::string Epoch() { return client_.Status().epoch(); }

 private:
  static std::shared_ptr<grpc::Channel> Channel(const std::string& address) {
    ChannelOptions o;
    o.target = address;
    return *MakeChannel(o);
  }
  turnbroker::testing::BrokerClient client_;
};

// A broker that sends scripted frames, then holds the stream open; it keeps
// the WatchRequests and AcknowledgeRequests it receives.
class ScriptedBroker final : public v1::CredentialBroker::Service {
 public:
  explicit ScriptedBroker(std::vector<v1::WatchResponse> frames) : frames_(std::move(frames)) {}
  grpc::Status Watch(grpc::ServerContext* context, const v1::WatchRequest* request,
                     grpc::ServerWriter<v1::WatchResponse>* writer) override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      watches_.push_back(*request);
    }
    for (const auto& f : frames_) writer->Write(f);
    while (!context->IsCancelled()) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    return grpc::Status::OK;
  }
  grpc::Status Acknowledge(grpc::ServerContext*, const v1::AcknowledgeRequest* request,
                           v1::AcknowledgeResponse*) override {
    std::lock_guard<std::mutex> lock(mu_);
    acknowledgements_.push_back(*request);
    return grpc::Status::OK;
  }
  std::vector<v1::WatchRequest> watches() {
    std::lock_guard<std::mutex> lock(mu_);
    return watches_;
  }
  std::vector<v1::AcknowledgeRequest> acknowledgements() {
    std::lock_guard<std::mutex> lock(mu_);
    return acknowledgements_;
  }

 private:
  const std::vector<v1::WatchResponse> frames_;
  std::mutex mu_;
  std::vector<v1::WatchRequest> watches_;                 // guarded by mu_
  std::vector<v1::AcknowledgeRequest> acknowledgements_;  // guarded by mu_
};

// How a SyncRunner watches: the test defaults (a short idle watchdog).
struct SyncRunnerTiming {
  int64_t idle_timeout_ms = 1'500;
  int keepalive_time_ms = ChannelOptions().keepalive_time_ms;
  int keepalive_timeout_ms = ChannelOptions().keepalive_timeout_ms;
};

// One sync, in process. Fast backoff so tests do not wait.
class SyncRunner {
 public:
  SyncRunner(const std::string& broker, const RedisUrl& redis, SyncOptions options,
             SyncRunnerTiming timing = {})
      : options_(std::move(options)) {
    RedisOptions ro;
    ro.url = redis;
    ro.connect_timeout_ms = 500;
    ro.io_timeout_ms = 2'000;
    redis_ = std::make_unique<HiredisClient>(ro);
    metrics_ = std::make_unique<SyncMetrics>(&registry_, Clock::System());
    sync_ =
        std::make_unique<CredentialSync>(options_, redis_.get(), Clock::System(), metrics_.get());
    ChannelOptions co;
    co.target = broker;
    co.initial_reconnect_backoff_ms = 50;
    co.max_reconnect_backoff_ms = 300;
    co.keepalive_time_ms = timing.keepalive_time_ms;
    co.keepalive_timeout_ms = timing.keepalive_timeout_ms;
    WatchLoopOptions wo;
    wo.realms = options_.realms;
    wo.farm = options_.farm;
    wo.watcher_name = options_.name;
    wo.kinds = WatchKinds(options_.auth_mode);
    wo.progress_interval_ms = 200;
    wo.idle_timeout_ms = timing.idle_timeout_ms;
    wo.backoff = BackoffOptions{20, 300, 2.0};
    loop_ = std::make_unique<WatchLoop>(*MakeChannel(co), wo, sync_.get(), metrics_.get(),
                                        Clock::System());
    loop_->Start();
  }
  ~SyncRunner() { Stop(); }

  void Stop() { loop_->Stop(); }
  CredentialSync& sync() { return *sync_; }
  SyncMetrics& metrics() { return *metrics_; }
  std::string RenderMetrics() { return registry_.Render(); }

  // Waits until the stored position reaches `revision` (and the stream is
  // synced).
  bool WaitForRevision(uint64_t revision,
                       std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    return turnbroker::testing::WaitUntil(
        [&] { return metrics_->synced.load() && sync_->position().revision >= revision; }, timeout);
  }

 private:
  SyncOptions options_;
  MetricsRegistry registry_;
  std::unique_ptr<HiredisClient> redis_;
  std::unique_ptr<SyncMetrics> metrics_;
  std::unique_ptr<CredentialSync> sync_;
  std::unique_ptr<WatchLoop> loop_;
};

}  // namespace turnbroker::turn::testing

#endif  // TURNBROKER_TESTS_TURN_SYNC_FIXTURE_H_
