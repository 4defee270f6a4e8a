#include "turnbroker/turn/watch_loop.h"

#include <chrono>

#include "turnbroker/common/log.h"
#include "turnbroker/common/status.h"
#include "turnbroker/common/strings.h"

namespace turnbroker::turn {
namespace {

int64_t MonoMs() { return MonotonicMicros() / 1000; }

}  // namespace

WatchLoop::WatchLoop(std::shared_ptr<grpc::Channel> channel, WatchLoopOptions options,
                     FrameSink* sink, SyncMetrics* metrics, const Clock* clock)
    : channel_(std::move(channel)),
      stub_(v1::CredentialBroker::NewStub(channel_)),
      options_(std::move(options)),
      sink_(sink),
      metrics_(metrics),
      clock_(clock),
      backoff_(options_.backoff) {}

WatchLoop::~WatchLoop() { Stop(); }

void WatchLoop::Start() {
  thread_ = std::thread([this] { Run(); });
  watchdog_ = std::thread([this] { Watchdog(); });
}

void WatchLoop::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    if (stream_) stream_->TryCancel();
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  if (watchdog_.joinable()) watchdog_.join();
}

bool WatchLoop::Sleep(int64_t ms) {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait_for(lock, std::chrono::milliseconds(ms), [this] { return stopping_; });
  return !stopping_;
}

void WatchLoop::Watchdog() {
  const int64_t idle_ms = options_.idle_timeout_ms > 0
                              ? options_.idle_timeout_ms
                              : 3 * static_cast<int64_t>(options_.progress_interval_ms) + 5'000;
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    cv_.wait_for(lock, std::chrono::milliseconds(200), [this] { return stopping_; });
    if (stream_ && MonoMs() - last_frame_mono_ms_ > idle_ms) {
      LogWarn("watch stream idle; reconnecting").Kv("idle_ms", MonoMs() - last_frame_mono_ms_);
      stream_->TryCancel();
      last_frame_mono_ms_ = MonoMs();  // once per stream
    }
  }
}

void WatchLoop::Run() {
  bool first = true;
  for (;;) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_) return;
    }
    auto from = sink_->Prepare();
    if (!from.ok()) {
      int64_t delay = backoff_.NextDelayMs();
      LogWarn("cannot prepare the watch; retrying")
          .Kv("error", StatusLine(from.status()))
          .Kv("retry_in_ms", delay);
      if (!Sleep(delay)) return;
      continue;
    }
    if (!first) metrics_->stream_reconnects->Inc();
    first = false;
    absl::Status ended = RunStream(*from);
    metrics_->SetSynced(false, clock_->NowMs());
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_) return;
    }
    int64_t delay = backoff_.NextDelayMs();
    LogWarn("watch stream ended; reconnecting")
        .Kv("error", StatusLine(ended))
        .Kv("retry_in_ms", delay);
    if (!Sleep(delay)) return;
  }
}

absl::Status WatchLoop::Connect() {
  const int64_t deadline = MonoMs() + options_.connect_timeout_ms;
  while (channel_->GetState(/*try_to_connect=*/true) != GRPC_CHANNEL_READY) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_) return absl::CancelledError("stopping");
    }
    if (MonoMs() >= deadline) {
      return absl::UnavailableError(
          StrCat("broker unreachable: no connection within ", options_.connect_timeout_ms, " ms"));
    }
    channel_->WaitForConnected(std::chrono::system_clock::now() + std::chrono::milliseconds(100));
  }
  return absl::OkStatus();
}

absl::Status WatchLoop::RunStream(const Position& from) {
  if (auto s = Connect(); !s.ok()) return s;
  grpc::ClientContext context;
  // A connection lost between Connect() and the call is waited for, not a
  // failure; the watchdog bounds the wait.
  context.set_wait_for_ready(true);
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return absl::CancelledError("stopping");
    stream_ = &context;
    last_frame_mono_ms_ = MonoMs();
  }
  v1::WatchRequest request;
  for (const std::string& realm : options_.realms) request.add_realms(realm);
  request.set_farm(options_.farm);
  request.set_watcher_name(options_.watcher_name);
  request.set_progress_interval_ms(options_.progress_interval_ms);
  for (v1::RecordKind kind : options_.kinds) request.add_kinds(kind);
  if (from.revision != 0) {
    request.set_resume_revision(from.revision);
    request.set_resume_epoch(from.epoch);
  }
  LogInfo("watch opening")
      .Kv("resume_revision", from.revision)
      .Kv("resume_epoch", from.epoch.empty() ? "none" : from.epoch);

  absl::Status failed;
  auto reader = stub_->Watch(&context, request);
  v1::WatchResponse frame;
  while (reader->Read(&frame)) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      last_frame_mono_ms_ = MonoMs();
    }
    failed = sink_->OnFrame(frame);
    {
      std::lock_guard<std::mutex> lock(mu_);
      last_frame_mono_ms_ = MonoMs();
    }
    if (!failed.ok()) {
      context.TryCancel();
      break;
    }
    if (auto applied = sink_->TakeAcknowledgement()) Acknowledge(*applied);
    if (frame.marker() == v1::WatchResponse::SYNCED) backoff_.Reset();
  }
  grpc::Status finished = reader->Finish();
  {
    std::lock_guard<std::mutex> lock(mu_);
    stream_ = nullptr;
  }
  sink_->OnStreamEnd();
  if (!failed.ok()) return failed;
  if (finished.ok()) return absl::UnavailableError("broker ended the stream");
  return FromGrpcStatus(finished);
}

void WatchLoop::Acknowledge(const Position& applied) {
  if (applied.revision == 0) return;
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::milliseconds(options_.acknowledge_timeout_ms));
  v1::AcknowledgeRequest request;
  request.set_watcher_name(options_.watcher_name);
  request.set_epoch(applied.epoch);
  request.set_revision(applied.revision);
  for (const std::string& realm : options_.realms) request.add_realms(realm);
  request.set_farm(options_.farm);
  v1::AcknowledgeResponse response;
  grpc::Status s = stub_->Acknowledge(&context, request, &response);
  if (s.ok()) {
    metrics_->acknowledgements_ok->Inc();
    metrics_->last_acknowledged_revision->Set(static_cast<int64_t>(applied.revision));
    if (last_ack_error_ != grpc::StatusCode::OK) LogInfo("acknowledgements reach the broker again");
    last_ack_error_ = grpc::StatusCode::OK;
    return;
  }
  metrics_->acknowledgements_failed->Inc();
  // Once per kind of failure at warn (a broker without Acknowledge answers
  // UNIMPLEMENTED every time), then at debug.
  LogLine line(s.error_code() == last_ack_error_ ? LogLevel::kDebug : LogLevel::kWarn,
               "cannot acknowledge the applied revision to the broker");
  line.Kv("error", StatusLine(FromGrpcStatus(s))).Kv("revision", applied.revision);
  last_ack_error_ = s.error_code();
}

}  // namespace turnbroker::turn
