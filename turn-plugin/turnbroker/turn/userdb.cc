#include "turnbroker/turn/userdb.h"

#include <charconv>
#include <cmath>
#include <cstdlib>

#include "turnbroker/common/credential.h"
#include "turnbroker/common/strings.h"

namespace turnbroker::turn {
namespace {

// Index reads come in pages of about this many entries.
constexpr int64_t kPage = 20'000;

absl::Status Unexpected(std::string_view what, const RedisReply& reply) {
  return absl::InternalError(StrCat("redis ", what, ": unexpected reply ", reply.ToString()));
}

// Sorted-set scores are doubles on the wire; Unix ms fit exactly.
bool ParseScore(const std::string& s, int64_t* out) {
  char* end = nullptr;
  double d = std::strtod(s.c_str(), &end);
  if (end == s.c_str() || *end != '\0' || !std::isfinite(d)) return false;
  *out = static_cast<int64_t>(d);
  return true;
}

absl::StatusOr<std::vector<ManagedKey>> ParseWithScores(std::string_view what,
                                                        const RedisReply& reply) {
  if (reply.type != RedisReply::Type::kArray || reply.elements.size() % 2 != 0) {
    return Unexpected(what, reply);
  }
  std::vector<ManagedKey> out;
  out.reserve(reply.elements.size() / 2);
  for (size_t i = 0; i < reply.elements.size(); i += 2) {
    ManagedKey k;
    k.member = reply.elements[i].str;
    if (!ParseScore(reply.elements[i + 1].str, &k.expires_at_ms)) {
      return Unexpected(what, reply.elements[i + 1]);
    }
    out.push_back(std::move(k));
  }
  return out;
}

// A managed entry; false (skipped by callers) if its value is malformed.
bool ParseEntry(std::string member, const std::string& value, ManagedKey* out) {
  out->member = std::move(member);
  return ParseManagedValue(value, &out->expires_at_ms, &out->issuer, &out->subscriber);
}

}  // namespace

UserDb::UserDb(RedisClient* redis, SyncKeys keys) : redis_(redis), keys_(std::move(keys)) {}

absl::StatusOr<Position> UserDb::LoadPosition() {
  if (auto s = Drain(); !s.ok()) return s;
  auto reply = redis_->Command({"HMGET", keys_.position, "epoch", "revision"});
  if (!reply.ok()) return reply.status();
  if (reply->type != RedisReply::Type::kArray || reply->elements.size() != 2) {
    return Unexpected("HMGET position", *reply);
  }
  Position p;
  const RedisReply& epoch = reply->elements[0];
  const RedisReply& revision = reply->elements[1];
  if (epoch.is_nil() && revision.is_nil()) return p;
  p.epoch = epoch.str;
  const std::string& r = revision.str;
  auto [ptr, ec] = std::from_chars(r.data(), r.data() + r.size(), p.revision);
  if (p.epoch.empty() || r.empty() || ec != std::errc() || ptr != r.data() + r.size()) {
    return absl::DataLossError(StrCat("redis ", keys_.position, ": corrupt position (epoch '",
                                      p.epoch, "', revision '", r,
                                      "'); delete the key to start over with a snapshot"));
  }
  return p;
}

absl::StatusOr<std::vector<std::pair<std::string, std::string>>> UserDb::ScanHash(
    const std::string& key, const std::string& cursor, size_t count, std::string* next) {
  if (auto s = Drain(); !s.ok()) return s;
  auto reply = redis_->Command({"HSCAN", key, cursor, "COUNT", StrCat(count)});
  if (!reply.ok()) return reply.status();
  if (reply->type != RedisReply::Type::kArray || reply->elements.size() != 2 ||
      reply->elements[1].type != RedisReply::Type::kArray ||
      reply->elements[1].elements.size() % 2 != 0) {
    return Unexpected(StrCat("HSCAN ", key), *reply);
  }
  *next = reply->elements[0].str;
  std::vector<std::pair<std::string, std::string>> out;
  auto& fields = reply->elements[1].elements;
  out.reserve(fields.size() / 2);
  for (size_t i = 0; i < fields.size(); i += 2) {
    out.emplace_back(std::move(fields[i].str), std::move(fields[i + 1].str));
  }
  return out;
}

absl::StatusOr<std::vector<ManagedKey>> UserDb::ScanManaged(const std::string& cursor, size_t count,
                                                            std::string* next) {
  auto fields = ScanHash(keys_.managed, cursor, count, next);
  if (!fields.ok()) return fields.status();
  std::vector<ManagedKey> out;
  out.reserve(fields->size());
  for (auto& [field, value] : *fields) {
    ManagedKey k;
    if (ParseEntry(std::move(field), value, &k)) out.push_back(std::move(k));
  }
  return out;
}

absl::StatusOr<std::vector<std::pair<std::string, std::string>>> UserDb::LoadSecretEntries() {
  // HSCAN may return a field twice; callers key by field.
  std::vector<std::pair<std::string, std::string>> out;
  std::string cursor = "0";
  do {
    auto page = ScanHash(keys_.secrets, cursor, kPage, &cursor);
    if (!page.ok()) return page.status();
    for (auto& entry : *page) out.push_back(std::move(entry));
  } while (cursor != "0");
  return out;
}

absl::StatusOr<std::vector<std::string>> UserDb::SecretMembers(std::string_view realm) {
  if (auto s = Drain(); !s.ok()) return s;
  auto reply = redis_->Command({"SMEMBERS", SecretSetName(realm)});
  if (!reply.ok()) return reply.status();
  if (reply->type != RedisReply::Type::kArray) return Unexpected("SMEMBERS", *reply);
  std::vector<std::string> out;
  out.reserve(reply->elements.size());
  for (RedisReply& m : reply->elements) out.push_back(std::move(m.str));
  return out;
}

absl::StatusOr<std::vector<ManagedKey>> UserDb::LoadManaged(int64_t after_ms) {
  // HSCAN may return an entry twice (when the hash is rehashed between
  // calls); callers key by member, so a duplicate is harmless.
  std::vector<ManagedKey> out;
  std::string cursor = "0";
  do {
    auto page = ScanManaged(cursor, kPage, &cursor);
    if (!page.ok()) return page.status();
    for (ManagedKey& k : *page) {
      if (k.expires_at_ms > after_ms) out.push_back(std::move(k));
    }
  } while (cursor != "0");
  return out;
}

absl::StatusOr<std::vector<ManagedKey>> UserDb::LoadLegacy(int64_t after_ms) {
  if (auto s = Drain(); !s.ok()) return s;
  // Pages by rank: this sync is the only writer of the set.
  std::vector<ManagedKey> legacy;
  for (int64_t start = 0;; start += kPage) {
    auto reply = redis_->Command(
        {"ZRANGE", keys_.legacy, StrCat(start), StrCat(start + kPage - 1), "WITHSCORES"});
    if (!reply.ok()) return reply.status();
    auto page = ParseWithScores("ZRANGE legacy", *reply);
    if (!page.ok()) return page.status();
    for (ManagedKey& k : *page) {
      if (k.expires_at_ms > after_ms) legacy.push_back(std::move(k));
    }
    if (static_cast<int64_t>(reply->elements.size() / 2) < kPage) break;
  }
  // Their owners, from the managed index.
  for (size_t start = 0; start < legacy.size(); start += kPage) {
    size_t end = std::min(legacy.size(), start + static_cast<size_t>(kPage));
    RedisArgs args{"HMGET", keys_.managed};
    for (size_t i = start; i < end; ++i) args.Push(legacy[i].member);
    RedisBatch batch;
    batch.Add(args);
    auto replies = redis_->Execute(batch);
    if (!replies.ok()) return replies.status();
    const RedisReply& values = replies->front();
    if (values.type != RedisReply::Type::kArray || values.elements.size() != end - start) {
      return Unexpected("HMGET managed", values);
    }
    for (size_t i = start; i < end; ++i) {
      const RedisReply& v = values.elements[i - start];
      int64_t expires = 0;
      if (!v.is_nil()) ParseManagedValue(v.str, &expires, &legacy[i].issuer, &legacy[i].subscriber);
    }
  }
  return legacy;
}

absl::StatusOr<std::vector<std::optional<int64_t>>> UserDb::ManagedExpiries(
    const std::vector<std::string>& members) {
  if (auto s = Drain(); !s.ok()) return s;
  std::vector<std::optional<int64_t>> out;
  if (members.empty()) return out;
  RedisArgs args{"HMGET", keys_.managed};
  for (const std::string& m : members) args.Push(m);
  RedisBatch batch;
  batch.Add(args);
  auto replies = redis_->Execute(batch);
  if (!replies.ok()) return replies.status();
  const RedisReply& values = replies->front();
  if (values.type != RedisReply::Type::kArray || values.elements.size() != members.size()) {
    return Unexpected("HMGET managed", values);
  }
  for (const RedisReply& v : values.elements) {
    ManagedKey k;
    if (!v.is_nil() && ParseEntry(std::string(), v.str, &k)) {
      out.push_back(k.expires_at_ms);
    } else {
      out.push_back(std::nullopt);
    }
  }
  return out;
}

absl::StatusOr<std::vector<ManagedKey>> UserDb::PendingCancellations(int64_t after_ms,
                                                                     size_t limit) {
  if (auto s = Drain(); !s.ok()) return s;
  auto reply = redis_->Command({"ZRANGEBYSCORE", keys_.cancel, StrCat("(", after_ms), "+inf",
                                "WITHSCORES", "LIMIT", "0", StrCat(limit)});
  if (!reply.ok()) return reply.status();
  return ParseWithScores("ZRANGEBYSCORE cancel", *reply);
}

UserDb::Transaction::Transaction(const SyncKeys* keys, size_t puts_hint)
    : keys_(keys), managed_{"HSET", keys->managed} {
  // About 120 bytes per SET and 100 per index entry, plus the rest.
  batch_.Reserve(puts_hint * 240 + 1024, puts_hint + 16);
  managed_.Reserve(puts_hint * 110 + 64);
  batch_.Add({"MULTI"});
}

void UserDb::Transaction::FlushPuts() {
  if (managed_.size() > 2) {
    batch_.Add(managed_);
    managed_ = RedisArgs{"HSET", keys_->managed};  // rare: puts were interrupted
  }
}

void UserDb::Transaction::Put(const v1::Credential& c) {
  std::string expires = StrCat(c.expires_at_ms());
  batch_.Add({"SET", UserKeyName(c.realm(), c.username()), HexLower(c.key()), "PXAT", expires});
  managed_.Push(MemberName(c.realm(), c.username()));
  managed_.Push(ManagedValue(c.expires_at_ms(), c.issuer(), c.subscriber()));
}

void UserDb::Transaction::Remove(const std::string& member) {
  FlushPuts();
  batch_.Add({"DEL", UserKeyOfMember(member)});
  Forget(member);
}

void UserDb::Transaction::Forget(const std::string& member) {
  FlushPuts();
  batch_.Add({"HDEL", keys_->managed, member});
  batch_.Add({"ZREM", keys_->legacy, member});
}

void UserDb::Transaction::Retire(const std::string& member, int64_t expires_at_ms) {
  FlushPuts();
  batch_.Add({"ZADD", keys_->legacy, StrCat(expires_at_ms), member});
}

void UserDb::Transaction::Unretire(const std::string& member) {
  FlushPuts();
  batch_.Add({"ZREM", keys_->legacy, member});
}

void UserDb::Transaction::QueueCancellation(const std::string& member, int64_t expires_at_ms) {
  FlushPuts();
  batch_.Add({"ZADD", keys_->cancel, StrCat(expires_at_ms), member});
}

void UserDb::Transaction::DequeueCancellation(const std::string& member) {
  FlushPuts();
  batch_.Add({"ZREM", keys_->cancel, member});
}

void UserDb::Transaction::DropCancellationsBefore(int64_t before_ms) {
  FlushPuts();
  batch_.Add({"ZREMRANGEBYSCORE", keys_->cancel, "-inf", StrCat("(", before_ms)});
}

void UserDb::Transaction::SetPosition(const Position& position, int64_t now_ms) {
  FlushPuts();
  position_at_ = batch_.size();
  batch_.Add({"HSET", keys_->position, "epoch", position.epoch, "revision",
              StrCat(position.revision), "updated_at_ms", StrCat(now_ms)});
}

void UserDb::Transaction::AddSecretMember(std::string_view realm, std::string_view secret) {
  FlushPuts();
  batch_.Add({"SADD", SecretSetName(realm), secret});
}

void UserDb::Transaction::RemoveSecretMember(std::string_view realm, std::string_view secret) {
  FlushPuts();
  batch_.Add({"SREM", SecretSetName(realm), secret});
}

void UserDb::Transaction::RecordSecret(std::string_view field, std::string_view value) {
  FlushPuts();
  batch_.Add({"HSET", keys_->secrets, field, value});
}

void UserDb::Transaction::ForgetSecret(std::string_view field) {
  FlushPuts();
  batch_.Add({"HDEL", keys_->secrets, field});
}

absl::Status UserDb::CheckReplies(const RedisBatch& batch, const std::vector<RedisReply>& replies) {
  if (replies.size() != batch.size()) {
    return absl::InternalError("redis: reply count does not match the transaction");
  }
  // A command refused while queueing (QUEUED expected) aborts the EXEC.
  for (size_t i = 0; i + 1 < replies.size(); ++i) {
    if (replies[i].is_error()) {
      return absl::InternalError(StrCat("redis ", batch.name(i), ": ", replies[i].str));
    }
  }
  const RedisReply& exec = replies.back();
  if (exec.type != RedisReply::Type::kArray) {
    return absl::InternalError(StrCat("redis EXEC: ", exec.ToString()));
  }
  for (size_t i = 0; i < exec.elements.size(); ++i) {
    if (exec.elements[i].is_error()) {
      return absl::InternalError(StrCat("redis ", batch.name(i + 1), ": ", exec.elements[i].str));
    }
  }
  return absl::OkStatus();
}

absl::Status UserDb::Commit(Transaction* t) {
  if (auto s = Drain(); !s.ok()) return s;
  t->FlushPuts();
  if (t->batch_.size() <= 1) return absl::OkStatus();  // MULTI alone
  t->batch_.Add({"EXEC"});
  t->position_written_ = t->position_created_ = false;
  auto replies = redis_->Execute(t->batch_);
  if (!replies.ok()) return replies.status();
  const RedisReply& exec = replies->back();
  if (t->position_at_ > 0 && exec.type == RedisReply::Type::kArray &&
      t->position_at_ <= exec.elements.size()) {
    // HSET answers how many fields it added: epoch and revision are new
    // only if the position was gone.
    const RedisReply& r = exec.elements[t->position_at_ - 1];
    t->position_written_ = r.type == RedisReply::Type::kInteger;
    t->position_created_ = t->position_written_ && r.integer >= 2;
  }
  return CheckReplies(t->batch_, *replies);
}

absl::Status UserDb::RestorePosition(const Position& position, int64_t now_ms) {
  if (position.revision == 0) return DeletePosition();
  // The same write as a frame's, alone in its transaction.
  Transaction t = Begin();
  t.SetPosition(position, now_ms);
  return Commit(&t);
}

absl::Status UserDb::DeletePosition() {
  if (auto s = Drain(); !s.ok()) return s;
  auto reply = redis_->Command({"DEL", keys_.position});
  return reply.status();
}

absl::Status UserDb::CommitAsync(Transaction* t, std::function<void(const absl::Status&)> done) {
  t->FlushPuts();
  t->batch_.Add({"EXEC"});
  absl::Status sent = redis_->Send(t->batch_);
  in_flight_.push_back(InFlight{std::move(t->batch_), std::move(done)});
  absl::Status first = sent;
  if (!sent.ok()) {
    // Nothing more can be read from this connection: fail everything.
    Drain().IgnoreError();
    return first;
  }
  while (in_flight_.size() > 1) {
    absl::Status s = ReceiveOldest();
    if (first.ok() && !s.ok()) first = s;
  }
  return first;
}

absl::Status UserDb::ReceiveOldest() {
  InFlight f = std::move(in_flight_.front());
  in_flight_.pop_front();
  absl::Status s;
  if (redis_->in_flight() == 0) {
    s = absl::UnavailableError("redis: the transaction was not sent");
  } else {
    auto replies = redis_->Receive();
    s = replies.ok() ? CheckReplies(f.batch, *replies) : replies.status();
  }
  if (f.done) f.done(s);
  return s;
}

absl::Status UserDb::Drain() {
  absl::Status first;
  while (!in_flight_.empty()) {
    absl::Status s = ReceiveOldest();
    if (first.ok() && !s.ok()) first = s;
  }
  return first;
}

}  // namespace turnbroker::turn
