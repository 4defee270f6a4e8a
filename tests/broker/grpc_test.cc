// The service over real gRPC sockets (an in-process broker on port 0).
#include <gmock/gmock.h>
#include <google/protobuf/unknown_field_set.h>
#include <grpcpp/support/sync_stream.h>
#include <gtest/gtest.h>

#include <future>
#include <set>
#include <thread>

#include "broker_client.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "in_process_broker.h"
#include "process.h"
#include "turnbroker/broker/planner.h"
#include "turnbroker/broker/server.h"
#include "watch_client.h"

namespace turnbroker::broker {
namespace {

using testing::BrokerClient;
using ::testing::HasSubstr;
using ::testing::StartsWith;
using testing::WatchClient;
using Marker = v1::WatchResponse;

v1::Credential Cred(const std::string& username, const std::string& realm = "ims.example.org") {
  return testing::TestCredential(username, realm, 600'000);
}

class GrpcTest : public ::testing::Test {
 protected:
  void SetUp() override { Start(); }

  void Start() {
    server_.reset();
    BrokerOptions o = options_;
    o.ephemeral = true;
    testing::InProcessBroker b;
    ASSERT_NO_FATAL_FAILURE(testing::StartInProcessBroker(o, &b));
    server_ = std::move(b.server);
    channel_ = b.channel;
    stub_ = v1::CredentialBroker::NewStub(channel_);
    client_ = std::make_unique<BrokerClient>(channel_);
  }

  grpc::Status Publish(const std::vector<v1::Credential>& creds,
                       v1::PublishResponse* out = nullptr) {
    return client_->Publish(creds, out);
  }
  grpc::Status Revoke(const std::string& username, v1::RevokeResponse* out = nullptr) {
    return client_->RevokeUsername(username, out);
  }
  v1::GetStatusResponse Status() { return client_->Status(); }
  v1::WatchRequest Resume(uint64_t revision, const std::string& epoch) {
    v1::WatchRequest r;
    r.set_resume_revision(revision);
    r.set_resume_epoch(epoch);
    return r;
  }
  static std::vector<std::string> PutNames(const WatchClient::Responses& rs) {
    std::vector<std::string> out;
    for (const auto& e : WatchClient::Events(rs))
      if (e.has_put()) out.push_back(e.put().username());
    return out;
  }

  BrokerOptions options_;
  std::unique_ptr<BrokerServer> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::CredentialBroker::Stub> stub_;
  std::unique_ptr<BrokerClient> client_;
};

TEST_F(GrpcTest, PublishThenWatchReceivesIt) {
  WatchClient w(channel_, v1::WatchRequest());
  ASSERT_TRUE(w.WaitFor([](auto& rs) { return WatchClient::Count(rs, Marker::SYNCED) == 1; }));
  auto rs = w.responses();
  EXPECT_EQ(rs.front().marker(), Marker::SNAPSHOT_BEGIN);
  EXPECT_EQ(rs.front().snapshot_reason(), Marker::NO_RESUME_POINT);
  v1::PublishResponse ack;
  ASSERT_TRUE(Publish({Cred("alice")}, &ack).ok());
  ASSERT_TRUE(w.WaitFor([](auto& rs) { return PutNames(rs).size() == 1; }));
  rs = w.responses();
  const auto& last = rs.back();
  EXPECT_EQ(last.marker(), Marker::EVENTS);
  EXPECT_EQ(last.revision(), ack.revision());
  EXPECT_EQ(last.epoch(), ack.epoch());
  ASSERT_EQ(last.events_size(), 1);
  EXPECT_EQ(last.events(0).put().username(), "alice");
  EXPECT_EQ(last.events(0).put().key(), std::string(16, 'k'));  // watchers get the key
}

TEST_F(GrpcTest, WatchFromAnOldRevisionReplaysExactlyTheMissedEvents) {
  for (int i = 1; i <= 5; ++i) ASSERT_TRUE(Publish({Cred("u" + std::to_string(i))}).ok());
  ASSERT_TRUE(Revoke("u1").ok());
  std::string epoch = Status().epoch();
  WatchClient w(channel_, Resume(2, epoch));
  ASSERT_TRUE(w.WaitFor([](auto& rs) { return WatchClient::Count(rs, Marker::SYNCED) == 1; }));
  auto rs = w.responses();
  EXPECT_EQ(WatchClient::Count(rs, Marker::SNAPSHOT_BEGIN), 0);
  auto events = WatchClient::Events(rs);
  ASSERT_EQ(events.size(), 4u);
  for (size_t i = 0; i < events.size(); ++i) EXPECT_EQ(events[i].revision(), i + 3);
  EXPECT_TRUE(events[3].has_revoke());
  EXPECT_EQ(WatchClient::Last(rs, Marker::SYNCED)->revision(), 6u);
  // ...then live events.
  ASSERT_TRUE(Publish({Cred("u6")}).ok());
  ASSERT_TRUE(w.WaitFor([](auto& rs) { return WatchClient::Events(rs).size() == 5; }));
  EXPECT_EQ(WatchClient::Events(w.responses()).back().revision(), 7u);
}

TEST_F(GrpcTest, ResumeOlderThanHistoryGetsSnapshotThenSyncedThenLive) {
  options_.store.state.history_max_events = 3;
  Start();
  for (int i = 1; i <= 6; ++i) ASSERT_TRUE(Publish({Cred("u" + std::to_string(i))}).ok());
  ASSERT_TRUE(Revoke("u2").ok());  // revision 7; history holds 5..7
  std::string epoch = Status().epoch();
  WatchClient w(channel_, Resume(1, epoch));
  ASSERT_TRUE(w.WaitFor([](auto& rs) { return WatchClient::Count(rs, Marker::SYNCED) == 1; }));
  auto rs = w.responses();
  ASSERT_EQ(rs.front().marker(), Marker::SNAPSHOT_BEGIN);
  EXPECT_EQ(rs.front().snapshot_reason(), Marker::HISTORY_COMPACTED);
  auto names = PutNames(rs);
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"u1", "u3", "u4", "u5", "u6"}));
  for (const auto& r : rs)
    if (r.marker() == Marker::EVENTS) {
      EXPECT_EQ(r.revision(), 0u) << "no resume point inside a snapshot";
    }
  EXPECT_EQ(WatchClient::Last(rs, Marker::SYNCED)->revision(), 7u);
  ASSERT_TRUE(Publish({Cred("u7")}).ok());
  ASSERT_TRUE(w.WaitFor([](auto& rs) { return rs.back().revision() == 8; }));
}

