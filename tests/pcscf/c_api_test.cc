// The C ABI (include/pcscf_turn.h): argument checks without a broker, and
// the lifecycle from a C caller against a real turn-broker.
#include <gtest/gtest.h>

#include <cstddef>
#include <cstring>
#include <string>

#include "broker_process.h"
#include "broker_view.h"
#include "pcscf_turn.h"
#include "process.h"
#include "turnbroker/common/strings.h"

extern "C" int pcscf_c_client_lifecycle(const char* broker, char* err, size_t err_len);
extern "C" int pcscf_c_client_shared_secret(const char* broker, char* err, size_t err_len);

namespace turnbroker::pcscf {
namespace {

using ::turnbroker::testing::BrokerProcess;
using ::turnbroker::testing::FreePort;
using ::turnbroker::testing::TempDir;

const char* kUris[] = {"turn:127.0.0.1:3478?transport=udp", nullptr};

pcscf_turn_options Options(const std::string& broker) {
  static std::string b;
  b = broker;
  pcscf_turn_options o;
  std::memset(&o, 0, sizeof o);
  o.struct_size = sizeof o;
  o.broker = b.c_str();
  o.realm = "example.org";
  o.turn_uris = kUris;
  return o;
}

TEST(CApiTest, ReportsItsVersionAndHeaderName) {
  EXPECT_STREQ(pcscf_turn_version(), "1.1.0");
  EXPECT_STREQ(pcscf_turn_header_name(), "TURN-Credential");
  EXPECT_EQ(PCSCF_TURN_ABI_VERSION, 1);
}

TEST(CApiTest, OpenRejectsBadOptionsNamingTheField) {
  char err[256];
  pcscf_turn* h = reinterpret_cast<pcscf_turn*>(1);
  EXPECT_EQ(pcscf_turn_open(nullptr, &h, err, sizeof err), PCSCF_TURN_INVALID_ARGUMENT);
  EXPECT_EQ(h, nullptr);
  EXPECT_STREQ(err, "options: must not be NULL");

  pcscf_turn_options o = Options("127.0.0.1:1");
  o.struct_size = 8;
  EXPECT_EQ(pcscf_turn_open(&o, &h, err, sizeof err), PCSCF_TURN_INVALID_ARGUMENT);
  EXPECT_NE(std::string(err).find("struct_size"), std::string::npos);

  o = Options("127.0.0.1:1");
  o.realm = "bad realm";
  EXPECT_EQ(pcscf_turn_open(&o, &h, err, sizeof err), PCSCF_TURN_INVALID_ARGUMENT);
  EXPECT_EQ(std::string(err).rfind("realm: ", 0), 0u) << err;

  o = Options("127.0.0.1:1");
  o.turn_uris = nullptr;
  EXPECT_EQ(pcscf_turn_open(&o, &h, err, sizeof err), PCSCF_TURN_INVALID_ARGUMENT);
  EXPECT_EQ(std::string(err).rfind("turn_uris: ", 0), 0u) << err;

  o = Options("");
  EXPECT_EQ(pcscf_turn_open(&o, &h, err, sizeof err), PCSCF_TURN_INVALID_ARGUMENT);
  // A tiny error buffer is truncated, never overrun; a null one is fine.
  char tiny[4] = {'x', 'x', 'x', 'x'};
  EXPECT_EQ(pcscf_turn_open(&o, &h, tiny, sizeof tiny), PCSCF_TURN_INVALID_ARGUMENT);
  EXPECT_EQ(tiny[3], '\0');
  EXPECT_EQ(pcscf_turn_open(&o, &h, nullptr, 0), PCSCF_TURN_INVALID_ARGUMENT);
}

TEST(CApiTest, AnOlderCallersShorterStructGetsTheDefaults) {
  // A caller built against a version that ended at `issuer`.
  pcscf_turn_options o = Options("127.0.0.1:1");
  o.struct_size = offsetof(pcscf_turn_options, tls_cert);
  o.default_ttl_s = 5;  // beyond struct_size: must be ignored (5 s is invalid)
  pcscf_turn* h = nullptr;
  char err[256];
  ASSERT_EQ(pcscf_turn_open(&o, &h, err, sizeof err), PCSCF_TURN_OK) << err;
  pcscf_turn_close(h);
}

// A handle for a broker address where nothing listens.
pcscf_turn* OpenWithoutBroker() {
  pcscf_turn_options o = Options(StrCat("127.0.0.1:", FreePort()));
  pcscf_turn* h = nullptr;
  char err[256];
  EXPECT_EQ(pcscf_turn_open(&o, &h, err, sizeof err), PCSCF_TURN_OK) << err;
  return h;
}

TEST(CApiTest, CallsCheckTheirArguments) {
  pcscf_turn* h = OpenWithoutBroker();
  ASSERT_NE(h, nullptr);
  char err[256];
  pcscf_turn_credential c = PCSCF_TURN_CREDENTIAL_INIT;
  EXPECT_EQ(pcscf_turn_issue(nullptr, "sip:a@x", nullptr, 0, &c, err, sizeof err),
            PCSCF_TURN_INVALID_ARGUMENT);
  EXPECT_EQ(pcscf_turn_issue(h, nullptr, nullptr, 0, &c, err, sizeof err),
            PCSCF_TURN_INVALID_ARGUMENT);
  EXPECT_STREQ(err, "impu: must not be NULL");
  EXPECT_EQ(pcscf_turn_issue(h, "sip:a@x", nullptr, 5, &c, err, sizeof err),
            PCSCF_TURN_INVALID_ARGUMENT);
  EXPECT_EQ(std::string(err).rfind("ttl: ", 0), 0u) << err;
  EXPECT_EQ(pcscf_turn_refresh(h, nullptr, 0, &c, err, sizeof err), PCSCF_TURN_INVALID_ARGUMENT);
  EXPECT_EQ(pcscf_turn_refresh(h, "unknownusername1", 0, &c, err, sizeof err),
            PCSCF_TURN_NOT_FOUND);
  EXPECT_EQ(pcscf_turn_revoke_username(h, nullptr, nullptr, err, sizeof err),
            PCSCF_TURN_INVALID_ARGUMENT);
  EXPECT_EQ(pcscf_turn_revoke_subscriber(h, nullptr, nullptr, err, sizeof err),
            PCSCF_TURN_INVALID_ARGUMENT);
  EXPECT_EQ(c.username, nullptr) << "nothing filled on failure";
  pcscf_turn_credential_clear(nullptr);
  pcscf_turn_close(h);
  pcscf_turn_close(nullptr);
}

TEST(CApiTest, BrokerDownIsUnavailableAndHandsOutNothing) {
  pcscf_turn* h = OpenWithoutBroker();
  ASSERT_NE(h, nullptr);
  char err[256];
  EXPECT_EQ(pcscf_turn_broker_reachable(h, 300), 0);
  pcscf_turn_credential c = PCSCF_TURN_CREDENTIAL_INIT;
  EXPECT_EQ(pcscf_turn_issue(h, "sip:a@x", nullptr, 0, &c, err, sizeof err),
            PCSCF_TURN_UNAVAILABLE);
  EXPECT_EQ(c.password, nullptr);
  pcscf_turn_close(h);
}

TEST(CApiTest, TheCredentialStructMustCarryItsSize) {
  pcscf_turn* h = OpenWithoutBroker();
  ASSERT_NE(h, nullptr);
  char err[256];
  pcscf_turn_credential c;
  std::memset(&c, 0, sizeof c);  // struct_size not set
  EXPECT_EQ(pcscf_turn_issue(h, "sip:a@x", nullptr, 0, &c, err, sizeof err),
            PCSCF_TURN_INVALID_ARGUMENT);
  EXPECT_STREQ(err, "out.struct_size: set it to sizeof(pcscf_turn_credential)");
  EXPECT_EQ(pcscf_turn_refresh(h, "unknownusername1", 0, &c, err, sizeof err),
            PCSCF_TURN_INVALID_ARGUMENT);
  EXPECT_STREQ(err, "out.struct_size: set it to sizeof(pcscf_turn_credential)");
  c.struct_size = offsetof(pcscf_turn_credential, reused);  // cut short
  EXPECT_EQ(pcscf_turn_issue(h, "sip:a@x", nullptr, 0, &c, err, sizeof err),
            PCSCF_TURN_INVALID_ARGUMENT);
  EXPECT_EQ(c.username, nullptr);
  pcscf_turn_credential_clear(&c);  // never filled: a no-op
  EXPECT_EQ(c.struct_size, offsetof(pcscf_turn_credential, reused));
  pcscf_turn_close(h);
}

// A caller built against a later header whose credential has more fields:
// the library fills what it knows and never writes past it.
struct LaterCredential {
  pcscf_turn_credential v1;
  int64_t later_field;
};

TEST(CApiTest, ALaterCallersLargerCredentialIsFilledOnlyAsFarAsTheLibraryKnows) {
  TempDir dir;
  BrokerProcess broker(dir, {"--ephemeral"});
  pcscf_turn_options o = Options(broker.address());
  o.reuse = -1;  // the default: reuse at re-REGISTER
  pcscf_turn* h = nullptr;
  char err[256];
  ASSERT_EQ(pcscf_turn_open(&o, &h, err, sizeof err), PCSCF_TURN_OK) << err;
  LaterCredential later;
  std::memset(&later, 0, sizeof later);
  later.v1.struct_size = sizeof later;
  later.later_field = 0x5eed;
  ASSERT_EQ(pcscf_turn_issue(h, "sip:later@example.org", nullptr, 0, &later.v1, err, sizeof err),
            PCSCF_TURN_OK)
      << err;
  EXPECT_EQ(std::strlen(later.v1.username), 16u);
  EXPECT_EQ(std::strlen(later.v1.password), 24u);
  EXPECT_EQ(later.v1.struct_size, sizeof later) << "struct_size is the caller's";
  EXPECT_EQ(later.later_field, 0x5eed) << "a field this library does not know";
  pcscf_turn_credential_clear(&later.v1);
  EXPECT_EQ(later.v1.username, nullptr);
  EXPECT_EQ(later.v1.password, nullptr);
  EXPECT_EQ(later.v1.struct_size, sizeof later);
  EXPECT_EQ(later.later_field, 0x5eed);
  // Cleared, it can be filled again.
  ASSERT_EQ(pcscf_turn_issue(h, "sip:later@example.org", nullptr, 0, &later.v1, err, sizeof err),
            PCSCF_TURN_OK)
      << err;
  EXPECT_EQ(later.v1.reused, 1);
  pcscf_turn_credential_clear(&later.v1);
  pcscf_turn_close(h);
}

TEST(CApiTest, ACCallerRunsTheLifecycleAgainstARealBroker) {
  TempDir dir;
  BrokerProcess broker(dir, {"--ephemeral"});
  char err[512] = "";
  EXPECT_EQ(pcscf_c_client_lifecycle(broker.address().c_str(), err, sizeof err), 0) << err;
}

TEST(CApiTest, AnUnknownModeIsRefusedNamingIt) {
  pcscf_turn_options o = Options("127.0.0.1:1");
  o.mode = "approach-3";
  pcscf_turn* h = nullptr;
  char err[256];
  EXPECT_EQ(pcscf_turn_open(&o, &h, err, sizeof err), PCSCF_TURN_INVALID_ARGUMENT);
  EXPECT_EQ(h, nullptr);
  EXPECT_EQ(std::string(err).rfind("mode: 'approach-3'", 0), 0u) << err;
  // A caller built against 1.0.0 (its struct ends before `mode`): the
  // default mode, whatever lies beyond its struct.
  o.struct_size = offsetof(pcscf_turn_options, mode);
  EXPECT_EQ(pcscf_turn_open(&o, &h, err, sizeof err), PCSCF_TURN_OK) << err;
  pcscf_turn_close(h);
}

TEST(CApiTest, ACCallerIssuesInSharedSecretModeAgainstARealBroker) {
  TempDir dir;
  BrokerProcess broker(dir, {"--ephemeral"});
  testing::BrokerView view(broker.address());
  grpc::Status added =
      view.AddSecret("example.org", "c-1", "c-api-test-secret-0123456789abcdefghijkl");
  ASSERT_TRUE(added.ok()) << added.error_message();
  grpc::Status activated = view.ActivateSecret("example.org", "c-1");
  ASSERT_TRUE(activated.ok()) << activated.error_message();
  const uint64_t revision = view.Status()->revision();
  char err[512] = "";
  EXPECT_EQ(pcscf_c_client_shared_secret(broker.address().c_str(), err, sizeof err), 0) << err;
  EXPECT_EQ(view.Status()->live_credentials(), 0u) << "nothing published";
  EXPECT_GT(view.Status()->revision(), revision) << "de-REGISTER revoked it";
}

}  // namespace
}  // namespace turnbroker::pcscf
