// An in-memory broker behind the BrokerClient seam, with failure injection:
// unavailability, refusals, delays, held responses, a lost store (new epoch).
#ifndef TURNBROKER_TESTS_PCSCF_FAKE_BROKER_CLIENT_H_
#define TURNBROKER_TESTS_PCSCF_FAKE_BROKER_CLIENT_H_

#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "turnbroker/pcscf/broker_client.h"
#include "turnbroker/pcscf/scheduler.h"
#include "wait_for.h"

namespace turnbroker::pcscf::testing {

class FakeBrokerClient : public BrokerClient {
 public:
  FakeBrokerClient();
  ~FakeBrokerClient() override;  // answers every call still waiting

  void Publish(v1::PublishRequest request, int64_t timeout_ms,
               Callback<v1::PublishResponse> done) override;
  void Revoke(v1::RevokeRequest request, int64_t timeout_ms,
              Callback<v1::RevokeResponse> done) override;
  void GetStatus(int64_t timeout_ms, Callback<v1::GetStatusResponse> done) override;

  // --- knobs ---
  // Every call fails with UNAVAILABLE (as when the channel cannot connect).
  void SetUnavailable(bool unavailable);
  // Publish batches containing `username` are refused with `status`.
  void RefuseUsername(const std::string& username, absl::Status status);
  // The next `n` Publish calls fail with `status` (not applied).
  void FailNextPublishes(int n, absl::Status status);
  // Answers come this much later, from a background thread.
  void SetDelayMs(int delay_ms);
  // While held, Publish answers wait until Release().
  void Hold();
  void Release();
  // An operator's revocation behind the agent's back (turnbrokerctl revoke).
  void RevokeOutOfBand(const std::string& username);
  // The store is lost: new epoch, nothing live, no revocations.
  void LoseState();
  // A new epoch whose dataset holds exactly `live` (a Redis replica promoted
  // with some acknowledged writes, e.g. a revocation, missing).
  void LoseStateKeeping(const std::vector<v1::Credential>& live);

  // --- observations ---
  int publish_calls() const;
  std::vector<size_t> batch_sizes() const;
  bool IsLive(const std::string& username) const;
  size_t live_count() const;
  std::vector<std::string> revoked_usernames() const;
  std::vector<std::string> revoked_subscribers() const;
  std::string epoch() const;
  // The stored credential (key included).
  bool Get(const std::string& username, v1::Credential* out) const;

 private:
  // With mu_ held: queues `answer` to run later on the scheduler's thread
  // (like gRPC's callback threads), or keeps it while held.
  void Answer(std::function<void()> answer, bool holdable);

  mutable std::mutex mu_;
  bool unavailable_ = false;
  std::map<std::string, absl::Status> refused_;
  int fail_next_ = 0;
  absl::Status fail_status_;
  int delay_ms_ = 0;
  bool held_ = false;
  std::string epoch_;
  uint64_t revision_ = 0;
  std::map<std::string, v1::Credential> live_;
  // Usernames revoked while live: refused by Publish like the real broker
  // (FAILED_PRECONDITION, broker/planner.cc) until LoseState.
  std::set<std::string> revoked_;
  std::vector<std::string> revoked_usernames_;
  std::vector<std::string> revoked_subscribers_;
  int publish_calls_ = 0;
  std::vector<size_t> batch_sizes_;
  std::vector<std::function<void()>> held_answers_;
  Scheduler scheduler_;  // last: its tasks use the members above
};

}  // namespace turnbroker::pcscf::testing

#endif  // TURNBROKER_TESTS_PCSCF_FAKE_BROKER_CLIENT_H_
