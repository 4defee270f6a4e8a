// Certificate renewal without restart, with the real binaries: the TLS
// files under a running turn-broker, turn-credential-sync and
// pcscf-turn-agent are replaced (written beside, then renamed over, as a
// Kubernetes Secret volume updates), and their next connections use the new
// ones (common/tls.h: files reread every few seconds).
#include <gtest/gtest.h>
#include <httplib.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <thread>

#include "broker_process.h"
#include "pki.h"
#include "promtool.h"
#include "redis_server.h"
#include "sync_process.h"
#include "turnbroker/common/channel.h"
#include "turnbroker/v1/broker.grpc.pb.h"

namespace turnbroker::testing {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

// The files one part reads: live/<part>/{tls.crt,tls.key,ca.crt}.
struct LiveFiles {
  std::string dir;
  std::string cert() const { return dir + "/tls.crt"; }
  std::string key() const { return dir + "/tls.key"; }
  std::string ca() const { return dir + "/ca.crt"; }
  std::vector<std::string> Flags() const {
    return {"--tls-cert", cert(), "--tls-key", key(), "--tls-ca", ca()};
  }
};

void Replace(const std::string& from, const std::string& to) {
  fs::copy_file(from, to + ".new", fs::copy_options::overwrite_existing);
  fs::rename(to + ".new", to);
}

// The CA bundle `cas` (concatenated PEM files).
void ReplaceCa(const LiveFiles& live, const std::vector<std::string>& cas) {
  std::string bundle = live.ca() + ".bundle";
  {
    std::ofstream out(bundle, std::ios::binary);
    for (const auto& ca : cas) out << std::ifstream(ca, std::ios::binary).rdbuf();
  }
  fs::rename(bundle, live.ca());
}

class TlsReloadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string error;
    ASSERT_TRUE(MakeTestPki(dir_.path(), &pki_, &error)) << error;
    ASSERT_TRUE(IssueTestCertificate(pki_, "server-renewed", "/CN=turn-broker-renewed",
                                     "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
                                     "extendedKeyUsage=serverAuth",
                                     &error))
        << error;
    ASSERT_TRUE(IssueTestCertificate(pki_, "subscriber-stranger", "/CN=turn-evil",
                                     "extendedKeyUsage=clientAuth\n"
                                     "subjectAltName=URI:urn:turnbroker:role:subscriber",
                                     &error, "otherca"))
        << error;
    broker_files_ = Live("broker", "server", {pki_.ca});
    broker_metrics_port_ = FreePort();
    broker_ = std::make_unique<BrokerProcess>(dir_, [&] {
      std::vector<std::string> args = broker_files_.Flags();
      for (const std::string& a : {std::string("--ephemeral"), std::string("--metrics-listen"),
                                   "127.0.0.1:" + std::to_string(broker_metrics_port_)}) {
        args.push_back(a);
      }
      return args;
    }());
  }

  // A live folder for `part`, holding the certificate `name` and `cas`.
  LiveFiles Live(const std::string& part, const std::string& name,
                 const std::vector<std::string>& cas) {
    LiveFiles live{dir_.File("live-" + part)};
    fs::create_directories(live.dir);
    Replace(pki_.Cert(name), live.cert());
    Replace(pki_.Key(name), live.key());
    ReplaceCa(live, cas);
    return live;
  }
  void Renew(const LiveFiles& live, const std::string& name) {
    Replace(pki_.Key(name), live.key());
    Replace(pki_.Cert(name), live.cert());
  }

  // GetStatus over a new channel (a new connection) presenting `who`;
  // the broker certificate's CN in *server_cn.
  grpc::Status Status(const std::string& who, std::string* server_cn = nullptr) {
    ChannelOptions o(broker_->address());
    o.tls = {pki_.Cert(who), pki_.Key(who), pki_.ca};
    auto channel = MakeChannel(o);
    if (!channel.ok()) return grpc::Status(grpc::StatusCode::INTERNAL, channel.status().ToString());
    auto stub = v1::CredentialBroker::NewStub(*channel);
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + 5s);
    v1::GetStatusResponse response;
    grpc::Status status = stub->GetStatus(&context, {}, &response);
    if (server_cn) {
      auto cn = context.auth_context()->FindPropertyValues(GRPC_X509_CN_PROPERTY_NAME);
      *server_cn = cn.empty() ? "" : std::string(cn.front().data(), cn.front().size());
    }
    return status;
  }

  TempDir dir_;
  Pki pki_;
  LiveFiles broker_files_;
  int broker_metrics_port_ = 0;
  std::unique_ptr<BrokerProcess> broker_;
};

