#include "turnbroker/common/metrics.h"

#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "turnbroker/common/strings.h"

namespace turnbroker {

namespace {

// A sample's value in full: StrCat's six significant digits turned a
// revision of 1,234,567 into "1.23457e+06" and an expiry in Unix seconds
// into one off by minutes.
std::string SampleValue(double v) {
  if (std::isfinite(v) && v == std::trunc(v) && std::fabs(v) < 9.007199254740992e15) {
    return StrCat(static_cast<int64_t>(v));
  }
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[32];
  for (int precision = 15; precision <= 17; ++precision) {  // the shortest exact form
    std::snprintf(buf, sizeof buf, "%.*g", precision, v);
    if (std::strtod(buf, nullptr) == v) break;
  }
  return buf;
}

}  // namespace

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)), counts_(new std::atomic<uint64_t>[bounds_.size() + 1]) {
  for (size_t i = 0; i <= bounds_.size(); ++i) counts_[i] = 0;
}

std::vector<double> Histogram::LatencyBounds() {
  return {0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
          0.05,    0.1,    0.25,    0.5,    1,     2.5,    5,     10};
}

void Histogram::ObserveMicros(int64_t micros) {
  double s = static_cast<double>(micros) / 1e6;
  size_t i = 0;
  while (i < bounds_.size() && s > bounds_[i]) ++i;
  counts_[i].fetch_add(1, std::memory_order_relaxed);
  sum_micros_.fetch_add(static_cast<uint64_t>(micros < 0 ? 0 : micros), std::memory_order_relaxed);
}

void Histogram::Render(std::string* out, std::string_view name, std::string_view labels) const {
  std::string sep = labels.empty() ? "" : StrCat(labels, ",");
  uint64_t cumulative = 0;
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    cumulative += counts_[i].load(std::memory_order_relaxed);
    std::string le = i < bounds_.size() ? StrCat(bounds_[i]) : "+Inf";
    StrAppend(out, name, "_bucket{", sep, "le=\"", le, "\"} ", cumulative, "\n");
  }
  std::string braces = labels.empty() ? "" : StrCat("{", labels, "}");
  StrAppend(out, name, "_sum", braces, " ", SampleValue(sum_micros_.load() / 1e6), "\n");
  StrAppend(out, name, "_count", braces, " ", cumulative, "\n");
}

struct MetricsRegistry::Entry {
  enum Type { kCounter, kGauge, kHistogram, kGaugeFunction, kGaugeFamily, kCounterFamily } type;
  std::string name, help, labels;
  Counter counter;
  Gauge gauge;
  std::unique_ptr<Histogram> histogram;
  std::function<double()> fn;
  std::function<Samples()> family;
};

MetricsRegistry::MetricsRegistry() = default;
MetricsRegistry::~MetricsRegistry() = default;

Counter* MetricsRegistry::AddCounter(std::string name, std::string help, std::string labels) {
  auto e = std::make_unique<Entry>();
  e->type = Entry::kCounter;
  e->name = std::move(name), e->help = std::move(help), e->labels = std::move(labels);
  entries_.push_back(std::move(e));
  return &entries_.back()->counter;
}

Gauge* MetricsRegistry::AddGauge(std::string name, std::string help, std::string labels) {
  auto e = std::make_unique<Entry>();
  e->type = Entry::kGauge;
  e->name = std::move(name), e->help = std::move(help), e->labels = std::move(labels);
  entries_.push_back(std::move(e));
  return &entries_.back()->gauge;
}

Histogram* MetricsRegistry::AddHistogram(std::string name, std::string help, std::string labels,
                                         std::vector<double> bounds) {
  auto e = std::make_unique<Entry>();
  e->type = Entry::kHistogram;
  e->name = std::move(name), e->help = std::move(help), e->labels = std::move(labels);
  e->histogram = std::make_unique<Histogram>(std::move(bounds));
  entries_.push_back(std::move(e));
  return entries_.back()->histogram.get();
}

