// The floor of one gRPC stream hop, measured like the benchmarks measure the
// broker: one bidirectional stream to a server that echoes each message (an
// 8-byte sequence number) and does nothing else; open-loop sends scheduled by
// the clock, latency from the scheduled time to the echo, the first 0.5 s
// left out (open_loop.h). grpc_floor_bench's stream path, and the stream
// floor beside turn_sync_bench's publish -> visible figures. The server runs
// in a child process (the benchmark with --serve), as the broker does.
#ifndef TURNBROKER_BENCH_STREAM_FLOOR_H_
#define TURNBROKER_BENCH_STREAM_FLOOR_H_

#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "open_loop.h"
#include "percentiles.h"
#include "process.h"
#include "turnbroker/common/clock.h"
#include "write_queue.h"

namespace turnbroker::bench {

inline constexpr char kStreamEchoMethod[] = "/turnbroker.bench.Floor/Echo";

inline grpc::ByteBuffer EncodeSeq(uint64_t seq) {
  grpc::Slice slice(&seq, sizeof seq);
  return grpc::ByteBuffer(&slice, 1);
}

// The sequence number a stream message carries, or UINT64_MAX.
inline uint64_t DecodeSeq(const grpc::ByteBuffer& buffer) {
  grpc::Slice slice;
  if (!buffer.DumpToSingleSlice(&slice).ok() || slice.size() != sizeof(uint64_t)) return UINT64_MAX;
  uint64_t seq;
  std::memcpy(&seq, slice.begin(), sizeof seq);
  return seq;
}

// ---- server side (child process) -----------------------------------------

class StreamEcho final : public grpc::ServerGenericBidiReactor {
 public:
  StreamEcho() { StartRead(&in_); }
  void OnReadDone(bool ok) override {
    if (!ok) {
      Finish(grpc::Status::OK);
      return;
    }
    writes_.Push(EncodeSeq(DecodeSeq(in_)));
    StartRead(&in_);
  }
  void OnWriteDone(bool) override { writes_.Done(); }
  void OnDone() override { delete this; }

 private:
  grpc::ByteBuffer in_;
  WriteQueue<StreamEcho, grpc::ByteBuffer> writes_{this};
};

// Runs this program again with `args` (one of its serve modes, which prints
// "serving" once it listens), its output to `log`; nullptr, with that output
// on stderr, if it does not start within 10 s.
inline std::unique_ptr<testing::Subprocess> StartFloorServer(const std::vector<std::string>& args,
                                                             const std::string& log) {
  std::vector<std::string> argv{std::filesystem::read_symlink("/proc/self/exe").string()};
  argv.insert(argv.end(), args.begin(), args.end());
  auto server = std::make_unique<testing::Subprocess>(argv, log);
  if (server->WaitForOutput("serving", std::chrono::seconds(10))) return server;
  std::fprintf(stderr, "bench: the floor server did not start:\n%s\n", server->Output().c_str());
  return nullptr;
}

// ---- client side -----------------------------------------------------------

// The end of a client stream: set by the reactor's OnDone, waited for by
// its Close().
class StreamDone {
 public:
  void Set() {
    std::lock_guard<std::mutex> lock(mu_);
    done_ = true;
    cv_.notify_all();
  }
  void Wait() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [this] { return done_; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
};

class StreamEchoClient final : public grpc::ClientBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer> {
 public:
  // `method`: another stream method that answers each message with its
  // sequence number (grpc_floor_bench's relay).
  StreamEchoClient(grpc::GenericStub* stub, std::vector<int64_t>* arrived,
                   const char* method = kStreamEchoMethod)
      : arrived_(arrived) {
    stub->PrepareBidiStreamingCall(&context_, method, grpc::StubOptions(), this);
    StartRead(&in_);
    StartCall();
  }
  void Send(uint64_t seq) { writes_.Push(EncodeSeq(seq)); }
  void Close() {
    StartWritesDone();
    done_.Wait();
  }
  size_t received() const { return received_.load(); }

  void OnWriteDone(bool) override { writes_.Done(); }
  void OnReadDone(bool ok) override {
    if (!ok) return;
    uint64_t seq = DecodeSeq(in_);
    if (seq < arrived_->size()) (*arrived_)[seq] = MonotonicMicros();
    received_.fetch_add(1);
    StartRead(&in_);
  }
  void OnWritesDoneDone(bool) override {}
  void OnDone(const grpc::Status&) override { done_.Set(); }

 private:
  grpc::ClientContext context_;
  grpc::ByteBuffer in_;
  std::vector<int64_t>* const arrived_;
  std::atomic<size_t> received_{0};
  WriteQueue<StreamEchoClient, grpc::ByteBuffer> writes_{this};
  StreamDone done_;
};

// Round trips on one stream to the echo server at `address`, µs.
inline Percentiles OpenLoopStreamEcho(const std::string& address, int rate, double seconds) {
  const size_t n = static_cast<size_t>(rate * seconds);
  grpc::GenericStub stub(grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
  std::vector<int64_t> arrived(n, 0);
  StreamEchoClient client(&stub, &arrived);
  Percentiles r = OpenLoopRoundTrips(
      rate, [&](size_t i) { client.Send(i); }, [&] { return client.received(); }, arrived);
  client.Close();
  return r;
}

}  // namespace turnbroker::bench

#endif  // TURNBROKER_BENCH_STREAM_FLOOR_H_
