#include "fake_redis.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <limits>

namespace turnbroker::turn::testing {
namespace {

RedisReply Status(std::string s) {
  RedisReply r;
  r.type = RedisReply::Type::kStatus;
  r.str = std::move(s);
  return r;
}

RedisReply Error(std::string s) {
  RedisReply r;
  r.type = RedisReply::Type::kError;
  r.str = std::move(s);
  return r;
}

RedisReply Int(int64_t n) {
  RedisReply r;
  r.type = RedisReply::Type::kInteger;
  r.integer = n;
  return r;
}

RedisReply Str(std::string s) {
  RedisReply r;
  r.type = RedisReply::Type::kString;
  r.str = std::move(s);
  return r;
}

RedisReply Array(std::vector<RedisReply> e) {
  RedisReply r;
  r.type = RedisReply::Type::kArray;
  r.elements = std::move(e);
  return r;
}

std::string Score(double d) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.17g", d);
  return buf;
}

// "-inf", "+inf", "(5", "5".
bool InRange(double v, const std::string& min, const std::string& max) {
  auto bound = [](const std::string& s, bool* exclusive) {
    *exclusive = !s.empty() && s[0] == '(';
    std::string t = *exclusive ? s.substr(1) : s;
    if (t == "-inf") return -std::numeric_limits<double>::infinity();
    if (t == "+inf" || t == "inf") return std::numeric_limits<double>::infinity();
    return std::strtod(t.c_str(), nullptr);
  };
  bool lo_ex, hi_ex;
  double lo = bound(min, &lo_ex), hi = bound(max, &hi_ex);
  return (lo_ex ? v > lo : v >= lo) && (hi_ex ? v < hi : v <= hi);
}

std::vector<std::pair<std::string, double>> ByScore(const std::map<std::string, double>& z) {
  std::vector<std::pair<std::string, double>> v(z.begin(), z.end());
  std::sort(v.begin(), v.end(), [](const auto& a, const auto& b) {
    return a.second != b.second ? a.second < b.second : a.first < b.first;
  });
  return v;
}

std::string Upper(std::string s) {
  for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

}  // namespace

FakeRedis::Value* FakeRedis::Find(const std::string& key) {
  auto it = data_.find(key);
  if (it == data_.end()) return nullptr;
  if (it->second.expires_at_ms >= 0 && it->second.expires_at_ms <= clock_->NowMs()) {
    data_.erase(it);
    return nullptr;
  }
  return &it->second;
}

FakeRedis::Value& FakeRedis::Create(const std::string& key, decltype(Value::type) type) {
  Value* v = Find(key);
  if (v) return *v;
  Value& n = data_[key];
  n.type = type;
  return n;
}

absl::StatusOr<std::vector<RedisReply>> FakeRedis::Pipeline(
    const std::vector<RedisCommand>& commands) {
  if (down) return absl::UnavailableError("fake redis is down");
  std::vector<RedisReply> replies;
  for (const RedisCommand& c : commands) {
    log.push_back(c);
    replies.push_back(Execute(c));
  }
  if (fail_after_apply) {
    fail_after_apply = false;
    return absl::UnavailableError("fake redis: reply lost");
  }
  return replies;
}

RedisReply FakeRedis::Execute(const RedisCommand& c) {
  if (c.empty()) return Error("ERR empty command");
  const std::string name = Upper(c[0]);
  if (name == "MULTI") {
    in_multi_ = true;
    queued_.clear();
    return Status("OK");
  }
  if (name == "EXEC") {
    if (!in_multi_) return Error("ERR EXEC without MULTI");
    in_multi_ = false;
    std::vector<RedisReply> out;
    std::vector<RedisCommand> queued;
    queued.swap(queued_);
    for (const RedisCommand& q : queued) out.push_back(Execute(q));
    return Array(std::move(out));
  }
  if (in_multi_) {
    queued_.push_back(c);
    return Status("QUEUED");
  }
  const std::string key = c.size() > 1 ? c[1] : "";
  auto wrong_type = [] {
    return Error("WRONGTYPE Operation against a key holding the wrong kind of value");
  };

  if (name == "PING") return Status("PONG");
  if (name == "SET") {
    Value v;
    v.str = c[2];
    for (size_t i = 3; i + 1 < c.size(); i += 2) {
      if (Upper(c[i]) == "PXAT") v.expires_at_ms = std::stoll(c[i + 1]);
    }
    data_[key] = v;
    Find(key);  // an expiry in the past removes it at once
    return Status("OK");
  }
  if (name == "GET") {
    Value* v = Find(key);
    if (!v) return RedisReply{};
    if (v->type != Value::kString) return wrong_type();
    return Str(v->str);
  }
  if (name == "DEL") {
    int64_t n = 0;
    for (size_t i = 1; i < c.size(); ++i) n += Find(c[i]) ? (data_.erase(c[i]), 1) : 0;
    return Int(n);
  }
  if (name == "PEXPIRETIME") {
    Value* v = Find(key);
    return Int(v ? v->expires_at_ms : -2);
  }
  if (name == "ZADD") {
    Value& v = Create(key, Value::kZSet);
    if (v.type != Value::kZSet) return wrong_type();
    int64_t added = 0;
    for (size_t i = 2; i + 1 < c.size(); i += 2) {
      added += v.zset.count(c[i + 1]) ? 0 : 1;
      v.zset[c[i + 1]] = std::strtod(c[i].c_str(), nullptr);
    }
    return Int(added);
  }
  if (name == "SADD") {
    Value& v = Create(key, Value::kSet);
    if (v.type != Value::kSet) return wrong_type();
    int64_t added = 0;
    for (size_t i = 2; i < c.size(); ++i) added += v.set.insert(c[i]).second ? 1 : 0;
    return Int(added);
  }
  if (name == "SREM") {
    Value* v = Find(key);
    if (!v) return Int(0);
    if (v->type != Value::kSet) return wrong_type();
    int64_t n = 0;
    for (size_t i = 2; i < c.size(); ++i) n += static_cast<int64_t>(v->set.erase(c[i]));
    if (v->set.empty()) data_.erase(key);
    return Int(n);
  }
  if (name == "SMEMBERS") {
    Value* v = Find(key);
    if (v && v->type != Value::kSet) return wrong_type();
    std::vector<RedisReply> out;
    if (v) {
      for (const std::string& m : v->set) out.push_back(Str(m));
    }
    return Array(std::move(out));
  }
  if (name == "ZREM" || name == "HDEL") {
    Value* v = Find(key);
    if (!v) return Int(0);
    int64_t n = 0;
    for (size_t i = 2; i < c.size(); ++i) {
      n += name == "ZREM" ? static_cast<int64_t>(v->zset.erase(c[i]))
                          : static_cast<int64_t>(v->hash.erase(c[i]));
    }
    if (v->zset.empty() && v->hash.empty()) data_.erase(key);
    return Int(n);
  }
  if (name == "ZMSCORE") {
    Value* v = Find(key);
    std::vector<RedisReply> out;
    for (size_t i = 2; i < c.size(); ++i) {
      auto it = v ? v->zset.find(c[i]) : decltype(v->zset.end())();
      if (v && it != v->zset.end())
        out.push_back(Str(Score(it->second)));
      else
        out.push_back(RedisReply{});
    }
    return Array(std::move(out));
  }
  if (name == "ZCARD") {
    Value* v = Find(key);
    return Int(v ? static_cast<int64_t>(v->zset.size()) : 0);
  }
  if (name == "ZRANGE") {  // ZRANGE key start stop WITHSCORES
    Value* v = Find(key);
    std::vector<RedisReply> out;
    if (v) {
      auto sorted = ByScore(v->zset);
      int64_t start = std::stoll(c[2]), stop = std::stoll(c[3]);
      int64_t n = static_cast<int64_t>(sorted.size());
      if (stop < 0) stop += n;
      for (int64_t i = std::max<int64_t>(0, start); i <= std::min(stop, n - 1); ++i) {
        out.push_back(Str(sorted[i].first));
        out.push_back(Str(Score(sorted[i].second)));
      }
    }
    return Array(std::move(out));
  }
  if (name == "ZRANGEBYSCORE") {  // key min max WITHSCORES LIMIT offset count
    Value* v = Find(key);
    std::vector<RedisReply> out;
    if (v) {
      size_t offset = 0, count = SIZE_MAX;
      for (size_t i = 4; i < c.size(); ++i) {
        if (Upper(c[i]) == "LIMIT") {
          offset = std::stoull(c[i + 1]);
          count = std::stoull(c[i + 2]);
        }
      }
      size_t seen = 0, taken = 0;
      for (auto& [m, s] : ByScore(v->zset)) {
        if (!InRange(s, c[2], c[3])) continue;
        if (seen++ < offset) continue;
        if (taken++ >= count) break;
        out.push_back(Str(m));
        out.push_back(Str(Score(s)));
      }
    }
    return Array(std::move(out));
  }
  if (name == "ZREMRANGEBYSCORE") {
    Value* v = Find(key);
    if (!v) return Int(0);
    int64_t n = 0;
    for (auto it = v->zset.begin(); it != v->zset.end();) {
      if (InRange(it->second, c[2], c[3])) {
        it = v->zset.erase(it);
        ++n;
      } else {
        ++it;
      }
    }
    if (v->zset.empty()) data_.erase(key);
    return Int(n);
  }
  if (name == "HSET") {
    Value& v = Create(key, Value::kHash);
    if (v.type != Value::kHash) return wrong_type();
    int64_t added = 0;
    for (size_t i = 2; i + 1 < c.size(); i += 2) {
      added += v.hash.count(c[i]) ? 0 : 1;
      v.hash[c[i]] = c[i + 1];
    }
    return Int(added);
  }
  if (name == "HLEN") {
    Value* v = Find(key);
    return Int(v ? static_cast<int64_t>(v->hash.size()) : 0);
  }
  if (name == "HSCAN") {  // key cursor COUNT n: the cursor is an offset
    Value* v = Find(key);
    size_t from = std::stoull(c[2]), count = c.size() > 4 ? std::stoull(c[4]) : 10;
    std::vector<RedisReply> fields;
    size_t i = 0, next = 0;
    if (v) {
      for (auto& [f, val] : v->hash) {
        if (i >= from && i < from + count) {
          fields.push_back(Str(f));
          fields.push_back(Str(val));
        }
        ++i;
      }
      next = from + count < v->hash.size() ? from + count : 0;
    }
    return Array({Str(std::to_string(next)), Array(std::move(fields))});
  }
  if (name == "HMGET") {
    Value* v = Find(key);
    std::vector<RedisReply> out;
    for (size_t i = 2; i < c.size(); ++i) {
      auto it = v ? v->hash.find(c[i]) : decltype(v->hash.end())();
      if (v && it != v->hash.end())
        out.push_back(Str(it->second));
      else
        out.push_back(RedisReply{});
    }
    return Array(std::move(out));
  }
  return Error("ERR unknown command '" + c[0] + "' (fake redis)");
}

std::optional<std::string> FakeRedis::Get(const std::string& key) {
  Value* v = Find(key);
  if (!v || v->type != Value::kString) return std::nullopt;
  return v->str;
}

int64_t FakeRedis::ExpiryMs(const std::string& key) {
  Value* v = Find(key);
  return v ? v->expires_at_ms : -2;
}

void FakeRedis::Set(const std::string& key, const std::string& value) {
  Value v;
  v.str = value;
  data_[key] = v;
}

std::map<std::string, double> FakeRedis::ZSet(const std::string& key) {
  Value* v = Find(key);
  return v ? v->zset : std::map<std::string, double>{};
}

std::map<std::string, std::string> FakeRedis::Hash(const std::string& key) {
  Value* v = Find(key);
  return v ? v->hash : std::map<std::string, std::string>{};
}

std::set<std::string> FakeRedis::Members(const std::string& key) {
  Value* v = Find(key);
  return v ? v->set : std::set<std::string>{};
}

std::vector<std::string> FakeRedis::Keys() {
  std::vector<std::string> out;
  for (auto it = data_.begin(); it != data_.end();) {
    std::string k = it->first;
    ++it;
    if (Find(k)) out.push_back(k);
  }
  return out;
}

}  // namespace turnbroker::turn::testing
