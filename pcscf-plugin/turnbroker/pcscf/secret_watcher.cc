#include "turnbroker/pcscf/secret_watcher.h"

#include <chrono>

#include "turnbroker/common/log.h"
#include "turnbroker/common/status.h"
#include "turnbroker/common/strings.h"
#include "turnbroker/v1/broker.grpc.pb.h"

namespace turnbroker::pcscf {
namespace {

class GrpcSecretStream final : public SecretStream {
 public:
  GrpcSecretStream(v1::CredentialBroker::Stub* stub, const v1::WatchRequest& request)
      : reader_(stub->Watch(&context_, request)) {}
  bool Read(v1::WatchResponse* frame) override { return reader_->Read(frame); }
  absl::Status Finish() override { return FromGrpcStatus(reader_->Finish()); }
  void Cancel() override { context_.TryCancel(); }

 private:
  grpc::ClientContext context_;  // before reader_: it must outlive it
  std::unique_ptr<grpc::ClientReader<v1::WatchResponse>> reader_;
};

class GrpcSecretSource final : public SecretSource {
 public:
  explicit GrpcSecretSource(std::shared_ptr<grpc::Channel> channel)
      : channel_(std::move(channel)), stub_(v1::CredentialBroker::NewStub(channel_)) {}
  std::unique_ptr<SecretStream> Open(const v1::WatchRequest& request) override {
    return std::make_unique<GrpcSecretStream>(stub_.get(), request);
  }

 private:
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::CredentialBroker::Stub> stub_;
};

}  // namespace

std::unique_ptr<SecretSource> NewGrpcSecretSource(std::shared_ptr<grpc::Channel> channel) {
  return std::make_unique<GrpcSecretSource>(std::move(channel));
}

SecretWatcher::SecretWatcher(SecretSource* source, SecretBook* book, SecretWatchOptions options,
                             MetricsRegistry* metrics)
    : source_(source),
      book_(book),
      options_(std::move(options)),
      idle_timeout_ms_(options_.idle_timeout_ms > 0
                           ? options_.idle_timeout_ms
                           : 3 * int64_t{options_.progress_interval_ms} + 5'000),
      backoff_(options_.backoff) {
  if (metrics) {
    streams_metric_ = metrics->AddCounter("pcscf_turn_secret_watch_streams_total",
                                          "Watch streams of shared secrets opened");
    metrics->AddGaugeFunction("pcscf_turn_secret_watch_synced",
                              "1 while the Watch stream of shared secrets is open and synced",
                              [this] { return synced() ? 1.0 : 0.0; });
    const char* help = "Shared secrets known (not expired), by state";
    metrics->AddGaugeFamilyFunction("pcscf_turn_shared_secrets", help, [book] {
      SecretCounts c = book->Counts();
      return MetricsRegistry::Samples{{"state=\"staged\"", static_cast<double>(c.staged)},
                                      {"state=\"active\"", static_cast<double>(c.active)},
                                      {"state=\"superseded\"", static_cast<double>(c.superseded)}};
    });
  }
}

SecretWatcher::~SecretWatcher() { Stop(); }

void SecretWatcher::Start() {
  thread_ = std::thread([this] { Run(); });
  watchdog_ = std::thread([this] { Watchdog(); });
}

void SecretWatcher::Stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    if (stream_ != nullptr) stream_->Cancel();
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  if (watchdog_.joinable()) watchdog_.join();
}

bool SecretWatcher::SleepMs(int64_t ms) {
  std::unique_lock lock(mu_);
  cv_.wait_for(lock, std::chrono::milliseconds(ms), [this] { return stopping_; });
  return !stopping_;
}

// Cancels a stream that has been silent past the idle timeout; the reading
// thread then opens the next one.
void SecretWatcher::Watchdog() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    if (stream_ == nullptr) {
      cv_.wait(lock);
      continue;
    }
    const int64_t due_us = last_frame_us_ + idle_timeout_ms_ * 1000;
    const int64_t now_us = MonotonicMicros();
    if (now_us < due_us) {
      cv_.wait_for(lock, std::chrono::microseconds(due_us - now_us));
      continue;
    }
    LogWarn("shared-secret watch idle; reconnecting")
        .Kv("idle_ms", (now_us - last_frame_us_) / 1000);
    stream_->Cancel();
    last_frame_us_ = now_us;  // once per silence
  }
}

void SecretWatcher::Run() {
  for (;;) {
    absl::Status ended = RunStream();
    synced_ = false;
    book_->StreamEnded();
    {
      std::lock_guard lock(mu_);
      if (stopping_) return;
    }
    const int64_t delay = backoff_.NextDelayMs();
    LogWarn("shared-secret watch ended; reconnecting")
        .Kv("error", StatusLine(ended))
        .Kv("retry_in_ms", delay);
    if (!SleepMs(delay)) return;
  }
}

absl::Status SecretWatcher::RunStream() {
  const WatchPosition from = book_->position();
  v1::WatchRequest request;
  for (const std::string& realm : options_.realms) request.add_realms(realm);
  request.add_kinds(v1::RECORD_KIND_SHARED_SECRET);
  request.set_watcher_name(options_.watcher_name);
  request.set_progress_interval_ms(options_.progress_interval_ms);
  if (from.revision != 0) {
    request.set_resume_revision(from.revision);
    request.set_resume_epoch(from.epoch);
  }
  std::unique_ptr<SecretStream> stream = source_->Open(request);
  {
    std::lock_guard lock(mu_);
    if (stopping_) return absl::CancelledError("stopping");
    stream_ = stream.get();
    last_frame_us_ = MonotonicMicros();
  }
  cv_.notify_all();
  ++streams_;
  if (streams_metric_) streams_metric_->Inc();

  absl::Status refused;
  v1::WatchResponse frame;
  while (stream->Read(&frame)) {
    {
      std::lock_guard lock(mu_);
      last_frame_us_ = MonotonicMicros();
    }
    refused = book_->Apply(frame);
    if (!refused.ok()) {
      stream->Cancel();
      break;
    }
    if (frame.marker() == v1::WatchResponse::SYNCED && !synced_) {
      synced_ = true;
      backoff_.Reset();
      const SecretCounts c = book_->Counts();
      LogInfo("shared secrets synced")
          .Kv("epoch", frame.epoch())
          .Kv("revision", frame.revision())
          .Kv("active", c.active)
          .Kv("staged", c.staged)
          .Kv("superseded", c.superseded);
    }
  }
  absl::Status finished = stream->Finish();
  {
    std::lock_guard lock(mu_);
    stream_ = nullptr;
  }
  if (!refused.ok()) return refused;
  if (finished.ok()) return absl::UnavailableError("broker ended the stream");
  return finished;
}

}  // namespace turnbroker::pcscf
