#include "turnbroker/pcscf/publisher.h"

#include <algorithm>
#include <future>

#include "turnbroker/common/backoff.h"
#include "turnbroker/common/clock.h"
#include "turnbroker/common/log.h"
#include "turnbroker/common/strings.h"

namespace turnbroker::pcscf {
struct Publisher::Metrics {
  explicit Metrics(MetricsRegistry* r) {
    const char* help = "Publish calls to the broker by result";
    calls_ok = r->AddCounter("pcscf_turn_publish_calls_total", help, "result=\"ok\"");
    calls_failed = r->AddCounter("pcscf_turn_publish_calls_total", help, "result=\"error\"");
    credentials = r->AddCounter("pcscf_turn_published_credentials_total",
                                "Credentials acknowledged by the broker");
    retries = r->AddCounter("pcscf_turn_publish_retries_total",
                            "Credentials sent again after a transient error or a refused batch");
    latency = r->AddHistogram("pcscf_turn_publish_call_seconds",
                              "Publish call latency, sent to acknowledged");
  }
  Counter* calls_ok;
  Counter* calls_failed;
  Counter* credentials;
  Counter* retries;
  Histogram* latency;
};

Publisher::Publisher(BrokerClient* client, PublisherOptions options, MetricsRegistry* metrics,
                     const Clock* clock)
    : client_(client), options_(options), clock_(clock) {
  if (metrics) metrics_ = std::make_unique<Metrics>(metrics);
  worker_ = std::thread([this] { Run(); });
}

Publisher::~Publisher() {
  std::vector<Pending> failed;
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    for (auto& p : queue_) failed.push_back(std::move(p));
    for (auto& p : delayed_) failed.push_back(std::move(p));
    queue_.clear();
    delayed_.clear();
  }
  wake_.notify_all();
  worker_.join();
  for (auto& p : failed) p.done(absl::UnavailableError("publisher shutting down"));
  std::unique_lock lock(mu_);
  drained_.wait(lock, [this] { return in_flight_ == 0 && other_calls_ == 0; });
}

void Publisher::SetEpochListener(
    std::function<void(const std::string&, const std::string&)> listener) {
  std::lock_guard lock(listener_mu_);
  epoch_listener_ = std::move(listener);
}

std::string Publisher::epoch() const {
  std::lock_guard lock(mu_);
  return epoch_;
}

bool Publisher::broker_reachable() const {
  std::lock_guard lock(mu_);
  return reachable_;
}

void Publisher::PublishAsync(v1::Credential credential, int64_t timeout_ms, Done done) {
  Pending p;
  p.credential = std::move(credential);
  p.deadline_us = clock_->MonotonicMicros() + timeout_ms * 1000;
  p.done = std::move(done);
  std::unique_lock lock(mu_);
  if (stopping_) {
    lock.unlock();
    p.done(absl::UnavailableError("publisher shutting down"));
    return;
  }
  queue_.push_back(std::move(p));
  // A free call slot: send from this thread, with no hand-over to another.
  DispatchLocked(lock);
  // Still queued (every call busy): the worker watches its deadline.
  if (!queue_.empty()) wake_.notify_one();
}

absl::Status Publisher::Publish(v1::Credential credential, int64_t timeout_ms) {
  std::promise<absl::Status> promise;
  auto result = promise.get_future();
  PublishAsync(std::move(credential), timeout_ms,
               [&promise](absl::Status s) { promise.set_value(std::move(s)); });
  return result.get();
}

