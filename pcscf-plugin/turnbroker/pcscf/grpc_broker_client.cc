#include <chrono>
#include <condition_variable>
#include <mutex>
#include <unordered_set>

#include "turnbroker/common/status.h"
#include "turnbroker/pcscf/broker_client.h"
#include "turnbroker/v1/broker.grpc.pb.h"

namespace turnbroker::pcscf {
namespace {

class GrpcBrokerClient final : public BrokerClient {
 public:
  explicit GrpcBrokerClient(std::shared_ptr<grpc::Channel> channel)
      : channel_(std::move(channel)),
        stub_(v1::CredentialBroker::NewStub(channel_)) {}

  ~GrpcBrokerClient() override {
    std::unique_lock lock(mu_);
    for (grpc::ClientContext* c : in_flight_) c->TryCancel();
    idle_.wait(lock, [this] { return in_flight_.empty(); });
  }

  void Publish(v1::PublishRequest request, int64_t timeout_ms,
               Callback<v1::PublishResponse> done) override {
    auto* call = Start<v1::PublishRequest, v1::PublishResponse>(
        std::move(request), timeout_ms, std::move(done));
    stub_->async()->Publish(&call->context, &call->request, &call->response,
                            [this, call](grpc::Status s) { Finish(call, s); });
  }

  void Revoke(v1::RevokeRequest request, int64_t timeout_ms,
              Callback<v1::RevokeResponse> done) override {
    auto* call = Start<v1::RevokeRequest, v1::RevokeResponse>(
        std::move(request), timeout_ms, std::move(done));
    stub_->async()->Revoke(&call->context, &call->request, &call->response,
                           [this, call](grpc::Status s) { Finish(call, s); });
  }

  void GetStatus(int64_t timeout_ms,
                 Callback<v1::GetStatusResponse> done) override {
    auto* call = Start<v1::GetStatusRequest, v1::GetStatusResponse>(
        v1::GetStatusRequest(), timeout_ms, std::move(done));
    stub_->async()->GetStatus(
        &call->context, &call->request, &call->response,
        [this, call](grpc::Status s) { Finish(call, s); });
  }

 private:
  template <typename Req, typename Resp>
  struct Call {
    grpc::ClientContext context;
    Req request;
    Resp response;
    Callback<Resp> done;
  };

  template <typename Req, typename Resp>
  Call<Req, Resp>* Start(Req request, int64_t timeout_ms,
                         Callback<Resp> done) {
    auto* call = new Call<Req, Resp>;
    call->request = std::move(request);
    call->done = std::move(done);
    call->context.set_deadline(std::chrono::system_clock::now() +
                               std::chrono::milliseconds(timeout_ms));
    std::lock_guard lock(mu_);
    in_flight_.insert(&call->context);
    return call;
  }

  template <typename Req, typename Resp>
  void Finish(Call<Req, Resp>* call, const grpc::Status& s) {
    if (s.ok()) {
      call->done(std::move(call->response));
    } else {
      call->done(FromGrpcStatus(s));
    }
    {
      std::lock_guard lock(mu_);
      in_flight_.erase(&call->context);
      if (in_flight_.empty()) idle_.notify_all();
    }
    delete call;
  }

  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::CredentialBroker::Stub> stub_;
  std::mutex mu_;
  std::condition_variable idle_;
  std::unordered_set<grpc::ClientContext*> in_flight_;  // guarded by mu_
};

}  // namespace

std::unique_ptr<BrokerClient> NewGrpcBrokerClient(
    std::shared_ptr<grpc::Channel> channel) {
  return std::make_unique<GrpcBrokerClient>(std::move(channel));
}

}  // namespace turnbroker::pcscf
