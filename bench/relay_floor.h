// The floor of the broker's whole job, CPU included: a relay that does
// what the broker does for one credential with nothing of the broker in it.
// Watch streams register; each message a Publish stream brings is sent to
// every registered Watch stream, from the thread that read it, and answered
// on the Publish stream. Per message: one read, one answer, one write per
// watcher, and nothing else: no state, no journal, no hand-off between
// threads. grpc_floor_bench's relay path, and the CPU floor broker_bench
// prints beside the broker's CPU per credential (docs/benchmarks.md). The
// server runs in a child process (the benchmark with a serve flag), as the
// broker does, so /proc gives its CPU alone.
#ifndef TURNBROKER_BENCH_RELAY_FLOOR_H_
#define TURNBROKER_BENCH_RELAY_FLOOR_H_

#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "open_loop.h"
#include "percentiles.h"
#include "stream_floor.h"
#include "turnbroker/common/clock.h"
#include "write_queue.h"

namespace turnbroker::bench {

// ---- server side (child process) -----------------------------------------

inline constexpr char kRelayWatchMethod[] = "/turnbroker.bench.Floor/Watch";
inline constexpr char kRelayPublishMethod[] = "/turnbroker.bench.Floor/Publish";
// The first message of a Watch stream: registered, the relay will send.
inline constexpr uint64_t kRegistered = UINT64_MAX - 1;

class RelayWatch;
class RelayWatchers {
 public:
  void Add(RelayWatch* w);
  void Remove(RelayWatch* w) {
    std::lock_guard<std::mutex> lock(mu_);
    watchers_.erase(std::find(watchers_.begin(), watchers_.end(), w));
  }
  void Send(uint64_t seq);

 private:
  std::mutex mu_;
  std::vector<RelayWatch*> watchers_;  // guarded by mu_
};

class RelayWatch final : public grpc::ServerGenericBidiReactor {
 public:
  explicit RelayWatch(RelayWatchers* watchers) : watchers_(watchers) {
    watchers_->Add(this);
    StartRead(&in_);
  }
  void Push(uint64_t seq) { writes_.Push(EncodeSeq(seq)); }
  // The client closes a watcher once it has every message: no write is in
  // flight when it ends.
  void OnReadDone(bool) override {
    watchers_->Remove(this);
    Finish(grpc::Status::OK);
  }
  void OnWriteDone(bool) override { writes_.Done(); }
  void OnDone() override { delete this; }

 private:
  RelayWatchers* const watchers_;
  grpc::ByteBuffer in_;
  WriteQueue<RelayWatch, grpc::ByteBuffer> writes_{this};
};

inline void RelayWatchers::Add(RelayWatch* w) {
  std::lock_guard<std::mutex> lock(mu_);
  watchers_.push_back(w);
  w->Push(kRegistered);
}

inline void RelayWatchers::Send(uint64_t seq) {
  std::lock_guard<std::mutex> lock(mu_);
  for (RelayWatch* w : watchers_) w->Push(seq);
}

class RelayPublish final : public grpc::ServerGenericBidiReactor {
 public:
  explicit RelayPublish(RelayWatchers* watchers) : watchers_(watchers) { StartRead(&in_); }
  void OnReadDone(bool ok) override {
    if (!ok) {
      Finish(grpc::Status::OK);
      return;
    }
    const uint64_t seq = DecodeSeq(in_);
    watchers_->Send(seq);
    writes_.Push(EncodeSeq(seq));
    StartRead(&in_);
  }
  void OnWriteDone(bool) override { writes_.Done(); }
  void OnDone() override { delete this; }