TEST_F(GrpcTest, AnotherEpochOrARevisionAheadGetsASnapshot) {
  ASSERT_TRUE(Publish({Cred("a")}).ok());
  std::string epoch = Status().epoch();
  WatchClient other_epoch(channel_, Resume(1, "0123456789abcdef"));
  WatchClient ahead(channel_, Resume(99, epoch));
  for (auto* w : {&other_epoch, &ahead})
    ASSERT_TRUE(w->WaitFor([](auto& rs) { return WatchClient::Count(rs, Marker::SYNCED) == 1; }));
  EXPECT_EQ(other_epoch.responses().front().snapshot_reason(), Marker::EPOCH_CHANGED);
  EXPECT_EQ(ahead.responses().front().snapshot_reason(), Marker::REVISION_AHEAD);
  EXPECT_EQ(PutNames(ahead.responses()), std::vector<std::string>{"a"});
}

// A watcher that kept keys across an epoch change learns from the snapshot
// which usernames were revoked before it (docs/architecture.md, "Snapshots
// carry the revoked usernames").
TEST_F(GrpcTest, ASnapshotCarriesTheRevokedUsernamesBeforeSynced) {
  ASSERT_TRUE(Publish({Cred("a"), Cred("b")}).ok());
  ASSERT_TRUE(Revoke("b").ok());
  ASSERT_TRUE(Revoke("never-published").ok());
  WatchClient w(channel_, Resume(1, "0123456789abcdef"));
  ASSERT_TRUE(w.WaitFor([](auto& rs) { return WatchClient::Count(rs, Marker::SYNCED) == 1; }));
  // (realm, username): a live credential's realm, or every realm ("") for
  // a username that matched nothing.
  std::set<std::pair<std::string, std::string>> revoked;
  for (const auto& r : w.responses()) {
    if (r.marker() == Marker::SYNCED) break;
    for (const auto& e : r.events()) {
      if (!e.has_revoke()) continue;
      EXPECT_EQ(e.revoke().revoked_at_ms(), 0) << "not news: no revocation delay to measure";
      revoked.insert(
          {e.revoke().selector().username().realm(), e.revoke().selector().username().username()});
    }
  }
  EXPECT_EQ(revoked, (std::set<std::pair<std::string, std::string>>{{"ims.example.org", "b"},
                                                                    {"", "never-published"}}));
  EXPECT_EQ(PutNames(w.responses()), std::vector<std::string>{"a"});
}

