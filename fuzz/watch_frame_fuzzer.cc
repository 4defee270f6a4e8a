// libFuzzer target: the TURN side's handling of Watch frames from the
// broker (turn-plugin: CredentialSync decoding each WatchResponse and
// applying it to coturn's user database, here an in-memory Redis). The
// input is a sequence of frames, each a 2-byte length and a WatchResponse
// encoding; any sequence must end in an error or a consistent state, never
// a crash.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>

#include "fake_redis.h"
#include "quiet_protobuf.h"
#include "turnbroker/common/clock.h"
#include "turnbroker/common/log.h"
#include "turnbroker/common/metrics.h"
#include "turnbroker/turn/sync.h"
#include "turnbroker/turn/sync_metrics.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  turnbroker::fuzz::QuietProtobuf();
  // Info and warning lines (a snapshot begins, an event refused) come with
  // nearly every input: 2 GB of log per 4M inputs, and much of the time.
  // Errors still go through the log's formatting of hostile strings.
  static bool quiet =
      (turnbroker::InitLogging("watch_frame_fuzzer", turnbroker::LogLevel::kError), true);
  (void)quiet;
  using namespace turnbroker;
  using namespace turnbroker::turn;
  static MetricsRegistry* registry = new MetricsRegistry();
  static ManualClock* clock = new ManualClock(1'700'000'000'000);
  static SyncMetrics* metrics = new SyncMetrics(registry, clock);
  testing::FakeRedis redis(clock);
  SyncOptions o;
  o.name = "fuzz";
  o.realms = {"example.org"};
  o.farm = "farm-a";
  CredentialSync sync(o, &redis, clock, metrics);
  if (!sync.Prepare().ok()) return 0;
  size_t pos = 0;
  while (pos + 2 <= size) {
    size_t len = (static_cast<size_t>(data[pos]) << 8) | data[pos + 1];
    pos += 2;
    len = std::min(len, size - pos);
    v1::WatchResponse frame;
    if (!frame.ParseFromArray(data + pos, static_cast<int>(len))) return 0;
    pos += len;
    if (!sync.OnFrame(frame).ok()) return 0;  // the loop would reconnect
  }
  return 0;
}
