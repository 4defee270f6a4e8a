// Every HTTP answer of the agent's API, without sockets (AgentApi::Handle),
// over the fake broker. agent_server_test.cc covers the HTTP layer.
#include "turnbroker/pcscf/agent_api.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "fake_broker_client.h"
#include "fake_secret_source.h"
#include "turnbroker/pcscf/sip_header.h"

namespace turnbroker::pcscf {
namespace {

using json = nlohmann::json;
using testing::FakeBrokerClient;

// AgentApi::AnswersWithoutWaiting for a request of `method` and `path`.
bool Inline(const AgentApi& api, std::string method, std::string path) {
  ApiRequest r;
  r.method = std::move(method);
  r.path = std::move(path);
  return api.AnswersWithoutWaiting(r);
}

class AgentApiTest : public ::testing::Test {
 protected:
  AgentApiTest() {
    IssuerOptions o;
    o.realm = "example.org";
    o.issuer = "pcscf-1";
    o.turn_uris = {"turn:127.0.0.1:3478?transport=udp", "turns:turn.example.org:5349"};
    o.status_interval_ms = 0;
    o.overlap_ms = 10;
    publisher_ = std::make_unique<Publisher>(&broker_, PublisherOptions(), &metrics_);
    issuer_ = std::make_unique<Issuer>(publisher_.get(), o, Clock::System(), &metrics_);
    api_ = std::make_unique<AgentApi>(issuer_.get(), &metrics_);
  }
  ~AgentApiTest() override {
    api_.reset();
    issuer_.reset();
    publisher_.reset();
  }

  ApiResponse Call(std::string method, std::string path, std::string body = "",
                   std::multimap<std::string, std::string> query = {}) {
    ApiRequest r;
    r.method = std::move(method);
    r.path = std::move(path);
    r.body = std::move(body);
    r.query = std::move(query);
    return api_->Handle(r);
  }
  // A 4xx/5xx answer: its JSON, checked for the common shape.
  json Error(const ApiResponse& r, int status) {
    EXPECT_EQ(r.status, status) << r.body;
    json j = json::parse(r.body, nullptr, false);
    EXPECT_TRUE(j.is_object()) << r.body;
    EXPECT_TRUE(j.contains("error") && j["error"].is_string()) << r.body;
    EXPECT_TRUE(j.contains("code")) << r.body;
    return j;
  }
  std::string FieldOf(const ApiResponse& r, int status) {
    json j = Error(r, status);
    return j.value("field", "");
  }
  std::string Issue(const std::string& impu) {
    ApiResponse r = Call("POST", "/v1/credentials", json({{"impu", impu}}).dump());
    EXPECT_EQ(r.status, 201) << r.body;
    return json::parse(r.body)["username"];
  }