void Publisher::DispatchLocked(std::unique_lock<std::mutex>& lock) {
  while (!stopping_ && !queue_.empty() && in_flight_ < options_.max_in_flight) {
    int64_t now = clock_->MonotonicMicros();
    std::vector<Pending> batch;
    // Expired entries stay for the worker to fail.
    if (queue_.front().alone) {
      if (queue_.front().deadline_us <= now) break;
      batch.push_back(std::move(queue_.front()));
      queue_.pop_front();
    } else {
      for (auto it = queue_.begin(); it != queue_.end() && batch.size() < options_.max_batch;) {
        if (it->alone || it->deadline_us <= now) {
          ++it;
          continue;
        }
        batch.push_back(std::move(*it));
        it = queue_.erase(it);
      }
    }
    if (batch.empty()) break;
    int64_t latest = 0;
    v1::PublishRequest request;
    for (auto& p : batch) {
      latest = std::max(latest, p.deadline_us);
      ++p.attempts;
      *request.add_credentials() = p.credential;
    }
    int64_t timeout_ms = std::clamp<int64_t>((latest - now) / 1000, 1, options_.call_timeout_ms);
    ++in_flight_;
    lock.unlock();
    client_->Publish(
        std::move(request), timeout_ms,
        [this, batch = std::move(batch), now](absl::StatusOr<v1::PublishResponse> r) mutable {
          OnPublished(std::move(batch), now, std::move(r));
        });
    lock.lock();
  }
}

// The worker only keeps time: backoffs that end and deadlines that pass.
void Publisher::Run() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    int64_t now = clock_->MonotonicMicros();
    std::vector<Pending> expired;
    // Backoff over: back to the front of the queue, oldest first.
    std::sort(delayed_.begin(), delayed_.end(),
              [](const Pending& a, const Pending& b) { return a.not_before_us > b.not_before_us; });
    while (!delayed_.empty() && delayed_.back().not_before_us <= now) {
      queue_.push_front(std::move(delayed_.back()));
      delayed_.pop_back();
    }
    for (auto it = queue_.begin(); it != queue_.end();) {
      if (it->deadline_us <= now) {
        expired.push_back(std::move(*it));
        it = queue_.erase(it);
      } else {
        ++it;
      }
    }
    if (!expired.empty()) {
      lock.unlock();
      for (auto& p : expired) {
        p.done(absl::DeadlineExceededError(p.attempts == 0
                                               ? "not sent to the broker before the deadline"
                                               : "broker did not acknowledge before the deadline"));
      }
      lock.lock();
      continue;
    }
    DispatchLocked(lock);
    // DispatchLocked unlocks around calls: a shutdown may have come meanwhile
    // (its notification is lost if we wait now).
    if (stopping_) break;
    // Sleep until the next backoff or deadline, or until woken.
    int64_t wake_at = INT64_MAX;
    for (const auto& p : delayed_) wake_at = std::min(wake_at, p.not_before_us);
    for (const auto& p : queue_) wake_at = std::min(wake_at, p.deadline_us);
    if (wake_at == INT64_MAX) {
      wake_.wait(lock);
    } else {
      wake_.wait_for(lock, std::chrono::microseconds(
                               clock_->RealWaitMicros(std::max<int64_t>(wake_at - now, 100))));
    }
  }
}

void Publisher::OnPublished(std::vector<Pending> batch, int64_t started_us,
                            absl::StatusOr<v1::PublishResponse> result) {
  int64_t now = clock_->MonotonicMicros();
  Observe(result.status(), result.ok() ? result->epoch() : std::string());
  if (metrics_) {
    (result.ok() ? metrics_->calls_ok : metrics_->calls_failed)->Inc();
    if (result.ok()) {
      metrics_->credentials->Inc(batch.size());
      metrics_->latency->ObserveMicros(now - started_us);
    }
  }
  std::vector<std::pair<Pending, absl::Status>> finished;
  {
    std::lock_guard lock(mu_);
    if (result.ok()) {
      for (auto& p : batch) finished.emplace_back(std::move(p), absl::OkStatus());
    } else if (IsTransient(result.status())) {
      bool retry = result.status().code() != absl::StatusCode::kUnavailable ||
                   now - last_answer_us_ < options_.retry_unavailable_for_ms * 1000;
      for (auto& p : batch) {
        const int64_t backoff_ms =
            BackoffDelayMs({options_.initial_backoff_ms, options_.max_backoff_ms, 2.0}, p.attempts);
        if (retry && !stopping_ && now + backoff_ms * 1000 < p.deadline_us) {
          p.not_before_us = now + backoff_ms * 1000;
          if (metrics_) metrics_->retries->Inc();
          delayed_.push_back(std::move(p));
        } else {
          finished.emplace_back(std::move(p), result.status());
        }
      }
    } else if (batch.size() > 1 && !stopping_) {
      // One credential spoiled the atomic batch: find it by sending each alone.
      for (auto& p : batch) {
        p.alone = true;
        --p.attempts;
        if (metrics_) metrics_->retries->Inc();
        queue_.push_front(std::move(p));
      }
    } else {
      for (auto& p : batch) finished.emplace_back(std::move(p), result.status());
    }
  }
  for (auto& [p, status] : finished) p.done(status);
  // Last: once in_flight_ drops to 0, the destructor may proceed.
  std::unique_lock lock(mu_);
  --in_flight_;
  // This call's slot is free: send what queued meanwhile, from this thread.
  DispatchLocked(lock);
  if (!delayed_.empty()) wake_.notify_one();
  if (in_flight_ == 0 && other_calls_ == 0) drained_.notify_all();
}

