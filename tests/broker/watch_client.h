// A Watch stream read on a background thread, for tests.
#ifndef TURNBROKER_TESTS_BROKER_WATCH_CLIENT_H_
#define TURNBROKER_TESTS_BROKER_WATCH_CLIENT_H_

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <functional>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "turnbroker/v1/broker.grpc.pb.h"

namespace turnbroker::testing {

class WatchClient {
 public:
  using Responses = std::vector<v1::WatchResponse>;

  // `start_paused`: open the stream but do not read until Resume().
  WatchClient(const std::shared_ptr<grpc::Channel>& channel, v1::WatchRequest request,
              bool start_paused = false)
      : stub_(v1::CredentialBroker::NewStub(channel)), paused_(start_paused) {
    reader_ = stub_->Watch(&context_, request);
    thread_ = std::thread([this] { Loop(); });
  }
  ~WatchClient() {
    context_.TryCancel();
    Resume();
    thread_.join();
  }

  void Resume() {
    std::lock_guard<std::mutex> lock(mu_);
    paused_ = false;
    cv_.notify_all();
  }

  Responses responses() const {
    std::lock_guard<std::mutex> lock(mu_);
    return responses_;
  }
  std::optional<grpc::Status> finished() const {
    std::lock_guard<std::mutex> lock(mu_);
    return status_;
  }

  bool WaitFor(const std::function<bool(const Responses&)>& done,
               std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return done(responses_) || status_.has_value(); }) &&
           done(responses_);
  }
  bool WaitForEnd(std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return status_.has_value(); });
  }

  // Helpers over responses.
  static std::vector<v1::Event> Events(const Responses& rs) {
    std::vector<v1::Event> out;
    for (const auto& r : rs)
      for (const auto& e : r.events()) out.push_back(e);
    return out;
  }
  static int Count(const Responses& rs, v1::WatchResponse::Marker marker) {
    int n = 0;
    for (const auto& r : rs) n += r.marker() == marker;
    return n;
  }
  static const v1::WatchResponse* Last(const Responses& rs, v1::WatchResponse::Marker marker) {
    for (auto it = rs.rbegin(); it != rs.rend(); ++it)
      if (it->marker() == marker) return &*it;
    return nullptr;
  }

 private:
  void Loop() {
    v1::WatchResponse r;
    for (;;) {
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [&] { return !paused_; });
      }
      if (!reader_->Read(&r)) break;
      std::lock_guard<std::mutex> lock(mu_);
      responses_.push_back(r);
      cv_.notify_all();
    }
    grpc::Status s = reader_->Finish();
    std::lock_guard<std::mutex> lock(mu_);
    status_ = s;
    cv_.notify_all();
  }

  std::unique_ptr<v1::CredentialBroker::Stub> stub_;
  grpc::ClientContext context_;
  std::unique_ptr<grpc::ClientReader<v1::WatchResponse>> reader_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool paused_;
  Responses responses_;
  std::optional<grpc::Status> status_;
  std::thread thread_;
};

}  // namespace turnbroker::testing

#endif  // TURNBROKER_TESTS_BROKER_WATCH_CLIENT_H_
