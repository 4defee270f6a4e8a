#include "turnbroker/broker/redis_store.h"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <fstream>
#include <future>

#include "turnbroker/broker/journal.h"
#include "turnbroker/broker/planner.h"
#include "turnbroker/common/log.h"
#include "turnbroker/common/strings.h"

namespace turnbroker::broker {
namespace {

constexpr std::string_view kEpochKey = "{turnbroker}:epoch";
constexpr std::string_view kHeadKey = "{turnbroker}:head";
constexpr std::string_view kLogKey = "{turnbroker}:log";
constexpr std::string_view kCredentialPrefix = "{turnbroker}:c:";
constexpr std::string_view kTombstonePrefix = "{turnbroker}:t:";
constexpr std::string_view kSecretPrefix = "{turnbroker}:s:";
constexpr std::string_view kSyncsKey = "{turnbroker}:syncs";
constexpr std::string_view kNotePrefix = "{turnbroker}:note:";
constexpr size_t kTailCount = 4'096;
constexpr int64_t kTailBlockMs = 1'000;
constexpr int64_t kExpiryIntervalMs = 100;
constexpr size_t kMaxExpiryPerPass = 50'000;
constexpr int64_t kRetryMs = 200;

// One commit group. KEYS: head, epoch, log. ARGV: base revision, epoch,
// stream MAXLEN, "1" to confirm at once (no replicas to wait for), then
// operations: S key value pxat | K key value (no expiry) | D key |
// X revision field payload. Commits
// only if the head is still `base` and the epoch unchanged, so replicas
// planning concurrently never interleave.
constexpr char kCommitScript[] = R"lua(
local epoch = redis.call('GET', KEYS[2])
if epoch ~= ARGV[2] then return {'EPOCH', epoch or ''} end
local head = tonumber(redis.call('GET', KEYS[1]) or '0')
if head ~= tonumber(ARGV[1]) then return {'STALE', tostring(head)} end
local last = head
local i = 5
while i <= #ARGV do
  local op = ARGV[i]
  if op == 'S' then
    redis.call('SET', ARGV[i+1], ARGV[i+2], 'PXAT', ARGV[i+3])
    i = i + 4
  elseif op == 'K' then
    redis.call('SET', ARGV[i+1], ARGV[i+2])
    i = i + 3
  elseif op == 'D' then
    redis.call('DEL', ARGV[i+1])
    i = i + 2
  else
    redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[3], ARGV[i+1] .. '-0', ARGV[i+2], ARGV[i+3])
    last = tonumber(ARGV[i+1])
    i = i + 4
  end
end
redis.call('SET', KEYS[1], tostring(last))
if ARGV[4] == '1' then redis.call('XADD', KEYS[3], last .. '-1', 'a', tostring(last)) end
return {'OK', tostring(last)}
)lua";

// A confirmation mark: every change up to ARGV[1] is on the replicas asked
// (WAIT said so). KEYS: head, log. The mark's id is at the top of the log
// ("<head>-*"), after every change so far; the log thread applies changes
// only up to the highest mark it has read (docs/architecture.md).
constexpr char kMarkScript[] = R"lua(
local head = redis.call('GET', KEYS[1]) or '0'
return redis.call('XADD', KEYS[2], head .. '-*', 'a', ARGV[1])
)lua";

// Confirmation without a round trip between WAIT and the mark: a writer
// sends NOTE, WAIT and CONFIRM back to back in one write, and Redis runs
// them in order. NOTE (a write, so that WAIT covers it) records where the
// replication stream is (master_repl_offset: every write so far, the
// writer's commit included) and the head. CONFIRM, which runs once WAIT has
// returned, appends a mark up to the noted head only if enough replicas have
// acknowledged the noted offset (the per-replica offsets of INFO, the same
// acknowledgements WAIT counts), so it never marks what WAIT did not
// confirm, whatever WAIT answered (docs/architecture.md).
// NOTE: KEYS: the writer's note key, head. Returns the head.
constexpr char kNoteScript[] = R"lua(
local info = redis.call('INFO', 'replication')
local offset = string.match(info, 'master_repl_offset:(%d+)') or '0'
local head = redis.call('GET', KEYS[2]) or '0'
redis.call('SET', KEYS[1], offset .. ' ' .. head, 'PX', '60000')
return head
)lua";
// CONFIRM: KEYS: the writer's note key, head, log. ARGV: replicas needed.
// Returns {'OK', noted head} (marked) or {'SHORT', replicas that have it}.
constexpr char kConfirmScript[] = R"lua(
local note = redis.call('GET', KEYS[1])
if not note then return {'SHORT', '0'} end
local offset, upto = string.match(note, '^(%d+) (%d+)$')
offset = tonumber(offset)
local info = redis.call('INFO', 'replication')
local n = 0
for state, acked in string.gmatch(info, 'slave%d+:[^\r\n]-state=(%a+),offset=(%d+)') do
  if state == 'online' and tonumber(acked) >= offset then n = n + 1 end
end
if n < tonumber(ARGV[1]) then return {'SHORT', tostring(n)} end
local head = redis.call('GET', KEYS[2]) or '0'
redis.call('XADD', KEYS[3], head .. '-*', 'a', upto)
return {'OK', upto}
)lua";

// KEYS: epoch, head. ARGV: the epoch expected ('' for none), a new epoch.
// Replaces the epoch if it is still the expected one; returns the epoch.
constexpr char kEpochScript[] = R"lua(
local epoch = redis.call('GET', KEYS[1])
if (epoch or '') == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2])
  if not redis.call('GET', KEYS[2]) then redis.call('SET', KEYS[2], '0') end
  return ARGV[2]
end
return epoch
)lua";

std::string CredentialKey(std::string_view realm, std::string_view username) {
  return StrCat(kCredentialPrefix, realm, "/", username);
}
std::string TombstoneKey(std::string_view realm, std::string_view username) {
  return StrCat(kTombstonePrefix, realm, "/", username);
}
std::string SecretKey(std::string_view realm, std::string_view id) {
  return StrCat(kSecretPrefix, realm, "/", id);
}

void PutBigEndian(std::string* out, uint64_t v) {
  for (int i = 7; i >= 0; --i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
uint64_t GetBigEndian(std::string_view in) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<uint8_t>(in[i]);
  return v;
}

bool ParseUint(std::string_view s, uint64_t* out) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && p == s.data() + s.size();
}

// "<revision>-<seq>" -> revision (0 if not one); `seq` 0 is a change, more
// a confirmation mark.
Revision IdRevision(std::string_view id, uint64_t* seq = nullptr) {
  size_t dash = id.find('-');
  uint64_t r = 0, q = 0;
  if (dash == id.npos || !ParseUint(id.substr(0, dash), &r) || !ParseUint(id.substr(dash + 1), &q))
    return 0;
  if (seq) *seq = q;
  return r;
}

