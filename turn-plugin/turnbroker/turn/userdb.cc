#include "turnbroker/turn/userdb.h"

#include <charconv>
#include <cmath>
#include <cstdlib>

#include "turnbroker/common/credential.h"
#include "turnbroker/common/strings.h"

namespace turnbroker::turn {
namespace {

// Index reads come in pages of this many members.
constexpr int64_t kPage = 50'000;

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

}  // namespace

UserDb::UserDb(RedisClient* redis, SyncKeys keys) : redis_(redis), keys_(std::move(keys)) {}

absl::StatusOr<Position> UserDb::LoadPosition() {
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
    return absl::DataLossError(StrCat("redis ", keys_.position,
                                      ": corrupt position (epoch '", p.epoch, "', revision '",
                                      r, "'); delete the key to start over with a snapshot"));
  }
  return p;
}

absl::StatusOr<std::vector<ManagedKey>> UserDb::LoadSortedSet(const std::string& key,
                                                              int64_t after_ms) {
  // Pages by rank: this sync is the only writer of the set, so ranks are
  // stable while it reads.
  std::vector<ManagedKey> out;
  for (int64_t start = 0;; start += kPage) {
    auto reply = redis_->Command(
        {"ZRANGE", key, StrCat(start), StrCat(start + kPage - 1), "WITHSCORES"});
    if (!reply.ok()) return reply.status();
    auto page = ParseWithScores("ZRANGE", *reply);
    if (!page.ok()) return page.status();
    for (ManagedKey& k : *page) {
      if (k.expires_at_ms > after_ms) out.push_back(std::move(k));
    }
    if (static_cast<int64_t>(reply->elements.size() / 2) < kPage) break;
  }
  return out;
}

absl::StatusOr<std::vector<ManagedKey>> UserDb::LoadManaged(int64_t after_ms) {
  return LoadSortedSet(keys_.managed, after_ms);
}

absl::StatusOr<std::vector<ManagedKey>> UserDb::LoadLegacy(int64_t after_ms) {
  return LoadSortedSet(keys_.legacy, after_ms);
}

absl::StatusOr<std::vector<Owner>> UserDb::LoadOwners(const std::vector<std::string>& members) {
  std::vector<Owner> out;
  out.reserve(members.size());
  for (size_t start = 0; start < members.size(); start += kPage) {
    RedisCommand c = {"HMGET", keys_.owners};
    size_t end = std::min(members.size(), start + static_cast<size_t>(kPage));
    for (size_t i = start; i < end; ++i) c.push_back(members[i]);
    auto reply = redis_->Command(std::move(c));
    if (!reply.ok()) return reply.status();
    if (reply->type != RedisReply::Type::kArray || reply->elements.size() != end - start) {
      return Unexpected("HMGET owners", *reply);
    }
    for (const RedisReply& v : reply->elements) {
      Owner o;
      if (!v.is_nil()) ParseOwnerValue(v.str, &o.issuer, &o.subscriber);
      out.push_back(std::move(o));
    }
  }
  return out;
}

absl::StatusOr<std::vector<std::optional<int64_t>>> UserDb::ManagedExpiries(
    const std::vector<std::string>& members) {
  std::vector<std::optional<int64_t>> out;
  if (members.empty()) return out;
  RedisCommand c = {"ZMSCORE", keys_.managed};
  c.insert(c.end(), members.begin(), members.end());
  auto reply = redis_->Command(std::move(c));
  if (!reply.ok()) return reply.status();
  if (reply->type != RedisReply::Type::kArray || reply->elements.size() != members.size()) {
    return Unexpected("ZMSCORE managed", *reply);
  }
  for (const RedisReply& v : reply->elements) {
    int64_t score = 0;
    if (v.is_nil()) {
      out.push_back(std::nullopt);
    } else if (ParseScore(v.str, &score)) {
      out.push_back(score);
    } else {
      return Unexpected("ZMSCORE managed", v);
    }
  }
  return out;
}

absl::StatusOr<std::vector<ManagedKey>> UserDb::ExpiredManaged(int64_t before_ms, size_t limit) {
  auto reply = redis_->Command({"ZRANGEBYSCORE", keys_.managed, "-inf", StrCat("(", before_ms),
                                "WITHSCORES", "LIMIT", "0", StrCat(limit)});
  if (!reply.ok()) return reply.status();
  return ParseWithScores("ZRANGEBYSCORE managed", *reply);
}

absl::StatusOr<std::vector<ManagedKey>> UserDb::PendingCancellations(int64_t after_ms,
                                                                     size_t limit) {
  auto reply = redis_->Command({"ZRANGEBYSCORE", keys_.cancel, StrCat("(", after_ms), "+inf",
                                "WITHSCORES", "LIMIT", "0", StrCat(limit)});
  if (!reply.ok()) return reply.status();
  return ParseWithScores("ZRANGEBYSCORE cancel", *reply);
}