TEST_F(GrpcTest, ProgressArrivesOnAnIdleStream) {
  ASSERT_TRUE(Publish({Cred("a")}).ok());
  v1::WatchRequest r = Resume(1, Status().epoch());
  r.set_progress_interval_ms(200);
  WatchClient w(channel_, r);
  ASSERT_TRUE(w.WaitFor([](auto& rs) { return WatchClient::Count(rs, Marker::PROGRESS) >= 2; },
                        std::chrono::seconds(5)));
  EXPECT_EQ(WatchClient::Last(w.responses(), Marker::PROGRESS)->revision(), 1u);
}

TEST_F(GrpcTest, FilteredWatcherAdvancesThroughProgress) {
  v1::WatchRequest r;
  r.add_realms("b.example.org");
  r.set_progress_interval_ms(100);
  WatchClient w(channel_, r);
  ASSERT_TRUE(w.WaitFor([](auto& rs) { return WatchClient::Count(rs, Marker::SYNCED) == 1; }));
  ASSERT_TRUE(Publish({Cred("x", "a.example.org"), Cred("y", "b.example.org")}).ok());
  ASSERT_TRUE(Publish({Cred("z", "a.example.org")}).ok());
  ASSERT_TRUE(w.WaitFor([](auto& rs) {
    return !rs.empty() && rs.back().marker() == Marker::PROGRESS && rs.back().revision() == 3;
  }));
  EXPECT_EQ(PutNames(w.responses()), std::vector<std::string>{"y"});
}

TEST_F(GrpcTest, ScopedCredentialsGoOnlyToTheirFarms) {
  auto scoped = Cred("s");
  scoped.add_scopes("farm-a");
  ASSERT_TRUE(Publish({scoped, Cred("open")}).ok());
  v1::WatchRequest a, b, all;
  a.set_farm("farm-a");
  b.set_farm("farm-b");
  all.set_all_scopes(true);
  WatchClient wa(channel_, a), wb(channel_, b), wall(channel_, all);
  for (auto* w : {&wa, &wb, &wall})
    ASSERT_TRUE(w->WaitFor([](auto& rs) { return WatchClient::Count(rs, Marker::SYNCED) == 1; }));
  auto sorted = [](std::vector<std::string> v) {
    std::sort(v.begin(), v.end());
    return v;
  };
  EXPECT_EQ(sorted(PutNames(wa.responses())), (std::vector<std::string>{"open", "s"}));
  EXPECT_EQ(PutNames(wb.responses()), std::vector<std::string>{"open"});
  EXPECT_EQ(sorted(PutNames(wall.responses())), (std::vector<std::string>{"open", "s"}));
}