int64_t NowMonotonicMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// A log entry back into a change at `revision`.
absl::StatusOr<Change> DecodeEntry(Revision revision, const RedisReply& fields) {
  if (fields.elements.size() != 2) {
    return absl::DataLossError(StrCat("redis log entry ", revision, ": not one field"));
  }
  const std::string& field = fields.elements[0].str;
  const std::string& payload = fields.elements[1].str;
  Change change;
  change.revision = revision;
  if (field == "p") {
    v1::Credential c;
    if (!c.ParseFromString(payload)) {
      return absl::DataLossError(StrCat("redis log entry ", revision, ": bad credential"));
    }
    change.put = Record::Create(c, revision);
  } else if (field == "s") {
    v1::SharedSecret secret;
    if (payload.size() < 8 ||
        !secret.ParseFromArray(payload.data() + 8, static_cast<int>(payload.size() - 8))) {
      return absl::DataLossError(StrCat("redis log entry ", revision, ": bad shared secret"));
    }
    change.secret = MakeSecretChange(std::move(secret), false, revision, GetBigEndian(payload));
  } else if (field == "x") {
    v1::SecretRef ref;
    if (!ref.ParseFromString(payload)) {
      return absl::DataLossError(StrCat("redis log entry ", revision, ": bad secret reference"));
    }
    v1::SharedSecret secret;
    secret.set_realm(ref.realm());
    secret.set_id(ref.id());
    change.secret = MakeSecretChange(std::move(secret), true, revision);
  } else if (field == "r") {
    auto rc = std::make_shared<RevocationChange>();
    if (!rc->revocation.ParseFromString(payload)) {
      return absl::DataLossError(StrCat("redis log entry ", revision, ": bad revocation"));
    }
    v1::Event event;
    event.set_revision(revision);
    *event.mutable_revoke() = rc->revocation;
    event.SerializeToString(&rc->event_wire);
    change.revoke = std::move(rc);
  } else {
    return absl::DataLossError(StrCat("redis log entry ", revision, ": unknown field ", field));
  }
  return change;
}

}  // namespace

std::vector<HostPort> PrimaryCandidates(const std::vector<HostPort>& answers) {
  struct Named {
    HostPort primary;
    int votes = 0;
  };
  std::vector<Named> named;  // in the order first named
  for (const HostPort& a : answers) {
    auto it = std::find_if(named.begin(), named.end(), [&](const Named& n) {
      return n.primary.host == a.host && n.primary.port == a.port;
    });
    if (it == named.end())
      named.push_back({a, 1});
    else
      ++it->votes;
  }
  std::stable_sort(named.begin(), named.end(),
                   [](const Named& a, const Named& b) { return a.votes > b.votes; });
  std::vector<HostPort> out;
  for (Named& n : named) out.push_back(std::move(n.primary));
  return out;
}

absl::StatusOr<std::vector<HostPort>> ParseSentinels(std::string_view text) {
  return ParseHostPortList(text, "--redis-sentinels");
}

absl::StatusOr<RedisTarget> RedisTargetFromFlags(const RedisFlags& flags) {
  RedisTarget t;
  if (flags.url.empty() == flags.sentinels.empty()) {
    return absl::InvalidArgumentError(
        "--store=redis: give --redis-url, or --redis-sentinels with --redis-master (one of them)");
  }
  if (!flags.url.empty()) {
    auto url = ParseRedisUrl(flags.url, "--redis-url");
    if (!url.ok()) return url.status();
    t.url = *url;
    t.password_flag = "--redis-url";
    if (!flags.master.empty()) {
      return absl::InvalidArgumentError("--redis-master: only with --redis-sentinels");
    }
  } else {
    auto sentinels = ParseSentinels(flags.sentinels);
    if (!sentinels.ok()) return sentinels.status();
    t.sentinels = *sentinels;
    if (flags.master.empty()) {
      return absl::InvalidArgumentError(
          "--redis-master: required with --redis-sentinels (the name Sentinel monitors)");
    }
    t.master = flags.master;
  }
  if (!flags.password_file.empty()) {
    std::ifstream in(flags.password_file);
    std::string line;
    if (!in || !std::getline(in, line)) {
      return absl::InvalidArgumentError(
          StrCat("--redis-password-file: cannot read ", flags.password_file));
    }
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
    if (line.empty()) {
      return absl::InvalidArgumentError(
          StrCat("--redis-password-file: ", flags.password_file, " is empty"));
    }
    if (size_t space = line.find(' '); space != line.npos) {
      t.url.user = line.substr(0, space);
      t.url.password = line.substr(space + 1);
    } else {
      t.url.password = line;
    }
    t.password_flag = "--redis-password-file";
  }
  return t;
}

// A connection to the current primary: found through Sentinel (and checked
// with ROLE) on first use and after every failure, so a failover is followed
// by the next call. Not thread-safe: one per thread.
class RedisStore::Connection {
 public:
  Connection(RedisStore* store, int io_timeout_ms)
      : note_key(StrCat(kNotePrefix, NewEpoch())), store_(store), io_timeout_ms_(io_timeout_ms) {}

  // Runs `batch` on the primary. UNAVAILABLE names the address; a READONLY
  // or LOADING reply (a demoted or starting primary) drops the connection.
  absl::StatusOr<std::vector<RedisReply>> Execute(const RedisBatch& batch) {
    if (!client_) {
      if (auto s = Connect(); !s.ok()) return s;
    }
    auto replies = client_->Execute(batch);
    if (!replies.ok()) {
      Drop();
      return replies.status();
    }
    for (const RedisReply& r : *replies) {
      if (r.is_error() && (r.str.rfind("READONLY", 0) == 0 || r.str.rfind("LOADING", 0) == 0 ||
                           r.str.rfind("MASTERDOWN", 0) == 0 || r.str.rfind("UNBLOCKED", 0) == 0)) {
        std::string where = address_;
        Drop();
        return absl::UnavailableError(StrCat("redis ", where, ": ", r.str));
      }
    }
    return replies;
  }
  absl::StatusOr<RedisReply> Command(std::initializer_list<std::string_view> args) {
    RedisBatch b;
    b.Add(args);
    auto r = Execute(b);
    if (!r.ok()) return r.status();
    return std::move(r->front());
  }

