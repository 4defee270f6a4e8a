#include "fake_secret_source.h"

#include <optional>

namespace turnbroker::pcscf::testing {

v1::SharedSecret MakeSecret(const std::string& realm, const std::string& id, v1::SecretState state,
                            const std::string& bytes, int64_t max_credential_ttl_ms,
                            int64_t not_before_ms, int64_t expires_at_ms, int64_t activated_at_ms) {
  v1::SharedSecret s;
  s.set_realm(realm);
  s.set_id(id);
  s.set_secret(bytes);
  s.set_state(state);
  s.set_max_credential_ttl_ms(max_credential_ttl_ms);
  s.set_not_before_ms(not_before_ms);
  s.set_expires_at_ms(expires_at_ms);
  s.set_activated_at_ms(activated_at_ms);
  return s;
}

std::vector<v1::WatchResponse> SnapshotFrames(const std::string& epoch, uint64_t revision,
                                              const std::vector<v1::SharedSecret>& secrets) {
  v1::WatchResponse begin;
  begin.set_marker(v1::WatchResponse::SNAPSHOT_BEGIN);
  begin.set_snapshot_reason(v1::WatchResponse::NO_RESUME_POINT);
  begin.set_epoch(epoch);
  uint64_t r = 1;
  for (const auto& s : secrets) {
    auto* e = begin.add_events();
    e->set_revision(r++);
    *e->mutable_secret() = s;
  }
  v1::WatchResponse synced;
  synced.set_marker(v1::WatchResponse::SYNCED);
  synced.set_epoch(epoch);
  synced.set_revision(revision);
  return {begin, synced};
}

v1::WatchResponse SecretEvent(const std::string& epoch, uint64_t revision,
                              const v1::SharedSecret& secret) {
  v1::WatchResponse f;
  f.set_epoch(epoch);
  f.set_revision(revision);
  auto* e = f.add_events();
  e->set_revision(revision);
  *e->mutable_secret() = secret;
  return f;
}

v1::WatchResponse RetiredEvent(const std::string& epoch, uint64_t revision,
                               const std::string& realm, const std::string& id) {
  v1::WatchResponse f;
  f.set_epoch(epoch);
  f.set_revision(revision);
  auto* e = f.add_events();
  e->set_revision(revision);
  e->mutable_secret_retired()->set_realm(realm);
  e->mutable_secret_retired()->set_id(id);
  return f;
}

// What the source and its streams share: the frames and ends queued for the
// open stream (a stream is over once it reads an end).
struct FakeSecretSource::Shared {
  std::mutex mu;
  std::condition_variable cv;
  // Frames, or an end (no frame) with its status.
  struct Item {
    std::optional<v1::WatchResponse> frame;
    absl::Status end;
  };
  std::deque<Item> items;
  bool unreachable = false;
  std::vector<v1::WatchRequest> requests;
};

class FakeSecretSource::Stream : public SecretStream {
 public:
  Stream(std::shared_ptr<Shared> shared, absl::Status failed)
      : shared_(std::move(shared)), status_(std::move(failed)), over_(!status_.ok()) {}
  bool Read(v1::WatchResponse* frame) override {
    std::unique_lock lock(shared_->mu);
    for (;;) {
      if (over_) return false;
      if (cancelled_) {
        over_ = true;
        status_ = absl::CancelledError("cancelled");
        return false;
      }
      if (!shared_->items.empty()) {
        Shared::Item item = std::move(shared_->items.front());
        shared_->items.pop_front();
        if (!item.frame) {
          over_ = true;
          status_ = item.end;
          return false;
        }
        *frame = std::move(*item.frame);
        return true;
      }
      shared_->cv.wait(lock);
    }
  }
  absl::Status Finish() override {
    std::lock_guard lock(shared_->mu);
    return status_;
  }
  void Cancel() override {
    std::lock_guard lock(shared_->mu);
    cancelled_ = true;
    shared_->cv.notify_all();
  }

 private:
  std::shared_ptr<Shared> shared_;
  absl::Status status_;  // guarded by shared_->mu
  bool over_;            // guarded by shared_->mu
  bool cancelled_ = false;
};

FakeSecretSource::FakeSecretSource() : shared_(std::make_shared<Shared>()) {}
FakeSecretSource::~FakeSecretSource() = default;

std::unique_ptr<SecretStream> FakeSecretSource::Open(const v1::WatchRequest& request) {
  std::lock_guard lock(shared_->mu);
  shared_->requests.push_back(request);
  return std::make_unique<Stream>(shared_, shared_->unreachable
                                               ? absl::UnavailableError("fake: unreachable")
                                               : absl::OkStatus());
}

void FakeSecretSource::Send(const v1::WatchResponse& frame) {
  std::lock_guard lock(shared_->mu);
  shared_->items.push_back({frame, absl::OkStatus()});
  shared_->cv.notify_all();
}

void FakeSecretSource::Send(const std::vector<v1::WatchResponse>& frames) {
  for (const auto& f : frames) Send(f);
}

void FakeSecretSource::End(absl::Status status) {
  std::lock_guard lock(shared_->mu);
  shared_->items.push_back({std::nullopt, std::move(status)});
  shared_->cv.notify_all();
}

void FakeSecretSource::SetUnreachable(bool unreachable) {
  std::lock_guard lock(shared_->mu);
  shared_->unreachable = unreachable;
}

std::vector<v1::WatchRequest> FakeSecretSource::requests() const {
  std::lock_guard lock(shared_->mu);
  return shared_->requests;
}

size_t FakeSecretSource::opened() const {
  std::lock_guard lock(shared_->mu);
  return shared_->requests.size();
}

}  // namespace turnbroker::pcscf::testing