absl::StatusOr<int64_t> UserDb::ManagedCount() {
  auto reply = redis_->Command({"ZCARD", keys_.managed});
  if (!reply.ok()) return reply.status();
  return reply->integer;
}

UserDb::Transaction::Transaction(const SyncKeys* keys)
    : keys_(keys), zadd_{"ZADD", keys->managed}, hset_{"HSET", keys->owners} {}

void UserDb::Transaction::FlushPuts() {
  if (zadd_.size() > 2) {
    commands_.push_back(std::move(zadd_));
    zadd_ = {"ZADD", keys_->managed};
  }
  if (hset_.size() > 2) {
    commands_.push_back(std::move(hset_));
    hset_ = {"HSET", keys_->owners};
  }
}

void UserDb::Transaction::Put(const v1::Credential& c) {
  std::string expires = StrCat(c.expires_at_ms());
  commands_.push_back(
      {"SET", UserKeyName(c.realm(), c.username()), HexLower(c.key()), "PXAT", expires});
  std::string member = MemberName(c.realm(), c.username());
  zadd_.push_back(std::move(expires));
  zadd_.push_back(member);
  hset_.push_back(std::move(member));
  hset_.push_back(OwnerValue(c.issuer(), c.subscriber()));
}

void UserDb::Transaction::Remove(const std::string& member) {
  FlushPuts();
  commands_.push_back({"DEL", UserKeyOfMember(member)});
  Forget(member);
}

void UserDb::Transaction::Forget(const std::string& member) {
  FlushPuts();
  commands_.push_back({"ZREM", keys_->managed, member});
  commands_.push_back({"HDEL", keys_->owners, member});
  commands_.push_back({"ZREM", keys_->legacy, member});
}

void UserDb::Transaction::Retire(const std::string& member, int64_t expires_at_ms) {
  FlushPuts();
  commands_.push_back({"ZADD", keys_->legacy, StrCat(expires_at_ms), member});
}

void UserDb::Transaction::Unretire(const std::string& member) {
  FlushPuts();
  commands_.push_back({"ZREM", keys_->legacy, member});
}

void UserDb::Transaction::QueueCancellation(const std::string& member, int64_t expires_at_ms) {
  FlushPuts();
  commands_.push_back({"ZADD", keys_->cancel, StrCat(expires_at_ms), member});
}

void UserDb::Transaction::DequeueCancellation(const std::string& member) {
  FlushPuts();
  commands_.push_back({"ZREM", keys_->cancel, member});
}

void UserDb::Transaction::DropCancellationsBefore(int64_t before_ms) {
  FlushPuts();
  commands_.push_back({"ZREMRANGEBYSCORE", keys_->cancel, "-inf", StrCat("(", before_ms)});
}

void UserDb::Transaction::SetPosition(const Position& position, int64_t now_ms) {
  FlushPuts();
  commands_.push_back({"HSET", keys_->position, "epoch", position.epoch, "revision",
                       StrCat(position.revision), "updated_at_ms", StrCat(now_ms)});
}

absl::Status UserDb::Commit(Transaction* t) {
  t->FlushPuts();
  if (t->commands_.empty()) return absl::OkStatus();
  std::vector<RedisCommand> commands;
  commands.reserve(t->commands_.size() + 2);
  commands.push_back({"MULTI"});
  for (RedisCommand& c : t->commands_) commands.push_back(std::move(c));
  commands.push_back({"EXEC"});
  t->commands_.clear();
  auto replies = redis_->Pipeline(commands);
  if (!replies.ok()) return replies.status();
  // A command refused while queueing (QUEUED expected) aborts the EXEC.
  for (size_t i = 0; i + 1 < replies->size(); ++i) {
    if ((*replies)[i].is_error()) {
      return absl::InternalError(
          StrCat("redis ", commands[i].front(), " ", commands[i].size() > 1 ? commands[i][1] : "",
                 ": ", (*replies)[i].str));
    }
  }
  const RedisReply& exec = replies->back();
  if (exec.type != RedisReply::Type::kArray) {
    return absl::InternalError(StrCat("redis EXEC: ", exec.ToString()));
  }
  for (size_t i = 0; i < exec.elements.size(); ++i) {
    if (exec.elements[i].is_error()) {
      const RedisCommand& c = commands[i + 1];
      return absl::InternalError(StrCat("redis ", c.front(), " ", c.size() > 1 ? c[1] : "", ": ",
                                        exec.elements[i].str));
    }
  }
  return absl::OkStatus();
}

}  // namespace turnbroker::turn