  // Connects if not connected; every 5 s asks again how many replicas the
  // primary has (for the default --redis-min-replicas-ack).
  absl::Status Ensure() {
    if (!client_) return Connect();
    if (NowMonotonicMs() - probed_ms_ < 5'000) return absl::OkStatus();
    auto info = Command({"INFO", "replication"});
    if (!info.ok()) return info.status();
    replicas = CountReplicas(info->str);
    probed_ms_ = NowMonotonicMs();
    return absl::OkStatus();
  }

  // Forgets the connection; the next call finds the primary again.
  void Drop() {
    client_.reset();
    address_.clear();
  }

  // This connection's note (kNoteScript): its own, so that writers on
  // several connections never read each other's.
  const std::string note_key;
  // Set by every new connection; the owner clears it.
  bool reconnected = false;
  // Replicas connected to the primary at connect time.
  int replicas = 0;

 private:
  absl::Status Connect() {
    const RedisTarget& t = store_->options_.target;
    if (t.sentinels.empty()) return ConnectTo(t.url);
    auto candidates = AskSentinels();
    if (!candidates.ok()) return candidates.status();
    // The first candidate that is the primary; a stale sentinel's is dead
    // or a replica by now.
    absl::Status first;
    std::string errors;
    for (const HostPort& primary : *candidates) {
      RedisUrl url = t.url;
      url.host = primary.host;
      url.port = primary.port;
      absl::Status s = ConnectTo(url);
      if (s.ok()) return s;
      if (first.ok()) first = s;
      StrAppend(&errors, errors.empty() ? "" : "; ", s.message());
    }
    return absl::Status(first.code(), errors);  // the first one's kind, every message
  }

  // Connects to `url` if it is the primary (ROLE).
  absl::Status ConnectTo(const RedisUrl& url) {
    RedisOptions o;
    o.url = url;
    o.connect_timeout_ms = static_cast<int>(store_->options_.connect_timeout_ms);
    o.io_timeout_ms = io_timeout_ms_;
    auto client = std::make_unique<HiredisClient>(o);
    std::string address = StrCat(url.host, ":", url.port);
    RedisBatch probe;
    probe.Add({"ROLE"});
    probe.Add({"INFO", "replication"});
    auto replies = client->Execute(probe);
    if (!replies.ok()) return replies.status();
    const RedisReply& role = (*replies)[0];
    if (role.is_error()) {
      return absl::UnavailableError(StrCat("redis ", address, ": ROLE: ", role.str));
    }
    if (role.elements.empty() || role.elements[0].str != "master") {
      return absl::UnavailableError(StrCat("redis ", address, " is a ",
                                           role.elements.empty() ? "?" : role.elements[0].str,
                                           ", not the primary (waiting for Sentinel's failover)"));
    }
    replicas = CountReplicas((*replies)[1].str);
    probed_ms_ = NowMonotonicMs();
    client_ = std::move(client);
    address_ = address;
    reconnected = true;
    store_->SetPrimary(address);
    return absl::OkStatus();
  }

  // Every sentinel's answer, as PrimaryCandidates orders them. The
  // sentinels are asked at once, so one that does not answer costs one
  // connect timeout, not one per sentinel.
  absl::StatusOr<std::vector<HostPort>> AskSentinels() {
    const RedisTarget& t = store_->options_.target;
    const int timeout_ms = static_cast<int>(store_->options_.connect_timeout_ms);
    std::vector<std::future<absl::StatusOr<RedisReply>>> replies;
    for (const HostPort& s : t.sentinels) {
      replies.push_back(std::async(std::launch::async, [&s, &t, timeout_ms] {
        RedisOptions o;
        o.url.host = s.host;
        o.url.port = s.port;
        o.connect_timeout_ms = timeout_ms;
        o.io_timeout_ms = timeout_ms;
        HiredisClient sentinel(o);
        return sentinel.Command({"SENTINEL", "get-master-addr-by-name", t.master});
      }));
    }
    std::vector<HostPort> answers;
    std::string errors;
    for (size_t i = 0; i < replies.size(); ++i) {
      const HostPort& s = t.sentinels[i];
      absl::StatusOr<RedisReply> r = replies[i].get();
      if (!r.ok()) {
        StrAppend(&errors, errors.empty() ? "" : "; ", s.ToString(), ": ", r.status().message());
        continue;
      }
      if (r->type != RedisReply::Type::kArray || r->elements.size() != 2) {
        StrAppend(&errors, errors.empty() ? "" : "; ", s.ToString(), ": does not know master '",
                  t.master, "'");
        continue;
      }
      uint64_t port = 0;
      if (!ParseUint(r->elements[1].str, &port) || port == 0 || port > 65535) continue;
      answers.push_back(HostPort{r->elements[0].str, static_cast<uint16_t>(port)});
    }
    if (answers.empty()) {
      return absl::UnavailableError(StrCat("--redis-sentinels: no sentinel gave the primary of '",
                                           t.master, "' (", errors, ")"));
    }
    return PrimaryCandidates(answers);
  }

  static int CountReplicas(const std::string& info) {
    size_t at = info.find("connected_slaves:");
    return at == info.npos ? 0 : std::atoi(info.c_str() + at + 17);
  }

  RedisStore* const store_;
  const int io_timeout_ms_;
  int64_t probed_ms_ = 0;
  std::unique_ptr<HiredisClient> client_;
  std::string address_;
};

struct RedisStore::Metrics : CommitMetrics {
  explicit Metrics(MetricsRegistry* r)
      : CommitMetrics(r),
        conflicts(r->AddCounter("turnbroker_store_redis_conflicts_total",
                                "Commit groups planned again because another replica committed")),
        errors(r->AddCounter("turnbroker_store_redis_errors_total",
                             "Redis calls that failed (connection, timeout, failover)")),
        unconfirmed(r->AddCounter("turnbroker_store_redis_unconfirmed_total",
                                  "Commit groups WAIT did not confirm on enough replicas in time")),
        epochs(r->AddCounter("turnbroker_store_epoch_changes_total",
                             "State reloads for a new epoch of the Redis dataset")),
        applied(r->AddCounter("turnbroker_store_log_entries_total",
                              "Log entries applied from the Redis stream")),
        own_applied(r->AddCounter(
            "turnbroker_store_own_changes_total",
            "Changes this replica committed and applied itself, before reading them back")),
        late_marks(r->AddCounter(
            "turnbroker_store_redis_late_marks_total",
            "Confirmation marks written in a round trip of their own after WAIT (a Redis "
            "replica went away between WAIT and the mark, or pipelining is off)")) {}
  Counter *conflicts, *errors, *unconfirmed, *epochs, *applied, *own_applied, *late_marks;
};

RedisStore::RedisStore(const RedisStoreOptions& options, const Clock* clock,
                       MetricsRegistry* metrics)
    : options_(options),
      secret_policy_(options.secrets),
      state_(std::make_unique<CredentialState>(options.state, clock)) {
  secret_policy_.max_credential_ttl_ms = options.limits.max_ttl_ms;
  static MetricsRegistry* unused = new MetricsRegistry;
  metrics_ = std::make_unique<Metrics>(metrics ? metrics : unused);
  int commit_io = static_cast<int>(options.ack_timeout_ms + 1'000);
  commit_conn_ = std::make_unique<Connection>(this, commit_io);
  log_conn_ = std::make_unique<Connection>(this, static_cast<int>(kTailBlockMs + 2'000));
}

absl::StatusOr<std::unique_ptr<RedisStore>> RedisStore::Open(const RedisStoreOptions& options,
                                                             const Clock* clock,
                                                             MetricsRegistry* metrics) {
  std::unique_ptr<RedisStore> store(new RedisStore(options, clock, metrics));
  // At start an unreachable Redis or a wrong password is a configuration
  // error: fail with its message instead of serving nothing. Through
  // Sentinel, a primary that is down or not yet promoted is a failover in
  // progress: wait for it (up to 10 s).
  absl::Status loaded = store->Load(*store->log_conn_);
  for (int64_t until = NowMonotonicMs() + 10'000; !loaded.ok() && absl::IsUnavailable(loaded) &&
                                                  !options.target.sentinels.empty() &&
                                                  NowMonotonicMs() < until;) {
    std::this_thread::sleep_for(std::chrono::milliseconds(kRetryMs));
    loaded = store->Load(*store->log_conn_);
  }
  if (auto s = loaded; !s.ok()) {
    if (absl::IsFailedPrecondition(s) && s.message().find("AUTH") != std::string_view::npos) {
      return absl::FailedPreconditionError(
          StrCat(options.target.password_flag, ": Redis refused the password (", s.message(), ")"));
    }
    if (absl::IsUnavailable(s) && options.target.sentinels.empty()) {
      return absl::UnavailableError(StrCat("--redis-url: cannot use Redis at ",
                                           options.target.url.Redacted(), ": ", s.message()));
    }
    return s;
  }
  // (Load has caught up with the log: the state is served from here on.)
  if (auto s = store->ReadSyncs(*store->log_conn_); !s.ok()) return s;
  store->loaded_ = true;
  store->log_thread_ = std::thread([s = store.get()] { s->LogLoop(); });
  store->commit_thread_ = std::thread([s = store.get()] { s->CommitLoop(); });
  return store;
}

RedisStore::~RedisStore() { Shutdown(); }

void RedisStore::SetCommitListener(std::function<void()> listener) {
  state_->SetCommitListener(std::move(listener));
}

std::string RedisStore::description() const {
  const RedisTarget& t = options_.target;
  if (t.sentinels.empty()) return StrCat("redis:", t.url.host, ":", t.url.port);
  return StrCat("redis-sentinel:", t.master, "@", primary());
}

std::string RedisStore::primary() const {
  std::lock_guard<std::mutex> lock(primary_mu_);
  return primary_;
}

void RedisStore::SetPrimary(const std::string& address) {
  std::string old;
  {
    std::lock_guard<std::mutex> lock(primary_mu_);
    if (primary_ == address) return;
    old = std::exchange(primary_, address);
  }
  LogInfo("redis primary").Kv("address", address).Kv("previous", old);
}

void RedisStore::Shutdown() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (commit_thread_.joinable()) commit_thread_.join();
  log_stop_ = true;
  applied_cv_.notify_all();
  if (log_thread_.joinable()) log_thread_.join();
}

absl::Status RedisStore::Enqueue(Op op) {
  std::lock_guard<std::mutex> lock(mu_);
  if (auto s = PushWrite(queue_, std::move(op), stopping_, options_.max_queue); !s.ok()) return s;
  metrics_->queue->Set(static_cast<int64_t>(queue_.size()));
  cv_.notify_one();
  return absl::OkStatus();
}

void RedisStore::Publish(const v1::PublishRequest* request, PublishDone done) {
  if (auto s = Enqueue(PublishOp{request, done, NowMonotonicMs()}); !s.ok()) done(s);
}

void RedisStore::Revoke(const v1::RevokeRequest* request, std::string only_issuer,
                        RevokeDone done) {
  if (auto s = Enqueue(RevokeOp{request, done, NowMonotonicMs(), 0, std::move(only_issuer)});
      !s.ok())
    done(s);
}

void RedisStore::RevokeMinted(const v1::RevokeRequest* request, int64_t until_ms, RevokeDone done) {
  if (auto s = Enqueue(RevokeOp{request, done, NowMonotonicMs(), until_ms}); !s.ok()) done(s);
}

void RedisStore::WriteSecret(SecretCommand command, SecretDone done) {
  if (auto s = Enqueue(SecretOp{std::move(command), done, NowMonotonicMs()}); !s.ok()) done(s);
}

void RedisStore::Acknowledge(SyncAck ack, std::function<void(absl::Status)> done) {
  // Seen here at once; every other replica sees it once it is in the hash.
  if (auto s = syncs_.Record(ack); !s.ok()) {
    done(s);
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) {
      done(absl::UnavailableError("broker is shutting down"));
      return;
    }
    if (acks_.size() >= options_.max_queue) {
      done(absl::ResourceExhaustedError("acknowledgement queue full; retry"));
      return;
    }
    acks_.emplace_back(std::move(ack), std::move(done));
  }
  cv_.notify_one();
}

std::vector<SyncAck> RedisStore::RecentSyncs() const {
  return syncs_.Recent(state_->clock()->NowMs(), secret_policy_.ack_window_ms);
}

void RedisStore::WriteAcks(
    std::vector<std::pair<SyncAck, std::function<void(absl::Status)>>>& acks) {
  absl::Status status = commit_conn_->Ensure();
  if (status.ok()) {
    RedisArgs hset{"HSET", kSyncsKey};
    for (const auto& [ack, done] : acks) {
      v1::AcknowledgeRequest r;
      r.set_watcher_name(ack.name);
      r.set_epoch(ack.epoch);
      r.set_revision(ack.revision);
      for (const std::string& realm : ack.realms) r.add_realms(realm);
      r.set_farm(ack.farm);
      std::string value;
      PutBigEndian(&value, static_cast<uint64_t>(ack.at_ms));
      r.AppendToString(&value);
      hset.Push(ack.name).Push(value);
    }
    RedisBatch batch;
    batch.Add(hset);
    auto replies = commit_conn_->Execute(batch);
    if (!replies.ok()) {
      status = replies.status();
    } else if (replies->front().is_error()) {
      status = absl::UnavailableError(StrCat("redis HSET: ", replies->front().str));
    }
  }
  if (!status.ok()) {
    metrics_->errors->Inc();
    status = absl::UnavailableError(
        StrCat(status.message(), "; the acknowledgement was not recorded, retry"));
  }
  for (auto& [ack, done] : acks) done(status);
}

absl::Status RedisStore::ReadSyncs(Connection& c) {
  auto all = c.Command({"HGETALL", kSyncsKey});
  if (!all.ok()) return all.status();
  if (all->is_error()) return absl::UnavailableError(StrCat("redis HGETALL: ", all->str));
  const int64_t now = state_->clock()->NowMs();
  const int64_t forget_before = now - 10 * secret_policy_.ack_window_ms;
  std::vector<SyncAck> acks;
  RedisArgs forget{"HDEL", kSyncsKey};
  bool stale = false;
  for (size_t i = 0; i + 1 < all->elements.size(); i += 2) {
    const std::string& name = all->elements[i].str;
    const std::string& value = all->elements[i + 1].str;
    v1::AcknowledgeRequest r;
    int64_t at_ms = value.size() >= 8 ? static_cast<int64_t>(GetBigEndian(value)) : 0;
    if (value.size() < 8 ||
        !r.ParseFromArray(value.data() + 8, static_cast<int>(value.size() - 8)) ||
        at_ms < forget_before) {
      forget.Push(name);
      stale = true;
      continue;
    }
    acks.push_back(ToSyncAck(r, at_ms));
  }
  syncs_.Merge(std::move(acks));
  if (stale) {
    RedisBatch b;
    b.Add(forget);
    if (auto r = c.Execute(b); !r.ok()) return r.status();
  }
  return absl::OkStatus();
}

void RedisStore::CommitLoop() {
  std::vector<Op> ops;
  std::vector<std::pair<SyncAck, std::function<void(absl::Status)>>> acks;
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [this] { return !queue_.empty() || !acks_.empty() || stopping_; });
      acks.swap(acks_);
      if (queue_.empty() && acks.empty() && stopping_) break;
      TakeGroup(queue_, options_.max_group_credentials, &ops);
      metrics_->queue->Set(static_cast<int64_t>(queue_.size()));
    }
    // Reports first: an activation in this group is planned against them.
    if (!acks.empty()) WriteAcks(acks);
    acks.clear();
    if (!ops.empty()) CommitGroup(ops);
    ops.clear();
  }
}

