// Approach 1's TURN farm for end-to-end tests (docs/approach1.md): a real
// redis-server, turn-broker, an unmodified coturn 4.6.1 with
// --use-auth-secret and no static secret, the turn-credential-sync binary in
// --auth-mode=shared-secret with coturn's CLI, and an echo peer; with
// turnbrokerctl's secret verbs and TURN REST API credentials computed as an
// eP-CSCF computes them.
#ifndef TURNBROKER_TESTS_E2E_TURN_SECRET_FARM_H_
#define TURNBROKER_TESTS_E2E_TURN_SECRET_FARM_H_

#include <gtest/gtest.h>
#include <httplib.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <mutex>
#include <random>
#include <string>
#include <vector>

#include "broker_process.h"
#include "coturn.h"
#include "pki.h"
#include "redis_server.h"
#include "sync_process.h"
#include "turnbroker/common/clock.h"
#include "turnbroker/turn/schema.h"

namespace turnbroker::turn::testing {

inline int64_t NowS() { return Clock::System()->NowMs() / 1000; }

// base64(HMAC-SHA1(secret, username)), standard base64 with padding, as
// coturn computes it.
inline std::string RestPassword(const std::string& secret, const std::string& username) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int mac_len = 0;
  HMAC(EVP_sha1(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(username.data()), username.size(), mac, &mac_len);
  std::string out(4 * ((mac_len + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), mac, mac_len);
  out.resize(static_cast<size_t>(n));
  return out;
}

// "<expiry>:<opaque id>": 128 random bits, base64url without padding.
inline std::string RestUsername(int64_t expires_at_s) {
  static std::mutex mu;
  static std::mt19937_64 rng{std::random_device{}()};
  static const char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::lock_guard<std::mutex> lock(mu);
  std::string id;
  for (int i = 0; i < 22; ++i) id.push_back(kAlphabet[rng() % 64]);
  return std::to_string(expires_at_s) + ":" + id;
}

class SecretFarm {
 public:
  static constexpr char kRealm[] = "example.org";
  static constexpr char kCliPassword[] = "cli-secret";

  // `broker_args` beside --ephemeral (e.g. a short --max-ttl). With `pki`
  // (which must outlive the farm), mTLS on every hop: the broker's "server"
  // certificate, the sync's "subscriber", turnbrokerctl's "secret-admin".
  explicit SecretFarm(std::vector<std::string> broker_args = {},
                      const ::turnbroker::testing::Pki* pki = nullptr)
      : pki_(pki),
        broker_(dir_, WithTls(WithEphemeral(std::move(broker_args)), "server")),
        coturn_(dir_, ::turnbroker::testing::CoturnOptions{.realm = kRealm,
                                                           .redis_port = redis_.port(),
                                                           .cli_password = kCliPassword,
                                                           .use_auth_secret = true}),
        sync_(dir_, redis_,
              ::turnbroker::testing::SyncProcessOptions{
                  .broker = broker_.address(),
                  .realm = kRealm,
                  .name = "e2e-secret",
                  .coturn_cli_port = coturn_.cli_port(),
                  .coturn_cli_password = kCliPassword,
                  .extra_args =
                      WithTls({"--auth-mode", "shared-secret", "--metrics-listen", "127.0.0.1:0",
                               "--progress-interval", "200", "--backoff-max", "300"},
                              "subscriber")}) {
    EXPECT_TRUE(::turnbroker::testing::WaitUntil(
        [&] { return Metrics().find("turnbroker_sync_up 1") != std::string::npos; },
        std::chrono::seconds(10)))
        << sync_.process().Output();
  }

  ::turnbroker::testing::RunResult Ctl(std::vector<std::string> args) {
    std::vector<std::string> argv = WithTls(
        {::turnbroker::testing::BuiltBinary("turnbrokerctl"), "--broker", broker_.address()},
        "secret-admin");
    argv.insert(argv.end(), args.begin(), args.end());
    return ::turnbroker::testing::Run(argv);
  }

  // coturn's set of the realm's secrets, as Redis holds it now.
  std::vector<std::string> SecretSet() {
    ::turnbroker::RedisReply r = redis_.Command({"SMEMBERS", SecretSetName(kRealm)});
    std::vector<std::string> out;
    for (const ::turnbroker::RedisReply& m : r.elements) out.push_back(m.str);
    return out;
  }

  // Adds a secret with `turnbrokerctl secret add` and returns its bytes once
  // the sync has put them in coturn's set ("" and a failure if not).
  std::string AddSecret(const std::string& id) {
    const std::vector<std::string> before = SecretSet();
    ::turnbroker::testing::RunResult add = Ctl({"secret", "add", "--realm", kRealm, "--id", id});
    EXPECT_EQ(add.exit_code, 0) << add.output;
    std::string added;
    EXPECT_TRUE(::turnbroker::testing::WaitUntil(
        [&] {
          for (const std::string& m : SecretSet()) {
            if (std::find(before.begin(), before.end(), m) == before.end()) added = m;
          }
          return !added.empty();
        },
        std::chrono::seconds(5)))
        << sync_.process().Output();
    if (!added.empty()) {
      EXPECT_EQ(add.output.find(added), std::string::npos) << "secret add printed the secret";
    }
    return added;
  }

  bool Allocates(const std::string& user, const std::string& password) {
    return ::turnbroker::testing::TryAllocate(dir_, coturn_, peer_, user, password);
  }

  std::string Metrics() {
    if (sync_.metrics_port() == 0) return "";
    httplib::Client http("127.0.0.1", sync_.metrics_port());
    http.set_connection_timeout(1);
    auto res = http.Get("/metrics");
    return res ? res->body : "";
  }

  const ::turnbroker::testing::TempDir& dir() const { return dir_; }
  ::turnbroker::testing::BrokerProcess& broker() { return broker_; }
  ::turnbroker::testing::RedisServer& redis() { return redis_; }
  ::turnbroker::testing::CoturnServer& coturn() { return coturn_; }
  ::turnbroker::testing::TurnPeer& peer() { return peer_; }
  ::turnbroker::testing::SyncProcess& sync() { return sync_; }

 private:
  static std::vector<std::string> WithEphemeral(std::vector<std::string> args) {
    args.insert(args.begin(), "--ephemeral");
    return args;
  }
  // `args` and, with a PKI, the TLS flags for certificate `who`.
  std::vector<std::string> WithTls(std::vector<std::string> args, const std::string& who) const {
    if (pki_) {
      args.insert(args.end(), {"--tls-cert", pki_->Cert(who), "--tls-key", pki_->Key(who),
                               "--tls-ca", pki_->ca});
    }
    return args;
  }

  const ::turnbroker::testing::Pki* const pki_;
  ::turnbroker::testing::TempDir dir_;
  ::turnbroker::testing::RedisServer redis_{dir_};
  ::turnbroker::testing::BrokerProcess broker_;
  ::turnbroker::testing::TurnPeer peer_{dir_};
  ::turnbroker::testing::CoturnServer coturn_;
  ::turnbroker::testing::SyncProcess sync_;
};

}  // namespace turnbroker::turn::testing

#endif  // TURNBROKER_TESTS_E2E_TURN_SECRET_FARM_H_
