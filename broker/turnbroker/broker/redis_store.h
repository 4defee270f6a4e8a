// The Redis store: several broker replicas on one Redis dataset (a single
// Redis, a managed one, or a primary with replicas under Sentinel). Redis
// holds the log and the live set; every replica keeps the whole state in
// memory, fed only from the log, and serves its own watchers from it
// (docs/architecture.md, "High availability: the Redis store").
//
// Keys (all under the hash tag `{turnbroker}`):
//   {turnbroker}:epoch       the dataset's epoch (128 random bits, hex)
//   {turnbroker}:head        the last revision committed
//   {turnbroker}:log         a Stream, entry id "<revision>-0", one change each:
//                            field "p" (Credential encoding) or "r"
//                            (Revocation encoding); trimmed to about the
//                            retained history (XADD MAXLEN ~)
//   {turnbroker}:c:R/U       live credential: 8-byte revision + Credential
//                            encoding, expiring at its expires_at (PXAT)
//   {turnbroker}:t:R/U       revoked username (R empty: any realm): the
//                            revision, expiring when it may be published again
//   {turnbroker}:s:R/ID      known shared secret (approach 1): 8-byte
//                            revision + 8-byte staged revision + SharedSecret
//                            encoding, expiring at its expires_at if it has
//                            one; deleted when retired. In the log: field
//                            "s" (8-byte staged revision + SharedSecret) or
//                            "x" (SecretRef: retired)
//   {turnbroker}:syncs       hash: TURN sync name -> its last Acknowledge
//                            (8-byte Unix ms + AcknowledgeRequest), so every
//                            replica sees every sync's report
//   {turnbroker}:note:ID     one per connection that confirms: the
//                            replication offset and head before its WAIT
//                            (expires after 60 s)
//
// Threads. The commit thread takes queued requests, plans them against the
// state (GroupPlanner, based on the state's head), and runs one Lua script per
// group that commits only if Redis's head still equals that base (else the
// state catches up and the group is planned again). With replicas to wait
// for, the same write carries NOTE, WAIT and CONFIRM (redis_store.cc): Redis
// appends the confirmation mark right after WAIT, and only if the replicas
// have acknowledged the commit. Once confirmed, the commit thread applies its
// own group to the state and answers; the log thread tails the stream (XREAD
// BLOCK) and applies every other change up to the highest mark it has read.
// The two never write the state at once (apply_mu_), and each change is
// applied once, in revision order: by its committer, or from the log.
// Expiry is local to each replica and Redis expires its keys itself; stream
// trimming rides on every XADD. Nothing needs a lease: all housekeeping is
// idempotent.
//
// Epochs. The epoch names the dataset. The log thread checks it and the head
// every second and on every reconnect: a missing epoch (Redis restarted
// empty) or a head below the highest revision this replica has applied (a
// failover to a replica that lost writes, a restored backup) gets a new
// epoch; every replica then reloads the state from Redis, and the watch hub
// ends every stream so watchers resync from a snapshot.
#ifndef TURNBROKER_BROKER_REDIS_STORE_H_
#define TURNBROKER_BROKER_REDIS_STORE_H_

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <variant>
#include <vector>

#include "turnbroker/broker/state.h"
#include "turnbroker/broker/store.h"
#include "turnbroker/broker/write_group.h"
#include "turnbroker/common/credential.h"
#include "turnbroker/common/metrics.h"
#include "turnbroker/common/net.h"
#include "turnbroker/common/redis.h"

