#include "fake_broker_client.h"

#include <thread>

#include "turnbroker/common/clock.h"
#include "turnbroker/common/credential.h"
#include "turnbroker/common/random.h"

namespace turnbroker::pcscf::testing {

FakeBrokerClient::FakeBrokerClient() : epoch_(HexLower(RandomBytes(8))) {}

FakeBrokerClient::~FakeBrokerClient() {
  Release();
  while (scheduler_.pending() > 0) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

void FakeBrokerClient::Answer(std::function<void()> answer, bool holdable) {
  if (holdable && held_) {
    held_answers_.push_back(std::move(answer));
    return;
  }
  scheduler_.RunAfter(delay_ms_, std::move(answer));
}

void FakeBrokerClient::Publish(v1::PublishRequest request, int64_t,
                               Callback<v1::PublishResponse> done) {
  std::lock_guard lock(mu_);
  ++publish_calls_;
  batch_sizes_.push_back(request.credentials_size());
  absl::Status failure;
  if (unavailable_) {
    failure = absl::UnavailableError("fake: failed to connect to all addresses");
  } else if (fail_next_ > 0) {
    --fail_next_;
    failure = fail_status_;
  } else {
    for (const auto& c : request.credentials()) {
      auto r = refused_.find(c.username());
      if (r != refused_.end()) failure = r->second;
      if (revoked_.count(c.username()) > 0) {
        failure = absl::FailedPreconditionError(
            "credentials[].username: '" + c.username() +
            "' was revoked and cannot be published again before it would have "
            "expired");
      }
    }
  }
  if (!failure.ok()) {
    Answer([done, failure] { done(failure); }, true);
    return;
  }
  v1::PublishResponse response;
  for (const auto& c : request.credentials()) {
    auto it = live_.find(c.username());
    if (it != live_.end() && it->second.SerializeAsString() == c.SerializeAsString()) {
      response.set_unchanged(response.unchanged() + 1);
    } else {
      live_[c.username()] = c;
      response.set_applied(response.applied() + 1);
      ++revision_;
    }
  }
  response.set_epoch(epoch_);
  response.set_revision(revision_);
  Answer([done, response] { done(response); }, true);
}

void FakeBrokerClient::Revoke(v1::RevokeRequest request, int64_t,
                              Callback<v1::RevokeResponse> done) {
  std::lock_guard lock(mu_);
  if (unavailable_) {
    Answer([done] { done(absl::UnavailableError("fake: failed to connect")); }, false);
    return;
  }
  v1::RevokeResponse response;
  const auto& sel = request.selector();
  if (sel.has_username()) {
    const std::string& u = sel.username().username();
    revoked_usernames_.push_back(u);
    if (live_.erase(u) > 0) {
      revoked_.insert(u);
      response.set_revoked(1);
    }
  } else if (sel.by_case() == v1::Selector::kSubscriber) {
    revoked_subscribers_.push_back(sel.subscriber());
    for (auto it = live_.begin(); it != live_.end();) {
      if (it->second.subscriber() == sel.subscriber()) {
        revoked_.insert(it->first);
        it = live_.erase(it);
        response.set_revoked(response.revoked() + 1);
      } else {
        ++it;
      }
    }
  }
  response.set_epoch(epoch_);
  response.set_revision(++revision_);
  Answer([done, response] { done(response); }, false);
}

void FakeBrokerClient::GetStatus(int64_t, Callback<v1::GetStatusResponse> done) {
  std::lock_guard lock(mu_);
  if (unavailable_) {
    Answer([done] { done(absl::UnavailableError("fake: failed to connect")); }, false);
    return;
  }
  v1::GetStatusResponse response;
  response.set_epoch(epoch_);
  response.set_revision(revision_);
  response.set_live_credentials(live_.size());
  Answer([done, response] { done(response); }, false);
}

void FakeBrokerClient::SetUnavailable(bool unavailable) {
  std::lock_guard lock(mu_);
  unavailable_ = unavailable;
}

void FakeBrokerClient::RefuseUsername(const std::string& username, absl::Status status) {
  std::lock_guard lock(mu_);
  refused_[username] = std::move(status);
}

void FakeBrokerClient::FailNextPublishes(int n, absl::Status status) {
  std::lock_guard lock(mu_);
  fail_next_ = n;
  fail_status_ = std::move(status);
}

void FakeBrokerClient::SetDelayMs(int delay_ms) {
  std::lock_guard lock(mu_);
  delay_ms_ = delay_ms;
}

void FakeBrokerClient::Hold() {
  std::lock_guard lock(mu_);
  held_ = true;
}

void FakeBrokerClient::Release() {
  std::lock_guard lock(mu_);
  held_ = false;
  for (auto& a : held_answers_) Answer(std::move(a), false);
  held_answers_.clear();
}

void FakeBrokerClient::RevokeOutOfBand(const std::string& username) {
  std::lock_guard lock(mu_);
  if (live_.erase(username) > 0) revoked_.insert(username);
  ++revision_;
}

void FakeBrokerClient::LoseState() {
  std::lock_guard lock(mu_);
  live_.clear();
  revoked_.clear();
  revision_ = 0;
  epoch_ = HexLower(RandomBytes(8));
}

void FakeBrokerClient::LoseStateKeeping(const std::vector<v1::Credential>& live) {
  std::lock_guard lock(mu_);
  live_.clear();
  for (const auto& c : live) live_[c.username()] = c;
  revoked_.clear();
  revision_ = 0;
  epoch_ = HexLower(RandomBytes(8));
}

int FakeBrokerClient::publish_calls() const {
  std::lock_guard lock(mu_);
  return publish_calls_;
}

std::vector<size_t> FakeBrokerClient::batch_sizes() const {
  std::lock_guard lock(mu_);
  return batch_sizes_;
}

bool FakeBrokerClient::IsLive(const std::string& username) const {
  std::lock_guard lock(mu_);
  return live_.count(username) > 0;
}

size_t FakeBrokerClient::live_count() const {
  std::lock_guard lock(mu_);
  return live_.size();
}

std::vector<std::string> FakeBrokerClient::revoked_usernames() const {
  std::lock_guard lock(mu_);
  return revoked_usernames_;
}

std::vector<std::string> FakeBrokerClient::revoked_subscribers() const {
  std::lock_guard lock(mu_);
  return revoked_subscribers_;
}

std::string FakeBrokerClient::epoch() const {
  std::lock_guard lock(mu_);
  return epoch_;
}

bool FakeBrokerClient::Get(const std::string& username, v1::Credential* out) const {
  std::lock_guard lock(mu_);
  auto it = live_.find(username);
  if (it == live_.end()) return false;
  *out = it->second;
  return true;
}

}  // namespace turnbroker::pcscf::testing
