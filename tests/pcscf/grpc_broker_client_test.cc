// The gRPC BrokerClient against real brokers over loopback: the in-process
// broker, the turn-broker binary (to freeze it), and a broker from before
// PublishStream. Each real-broker test runs with the stream and unary-only.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <chrono>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include "broker_process.h"
#include "process.h"
#include "turnbroker/broker/server.h"
#include "turnbroker/common/channel.h"
#include "turnbroker/common/clock.h"
#include "turnbroker/pcscf/broker_client.h"
#include "turnbroker/v1/broker.grpc.pb.h"
#include "wait_for.h"

namespace turnbroker::pcscf {
namespace {

using ::testing::HasSubstr;
using ::turnbroker::testing::BrokerProcess;
using ::turnbroker::testing::TempDir;
using Ms = std::chrono::milliseconds;

v1::PublishRequest Request(const std::string& username) {
  v1::PublishRequest r;
  v1::Credential* c = r.add_credentials();
  c->set_realm("ims.example.org");
  c->set_username(username);
  c->set_key(std::string(16, 'k'));
  c->set_expires_at_ms(Clock::System()->NowMs() + 600'000);
  c->set_subscriber("sip:" + username + "@ims.example.org");
  return r;
}

absl::StatusOr<v1::PublishResponse> PublishNow(BrokerClient& client, v1::PublishRequest request,
                                               int64_t timeout_ms = 2'000) {
  std::promise<absl::StatusOr<v1::PublishResponse>> answer;
  client.Publish(std::move(request), timeout_ms, [&](auto r) { answer.set_value(std::move(r)); });
  return answer.get_future().get();
}

std::unique_ptr<BrokerClient> NewClient(int port, bool publish_stream = true,
                                        int64_t stream_max_age_ms = 20'000) {
  ChannelOptions o("127.0.0.1:" + std::to_string(port));
  o.max_reconnect_backoff_ms = 200;  // a restarted broker is found again quickly
  auto channel = MakeChannel(o);
  EXPECT_TRUE(channel.ok()) << channel.status();
  return NewGrpcBrokerClient(*channel,
                             GrpcBrokerClientOptions{.publish_stream = publish_stream,
                                                     .stream_max_age_ms = stream_max_age_ms});
}

// `threads` threads publish `each` credentials apiece without waiting, a
// pause after every `pause_every`-th; returns how many were answered OK
// once all are answered (each failure is reported).
int PublishConcurrently(BrokerClient& client, int threads, int each, int pause_every = 0,
                        Ms pause = Ms(0)) {
  std::atomic<int> answered{0}, ok{0};
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      for (int i = 0; i < each; ++i) {
        client.Publish(Request("u" + std::to_string(t) + "-" + std::to_string(i)), 5'000,
                       [&](absl::StatusOr<v1::PublishResponse> r) {
                         EXPECT_TRUE(r.ok()) << r.status();
                         if (r.ok()) ++ok;
                         ++answered;
                       });
        if (pause_every > 0 && i % pause_every == 0) std::this_thread::sleep_for(pause);
      }
    });
  }
  for (auto& t : pool) t.join();
  EXPECT_TRUE(testing::WaitFor([&] { return answered == threads * each; }));
  return ok;
}

// Parameter: GrpcBrokerClientOptions::publish_stream.
class GrpcBrokerClientTest : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override { StartBroker(0); }

  void StartBroker(int port) {
    broker::BrokerOptions o;
    o.listen = {"127.0.0.1", static_cast<uint16_t>(port)};
    o.ephemeral = true;
    auto s = broker::BrokerServer::Start(o);
    ASSERT_TRUE(s.ok()) << s.status();
    broker_ = std::move(*s);
  }

  std::unique_ptr<BrokerClient> Client() { return NewClient(broker_->port(), GetParam()); }

  std::unique_ptr<broker::BrokerServer> broker_;
};

INSTANTIATE_TEST_SUITE_P(, GrpcBrokerClientTest, ::testing::Bool(),
                         [](const auto& info) { return info.param ? "Stream" : "Unary"; });