void Publisher::Observe(const absl::Status& status, const std::string& epoch) {
  // Any answer from the broker itself means it is reachable; transport
  // failures mean it is not.
  bool reached = status.code() != absl::StatusCode::kUnavailable &&
                 status.code() != absl::StatusCode::kDeadlineExceeded;
  std::string previous;
  bool changed = false;
  {
    std::lock_guard lock(mu_);
    if (reached != reachable_) {
      if (reached) {
        LogInfo("broker reachable");
      } else {
        LogWarn("broker unreachable").Kv("error", status);
      }
    }
    reachable_ = reached;
    if (reached) last_answer_us_ = clock_->MonotonicMicros();
    if (!epoch.empty() && epoch != epoch_) {
      previous = epoch_;
      changed = !epoch_.empty();
      epoch_ = epoch;
    }
  }
  if (changed) {
    LogWarn("broker epoch changed").Kv("previous", previous).Kv("current", epoch);
    std::lock_guard lock(listener_mu_);
    if (epoch_listener_) epoch_listener_(previous, epoch);
  }
}

void Publisher::RevokeAsync(v1::RevokeRequest request, int64_t timeout_ms,
                            BrokerClient::Callback<v1::RevokeResponse> done) {
  {
    std::lock_guard lock(mu_);
    ++other_calls_;
  }
  client_->Revoke(std::move(request), timeout_ms,
                  [this, done = std::move(done)](absl::StatusOr<v1::RevokeResponse> r) {
                    Observe(r.status(), r.ok() ? r->epoch() : std::string());
                    done(std::move(r));
                    std::lock_guard lock(mu_);
                    if (--other_calls_ == 0 && in_flight_ == 0) drained_.notify_all();
                  });
}

absl::StatusOr<v1::RevokeResponse> Publisher::Revoke(v1::RevokeRequest request,
                                                     int64_t timeout_ms) {
  std::promise<absl::StatusOr<v1::RevokeResponse>> promise;
  auto result = promise.get_future();
  RevokeAsync(std::move(request), timeout_ms, [&promise](absl::StatusOr<v1::RevokeResponse> r) {
    promise.set_value(std::move(r));
  });
  return result.get();
}

void Publisher::GetStatusAsync(int64_t timeout_ms,
                               BrokerClient::Callback<v1::GetStatusResponse> done) {
  {
    std::lock_guard lock(mu_);
    ++other_calls_;
  }
  client_->GetStatus(timeout_ms,
                     [this, done = std::move(done)](absl::StatusOr<v1::GetStatusResponse> r) {
                       Observe(r.status(), r.ok() ? r->epoch() : std::string());
                       done(std::move(r));
                       std::lock_guard lock(mu_);
                       if (--other_calls_ == 0 && in_flight_ == 0) drained_.notify_all();
                     });
}

absl::StatusOr<v1::GetStatusResponse> Publisher::GetStatus(int64_t timeout_ms) {
  std::promise<absl::StatusOr<v1::GetStatusResponse>> promise;
  auto result = promise.get_future();
  GetStatusAsync(timeout_ms, [&promise](absl::StatusOr<v1::GetStatusResponse> r) {
    promise.set_value(std::move(r));
  });
  return result.get();
}

}  // namespace turnbroker::pcscf