void MetricsRegistry::AddGaugeFunction(std::string name, std::string help,
                                       std::function<double()> fn) {
  auto e = std::make_unique<Entry>();
  e->type = Entry::kGaugeFunction;
  e->name = std::move(name), e->help = std::move(help);
  e->fn = std::move(fn);
  entries_.push_back(std::move(e));
}

void MetricsRegistry::AddGaugeFamilyFunction(std::string name, std::string help,
                                             std::function<Samples()> fn) {
  auto e = std::make_unique<Entry>();
  e->type = Entry::kGaugeFamily;
  e->name = std::move(name), e->help = std::move(help);
  e->family = std::move(fn);
  entries_.push_back(std::move(e));
}

void MetricsRegistry::AddCounterFamilyFunction(std::string name, std::string help,
                                               std::function<Samples()> fn) {
  AddGaugeFamilyFunction(std::move(name), std::move(help), std::move(fn));
  entries_.back()->type = Entry::kCounterFamily;
}

std::string MetricsRegistry::Render() const {
  std::string out;
  std::string last_family;
  for (const auto& e : entries_) {
    if (e->name != last_family) {
      const char* type = e->type == Entry::kCounter || e->type == Entry::kCounterFamily ? "counter"
                         : e->type == Entry::kHistogram ? "histogram"
                                                        : "gauge";
      StrAppend(&out, "# HELP ", e->name, " ", e->help, "\n# TYPE ", e->name, " ", type, "\n");
      last_family = e->name;
    }
    std::string braces = e->labels.empty() ? "" : StrCat("{", e->labels, "}");
    switch (e->type) {
      case Entry::kCounter:
        StrAppend(&out, e->name, braces, " ", e->counter.value(), "\n");
        break;
      case Entry::kGauge:
        StrAppend(&out, e->name, braces, " ", e->gauge.value(), "\n");
        break;
      case Entry::kGaugeFunction:
        StrAppend(&out, e->name, " ", SampleValue(e->fn()), "\n");
        break;
      case Entry::kHistogram:
        e->histogram->Render(&out, e->name, e->labels);
        break;
      case Entry::kGaugeFamily:
      case Entry::kCounterFamily:
        for (const auto& [labels, value] : e->family()) {
          StrAppend(&out, e->name, "{", labels, "} ", SampleValue(value), "\n");
        }
        break;
    }
  }
  return out;
}

MetricsServer::MetricsServer() = default;
MetricsServer::~MetricsServer() { Stop(); }

absl::Status MetricsServer::Start(const HostPort& listen, const MetricsRegistry* registry,
                                  std::function<bool()> healthy) {
  HttpServerOptions options;
  options.listen = listen.ToString();
  options.flag = "--metrics-listen";
  options.threads = 2;
  options.limits.max_body_bytes = 0;  // GET only
  auto handler = [registry, healthy = std::move(healthy)](const HttpRequest& req) {
    HttpResponse res;
    bool read = req.method == "GET" || req.method == "HEAD";
    if (req.path == "/metrics" && read) {
      res.content_type = "text/plain; version=0.0.4";
      res.body = registry->Render();
    } else if (req.path == "/healthz" && read) {
      bool ok = healthy();
      res.status = ok ? 200 : 503;
      res.body = ok ? R"({"status":"ok"})" : R"({"status":"unavailable"})";
    } else if (req.path == "/metrics" || req.path == "/healthz") {
      res = HttpJsonError(405, "method not allowed; allowed: GET", "method");
      res.headers.emplace_back("Allow", "GET");
    } else {
      res = HttpJsonError(404, StrCat("path: no such endpoint: ", req.path), "path");
    }
    return res;
  };
  if (auto s = server_.Start(options, std::move(handler)); !s.ok()) return s;
  port_ = server_.port();
  return absl::OkStatus();
}

void MetricsServer::Stop() { server_.Stop(); }

}  // namespace turnbroker