TEST_F(TlsReloadTest, BrokerServesARenewedCertificateWithoutRestart) {
  std::string cn;
  ASSERT_TRUE(Status("operator", &cn).ok());
  EXPECT_EQ(cn, "turn-broker");
  pid_t pid = broker_->process().pid();
  Renew(broker_files_, "server-renewed");
  EXPECT_TRUE(
      WaitUntil([&] { return Status("operator", &cn).ok() && cn == "turn-broker-renewed"; }, 20s))
      << "still " << cn;
  EXPECT_EQ(broker_->process().pid(), pid);
  EXPECT_TRUE(broker_->process().running());
  // Its /metrics (plaintext, for Prometheus) is well-formed.
  httplib::Client http("127.0.0.1", broker_metrics_port_);
  auto metrics = http.Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_EQ(PromtoolProblems(metrics->body), "") << metrics->body;
}

TEST_F(TlsReloadTest, BrokerTrustsARotatedCaBundleWithoutRestart) {
  // A client of a new CA is refused at the handshake, then admitted once
  // the bundle holds both CAs (the usual CA rotation).
  EXPECT_FALSE(Status("stranger").ok());
  ReplaceCa(broker_files_, {pki_.ca, pki_.dir + "/otherca.pem"});
  EXPECT_TRUE(WaitUntil([&] { return Status("stranger").ok(); }, 20s));
  EXPECT_TRUE(Status("operator").ok()) << "the old CA's clients still admitted";
}

TEST_F(TlsReloadTest, SyncPresentsARenewedCertificateWithoutRestart) {
  // The sync starts with a certificate the broker does not trust (an
  // expired or foreign one): its handshakes fail, it is not healthy. Once
  // the right certificate is written, its next connection succeeds.
  RedisServer redis(dir_);
  LiveFiles live = Live("sync", "subscriber-stranger", {pki_.ca});
  std::vector<std::string> args = live.Flags();
  for (const char* a : {"--metrics-listen", "127.0.0.1:0", "--backoff-max", "500"}) {
    args.push_back(a);
  }
  SyncProcess sync(dir_, redis,
                   SyncProcessOptions{.broker = "localhost:" + std::to_string(broker_->port()),
                                      .realm = "ims.example.org",
                                      .coturn_cli_port = 0,
                                      .coturn_cli_password = "",
                                      .extra_args = args});
  auto healthy = [&] {
    httplib::Client http("127.0.0.1", sync.metrics_port());
    http.set_connection_timeout(1);
    auto res = http.Get("/healthz");
    return res && res->status == 200;
  };
  std::this_thread::sleep_for(2s);
  EXPECT_FALSE(healthy()) << sync.process().Output();
  pid_t pid = sync.process().pid();
  Renew(live, "subscriber");
  EXPECT_TRUE(WaitUntil(healthy, 30s)) << sync.process().Output();
  EXPECT_EQ(sync.process().pid(), pid);
  httplib::Client http("127.0.0.1", sync.metrics_port());
  auto metrics = http.Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_EQ(PromtoolProblems(metrics->body), "") << metrics->body;
}

TEST_F(TlsReloadTest, AgentPresentsARenewedCertificateWithoutRestart) {
  LiveFiles live = Live("agent", "stranger", {pki_.ca});
  int port = FreePort();
  std::vector<std::string> argv = {BuiltBinary("pcscf-turn-agent"),
                                   "--broker",
                                   "localhost:" + std::to_string(broker_->port()),
                                   "--listen",
                                   "127.0.0.1:" + std::to_string(port),
                                   "--realm",
                                   "ims.example.org",
                                   "--turn-uri",
                                   "turn:turn.example.org:3478?transport=udp"};
  for (const auto& f : live.Flags()) argv.push_back(f);
  Subprocess agent(argv, dir_.File("agent.log"));
  auto healthy = [&] {
    httplib::Client http("127.0.0.1", port);
    http.set_connection_timeout(1);
    http.set_read_timeout(5);
    auto res = http.Get("/healthz");
    return res && res->status == 200;
  };
  ASSERT_TRUE(WaitUntil(
      [&] {
        httplib::Client http("127.0.0.1", port);
        return static_cast<bool>(http.Get("/healthz"));
      },
      10s))
      << agent.Output();
  EXPECT_FALSE(healthy()) << agent.Output();
  Renew(live, "publisher");
  EXPECT_TRUE(WaitUntil(healthy, 30s)) << agent.Output();
  EXPECT_TRUE(agent.running());
}

}  // namespace
}  // namespace turnbroker::testing