TEST_P(GrpcBrokerClientTest, ConcurrentPublishesAreAllAnsweredAndLive) {
  constexpr int kThreads = 8, kEach = 200;
  auto client = Client();
  EXPECT_EQ(PublishConcurrently(*client, kThreads, kEach), kThreads * kEach);
  std::promise<absl::StatusOr<v1::GetStatusResponse>> status;
  client->GetStatus(2'000, [&](auto r) { status.set_value(std::move(r)); });
  auto s = status.get_future().get();
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->live_credentials(), static_cast<uint64_t>(kThreads * kEach));
}

// The metric's value in the broker's exposition ("" when absent).
std::string MetricValue(const std::string& text, const std::string& name) {
  for (size_t at = text.find(name + " "); at != std::string::npos;
       at = text.find(name + " ", at + 1)) {
    if (at == 0 || text[at - 1] == '\n') {
      size_t end = text.find('\n', at);
      return text.substr(at + name.size() + 1, end - at - name.size() - 1);
    }
  }
  return "";
}

// Streams past their age are half-closed and replaced while requests are
// on them: not one request may fail (the client does not retry).
TEST(GrpcBrokerClientStreamAgeTest, RetiredStreamsLoseNoRequest) {
  broker::BrokerOptions o;
  o.listen = {"127.0.0.1", 0};
  o.ephemeral = true;
  auto broker = broker::BrokerServer::Start(o);
  ASSERT_TRUE(broker.ok()) << broker.status();
  auto client = NewClient((*broker)->port(), true, /*stream_max_age_ms=*/5);
  constexpr int kThreads = 4, kEach = 300;
  EXPECT_EQ(PublishConcurrently(*client, kThreads, kEach, /*pause_every=*/50, Ms(6)),
            kThreads * kEach);
  const std::string opened =
      MetricValue((*broker)->metrics().Render(), "turnbroker_publish_streams_opened_total");
  EXPECT_GE(std::atoi(opened.c_str()), 5) << "streams opened: '" << opened << "'";
  // The retired streams end once answered: only the current one stays open.
  EXPECT_TRUE(testing::WaitFor([&] {
    return MetricValue((*broker)->metrics().Render(), "turnbroker_publish_streams") == "1";
  })) << (*broker)->metrics().Render();
}

TEST_P(GrpcBrokerClientTest, ARefusedRequestDoesNotStopTheNextOne) {
  auto client = Client();
  ASSERT_TRUE(PublishNow(*client, Request("before")).ok());
  v1::PublishRequest bad = Request("bad");
  bad.mutable_credentials(0)->set_key("short");
  auto refused = PublishNow(*client, bad);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(refused.status().message(), HasSubstr("credentials[0].key"));
  auto after = PublishNow(*client, Request("after"));
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_EQ(after->applied(), 1u);
}

TEST_P(GrpcBrokerClientTest, UnreachableBrokerFailsFastWithUnavailable) {
  auto client = NewClient(::turnbroker::testing::FreePort(), GetParam());
  for (int i = 0; i < 2; ++i) {  // the second on a new stream
    auto start = std::chrono::steady_clock::now();
    auto r = PublishNow(*client, Request("u" + std::to_string(i)), 5'000);
    EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable) << r.status();
    EXPECT_LT(std::chrono::steady_clock::now() - start, Ms(1'000));
  }
}

TEST_P(GrpcBrokerClientTest, PublishesAgainAfterTheBrokerRestarts) {
  auto client = Client();
  ASSERT_TRUE(PublishNow(*client, Request("before")).ok());
  const int port = broker_->port();
  broker_.reset();
  EXPECT_FALSE(PublishNow(*client, Request("while-down")).ok());
  StartBroker(port);
  absl::Status last;
  EXPECT_TRUE(testing::WaitFor([&] {
    last = PublishNow(*client, Request("after"), 500).status();
    return last.ok();
  })) << last;
  std::promise<absl::StatusOr<v1::GetStatusResponse>> status;
  client->GetStatus(2'000, [&](auto r) { status.set_value(std::move(r)); });
  auto s = status.get_future().get();
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->live_credentials(), 1u) << "a new ephemeral broker holds only `after`";
}

// The turn-broker binary, so that SIGSTOP can freeze it with the connection
// up and the stream open.
class GrpcBrokerClientFrozenTest : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    broker_process_ =
        std::make_unique<BrokerProcess>(dir_, std::vector<std::string>{"--ephemeral"});
    client_ = NewClient(broker_process_->port(), GetParam());
    ASSERT_TRUE(PublishNow(*client_, Request("warm")).ok());
    broker_process_->process().Signal(SIGSTOP);
  }
  void TearDown() override { broker_process_->process().Signal(SIGCONT); }

  TempDir dir_;
  std::unique_ptr<BrokerProcess> broker_process_;
  std::unique_ptr<BrokerClient> client_;
};

