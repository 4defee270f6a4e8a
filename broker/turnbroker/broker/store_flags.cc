#include "turnbroker/broker/store_flags.h"

namespace turnbroker::broker {

void StoreFlags::Add(CLI::App& app, const std::string& env_prefix) {
  app.add_option("--store", store_,
                 "embedded (one broker, --data-dir) or redis (several replicas on one "
                 "Redis dataset)")
      ->envname(env_prefix + "STORE")
      ->capture_default_str()
      ->check(CLI::IsMember({"embedded", "redis"}));
  app.add_option("--redis-url", redis_.url,
                 "--store=redis: redis://[[USER]:PASSWORD@]HOST:PORT[/DB] of the Redis primary")
      ->envname(env_prefix + "REDIS_URL");
  app.add_option("--redis-sentinels", redis_.sentinels,
                 "--store=redis: HOST:PORT,HOST:PORT,... of Redis Sentinels (with --redis-master)")
      ->envname(env_prefix + "REDIS_SENTINELS");
  app.add_option("--redis-master", redis_.master, "The master name the sentinels monitor")
      ->envname(env_prefix + "REDIS_MASTER");
  app.add_option("--redis-password-file", redis_.password_file,
                 "File whose first line is the Redis password, or USER PASSWORD (ACL)")
      ->envname(env_prefix + "REDIS_PASSWORD_FILE");
  app.add_option("--redis-min-replicas-ack", min_replicas_ack_,
                 "Redis replicas that must confirm a write (WAIT) before it is acknowledged; "
                 "default: 1 when the primary has replicas, else 0")
      ->envname(env_prefix + "REDIS_MIN_REPLICAS_ACK")
      ->check(CLI::Range(0, 16));
  app.add_option("--redis-ack-timeout", ack_timeout_ms_,
                 "A write not committed and confirmed within this many milliseconds of its "
                 "arrival is answered UNAVAILABLE")
      ->envname(env_prefix + "REDIS_ACK_TIMEOUT")
      ->capture_default_str()
      ->check(CLI::Range(10, 60'000));
}

absl::Status StoreFlags::Apply(BrokerOptions* options) const {
  if (store_ != "redis") {
    if (!redis_.url.empty() || !redis_.sentinels.empty() || !redis_.master.empty() ||
        !redis_.password_file.empty()) {
      return absl::InvalidArgumentError("--redis-*: only with --store=redis");
    }
    options->use_redis = false;
    return absl::OkStatus();
  }
  auto target = RedisTargetFromFlags(redis_);
  if (!target.ok()) return target.status();
  options->use_redis = true;
  options->redis.target = *target;
  options->redis.min_replicas_ack = min_replicas_ack_;
  options->redis.ack_timeout_ms = ack_timeout_ms_;
  return absl::OkStatus();
}

}  // namespace turnbroker::broker