TEST_F(GrpcTest, BadInputGetsInvalidArgumentNamingTheFieldAndChangesNothing) {
  ASSERT_TRUE(Publish({Cred("keep")}).ok());
  auto bad = Cred("bad");
  bad.set_key("123");
  grpc::Status s = Publish({Cred("fine"), bad});
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), StartsWith("credentials[1].key:"));
  s = Publish({});
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);

  v1::RevokeRequest rv;
  rv.mutable_selector()->set_subscriber("has space");
  v1::RevokeResponse rr;
  grpc::ClientContext c1;
  s = stub_->Revoke(&c1, rv, &rr);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), StartsWith("selector.subscriber:"));

  v1::GetRequest get;
  get.mutable_ref()->set_username("");
  v1::GetResponse gr;
  grpc::ClientContext c2;
  s = stub_->Get(&c2, get, &gr);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), StartsWith("ref.username:"));

  v1::ListRequest list;
  list.set_page_token("not-a-token");
  v1::ListResponse lr;
  grpc::ClientContext c3;
  s = stub_->List(&c3, list, &lr);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), StartsWith("page_token:"));

  v1::WatchRequest w1;
  w1.add_realms("bad realm");
  WatchClient bad_watch(channel_, w1);
  ASSERT_TRUE(bad_watch.WaitForEnd());
  EXPECT_EQ(bad_watch.finished()->error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(bad_watch.finished()->error_message(), StartsWith("realms[0]:"));
  v1::WatchRequest w2;
  w2.set_resume_revision(3);
  WatchClient no_epoch(channel_, w2);
  ASSERT_TRUE(no_epoch.WaitForEnd());
  EXPECT_THAT(no_epoch.finished()->error_message(), StartsWith("resume_epoch:"));

  auto st = Status();
  EXPECT_EQ(st.revision(), 1u);
  EXPECT_EQ(st.live_credentials(), 1u);
}

