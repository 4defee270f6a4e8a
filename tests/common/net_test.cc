#include "turnbroker/common/net.h"

#include <gtest/gtest.h>

#include "turnbroker/common/channel.h"
#include "turnbroker/common/tls.h"

namespace turnbroker {
namespace {

TEST(HostPortTest, ParsesHostsAndPorts) {
  auto hp = ParseHostPort("127.0.0.1:50051", "--listen");
  ASSERT_TRUE(hp.ok());
  EXPECT_EQ(hp->host, "127.0.0.1");
  EXPECT_EQ(hp->port, 50051);
  hp = ParseHostPort("[::1]:80", "--listen");
  ASSERT_TRUE(hp.ok());
  EXPECT_EQ(hp->host, "::1");
  EXPECT_EQ(hp->ToString(), "[::1]:80");
  EXPECT_TRUE(ParseHostPort("localhost:0", "--listen", true).ok());
}

TEST(HostPortTest, RejectsBadInputNamingTheFlag) {
  for (const char* bad :
       {"", "host", ":80", "host:", "host:x", "host:70000", "::1:80", "[::1]80", "host:0"}) {
    auto hp = ParseHostPort(bad, "--broker");
    ASSERT_FALSE(hp.ok()) << bad;
    EXPECT_EQ(std::string(hp.status().message()).rfind("--broker: ", 0), 0u) << bad;
  }
}

TEST(TlsTest, MissingFilesNameTheFlag) {
  TlsFiles files;
  files.cert = "/nonexistent/cert.pem";
  auto creds = MakeServerCredentials(files);
  ASSERT_FALSE(creds.ok());
  EXPECT_NE(creds.status().message().find("--tls-cert"), absl::string_view::npos);
  EXPECT_TRUE(IsLoopbackHost("127.0.0.1"));
  EXPECT_TRUE(IsLoopbackHost("::1"));
  EXPECT_FALSE(IsLoopbackHost("0.0.0.0"));
  EXPECT_EQ(RoleNames(kRolePublisher | kRoleOperator), "publisher,operator");
}

TEST(BrokerTargetTest, AListOfReplicasBecomesOneTargetOfEveryAddress) {
  EXPECT_EQ(*BrokerTarget("127.0.0.1:7001,127.0.0.2:7002", "--broker"),
            "ipv4:127.0.0.1:7001,127.0.0.2:7002");
  EXPECT_EQ(*BrokerTarget("[::1]:7001,[::1]:7002", "--broker"), "ipv6:[::1]:7001,[::1]:7002");
  // One address, a DNS name (gRPC resolves every record) or a URI: as given.
  EXPECT_EQ(*BrokerTarget("broker.example.org:50051", "--broker"), "broker.example.org:50051");
  EXPECT_EQ(*BrokerTarget("dns:///broker:1", "--broker"), "dns:///broker:1");
  auto bad = BrokerTarget("127.0.0.1:7001,127.0.0.1", "--broker");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("--broker"), std::string::npos) << bad.status();
}

}  // namespace
}  // namespace turnbroker