INSTANTIATE_TEST_SUITE_P(, GrpcBrokerClientFrozenTest, ::testing::Bool(),
                         [](const auto& info) { return info.param ? "Stream" : "Unary"; });

TEST_P(GrpcBrokerClientFrozenTest, DeadlinePassesThenTheLateAnswerIsIgnored) {
  auto start = std::chrono::steady_clock::now();
  auto r = PublishNow(*client_, Request("late"), 300);
  auto took = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDeadlineExceeded) << r.status();
  // On the stream, the client's own timer (a unary call has gRPC's deadline).
  if (GetParam()) {
    EXPECT_THAT(r.status().message(), HasSubstr("within 300 ms"));
  }
  EXPECT_GE(took, Ms(250));
  EXPECT_LT(took, Ms(1'500));
  // The broker answers `late` after all; the next request is answered as its own.
  broker_process_->process().Signal(SIGCONT);
  auto next = PublishNow(*client_, Request("next"));
  ASSERT_TRUE(next.ok()) << next.status();
  EXPECT_EQ(next->applied(), 1u);
}

TEST_P(GrpcBrokerClientFrozenTest, DestroyingTheClientAnswersWhatIsPending) {
  std::atomic<int> answered{0};
  for (int i = 0; i < 3; ++i) {
    client_->Publish(Request("p" + std::to_string(i)), 10'000, [&](auto r) {
      EXPECT_EQ(r.status().code(), absl::StatusCode::kCancelled) << r.status();
      ++answered;
    });
  }
  auto start = std::chrono::steady_clock::now();
  client_.reset();
  EXPECT_EQ(answered, 3) << "every done runs before the destructor returns";
  EXPECT_LT(std::chrono::steady_clock::now() - start, Ms(1'000));
}

// A `done` that destroys its client would wait for itself: a message and
// an abort instead of a hang.
TEST_P(GrpcBrokerClientTest, DestroyingTheClientFromItsCallbackAbortsWithAMessage) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        auto client = Client().release();
        std::promise<void> never;
        client->Publish(Request("self"), 2'000, [client](auto) { delete client; });
        never.get_future().wait_for(std::chrono::seconds(5));
      },
      "destroyed from its own callback");
}

// A broker from before PublishStream: only Publish is implemented.
class UnaryOnlyBroker final : public v1::CredentialBroker::CallbackService {
 public:
  grpc::ServerUnaryReactor* Publish(grpc::CallbackServerContext* context,
                                    const v1::PublishRequest* request,
                                    v1::PublishResponse* response) override {
    response->set_revision(++calls);
    response->set_applied(request->credentials_size());
    auto* reactor = context->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }
  std::atomic<int> calls{0};
};

TEST(GrpcBrokerClientFallbackTest, ABrokerWithoutPublishStreamGetsUnaryCalls) {
  UnaryOnlyBroker service;
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  ASSERT_NE(port, 0);
  auto client = NewClient(port);
  // Several at once: those pending on the refused stream are sent again.
  constexpr int kCount = 20;
  std::atomic<int> answered{0};
  for (int i = 0; i < kCount; ++i) {
    client->Publish(Request("u" + std::to_string(i)), 2'000, [&](auto r) {
      EXPECT_TRUE(r.ok()) << r.status();
      ++answered;
    });
  }
  ASSERT_TRUE(testing::WaitFor([&] { return answered == kCount; }));
  EXPECT_EQ(service.calls, kCount);
  ASSERT_TRUE(PublishNow(*client, Request("later")).ok());
  EXPECT_EQ(service.calls, kCount + 1);
  client.reset();
  server->Shutdown(std::chrono::system_clock::now() + Ms(500));
}

}  // namespace
}  // namespace turnbroker::pcscf