  MetricsRegistry metrics_;
  FakeBrokerClient broker_;
  std::unique_ptr<Publisher> publisher_;
  std::unique_ptr<Issuer> issuer_;
  std::unique_ptr<AgentApi> api_;
};

TEST_F(AgentApiTest, IssueAnswers201WithEverythingTheSipServerNeeds) {
  ApiResponse r = Call("POST", "/v1/credentials",
                       R"({"impu":"sip:alice@example.org","impi":"alice@example.org","ttl":600})");
  ASSERT_EQ(r.status, 201) << r.body;
  EXPECT_EQ(r.content_type, "application/json");
  json j = json::parse(r.body);
  EXPECT_EQ(j["username"].get<std::string>().size(), 16u);
  EXPECT_EQ(j["password"].get<std::string>().size(), 24u);
  EXPECT_GE(j["ttl"].get<int>(), 599);
  EXPECT_EQ(j["realm"], "example.org");
  EXPECT_EQ(j["uris"], json({"turn:127.0.0.1:3478?transport=udp", "turns:turn.example.org:5349"}));
  EXPECT_EQ(j["header_name"], "TURN-Credential");
  EXPECT_EQ(j["reused"], false);
  EXPECT_EQ(j.size(), 9u) << r.body;
  EXPECT_GT(j["expires_at"].get<int64_t>(), Clock::System()->NowMs() / 1000);
  auto h = ParseTurnCredentialHeader(j["header"].get<std::string>());
  ASSERT_TRUE(h.ok()) << h.status();
  EXPECT_EQ(h->username, j["username"]);
  EXPECT_EQ(h->password, j["password"]);
  EXPECT_EQ(h->urls, j["uris"].get<std::vector<std::string>>());
  EXPECT_TRUE(broker_.IsLive(j["username"])) << "201 only after the broker acknowledged";
}

TEST_F(AgentApiTest, ReRegisterWithEnoughLifetimeLeftAnswers200WithTheSameCredential) {
  std::string u = Issue("sip:alice@example.org");
  ApiResponse r = Call("POST", "/v1/credentials", R"({"impu":"sip:alice@example.org"})");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(json::parse(r.body)["username"], u);
  EXPECT_EQ(json::parse(r.body)["reused"], true);
}

TEST_F(AgentApiTest, IssueRejectsBadBodiesNamingTheField) {
  auto post = [&](std::string body) { return Call("POST", "/v1/credentials", std::move(body)); };
  EXPECT_EQ(FieldOf(post(""), 400), "body");
  EXPECT_EQ(FieldOf(post("{"), 400), "body");
  EXPECT_EQ(FieldOf(post("[1]"), 400), "body");
  EXPECT_EQ(FieldOf(post("{}"), 400), "impu");
  EXPECT_EQ(FieldOf(post(R"({"impu":null})"), 400), "impu");
  EXPECT_EQ(FieldOf(post(R"({"impu":42})"), 400), "impu");
  EXPECT_EQ(FieldOf(post(R"({"impu":""})"), 400), "impu");
  EXPECT_EQ(FieldOf(post(R"({"impu":"sip:a b@x"})"), 400), "impu");
  EXPECT_EQ(FieldOf(post(R"({"impu":")" + std::string(300, 'a') + R"("})"), 400), "impu");
  EXPECT_EQ(FieldOf(post(R"({"impu":"sip:a@x","impi":7})"), 400), "impi");
  EXPECT_EQ(FieldOf(post(R"({"impu":"sip:a@x","ttl":"600"})"), 400), "ttl");
  EXPECT_EQ(FieldOf(post(R"({"impu":"sip:a@x","ttl":60.5})"), 400), "ttl");
  EXPECT_EQ(FieldOf(post(R"({"impu":"sip:a@x","ttl":0})"), 400), "ttl");
  EXPECT_EQ(FieldOf(post(R"({"impu":"sip:a@x","ttl":-5})"), 400), "ttl");
  EXPECT_EQ(FieldOf(post(R"({"impu":"sip:a@x","ttl":59})"), 400), "ttl");
  EXPECT_EQ(FieldOf(post(R"({"impu":"sip:a@x","ttl":86401})"), 400), "ttl");
  EXPECT_EQ(FieldOf(post(R"({"impu":"sip:a@x","ttl":18446744073709551615})"), 400), "ttl");
  EXPECT_EQ(FieldOf(post(R"({"impu":"sip:a@x","expires":600})"), 400), "expires");
  EXPECT_EQ(broker_.publish_calls(), 0) << "nothing reaches the broker";
}

TEST_F(AgentApiTest, BrokerUnreachableIs503WithRetryAfterAndNothingHandedOut) {
  broker_.SetUnavailable(true);
  ApiResponse r = Call("POST", "/v1/credentials", R"({"impu":"sip:alice@example.org"})");
  json j = Error(r, 503);
  EXPECT_EQ(j["code"], "UNAVAILABLE");
  EXPECT_FALSE(j.contains("password"));
  bool retry_after = false;
  for (auto& [k, v] : r.headers) retry_after |= k == "Retry-After";
  EXPECT_TRUE(retry_after);
  EXPECT_EQ(issuer_->live_credentials(), 0u);
}

TEST_F(AgentApiTest, BrokerRefusalsMapToGatewayAndConflictCodes) {
  broker_.FailNextPublishes(1, absl::PermissionDeniedError("Publish needs role publisher"));
  Error(Call("POST", "/v1/credentials", R"({"impu":"sip:a@x"})"), 502);
  broker_.FailNextPublishes(1, absl::FailedPreconditionError("credentials[0].username: revoked"));
  Error(Call("POST", "/v1/credentials", R"({"impu":"sip:a@x"})"), 409);
  broker_.FailNextPublishes(1,
                            absl::InvalidArgumentError("credentials[0].expires_at_ms: lifetime"));
  Error(Call("POST", "/v1/credentials", R"({"impu":"sip:a@x"})"), 400);
}

TEST_F(AgentApiTest, AnUnexpectedBrokerErrorIs500AndHandsOutNothing) {
  // Neither transient (retried, 503) nor a refusal with a mapping of its own.
  broker_.FailNextPublishes(1, absl::DataLossError("fake: store damaged"));
  ApiResponse r = Call("POST", "/v1/credentials", R"({"impu":"sip:alice@example.org"})");
  json j = Error(r, 500);
  EXPECT_EQ(j["code"], "INTERNAL");
  EXPECT_EQ(j["error"], "fake: store damaged");
  EXPECT_FALSE(j.contains("field"));
  EXPECT_TRUE(r.headers.empty()) << "no Retry-After: not a matter of waiting";
  EXPECT_EQ(r.body.find("password"), std::string::npos);
  EXPECT_EQ(issuer_->live_credentials(), 0u);
  // The same for a refresh.
  std::string u = Issue("sip:bob@example.org");
  broker_.FailNextPublishes(1, absl::UnimplementedError("fake: no Publish here"));
  EXPECT_EQ(Error(Call("POST", "/v1/credentials/" + u + "/refresh"), 500)["code"], "INTERNAL");
  EXPECT_NE(Call("GET", "/metrics")
                .body.find("pcscf_turn_agent_requests_total{route=\"issue\","
                           "code=\"5xx\"} 1"),
            std::string::npos);
}

TEST_F(AgentApiTest, RefreshAnswers201WithANewCredential) {
  std::string u = Issue("sip:alice@example.org");
  ApiResponse r = Call("POST", "/v1/credentials/" + u + "/refresh", R"({"ttl":120})");
  ASSERT_EQ(r.status, 201) << r.body;
  json j = json::parse(r.body);
  EXPECT_NE(j["username"], u);
  EXPECT_LE(j["ttl"].get<int>(), 120);
  ASSERT_TRUE(testing::WaitFor([&] { return !broker_.IsLive(u); })) << "old revoked after overlap";
  // An empty body keeps the old lifetime.
  EXPECT_EQ(Call("POST", "/v1/credentials/" + j["username"].get<std::string>() + "/refresh").status,
            201);
}

TEST_F(AgentApiTest, RefreshErrors) {
  std::string u = Issue("sip:alice@example.org");
  EXPECT_EQ(FieldOf(Call("POST", "/v1/credentials/unknownusername1/refresh"), 404), "username");
  EXPECT_EQ(FieldOf(Call("POST", "/v1/credentials/bad name/refresh"), 400), "username");
  EXPECT_EQ(FieldOf(Call("POST", "/v1/credentials/" + u + "/refresh", "{"), 400), "body");
  EXPECT_EQ(FieldOf(Call("POST", "/v1/credentials/" + u + "/refresh", R"({"ttl":true})"), 400),
            "ttl");
  EXPECT_EQ(FieldOf(Call("POST", "/v1/credentials/" + u + "/refresh", R"({"impu":"x"})"), 400),
            "impu");
  broker_.SetUnavailable(true);
  Error(Call("POST", "/v1/credentials/" + u + "/refresh"), 503);
}

TEST_F(AgentApiTest, DeleteByUsernameAndByImpuAnswer204) {
  std::string a = Issue("sip:alice@example.org");
  std::string b = Issue("sip:bob@example.org");
  ApiResponse r = Call("DELETE", "/v1/credentials/" + a);
  EXPECT_EQ(r.status, 204);
  EXPECT_TRUE(r.body.empty());
  EXPECT_FALSE(broker_.IsLive(a));
  EXPECT_EQ(Call("DELETE", "/v1/credentials", "", {{"impu", "sip:bob@example.org"}}).status, 204);
  EXPECT_FALSE(broker_.IsLive(b));
  EXPECT_EQ(broker_.revoked_subscribers(), std::vector<std::string>{"sip:bob@example.org"});
}

TEST_F(AgentApiTest, DeleteErrors) {
  EXPECT_EQ(FieldOf(Call("DELETE", "/v1/credentials"), 400), "impu");
  EXPECT_EQ(FieldOf(Call("DELETE", "/v1/credentials", "", {{"impu", ""}}), 400), "impu");
  EXPECT_EQ(FieldOf(Call("DELETE", "/v1/credentials/a\"b"), 400), "username");
  broker_.SetUnavailable(true);
  Error(Call("DELETE", "/v1/credentials/someusername"), 503);
  Error(Call("DELETE", "/v1/credentials", "", {{"impu", "sip:a@x"}}), 503);
}

TEST_F(AgentApiTest, PostRevokeIsTheSameRevocationForGetPostOnlyClients) {
  std::string a = Issue("sip:alice@example.org");
  std::string b = Issue("sip:bob@example.org");
  EXPECT_EQ(Call("POST", "/v1/credentials/revoke", json({{"username", a}}).dump()).status, 204);
  EXPECT_FALSE(broker_.IsLive(a));
  EXPECT_EQ(Call("POST", "/v1/credentials/revoke",
                 R"({"impu":"sip:bob@example.org","reason":"de-REGISTER"})")
                .status,
            204);
  EXPECT_FALSE(broker_.IsLive(b));
}

TEST_F(AgentApiTest, PostRevokeErrors) {
  auto post = [&](std::string body) {
    return Call("POST", "/v1/credentials/revoke", std::move(body));
  };
  EXPECT_EQ(FieldOf(post("nope"), 400), "body");
  EXPECT_EQ(FieldOf(post("{}"), 400), "impu");
  EXPECT_EQ(FieldOf(post(R"({"impu":"sip:a@x","username":"u"})"), 400), "username");
  EXPECT_EQ(FieldOf(post(R"({"impu":1})"), 400), "impu");
  EXPECT_EQ(FieldOf(post(R"({"username":"a b"})"), 400), "username");
  EXPECT_EQ(FieldOf(post(R"({"username":"u","reason":"x\u0001"})"), 400), "reason");
  EXPECT_EQ(FieldOf(post(R"({"username":"u","why":"x"})"), 400), "why");
  broker_.SetUnavailable(true);
  Error(post(R"({"impu":"sip:a@x"})"), 503);
}

TEST_F(AgentApiTest, UnknownPathsAre404AndWrongMethods405WithAllow) {
  EXPECT_EQ(FieldOf(Call("GET", "/"), 404), "path");
  EXPECT_EQ(FieldOf(Call("POST", "/v2/credentials"), 404), "path");
  EXPECT_EQ(FieldOf(Call("POST", "/v1/credentials/u/x"), 404), "path");
  struct Case {
    const char* method;
    const char* path;
    const char* allow;
  };
  for (const Case& c : {Case{"GET", "/v1/credentials", "POST, DELETE"},
                        Case{"PUT", "/v1/credentials/revoke", "POST"},
                        Case{"DELETE", "/v1/credentials/revoke", "POST"},
                        Case{"GET", "/v1/credentials/revoke", "POST"},
                        Case{"GET", "/v1/credentials/u1/refresh", "POST"},
                        Case{"POST", "/v1/credentials/u1", "DELETE"},
                        Case{"POST", "/healthz", "GET"}, Case{"DELETE", "/metrics", "GET"}}) {
    ApiResponse r = Call(c.method, c.path);
    EXPECT_EQ(FieldOf(r, 405), "method") << c.method << " " << c.path;
    ASSERT_EQ(r.headers.size(), 1u);
    EXPECT_EQ(r.headers[0].first, "Allow");
    EXPECT_EQ(r.headers[0].second, c.allow);
  }
}

TEST_F(AgentApiTest, DeleteOnTheRevokeVerbIs405AndRevokesNothing) {
  std::string a = Issue("sip:alice@example.org");
  ApiResponse r = Call("DELETE", "/v1/credentials/revoke");
  json j = Error(r, 405);
  EXPECT_EQ(j["code"], "METHOD_NOT_ALLOWED");
  EXPECT_EQ(j["field"], "method");
  ASSERT_EQ(r.headers.size(), 1u);
  EXPECT_EQ(r.headers[0], (std::pair<std::string, std::string>("Allow", "POST")));
  EXPECT_TRUE(broker_.revoked_usernames().empty()) << "no revocation of a user named revoke";
  EXPECT_TRUE(broker_.IsLive(a));
}

TEST_F(AgentApiTest, HealthFollowsTheBroker) {
  ApiResponse ok = Call("GET", "/healthz");
  ASSERT_EQ(ok.status, 200) << ok.body;
  EXPECT_EQ(json::parse(ok.body)["broker"], "reachable");
  EXPECT_EQ(json::parse(ok.body)["epoch"], broker_.epoch());
  broker_.SetUnavailable(true);
  ApiResponse down = Call("GET", "/healthz");
  EXPECT_EQ(down.status, 503);
  EXPECT_EQ(json::parse(down.body)["broker"], "unreachable");
}

TEST_F(AgentApiTest, MetricsCountRequestsByRouteAndClass) {
  Issue("sip:alice@example.org");
  Call("POST", "/v1/credentials", "{}");
  ApiResponse m = Call("GET", "/metrics");
  ASSERT_EQ(m.status, 200);
  EXPECT_EQ(m.content_type, "text/plain; version=0.0.4");
  EXPECT_NE(m.body.find("pcscf_turn_agent_requests_total{route=\"issue\",code=\"2xx\"} 1"),
            std::string::npos)
      << m.body;
  EXPECT_NE(m.body.find("pcscf_turn_agent_requests_total{route=\"issue\",code=\"4xx\"} 1"),
            std::string::npos);
  EXPECT_NE(m.body.find("pcscf_turn_live_credentials 1"), std::string::npos);
  EXPECT_NE(m.body.find("pcscf_turn_published_credentials_total 1"), std::string::npos);
  EXPECT_EQ(m.body.find("password"), std::string::npos);
}

// The same API in shared-secret mode (docs/approach1.md): the same answers'
// shape, 503 without an active secret, healthy with one even when the
// broker is down.
// What the HTTP server may answer on its I/O thread (AgentServerOptions::
// answer_inline): here, where issuing waits for the broker, nothing that
// reaches the issuer.
TEST_F(AgentApiTest, OnlyUnknownPathsAreAnsweredWithoutWaiting) {
  EXPECT_TRUE(Inline(*api_, "GET", "/v1/floor"));
  EXPECT_TRUE(Inline(*api_, "GET", "/"));
  EXPECT_FALSE(Inline(*api_, "POST", "/v1/credentials"));
  EXPECT_FALSE(Inline(*api_, "POST", "/v1/credentials/abc/refresh"));
  EXPECT_FALSE(Inline(*api_, "DELETE", "/v1/credentials/abc"));
  EXPECT_FALSE(Inline(*api_, "GET", "/healthz"));  // asks the broker
  EXPECT_FALSE(Inline(*api_, "GET", "/metrics"));
}

class AgentApiSharedSecretTest : public ::testing::Test {
 protected:
  AgentApiSharedSecretTest() : minting_(&book_, "example.org", 60, Clock::System(), &metrics_) {
    IssuerOptions o;
    o.mode = CredentialMode::kSharedSecret;
    o.realm = "example.org";
    o.issuer = "pcscf-1";
    o.turn_uris = {"turn:127.0.0.1:3478?transport=udp"};
    o.status_interval_ms = 0;
    publisher_ = std::make_unique<Publisher>(&broker_, PublisherOptions(), &metrics_);
    issuer_ = std::make_unique<Issuer>(publisher_.get(), o, Clock::System(), &metrics_, &minting_);
    api_ = std::make_unique<AgentApi>(issuer_.get(), &metrics_);
  }
  ~AgentApiSharedSecretTest() override {
    api_.reset();
    issuer_.reset();
    publisher_.reset();
  }
  ApiResponse Call(std::string method, std::string path, std::string body = "") {
    ApiRequest r;
    r.method = std::move(method);
    r.path = std::move(path);
    r.body = std::move(body);
    return api_->Handle(r);
  }
  void Activate() {
    for (const auto& f : testing::SnapshotFrames(
             "e1", 2,
             {testing::MakeSecret("example.org", "s1", v1::SECRET_STATE_ACTIVE, kSecret)})) {
      ASSERT_TRUE(book_.Apply(f).ok());
    }
  }
  const std::string kSecret = "sB3yq0d7W4Ff9mQ2xKZ_cT8vLp5nRj1hEuY6aGoX-Ik";
  MetricsRegistry metrics_;
  SecretBook book_;
  SharedSecretMinting minting_;
  FakeBrokerClient broker_;
  std::unique_ptr<Publisher> publisher_;
  std::unique_ptr<Issuer> issuer_;
  std::unique_ptr<AgentApi> api_;
};

TEST_F(AgentApiSharedSecretTest, NoActiveSecretIs503AndUnhealthy) {
  ApiResponse r = Call("POST", "/v1/credentials", R"({"impu": "sip:alice@example.org"})");
  EXPECT_EQ(r.status, 503) << r.body;
  EXPECT_EQ(r.headers, (std::vector<std::pair<std::string, std::string>>{{"Retry-After", "1"}}));
  EXPECT_EQ(json::parse(r.body)["code"], "UNAVAILABLE");
  ApiResponse h = Call("GET", "/healthz");
  EXPECT_EQ(h.status, 503) << h.body;
  EXPECT_EQ(json::parse(h.body)["mode"], "shared-secret");
  EXPECT_EQ(json::parse(h.body)["broker"], "reachable");
}

TEST_F(AgentApiSharedSecretTest, TheSameAnswerShapeAndHealthyWhileTheBrokerIsDown) {
  Activate();
  broker_.SetUnavailable(true);
  ApiResponse r =
      Call("POST", "/v1/credentials",
           R"({"impu": "sip:alice@example.org", "impi": "alice@example.org", "ttl": 3600})");
  ASSERT_EQ(r.status, 201) << r.body;
  json j = json::parse(r.body);
  for (const char* k : {"username", "password", "ttl", "expires_at", "realm", "uris", "header_name",
                        "header", "reused"}) {
    EXPECT_TRUE(j.contains(k)) << k << " in " << r.body;
  }
  const std::string username = j["username"];
  EXPECT_EQ(username.substr(0, username.find(':')), std::to_string(j["expires_at"].get<int64_t>()));
  EXPECT_EQ(j["password"], TurnRestPassword(kSecret, username));
  auto h = ParseTurnCredentialHeader(j["header"].get<std::string>());
  ASSERT_TRUE(h.ok()) << j["header"];
  EXPECT_EQ(h->username, username);
  ApiResponse again = Call("POST", "/v1/credentials",
                           R"({"impu": "sip:alice@example.org", "impi": "alice@example.org"})");
  EXPECT_EQ(again.status, 200) << "reused";
  ApiResponse health = Call("GET", "/healthz");
  EXPECT_EQ(health.status, 200) << health.body;
  EXPECT_EQ(json::parse(health.body)["broker"], "unreachable");
  ApiResponse m = Call("GET", "/metrics");
  EXPECT_NE(m.body.find("pcscf_turn_credential_mode{mode=\"shared-secret\"} 1"), std::string::npos)
      << m.body;
  EXPECT_NE(m.body.find("pcscf_turn_shared_secret_mints_total{secret=\"s1\"} 1"),
            std::string::npos);
  EXPECT_EQ(m.body.find(kSecret), std::string::npos);
}

// Minted locally: issue and refresh never wait, and may be answered on the
// HTTP server's I/O thread. Revocations and health still call the broker.
TEST_F(AgentApiSharedSecretTest, IssueAndRefreshAreAnsweredWithoutWaiting) {
  EXPECT_TRUE(Inline(*api_, "POST", "/v1/credentials"));
  EXPECT_TRUE(Inline(*api_, "POST", "/v1/credentials/1700000000:abc/refresh"));
  EXPECT_TRUE(Inline(*api_, "GET", "/nowhere"));
  EXPECT_FALSE(Inline(*api_, "DELETE", "/v1/credentials"));  // de-REGISTER revokes at the broker
  EXPECT_FALSE(Inline(*api_, "DELETE", "/v1/credentials/1700000000:abc"));
  EXPECT_FALSE(Inline(*api_, "POST", "/v1/credentials/revoke"));
  EXPECT_FALSE(Inline(*api_, "GET", "/v1/credentials"));  // 405, but routed: kept with its route
  EXPECT_FALSE(Inline(*api_, "GET", "/healthz"));
}

}  // namespace
}  // namespace turnbroker::pcscf