void RedisStore::CommitGroup(std::vector<Op>& ops) {
  auto fail = [&](const absl::Status& s) { FailGroup(ops, s); };
  int64_t deadline = INT64_MAX;
  for (Op& op : ops) {
    deadline = std::min(
        deadline, std::visit([](auto& o) { return o.enqueued_ms; }, op) + options_.ack_timeout_ms);
  }
  const int64_t start_us = MonotonicMicros();
  bool logged = false;  // one warning per group
  for (int attempt = 0;; ++attempt) {
    if (NowMonotonicMs() >= deadline) {
      fail(absl::UnavailableError(StrCat("redis: not committed within --redis-ack-timeout (",
                                         options_.ack_timeout_ms, " ms); retry")));
      return;
    }
    if (!loaded_.load()) {
      WaitApplied(0, 0, std::min(deadline, NowMonotonicMs() + kRetryMs));
      continue;
    }
    const uint64_t generation = state_->generation();
    const std::string epoch = state_->epoch();
    const Revision base = state_->head();
    GroupPlanner planner(*state_, options_.limits, options_.max_batch, base);
    if (HasActivation(ops)) {
      // The syncs of every replica, as of now (else as of the last read).
      if (auto st = ReadSyncs(*commit_conn_); !st.ok()) {
        LogWarn("redis: cannot read the syncs' reports; using the last ones read").Kv("error", st);
      }
      planner.SetSecretPolicy(secret_policy_, RecentSyncs());
    } else {
      planner.SetSecretPolicy(secret_policy_, {});
    }
    PlannedGroup planned = PlanGroup(planner, ops);
    std::vector<Change> changes = planner.TakeChanges();
    auto answer = [&] { AnswerGroup(ops, planned, epoch); };
    // Another replica committed after `head`: catch up with it, then plan
    // again.
    auto catch_up = [&](Revision head) {
      metrics_->conflicts->Inc();
      if (head < base) reload_ = true;  // the dataset went back: check it
      WaitApplied(head, generation, deadline);
    };

    // Connected first: the default number of replicas to wait for is the
    // primary's (a commit must never skip WAIT for want of knowing).
    if (auto st = commit_conn_->Ensure(); !st.ok()) {
      metrics_->errors->Inc();
      if (!logged) LogWarn("redis commit failed").Kv("error", st);
      logged = true;
      if (NowMonotonicMs() + kRetryMs / 4 < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(kRetryMs / 4));
        continue;
      }
      fail(absl::UnavailableError(StrCat(st.message(), "; nothing acknowledged, retry")));
      return;
    }
    if (changes.empty()) {
      // Nothing to write (a publish of what is live already, say): the
      // answer comes from this replica's state, so that state must be the
      // dataset's. A revocation another replica committed and this one has
      // not read yet would otherwise be answered "unchanged"
      // (docs/architecture.md, "High availability: the Redis store").
      auto now = commit_conn_->Command({"MGET", kHeadKey, kEpochKey});
      uint64_t at = 0;
      const bool read = now.ok() && now->type == RedisReply::Type::kArray &&
                        now->elements.size() == 2 &&
                        (now->elements[0].is_nil() || ParseUint(now->elements[0].str, &at));
      if (!read) {
        metrics_->errors->Inc();
        if (NowMonotonicMs() + kRetryMs / 4 < deadline) {
          std::this_thread::sleep_for(std::chrono::milliseconds(kRetryMs / 4));
          continue;
        }
        fail(absl::UnavailableError("redis: cannot read the head; nothing acknowledged, retry"));
        return;
      }
      if (now->elements[1].str != epoch) {  // as the commit script's EPOCH
        reload_ = true;
        WaitApplied(base + 1, generation, deadline);
        continue;
      }
      if (at != base) {
        catch_up(at);
        continue;
      }
      answer();
      return;
    }
    int need = options_.min_replicas_ack;
    if (need < 0) need = commit_conn_->replicas > 0 ? 1 : 0;
    RedisArgs script{"EVAL",
                     kCommitScript,
                     "3",
                     kHeadKey,
                     kEpochKey,
                     kLogKey,
                     StrCat(base),
                     epoch,
                     StrCat(log_max_entries()),
                     need > 0 ? "0" : "1"};
    for (const Change& c : changes) {
      std::string rev = StrCat(c.revision);
      if (c.put) {
        std::string value;
        value.reserve(8 + c.put->credential_wire().size());
        PutBigEndian(&value, c.revision);
        value.append(c.put->credential_wire());
        script.Push("S").Push(CredentialKey(c.put->realm(), c.put->username())).Push(value);
        script.Push(StrCat(c.put->expires_at_ms()));
        script.Push("X").Push(rev).Push("p").Push(c.put->credential_wire());
      } else if (c.secret) {
        const SecretChange& sc = *c.secret;
        std::string key = SecretKey(sc.secret.realm(), sc.secret.id());
        if (sc.retired) {
          v1::SecretRef ref;
          ref.set_realm(sc.secret.realm());
          ref.set_id(sc.secret.id());
          script.Push("D").Push(key);
          script.Push("X").Push(rev).Push("x").Push(ref.SerializeAsString());
        } else {
          std::string encoded = sc.secret.SerializeAsString();
          std::string value;
          PutBigEndian(&value, c.revision);
          PutBigEndian(&value, sc.staged_revision);
          value.append(encoded);
          if (sc.secret.expires_at_ms() != 0) {
            script.Push("S").Push(key).Push(value).Push(StrCat(sc.secret.expires_at_ms()));
          } else {
            script.Push("K").Push(key).Push(value);
          }
          std::string payload;
          PutBigEndian(&payload, sc.staged_revision);
          payload.append(encoded);
          script.Push("X").Push(rev).Push("s").Push(payload);
        }
      } else {
        const v1::Revocation& r = c.revoke->revocation;
        for (const auto& ref : r.credentials()) {
          script.Push("D").Push(CredentialKey(ref.realm(), ref.username()));
          script.Push("S").Push(TombstoneKey(ref.realm(), ref.username()));
          script.Push(StrCat(ref.expires_at_ms())).Push(StrCat(ref.expires_at_ms()));
        }
        if (r.credentials().empty() && r.selector().has_username()) {
          const auto& u = r.selector().username();
          std::string until = StrCat(r.revoked_at_ms() + options_.limits.max_ttl_ms);
          script.Push("S").Push(TombstoneKey(u.realm(), u.username())).Push(until).Push(until);
        }
        std::string payload;
        r.SerializeToString(&payload);
        script.Push("X").Push(rev).Push("r").Push(payload);
      }
    }
    // With replicas to wait for, NOTE, WAIT and CONFIRM go in the same write
    // as the commit (kNoteScript): one round trip, and the other replicas
    // can apply the group as soon as the Redis replicas have it.
    const bool pipelined = need > 0 && options_.pipeline_confirmation;
    RedisBatch batch;
    batch.Add(script);
    if (pipelined) {
      AddConfirmation(batch, *commit_conn_, need,
                      std::max<int64_t>(1, deadline - NowMonotonicMs()));
    }
    auto replies = commit_conn_->Execute(batch);
    if (commit_conn_->reconnected) {
      commit_conn_->reconnected = false;
      reload_ = true;  // a new primary: let the log thread check the dataset
    }
    if (!replies.ok()) {
      // Whether the script ran is unknown; running it again is safe (it
      // commits only on the same head, and a group planned again finds its
      // own changes done: idempotent). Retry until the deadline.
      metrics_->errors->Inc();
      if (!logged) LogWarn("redis commit failed").Kv("error", replies.status());
      logged = true;
      if (NowMonotonicMs() + kRetryMs / 4 < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(kRetryMs / 4));
        continue;
      }
      fail(absl::UnavailableError(
          StrCat(replies.status().message(), "; nothing acknowledged, retry")));
      return;
    }
    const RedisReply& r = replies->front();
    if (r.is_error() || r.elements.size() != 2) {
      metrics_->errors->Inc();
      fail(absl::UnavailableError(StrCat("redis commit: ", r.ToString())));
      return;
    }
    const std::string& verdict = r.elements[0].str;
    if (verdict == "STALE") {
      // Another replica committed first. (A pipelined NOTE, WAIT and
      // CONFIRM ran anyway: harmless, CONFIRM marks only what the Redis
      // replicas have.)
      uint64_t head = 0;
      ParseUint(r.elements[1].str, &head);
      catch_up(head);
      continue;
    }
    if (verdict == "EPOCH") {
      reload_ = true;
      WaitApplied(base + 1, generation, deadline);
      continue;
    }
    uint64_t last = 0;
    ParseUint(r.elements[1].str, &last);
    if (need > 0) {
      Confirmation confirmed;
      if (pipelined) {
        confirmed = ReadConfirmation(*replies, 1);
      } else {
        int64_t wait_ms = std::max<int64_t>(1, deadline - NowMonotonicMs());
        auto acked = commit_conn_->Command({"WAIT", StrCat(need), StrCat(wait_ms)});
        if (!acked.ok()) {
          confirmed.error = std::string(acked.status().message());
        } else if (acked->type == RedisReply::Type::kInteger) {
          confirmed.acked = acked->integer;
        }
      }
      if (confirmed.acked < need) {
        metrics_->unconfirmed->Inc();
        fail(absl::UnavailableError(
            StrCat("redis: committed at revision ", last, " but confirmed by ",
                   confirmed.error.empty() ? StrCat(confirmed.acked) : confirmed.error, " of ",
                   need, " replicas within --redis-ack-timeout (", options_.ack_timeout_ms,
                   " ms); retry (publishing or revoking again is harmless)")));
        return;
      }
      // Confirmed: now the replicas may apply it (and every change before).
      // CONFIRM did not mark it only if a Redis replica went away after
      // WAIT: mark it on WAIT's word.
      if (!confirmed.marked || confirmed.upto < last) {
        metrics_->late_marks->Inc();
        auto mark =
            commit_conn_->Command({"EVAL", kMarkScript, "2", kHeadKey, kLogKey, StrCat(last)});
        if (!mark.ok() || mark->is_error()) {
          metrics_->errors->Inc();
          fail(absl::UnavailableError(
              StrCat("redis: committed at revision ", last, " and confirmed, but not marked so (",
                     mark.ok() ? mark->str : mark.status().message(),
                     "); retry (publishing or revoking again is harmless)")));
          return;
        }
      }
    }
    // Confirmed (or no replica to wait for): apply the group here at once,
    // unless the log thread has already; other replicas apply it from the
    // log once they read the mark.
    if (options_.apply_own_commits) ApplyOwn(changes, base, generation);
    if (!WaitApplied(last, generation, deadline) || state_->generation() != generation) {
      fail(absl::UnavailableError(StrCat("redis: committed at revision ", last,
                                         " but not yet applied (or the dataset changed); retry")));
      return;
    }
    metrics_->Committed(start_us, changes.size());
    (void)attempt;
    answer();
    return;
  }
}

