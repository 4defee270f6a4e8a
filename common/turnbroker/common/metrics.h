// Prometheus metrics: counters, gauges and histograms that hot paths update
// with one relaxed atomic, rendered in the text exposition format, and a tiny
// HTTP server for /metrics and /healthz.
#ifndef TURNBROKER_COMMON_METRICS_H_
#define TURNBROKER_COMMON_METRICS_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "turnbroker/common/http_server.h"
#include "turnbroker/common/net.h"

namespace turnbroker {

class Counter {
 public:
  void Inc(uint64_t n = 1) { value_.fetch_add(n, std::memory_order_relaxed); }
  uint64_t value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> value_{0};
};

class Gauge {
 public:
  void Set(int64_t v) { value_.store(v, std::memory_order_relaxed); }
  void Add(int64_t d) { value_.fetch_add(d, std::memory_order_relaxed); }
  int64_t value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<int64_t> value_{0};
};

// Latency histogram in seconds with fixed upper bounds.
class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds);
  void ObserveMicros(int64_t micros);
  void Render(std::string* out, std::string_view name, std::string_view labels) const;

  // 50us .. 10s, for request and delivery latencies.
  static std::vector<double> LatencyBounds();

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> counts_;  // bounds_.size() + 1
  std::atomic<uint64_t> sum_micros_{0};
};

// Owns the metrics of one process. Add* at start-up (not thread-safe with
// Render); the returned pointers live as long as the registry and are
// thread-safe to update.
class MetricsRegistry {
 public:
  MetricsRegistry();
  ~MetricsRegistry();

  // `labels` like `result="ok"`, or empty. Families (same name) must have
  // the same type and help.
  Counter* AddCounter(std::string name, std::string help, std::string labels = "");
  Gauge* AddGauge(std::string name, std::string help, std::string labels = "");
  Histogram* AddHistogram(std::string name, std::string help, std::string labels = "",
                          std::vector<double> bounds = Histogram::LatencyBounds());
  // A gauge computed when scraped. `fn` must be thread-safe.
  void AddGaugeFunction(std::string name, std::string help, std::function<double()> fn);
  // A family of gauges computed when scraped, whose label sets change:
  // `fn` returns (labels like `realm="r",id="x"`, value) pairs. `fn` must be
  // thread-safe, and the label values already valid in the format.
  using Samples = std::vector<std::pair<std::string, double>>;
  void AddGaugeFamilyFunction(std::string name, std::string help, std::function<Samples()> fn);
  // The same for a family of counters (`fn` returns each one's total).
  void AddCounterFamilyFunction(std::string name, std::string help, std::function<Samples()> fn);

  // The text exposition format (version 0.0.4).
  std::string Render() const;

 private:
  struct Entry;
  std::vector<std::unique_ptr<Entry>> entries_;
};

// Serves GET /metrics (the registry) and GET /healthz (200 {"status":"ok"}
// while `healthy()` is true, else 503) with an HttpServer (its deadlines and
// connection limits apply).
class MetricsServer {
 public:
  MetricsServer();
  ~MetricsServer();  // stops

  absl::Status Start(const HostPort& listen, const MetricsRegistry* registry,
                     std::function<bool()> healthy);
  int port() const { return port_; }
  void Stop();

 private:
  HttpServer server_;
  int port_ = 0;
};

}  // namespace turnbroker

#endif  // TURNBROKER_COMMON_METRICS_H_