namespace turnbroker::broker {

// Where the Redis primary is: a fixed address, or Sentinel.
struct RedisTarget {
  RedisUrl url;  // host/port unused with sentinels; password, user, db used
  std::vector<HostPort> sentinels;
  std::string master;  // the Sentinel master name
  // The flag the password came from, for messages.
  std::string password_flag = "--redis-password-file";
};

struct RedisStoreOptions {
  RedisTarget target;
  CredentialLimits limits;
  StateOptions state;
  size_t max_batch = 10'000;
  size_t max_queue = 100'000;
  size_t max_group_credentials = 50'000;
  // Replicas that must confirm a commit (WAIT) before it is acknowledged;
  // -1: 1 if the primary has replicas, else 0.
  int min_replicas_ack = -1;
  // The latency path (docs/architecture.md); both on in production. Off,
  // each gives back the earlier path, for bench/ha_bench.cc's A/B and for
  // tests: WAIT and the mark in round trips of their own after the commit,
  // and a committer that waits for its own log thread to apply its group.
  bool pipeline_confirmation = true;
  bool apply_own_commits = true;
  // A Publish or Revoke not committed, confirmed and applied within this is
  // answered UNAVAILABLE.
  int64_t ack_timeout_ms = 500;
  int64_t connect_timeout_ms = 1'000;
  // How often the log thread checks the dataset's identity (epoch, head).
  int64_t identity_check_interval_ms = 1'000;
  // Stream entries kept (XADD MAXLEN ~); 0: state.history_max_events.
  size_t log_max_entries = 0;
  // Approach 1 (its max_credential_ttl_ms: limits.max_ttl_ms).
  SecretPolicy secrets;
};

// Parses --redis-sentinels ("HOST:PORT,HOST:PORT"); INVALID_ARGUMENT names
// the flag.
absl::StatusOr<std::vector<HostPort>> ParseSentinels(std::string_view text);

// The primaries the sentinels named (one answer per sentinel that gave one,
// in the order asked), each once: the one most of them named first, ties in
// the order asked. The store tries them in this order and takes the first
// that says it is the primary (ROLE): a sentinel that lags behind a failover
// keeps naming the old primary for up to its failover-timeout, and the
// first answer alone would hold the store on it (docs/architecture.md,
// "Sentinel").
std::vector<HostPort> PrimaryCandidates(const std::vector<HostPort>& answers);

// The --store=redis flags as given on the command line.
struct RedisFlags {
  std::string url;            // --redis-url redis://[[USER]:PASSWORD@]HOST:PORT[/DB]
  std::string sentinels;      // --redis-sentinels HOST:PORT,HOST:PORT
  std::string master;         // --redis-master NAME
  std::string password_file;  // --redis-password-file: "PASSWORD" or "USER PASSWORD"
};
// Checks and combines them: exactly one of --redis-url and --redis-sentinels
// (the latter with --redis-master); the password file's first line wins over
// a password in the URL. INVALID_ARGUMENT names the flag (a usage error).
absl::StatusOr<RedisTarget> RedisTargetFromFlags(const RedisFlags& flags);

class RedisStore : public Store {
 public:
  // Connects (through Sentinel if given), makes the epoch if the dataset is
  // new, loads the state and starts the threads. Errors name the address
  // (UNAVAILABLE: unreachable) or the flag (FAILED_PRECONDITION: wrong
  // password, `--redis-password-file`). `metrics` may be null.
  static absl::StatusOr<std::unique_ptr<RedisStore>> Open(const RedisStoreOptions& options,
                                                          const Clock* clock,
                                                          MetricsRegistry* metrics);
  ~RedisStore() override;  // Shutdown()

  void Publish(const v1::PublishRequest* request, PublishDone done) override;
  using Store::Revoke;
  void Revoke(const v1::RevokeRequest* request, std::string only_issuer, RevokeDone done) override;
  void RevokeMinted(const v1::RevokeRequest* request, int64_t until_ms, RevokeDone done) override;
  void WriteSecret(SecretCommand command, SecretDone done) override;
  // Written to the Redis hash by the commit thread (before its next group);
  // every replica reads the hash every identity check (1 s) and before it
  // plans an activation.
  void Acknowledge(SyncAck ack, std::function<void(absl::Status)> done) override;
  std::vector<SyncAck> RecentSyncs() const override;
  const SecretPolicy& secret_policy() const override { return secret_policy_; }
  const CredentialState& state() const override { return *state_; }
  void SetCommitListener(std::function<void()> listener) override;
  std::string description() const override;
  bool healthy() const override { return true; }
  void Shutdown() override;

  // The address of the primary in use ("" while none is known).
  std::string primary() const;

 private:
  using Op = WriteOp;
  struct Metrics;
  class Connection;