void RedisStore::AddConfirmation(RedisBatch& batch, const Connection& c, int need,
                                 int64_t wait_ms) {
  batch.Add({"EVAL", kNoteScript, "2", c.note_key, kHeadKey});
  batch.Add({"WAIT", StrCat(need), StrCat(wait_ms)});
  batch.Add({"EVAL", kConfirmScript, "3", c.note_key, kHeadKey, kLogKey, StrCat(need)});
}

RedisStore::Confirmation RedisStore::ReadConfirmation(const std::vector<RedisReply>& replies,
                                                      size_t at) {
  Confirmation c;
  if (replies.size() < at + 3) {
    c.error = "missing replies";
    return c;
  }
  const RedisReply& note = replies[at];
  const RedisReply& wait = replies[at + 1];
  const RedisReply& mark = replies[at + 2];
  if (note.is_error()) c.error = StrCat("NOTE: ", note.str);
  ParseUint(note.str, &c.noted_head);
  if (wait.type == RedisReply::Type::kInteger) {
    c.acked = wait.integer;
  } else if (c.error.empty()) {
    c.error = StrCat("WAIT: ", wait.ToString());
  }
  if (!mark.is_error() && mark.elements.size() == 2 && mark.elements[0].str == "OK") {
    c.marked = ParseUint(mark.elements[1].str, &c.upto);
  }
  return c;
}