TEST_F(GrpcTest, GetAndListNeverReturnKeys) {
  ASSERT_TRUE(Publish({Cred("a"), Cred("b"), Cred("c", "other.example.org")}).ok());
  v1::GetRequest get;
  get.mutable_ref()->set_username("a");
  v1::GetResponse gr;
  grpc::ClientContext c1;
  ASSERT_TRUE(stub_->Get(&c1, get, &gr).ok());
  EXPECT_EQ(gr.credential().credential().username(), "a");
  EXPECT_TRUE(gr.credential().credential().key().empty());
  EXPECT_EQ(gr.credential().revision(), 1u);

  v1::ListRequest list;
  list.set_page_size(1);
  std::vector<std::string> names;
  for (;;) {
    v1::ListResponse lr;
    grpc::ClientContext c;
    ASSERT_TRUE(stub_->List(&c, list, &lr).ok());
    for (const auto& info : lr.credentials()) {
      names.push_back(info.credential().username());
      EXPECT_TRUE(info.credential().key().empty());
    }
    if (lr.next_page_token().empty()) break;
    list.set_page_token(lr.next_page_token());
  }
  EXPECT_EQ(names, (std::vector<std::string>{"a", "b", "c"}));

  get.mutable_ref()->set_username("zz");
  grpc::ClientContext c2;
  EXPECT_EQ(stub_->Get(&c2, get, &gr).error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_F(GrpcTest, PublishersAreRateLimitedPerClient) {
  options_.max_publish_rate = 1;  // refills one a second: never in time here
  options_.max_publish_burst = 100;
  Start();
  std::vector<v1::Credential> batch;
  for (int i = 0; i < 100; ++i) batch.push_back(Cred("r" + std::to_string(i)));
  ASSERT_TRUE(Publish(batch).ok());
  grpc::Status s = Publish({Cred("more1"), Cred("more2"), Cred("more3"), Cred("more4")});
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(s.error_message(), HasSubstr("rate limit: client"));
  EXPECT_EQ(Status().live_credentials(), 100u);
}

TEST_F(GrpcTest, ShutdownFinishesAStreamWhoseWriteIsBlocked) {
  // A snapshot larger than the HTTP/2 windows, to a client that does not
  // read: the stream's write blocks. Shutdown asks the stream to finish; the
  // blocked write then fails, and the stream must still finish, or the
  // server's shutdown waits for it forever.
  for (int b = 0; b < 20; ++b) {
    std::vector<v1::Credential> batch;
    for (int i = 0; i < 2000; ++i)
      batch.push_back(Cred("c" + std::to_string(b) + "-" + std::to_string(i)));
    ASSERT_TRUE(Publish(batch).ok());
  }
  // A client whose HTTP/2 window stays small, so the server's writes block.
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_HTTP2_BDP_PROBE, 0);
  args.SetInt(GRPC_ARG_HTTP2_STREAM_LOOKAHEAD_BYTES, 1024);
  auto small_window = grpc::CreateCustomChannel("127.0.0.1:" + std::to_string(server_->port()),
                                                grpc::InsecureChannelCredentials(), args);
  WatchClient stalled(small_window, v1::WatchRequest(), /*start_paused=*/true);
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  ASSERT_EQ(Status().watchers(), 1u);
  auto done = std::async(std::launch::async, [&] { server_->Shutdown(); });
  if (done.wait_for(std::chrono::seconds(6)) != std::future_status::ready) {
    ADD_FAILURE() << "shutdown hangs on a stream whose write was blocked";
    std::_Exit(1);  // the server cannot be destroyed: end here, loudly
  }
}

// The services a server lists through gRPC reflection
// (grpc.reflection.v1alpha, as grpcurl asks). Debian ships the server side
// only (no reflection.proto, no ProtoReflectionDescriptorDatabase), so the
// request and the answer are encoded here by hand:
//   ServerReflectionRequest{list_services = 7: ""}
//   ServerReflectionResponse{list_services_response = 6:
//       ListServiceResponse{service = 1: ServiceResponse{name = 1}}}
std::vector<std::string> ReflectedServices(const std::shared_ptr<grpc::Channel>& channel,
                                           grpc::Status* status) {
  static const grpc::internal::RpcMethod kMethod(
      "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
      grpc::internal::RpcMethod::BIDI_STREAMING);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  std::unique_ptr<grpc::ClientReaderWriter<grpc::ByteBuffer, grpc::ByteBuffer>> stream(
      grpc::internal::ClientReaderWriterFactory<grpc::ByteBuffer, grpc::ByteBuffer>::Create(
          channel.get(), kMethod, &ctx));
  const std::string request("\x3a\x00", 2);
  grpc::Slice slice(request);
  grpc::ByteBuffer out(&slice, 1);
  std::vector<std::string> names;
  grpc::ByteBuffer in;
  if (stream->Write(out) && stream->WritesDone() && stream->Read(&in)) {
    std::vector<grpc::Slice> slices;
    std::string bytes;
    if (in.Dump(&slices).ok())
      for (const auto& s : slices) bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
    google::protobuf::UnknownFieldSet response;
    if (response.ParseFromString(bytes)) {
      for (int i = 0; i < response.field_count(); ++i) {
        const auto& f = response.field(i);
        if (f.number() != 6 || f.type() != google::protobuf::UnknownField::TYPE_LENGTH_DELIMITED)
          continue;
        google::protobuf::UnknownFieldSet list;
        if (!list.ParseFromString(f.length_delimited())) continue;
        for (int j = 0; j < list.field_count(); ++j) {
          if (list.field(j).number() != 1) continue;
          google::protobuf::UnknownFieldSet service;
          if (!service.ParseFromString(list.field(j).length_delimited())) continue;
          for (int k = 0; k < service.field_count(); ++k)
            if (service.field(k).number() == 1)
              names.push_back(service.field(k).length_delimited());
        }
      }
    }
  }
  *status = stream->Finish();
  return names;
}

TEST_F(GrpcTest, HealthAndReflectionAreServed) {
  auto health = grpc::health::v1::Health::NewStub(channel_);
  grpc::health::v1::HealthCheckResponse hr;
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  ASSERT_TRUE(health->Check(&ctx, {}, &hr).ok());
  EXPECT_EQ(hr.status(), grpc::health::v1::HealthCheckResponse::SERVING);
  auto st = Status();
  EXPECT_EQ(st.store(), "ephemeral");
  EXPECT_EQ(st.epoch().size(), 32u);

  grpc::Status reflection;
  auto services = ReflectedServices(channel_, &reflection);
  EXPECT_TRUE(reflection.ok()) << reflection.error_message();
  EXPECT_THAT(services, ::testing::Contains("turnbroker.v1.CredentialBroker"));
  EXPECT_THAT(services, ::testing::Contains("grpc.health.v1.Health"));
}

TEST_F(GrpcTest, AWatcherReceivesEveryPartOfALargeRevocation) {
  constexpr int kMatching = 2 * static_cast<int>(kMaxCredentialsPerRevocation) + 5'000;
  for (int first = 0; first < kMatching; first += 10'000) {
    std::vector<v1::Credential> batch;
    for (int i = first; i < std::min(kMatching, first + 10'000); ++i) {
      batch.push_back(Cred("u" + std::to_string(i)));
      batch.back().set_issuer("pcscf-1");
    }
    ASSERT_TRUE(Publish(batch).ok());
  }
  const uint64_t before = kMatching;
  WatchClient w(channel_, Resume(before, Status().epoch()));
  ASSERT_TRUE(w.WaitFor([](auto& rs) { return WatchClient::Count(rs, Marker::SYNCED) == 1; }));

  v1::RevokeRequest by_issuer;
  by_issuer.mutable_selector()->set_issuer("pcscf-1");
  v1::RevokeResponse ack;
  ASSERT_TRUE(client_->Revoke(by_issuer, &ack).ok());
  EXPECT_EQ(ack.revoked(), static_cast<uint32_t>(kMatching));
  EXPECT_EQ(ack.revision(), before + 3);

  ASSERT_TRUE(w.WaitFor([&](auto& rs) { return WatchClient::Events(rs).size() == 3; }));
  auto events = WatchClient::Events(w.responses());
  std::set<std::string> revoked;
  for (size_t i = 0; i < events.size(); ++i) {
    EXPECT_EQ(events[i].revision(), before + 1 + i);
    ASSERT_TRUE(events[i].has_revoke());
    EXPECT_LE(static_cast<size_t>(events[i].revoke().credentials_size()),
              kMaxCredentialsPerRevocation);
    for (const auto& ref : events[i].revoke().credentials()) revoked.insert(ref.username());
  }
  EXPECT_EQ(revoked.size(), static_cast<size_t>(kMatching));
  EXPECT_EQ(w.responses().back().revision(), ack.revision());
}

TEST_F(GrpcTest, ShutdownEndsStreamsWithUnavailable) {
  WatchClient w(channel_, v1::WatchRequest());
  ASSERT_TRUE(w.WaitFor([](auto& rs) { return WatchClient::Count(rs, Marker::SYNCED) == 1; }));
  server_->Shutdown();
  ASSERT_TRUE(w.WaitForEnd());
  EXPECT_EQ(w.finished()->error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_THAT(w.finished()->error_message(), HasSubstr("reconnect"));
}

v1::PublishStreamRequest StreamRequest(uint64_t id, const std::vector<v1::Credential>& creds) {
  v1::PublishStreamRequest r;
  r.set_id(id);
  for (const auto& c : creds) *r.mutable_request()->add_credentials() = c;
  return r;
}

TEST_F(GrpcTest, PublishStreamAnswersEveryRequestByIdInOrderAndARefusalDoesNotEndIt) {
  grpc::ClientContext ctx;
  auto stream = stub_->PublishStream(&ctx);
  auto bad = Cred("bad");
  bad.set_key("123");
  ASSERT_TRUE(stream->Write(StreamRequest(7, {Cred("alice")})));
  ASSERT_TRUE(stream->Write(StreamRequest(8, {Cred("fine"), bad})));
  ASSERT_TRUE(stream->Write(StreamRequest(9, {})));
  ASSERT_TRUE(stream->Write(StreamRequest(10, {Cred("bob")})));
  std::vector<v1::PublishStreamResponse> answers(4);
  for (auto& a : answers) ASSERT_TRUE(stream->Read(&a));
  EXPECT_EQ(answers[0].id(), 7u);
  EXPECT_EQ(answers[0].code(), 0);
  EXPECT_EQ(answers[0].response().applied(), 1u);
  EXPECT_EQ(answers[0].response().epoch(), Status().epoch());
  EXPECT_EQ(answers[1].id(), 8u);
  EXPECT_EQ(answers[1].code(), static_cast<int>(grpc::StatusCode::INVALID_ARGUMENT));
  EXPECT_THAT(answers[1].message(), StartsWith("credentials[1].key:"));
  EXPECT_FALSE(answers[1].has_response());
  EXPECT_EQ(answers[2].id(), 9u);
  EXPECT_EQ(answers[2].code(), static_cast<int>(grpc::StatusCode::INVALID_ARGUMENT));
  EXPECT_EQ(answers[3].id(), 10u);
  EXPECT_EQ(answers[3].code(), 0);
  EXPECT_GT(answers[3].response().revision(), answers[0].response().revision());
  ASSERT_TRUE(stream->WritesDone());
  EXPECT_TRUE(stream->Finish().ok());
  // What was accepted is live; nothing of the refused batch is.
  EXPECT_TRUE(client_->Get("alice").ok());
  EXPECT_TRUE(client_->Get("bob").ok());
  EXPECT_EQ(client_->Get("fine").error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_F(GrpcTest, APublishStreamFasterThanTheBrokerIsPausedNotRefused) {
  // More requests than the broker lets wait unanswered (1000): it stops
  // reading until it has answered, and every one is answered, in order.
  constexpr uint64_t kCount = 3000;
  grpc::ClientContext ctx;
  auto stream = stub_->PublishStream(&ctx);
  std::thread writer([&] {
    for (uint64_t i = 1; i <= kCount; ++i)
      ASSERT_TRUE(stream->Write(StreamRequest(i, {Cred("u" + std::to_string(i))})));
    stream->WritesDone();
  });
  v1::PublishStreamResponse a;
  uint64_t next = 1;
  while (stream->Read(&a)) {
    EXPECT_EQ(a.id(), next);
    EXPECT_EQ(a.code(), 0) << a.message();
    ++next;
  }
  writer.join();
  EXPECT_EQ(next, kCount + 1);
  EXPECT_TRUE(stream->Finish().ok());
  EXPECT_EQ(Status().live_credentials(), kCount);
}

TEST_F(GrpcTest, ShutdownEndsPublishStreamsWithUnavailableAfterAnsweringThem) {
  grpc::ClientContext ctx;
  auto stream = stub_->PublishStream(&ctx);
  ASSERT_TRUE(stream->Write(StreamRequest(1, {Cred("alice")})));
  v1::PublishStreamResponse a;
  ASSERT_TRUE(stream->Read(&a));
  EXPECT_EQ(a.code(), 0);
  server_->Shutdown();
  EXPECT_FALSE(stream->Read(&a));
  grpc::Status s = stream->Finish();
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_THAT(s.error_message(), HasSubstr("reconnect"));
}

TEST_F(GrpcTest, ARateLimitedRequestIsCountedOnceWhetherUnaryOrStreamed) {
  options_.max_publish_rate = 1;  // refills one a second: never in time here
  options_.max_publish_burst = 2;
  Start();
  ASSERT_TRUE(Publish({Cred("a")}).ok());
  EXPECT_EQ(Publish({Cred("b"), Cred("c")}).error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  grpc::ClientContext ctx;
  auto stream = stub_->PublishStream(&ctx);
  ASSERT_TRUE(stream->Write(StreamRequest(1, {Cred("d")})));
  ASSERT_TRUE(stream->Write(StreamRequest(2, {Cred("e")})));
  v1::PublishStreamResponse a;
  ASSERT_TRUE(stream->Read(&a));
  EXPECT_EQ(a.code(), 0) << a.message();
  ASSERT_TRUE(stream->Read(&a));
  EXPECT_EQ(a.code(), static_cast<int>(grpc::StatusCode::RESOURCE_EXHAUSTED));
  ASSERT_TRUE(stream->WritesDone());
  EXPECT_TRUE(stream->Finish().ok());
  std::string metrics = server_->metrics().Render();
  EXPECT_THAT(metrics,
              HasSubstr("turnbroker_requests_total{method=\"publish\",result=\"ok\"} 2\n"));
  EXPECT_THAT(metrics,
              HasSubstr("turnbroker_requests_total{method=\"publish\",result=\"error\"} 2\n"));
  EXPECT_THAT(metrics, HasSubstr("turnbroker_rate_limited_total{method=\"publish\"} 2\n"));
}

}  // namespace
}  // namespace turnbroker::broker