 private:
  RelayWatchers* const watchers_;
  grpc::ByteBuffer in_;
  WriteQueue<RelayPublish, grpc::ByteBuffer> writes_{this};
};

// The relay's methods, and the stream echo (stream_floor.h) for any other.
class RelayService final : public grpc::CallbackGenericService {
  grpc::ServerGenericBidiReactor* CreateReactor(grpc::GenericCallbackServerContext* c) override {
    if (c->method() == kRelayWatchMethod) return new RelayWatch(&watchers_);
    if (c->method() == kRelayPublishMethod) return new RelayPublish(&watchers_);
    return new StreamEcho;
  }
  RelayWatchers watchers_;
};

// The floor server of the benchmarks (their serve modes, started with
// StartFloorServer): the stream echo and the relay (and `more`, if any) on
// 127.0.0.1:`port` until the process is killed, printing "serving" once it
// listens; 1 if it cannot.
inline int ServeFloors(int port, grpc::Service* more = nullptr) {
  RelayService relay;
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:" + std::to_string(port), grpc::InsecureServerCredentials());
  if (more) builder.RegisterService(more);
  builder.RegisterCallbackGenericService(&relay);
  auto server = builder.BuildAndStart();
  if (!server) return 1;
  std::printf("serving\n");
  std::fflush(stdout);
  server->Wait();
  return 0;
}

// ---- client side -----------------------------------------------------------

// A client's Watch stream to the relay: counts each message's arrivals over
// all watchers and stamps it when the last one has it.
class RelayWatcher final : public grpc::ClientBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer> {
 public:
  struct Shared {
    Shared(size_t n, int watchers) : arrivals(n), arrived(n, 0), watchers(watchers) {}
    std::vector<std::atomic<int>> arrivals;
    std::vector<int64_t> arrived;  // when the last watcher had it
    const int watchers;
    std::atomic<size_t> complete{0};
    std::atomic<int> registered{0};
  };
  RelayWatcher(grpc::GenericStub* stub, Shared* shared) : shared_(shared) {
    stub->PrepareBidiStreamingCall(&context_, kRelayWatchMethod, grpc::StubOptions(), this);
    StartRead(&in_);
    StartCall();
  }
  void Close() {
    StartWritesDone();
    done_.Wait();
  }
  void OnReadDone(bool ok) override {
    if (!ok) return;
    const uint64_t seq = DecodeSeq(in_);
    if (seq == kRegistered) {
      shared_->registered.fetch_add(1);
    } else if (seq < shared_->arrived.size() &&
               shared_->arrivals[seq].fetch_add(1) + 1 == shared_->watchers) {
      shared_->arrived[seq] = MonotonicMicros();
      shared_->complete.fetch_add(1);
    }
    StartRead(&in_);
  }
  void OnWritesDoneDone(bool) override {}
  void OnDone(const grpc::Status&) override { done_.Set(); }

 private:
  Shared* const shared_;
  grpc::ClientContext context_;
  grpc::ByteBuffer in_;
  StreamDone done_;
};

// Publish → received by every one of `watchers` Watch streams, each on a
// channel of its own (as the broker's watchers are other processes), µs.
inline Percentiles RunRelay(const std::string& address, int watchers, int rate, double seconds) {
  const size_t n = static_cast<size_t>(rate * seconds);
  RelayWatcher::Shared shared(n, watchers);
  std::vector<std::unique_ptr<grpc::GenericStub>> stubs;
  std::vector<std::unique_ptr<RelayWatcher>> streams;
  for (int i = 0; i < watchers; ++i) {
    grpc::ChannelArguments args;
    args.SetInt("turnbroker.bench.watcher", i);  // a channel (connection) of its own
    stubs.push_back(std::make_unique<grpc::GenericStub>(
        grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args)));
    streams.push_back(std::make_unique<RelayWatcher>(stubs.back().get(), &shared));
  }
  const int64_t deadline = MonotonicMicros() + 10'000'000;
  while (shared.registered.load() < watchers && MonotonicMicros() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  grpc::GenericStub publish_stub(grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
  std::vector<int64_t> acked(n, 0);
  StreamEchoClient publisher(&publish_stub, &acked, kRelayPublishMethod);
  Percentiles r = OpenLoopRoundTrips(
      rate, [&](size_t i) { publisher.Send(i); }, [&] { return shared.complete.load(); },
      shared.arrived);
  publisher.Close();
  for (auto& w : streams) w->Close();
  return r;
}

}  // namespace turnbroker::bench

#endif  // TURNBROKER_BENCH_RELAY_FLOOR_H_