void RedisStore::ApplyOwn(const std::vector<Change>& changes, Revision base, uint64_t generation) {
  std::lock_guard<std::mutex> lock(apply_mu_);
  // The log thread may have applied the group already (it read the mark
  // first), and a reload may have replaced the state: apply only onto the
  // very state the group was planned on.
  if (state_->generation() != generation || state_->head() != base || changes.empty()) return;
  state_->Apply(changes);
  highest_applied_ = std::max<Revision>(highest_applied_.load(), state_->head());
  metrics_->own_applied->Inc(changes.size());
  Applied();
}

size_t RedisStore::log_max_entries() const {
  // Changes and marks (one per commit group at most): twice the history.
  return options_.log_max_entries ? options_.log_max_entries
                                  : 2 * options_.state.history_max_events;
}

bool RedisStore::WaitApplied(Revision revision, uint64_t generation, int64_t deadline_ms) {
  std::unique_lock<std::mutex> lock(applied_mu_);
  for (;;) {
    if (state_->generation() != generation && generation != 0) return false;
    if (revision != 0 && state_->head() >= revision) return true;
    int64_t left = deadline_ms - NowMonotonicMs();
    if (left <= 0 || log_stop_.load()) return false;
    applied_cv_.wait_for(lock, std::chrono::milliseconds(std::min<int64_t>(left, 50)));
    if (revision == 0 && loaded_.load()) return true;
  }
}

void RedisStore::Applied() {
  { std::lock_guard<std::mutex> lock(applied_mu_); }
  applied_cv_.notify_all();
}