  RedisStore(const RedisStoreOptions& options, const Clock* clock, MetricsRegistry* metrics);
  absl::Status Enqueue(Op op);
  void CommitLoop();
  void CommitGroup(std::vector<Op>& ops);
  void LogLoop();
  // Log thread: makes the epoch if missing, loads the state from Redis.
  absl::Status Load(Connection& c);
  // Log thread: reads the next entries and applies the confirmed ones; false
  // when the state must reload.
  absl::StatusOr<bool> Tail(Connection& c, int64_t block_ms);
  // Log thread: Tail's read, into pending_ (and confirmed_) only.
  absl::StatusOr<bool> ReadLog(Connection& c, int64_t block_ms);
  // Log thread: compares Redis's epoch and head with the state's; false when
  // the state must reload (after making a new epoch if writes were lost).
  absl::StatusOr<bool> CheckIdentity(Connection& c);
  // Commit thread: waits until the state's head reaches `revision` (or its
  // generation moves on) until `deadline_ms` (monotonic); whether it did.
  bool WaitApplied(Revision revision, uint64_t generation, int64_t deadline_ms);
  void Applied();  // log thread: wakes WaitApplied
  // Log thread: applies pending changes up to the confirmation mark.
  void ApplyConfirmed();
  // Log thread, apply_mu_ held: takes from pending_ the changes up to the
  // confirmation mark, dropping those at or below `applied` (applied
  // already).
  std::vector<Change> TakeConfirmed(Revision applied);
  // Log thread: confirms changes no committer marked (WAIT, then a mark).
  absl::Status ConfirmPending(Connection& c);
  // What NOTE, WAIT and CONFIRM answered (redis_store.cc, kNoteScript).
  struct Confirmation {
    int64_t acked = -1;  // WAIT's count
    bool marked = false;
    Revision upto = 0;        // the mark's revision, when marked
    Revision noted_head = 0;  // the head when noted
    std::string error;
  };
  static void AddConfirmation(RedisBatch& batch, const Connection& c, int need, int64_t wait_ms);
  static Confirmation ReadConfirmation(const std::vector<RedisReply>& replies, size_t at);
  // Commit thread: applies its confirmed group (revisions base+1...) to the
  // state if the state is still at `base` in `generation`.
  void ApplyOwn(const std::vector<Change>& changes, Revision base, uint64_t generation);
  void SetPrimary(const std::string& address);
  // Commit thread: writes the queued Acknowledge reports and answers them.
  void WriteAcks(std::vector<std::pair<SyncAck, std::function<void(absl::Status)>>>& acks);
  // Reads every sync's report from the hash into syncs_ (and forgets the
  // long-silent ones there).
  absl::Status ReadSyncs(Connection& c);
  size_t log_max_entries() const;

  const RedisStoreOptions options_;
  SecretPolicy secret_policy_;
  SyncRegistry syncs_;
  std::unique_ptr<CredentialState> state_;
  std::unique_ptr<Metrics> metrics_;

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Op> queue_;  // guarded by mu_
  // Acknowledge reports waiting for the commit thread; guarded by mu_.
  std::vector<std::pair<SyncAck, std::function<void(absl::Status)>>> acks_;
  bool stopping_ = false;  // guarded by mu_

  // The log thread's progress, for the commit thread.
  std::mutex applied_mu_;
  std::condition_variable applied_cv_;
  std::atomic<bool> reload_{false};  // commit thread asks the log thread to check
  std::atomic<bool> loaded_{false};

  mutable std::mutex primary_mu_;
  std::string primary_;  // guarded by primary_mu_

  std::unique_ptr<Connection> commit_conn_;  // commit thread only
  std::unique_ptr<Connection> log_conn_;     // log thread only
  std::string last_id_;                      // log thread only
  std::deque<Change> pending_;               // log thread only: read, not confirmed
  int64_t pending_since_ms_ = 0;             // log thread only
  Revision confirmed_ = 0;                   // log thread only: highest mark read
  Revision read_head_ = 0;                   // log thread only: last change read
  // The state's writers: the log thread (changes from the log, expiry,
  // reloads) and the commit thread (its own confirmed groups, ApplyOwn).
  // Held around each write, so the state has one writer at a time, and
  // changes are applied once each, in revision order.
  std::mutex apply_mu_;
  std::atomic<Revision> highest_applied_{0};  // per epoch; written under apply_mu_
  std::thread commit_thread_;
  std::thread log_thread_;
  std::atomic<bool> log_stop_{false};
};

}  // namespace turnbroker::broker

#endif  // TURNBROKER_BROKER_REDIS_STORE_H_