absl::Status RedisStore::Load(Connection& c) {
  // The epoch: made if the dataset has none (new, or Redis restarted empty).
  auto epoch = c.Command({"GET", kEpochKey});
  if (!epoch.ok()) return epoch.status();
  // Everything below must come from this connection (one primary): a
  // reconnect on the way makes the load start again.
  c.reconnected = false;
  if (epoch->is_error()) return absl::UnavailableError(StrCat("redis GET: ", epoch->str));
  if (epoch->is_nil()) {
    std::string fresh = NewEpoch();
    auto made = c.Command({"EVAL", kEpochScript, "2", kEpochKey, kHeadKey, "", fresh});
    if (!made.ok()) return made.status();
    if (made->is_error()) return absl::UnavailableError(StrCat("redis EVAL: ", made->str));
    if (made->str == fresh) {
      LogWarn("redis dataset has no epoch (new, or restarted empty); made a new one")
          .Kv("epoch", fresh);
    }
  }
  // Epoch, head and the first retained log entry, at one point in time.
  RedisBatch b;
  b.Add({"MULTI"});
  b.Add({"GET", kEpochKey});
  b.Add({"GET", kHeadKey});
  b.Add({"XRANGE", kLogKey, "-", "+", "COUNT", "1"});
  b.Add({"EXEC"});
  auto replies = c.Execute(b);
  if (!replies.ok()) return replies.status();
  const RedisReply& exec = replies->back();
  if (exec.is_error() || exec.elements.size() != 3) {
    return absl::UnavailableError(StrCat("redis MULTI: ", exec.ToString()));
  }
  std::string new_epoch = exec.elements[0].str;
  uint64_t head = 0;
  if (!exec.elements[1].is_nil() && !ParseUint(exec.elements[1].str, &head)) {
    return absl::DataLossError(StrCat("redis ", kHeadKey, ": not a revision"));
  }
  // The first entry may be a mark whose change was trimmed: the replay then
  // starts after it.
  Revision first = 0;
  if (!exec.elements[2].elements.empty()) {
    uint64_t seq = 0;
    first = IdRevision(exec.elements[2].elements[0].elements[0].str, &seq);
    if (seq > 0) ++first;
  }
  // The live set and the revoked usernames. They may move on while they are
  // read; replaying the log from `first` (<= head) over them settles that
  // (state.h: Apply never lets an older change win).
  std::vector<RecordRef> live;
  std::vector<CredentialState::Tombstone> tombstones;
  std::vector<SecretEntryRef> secrets;
  for (std::string_view prefix : {kCredentialPrefix, kTombstonePrefix, kSecretPrefix}) {
    std::string cursor = "0";
    do {
      auto scan = c.Command({"SCAN", cursor, "MATCH", StrCat(prefix, "*"), "COUNT", "1000"});
      if (!scan.ok()) return scan.status();
      if (scan->is_error() || scan->elements.size() != 2) {
        return absl::UnavailableError(StrCat("redis SCAN: ", scan->ToString()));
      }
      cursor = scan->elements[0].str;
      const auto& keys = scan->elements[1].elements;
      if (keys.empty()) continue;
      RedisArgs mget{"MGET"};
      for (const auto& k : keys) mget.Push(k.str);
      RedisBatch mb;
      mb.Add(mget);
      auto values = c.Execute(mb);
      if (!values.ok()) return values.status();
      const auto& vals = values->front().elements;
      for (size_t i = 0; i < keys.size() && i < vals.size(); ++i) {
        if (vals[i].is_nil()) continue;  // expired or deleted meanwhile
        const std::string& v = vals[i].str;
        if (prefix == kCredentialPrefix) {
          v1::Credential cred;
          if (v.size() < 8 || !cred.ParseFromArray(v.data() + 8, static_cast<int>(v.size() - 8))) {
            return absl::DataLossError(StrCat("redis ", keys[i].str, ": not a credential"));
          }
          live.push_back(Record::Create(cred, GetBigEndian(v)));
        } else if (prefix == kSecretPrefix) {
          v1::SharedSecret secret;
          if (v.size() < 16 ||
              !secret.ParseFromArray(v.data() + 16, static_cast<int>(v.size() - 16))) {
            return absl::DataLossError(StrCat("redis ", keys[i].str, ": not a shared secret"));
          }
          auto entry = std::make_shared<SecretEntry>();
          entry->revision = GetBigEndian(v);
          entry->staged_revision = GetBigEndian(std::string_view(v).substr(8));
          entry->last =
              MakeSecretChange(std::move(secret), false, entry->revision, entry->staged_revision);
          secrets.push_back(std::move(entry));
        } else {
          std::string_view name = std::string_view(keys[i].str).substr(prefix.size());
          size_t slash = name.find('/');
          uint64_t until = 0;
          if (slash == name.npos || !ParseUint(v, &until)) continue;
          tombstones.push_back(
              {{std::string(name.substr(0, slash)), std::string(name.substr(slash + 1))},
               static_cast<int64_t>(until)});
        }
      }
    } while (cursor != "0");
  }
  Revision start = first != 0 ? first - 1 : head;
  // Records of changes not yet confirmed wait for their mark in the log,
  // which the replay below reads.
  if (first != 0) {
    live.erase(std::remove_if(live.begin(), live.end(),
                              [start](const RecordRef& r) { return r->revision() > start; }),
               live.end());
    secrets.erase(std::remove_if(secrets.begin(), secrets.end(),
                                 [start](const SecretEntryRef& e) { return e->revision > start; }),
                  secrets.end());
  }
  // The log from `start` up to the head read above, before the state is
  // shown: a Watch that began on the keys alone would get a snapshot that
  // lacks what was set aside for the replay.
  pending_.clear();
  last_id_ = StrCat(start, "-0");
  confirmed_ = read_head_ = start;
  while (read_head_ < head) {
    const Revision before = read_head_;
    auto more = ReadLog(c, 0);
    if (!more.ok()) return more.status();
    if (!*more) return absl::UnavailableError("redis: the log changed while loading; retry");
    if (c.reconnected) return absl::UnavailableError("redis: reconnected while loading; retry");
    if (read_head_ == before) break;  // nothing more to read
  }
  std::unique_lock<std::mutex> apply_lock(apply_mu_);
  bool changed = !state_->epoch().empty() && state_->epoch() != new_epoch;
  std::vector<Change> replay = TakeConfirmed(start);
  state_->Replace(new_epoch, start, std::move(live), tombstones, std::move(secrets), replay);
  highest_applied_ = state_->head();
  apply_lock.unlock();
  metrics_->applied->Inc(replay.size());
  Applied();
  if (changed) metrics_->epochs->Inc();
  LogInfo("redis store loaded")
      .Kv("epoch", new_epoch)
      .Kv("head", head)
      .Kv("log_from", first)
      .Kv("live", state_->stats().live)
      .Kv("primary", primary());
  return absl::OkStatus();
}

absl::StatusOr<bool> RedisStore::Tail(Connection& c, int64_t block_ms) {
  auto more = ReadLog(c, block_ms);
  if (more.ok() && *more) ApplyConfirmed();
  return more;
}

absl::StatusOr<bool> RedisStore::ReadLog(Connection& c, int64_t block_ms) {
  RedisBatch b;
  if (block_ms > 0) {
    b.Add({"XREAD", "COUNT", StrCat(kTailCount), "BLOCK", StrCat(block_ms), "STREAMS", kLogKey,
           last_id_});
  } else {
    b.Add({"XREAD", "COUNT", StrCat(kTailCount), "STREAMS", kLogKey, last_id_});
  }
  auto replies = c.Execute(b);
  if (!replies.ok()) return replies.status();
  // A new connection may be to a new primary: what was read but not
  // confirmed may not be in its log, and its log may hold other changes at
  // those revisions. The log loop starts again from the state's head first.
  if (c.reconnected) return true;
  const RedisReply& r = replies->front();
  if (r.is_error()) return absl::UnavailableError(StrCat("redis XREAD: ", r.str));
  if (r.is_nil() || r.elements.empty()) return true;
  const auto& entries = r.elements[0].elements[1].elements;
  for (const RedisReply& e : entries) {
    uint64_t seq = 0;
    Revision rev = IdRevision(e.elements[0].str, &seq);
    last_id_ = e.elements[0].str;
    if (seq > 0) {  // a confirmation mark
      uint64_t upto = 0;
      if (e.elements[1].elements.size() == 2 && ParseUint(e.elements[1].elements[1].str, &upto))
        confirmed_ = std::max<Revision>(confirmed_, upto);
      continue;
    }
    if (rev != read_head_ + 1) {
      // A gap: the log was trimmed past us, or it is another dataset.
      LogWarn("redis log has a gap; reloading").Kv("expected", read_head_ + 1).Kv("got", rev);
      return false;
    }
    auto change = DecodeEntry(rev, e.elements[1]);
    if (!change.ok()) return change.status();
    if (pending_.empty()) pending_since_ms_ = NowMonotonicMs();
    pending_.push_back(*std::move(change));
    read_head_ = rev;
  }
  return true;
}

std::vector<Change> RedisStore::TakeConfirmed(Revision applied) {
  while (!pending_.empty() && pending_.front().revision <= applied) pending_.pop_front();
  std::vector<Change> changes;
  while (!pending_.empty() && pending_.front().revision <= confirmed_) {
    changes.push_back(std::move(pending_.front()));
    pending_.pop_front();
  }
  if (!pending_.empty() && !changes.empty()) pending_since_ms_ = NowMonotonicMs();
  return changes;
}

void RedisStore::ApplyConfirmed() {
  std::lock_guard<std::mutex> lock(apply_mu_);
  // Changes the commit thread applied itself (its own groups) are done.
  std::vector<Change> changes = TakeConfirmed(state_->head());
  if (changes.empty()) return;
  state_->Apply(changes);
  metrics_->applied->Inc(changes.size());
  highest_applied_ = std::max<Revision>(highest_applied_.load(), state_->head());
  Applied();
}

absl::Status RedisStore::ConfirmPending(Connection& c) {
  // Changes whose committer never marked them (its WAIT failed, or it died):
  // confirm them here once the replicas have them, so they are not stuck.
  int need = options_.min_replicas_ack;
  if (need < 0) need = c.replicas > 0 ? 1 : 0;
  RedisBatch b;
  AddConfirmation(b, c, need, options_.ack_timeout_ms);
  auto replies = c.Execute(b);
  if (!replies.ok()) return replies.status();
  Confirmation confirmed = ReadConfirmation(*replies, 0);
  if (!confirmed.error.empty()) return absl::UnavailableError(StrCat("redis: ", confirmed.error));
  if (confirmed.acked < need) {
    return absl::UnavailableError(
        StrCat("redis: ", confirmed.acked, " of ", need, " replicas confirmed pending changes"));
  }
  if (confirmed.marked) return absl::OkStatus();
  // A Redis replica went away after WAIT: mark on WAIT's word.
  metrics_->late_marks->Inc();
  auto mark =
      c.Command({"EVAL", kMarkScript, "2", kHeadKey, kLogKey, StrCat(confirmed.noted_head)});
  if (!mark.ok()) return mark.status();
  if (mark->is_error()) return absl::UnavailableError(StrCat("redis XADD: ", mark->str));
  return absl::OkStatus();
}

absl::StatusOr<bool> RedisStore::CheckIdentity(Connection& c) {
  // Read before Redis's head: the commit thread applies its own groups as
  // soon as they are committed, so what it applies after this read may be
  // above the head read below without any write being lost.
  const Revision applied = highest_applied_.load();
  RedisBatch b;
  b.Add({"ROLE"});
  b.Add({"MULTI"});
  b.Add({"GET", kEpochKey});
  b.Add({"GET", kHeadKey});
  b.Add({"EXEC"});
  auto replies = c.Execute(b);
  if (!replies.ok()) return replies.status();
  const RedisReply& role = replies->front();
  if (role.elements.empty() || role.elements[0].str != "master") {
    // Demoted by a failover while connected: find the new primary.
    c.Drop();
    return absl::UnavailableError(StrCat("redis ", primary(), " is no longer the primary"));
  }
  const RedisReply& exec = replies->back();
  if (exec.is_error() || exec.elements.size() != 2) {
    return absl::UnavailableError(StrCat("redis MULTI: ", exec.ToString()));
  }
  const std::string epoch = state_->epoch();
  if (exec.elements[0].is_nil()) {
    LogWarn("redis dataset lost its epoch (restarted empty?); new epoch").Kv("was", epoch);
    return false;  // Load() makes the new epoch
  }
  if (exec.elements[0].str != epoch) {
    LogWarn("redis dataset has another epoch; reloading")
        .Kv("was", epoch)
        .Kv("now", exec.elements[0].str);
    return false;
  }
  uint64_t head = 0;
  ParseUint(exec.elements[1].str, &head);
  if (head < applied) {
    // Writes this replica applied (and watchers may have seen) are gone: a
    // failover to a replica that was behind, or a restored backup. Reusing
    // their revisions would tell watchers two stories: new epoch.
    std::string fresh = NewEpoch();
    auto made = c.Command({"EVAL", kEpochScript, "2", kEpochKey, kHeadKey, epoch, fresh});
    if (!made.ok()) return made.status();
    LogWarn("redis dataset lost writes; new epoch")
        .Kv("head", head)
        .Kv("applied", applied)
        .Kv("epoch", made->str);
    return false;
  }
  return true;
}

void RedisStore::LogLoop() {
  int64_t next_expiry = 0, next_check = 0;
  bool need_load = false;
  bool failing = false;
  while (!log_stop_.load()) {
    int64_t now = NowMonotonicMs();
    if (now >= next_expiry) {
      std::lock_guard<std::mutex> lock(apply_mu_);
      metrics_->expired->Inc(state_->Expire(kMaxExpiryPerPass));
      // Redis trims its own log: the dead revisions the state reports are
      // of no use here, and must not pile up.
      state_->TakeDeadRevisions();
      next_expiry = now + kExpiryIntervalMs;
    }
    absl::Status error;
    if (need_load) {
      error = Load(*log_conn_);
      if (error.ok()) need_load = false;
    } else if (reload_.exchange(false) || log_conn_->reconnected || now >= next_check) {
      if (log_conn_->reconnected) {
        // Read again from what is applied (see Tail).
        log_conn_->reconnected = false;
        pending_.clear();
        read_head_ = confirmed_ = state_->head();
        last_id_ = StrCat(read_head_, "-0");
      }
      next_check = now + options_.identity_check_interval_ms;
      auto same = CheckIdentity(*log_conn_);
      if (!same.ok())
        error = same.status();
      else if (!*same)
        need_load = true;
      else
        error = ReadSyncs(*log_conn_);
    } else if (!pending_.empty() && now - pending_since_ms_ > options_.ack_timeout_ms) {
      error = ConfirmPending(*log_conn_);
      pending_since_ms_ = NowMonotonicMs();  // tail again before the next try
    } else {
      auto more = Tail(*log_conn_, std::min<int64_t>(kTailBlockMs, kExpiryIntervalMs));
      if (!more.ok())
        error = more.status();
      else if (!*more)
        need_load = true;
    }
    if (need_load && error.ok()) continue;
    if (!error.ok()) {
      metrics_->errors->Inc();
      // Once per outage, not once per retry.
      if (!failing) LogWarn("redis log tail failed; retrying").Kv("error", error);
      failing = true;
      std::this_thread::sleep_for(std::chrono::milliseconds(kRetryMs));
    } else if (failing) {
      failing = false;
      LogInfo("redis log tail resumed").Kv("primary", primary()).Kv("head", state_->head());
    }
  }
}

}  // namespace turnbroker::broker
