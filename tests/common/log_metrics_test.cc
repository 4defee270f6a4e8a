#include <gtest/gtest.h>

#include "turnbroker/common/log.h"
#include "turnbroker/common/metrics.h"

namespace turnbroker {
namespace {

TEST(MetricsTest, RendersPrometheusText) {
  MetricsRegistry r;
  r.AddCounter("x_total", "Things", "kind=\"a\"")->Inc(3);
  r.AddGauge("y", "Level")->Set(-2);
  Histogram* h = r.AddHistogram("z_seconds", "Latency", "", {0.001, 0.01});
  h->ObserveMicros(500);
  h->ObserveMicros(5000);
  h->ObserveMicros(50000);
  std::string text = r.Render();
  EXPECT_NE(text.find("# TYPE x_total counter\nx_total{kind=\"a\"} 3\n"), std::string::npos)
      << text;
  EXPECT_NE(text.find("y -2\n"), std::string::npos);
  EXPECT_NE(text.find("z_seconds_bucket{le=\"0.001\"} 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("z_seconds_bucket{le=\"0.01\"} 2\n"), std::string::npos);
  EXPECT_NE(text.find("z_seconds_bucket{le=\"+Inf\"} 3\n"), std::string::npos);
  EXPECT_NE(text.find("z_seconds_count 3\n"), std::string::npos);
}

TEST(MetricsTest, RendersAFamilyWhoseLabelsAreKnownOnlyWhenScraped) {
  MetricsRegistry r;
  std::vector<std::pair<std::string, double>> now;
  r.AddCounterFamilyFunction("mints_total", "Mints by secret", [&] { return now; });
  r.AddGaugeFamilyFunction("empty", "Nothing yet", [] { return MetricsRegistry::Samples{}; });
  EXPECT_NE(r.Render().find("# TYPE mints_total counter\n# HELP empty"), std::string::npos)
      << r.Render();
  now = {{"secret=\"a\"", 2}, {"secret=\"b\"", 5}};
  std::string text = r.Render();
  EXPECT_NE(text.find("mints_total{secret=\"a\"} 2\nmints_total{secret=\"b\"} 5\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("# TYPE empty gauge\n"), std::string::npos) << text;
}

TEST(MetricsTest, RendersLargeAndFractionalSamplesInFull) {
  // StrCat's six significant digits made a revision of 1,234,567 read
  // "1.23457e+06" and an expiry in Unix seconds off by minutes.
  MetricsRegistry r;
  r.AddGaugeFunction("revision", "Head", [] { return 1'234'567.0; });
  r.AddGaugeFamilyFunction("expiry_seconds", "When", [] {
    return MetricsRegistry::Samples{{"id=\"a\"", 1'796'602'304.0}, {"id=\"b\"", 0.000123456789}};
  });
  Histogram* h = r.AddHistogram("t_seconds", "Latency", "", {1});
  h->ObserveMicros(12'345'678'901);
  std::string text = r.Render();
  EXPECT_NE(text.find("revision 1234567\n"), std::string::npos) << text;
  EXPECT_NE(text.find("expiry_seconds{id=\"a\"} 1796602304\n"), std::string::npos) << text;
  EXPECT_NE(text.find("expiry_seconds{id=\"b\"} 0.000123456789"), std::string::npos) << text;
  EXPECT_NE(text.find("t_seconds_sum 12345.678901"), std::string::npos) << text;
}

TEST(LogTest, ParsesLevels) {
  LogLevel l;
  EXPECT_TRUE(ParseLogLevel("WARN", &l));
  EXPECT_EQ(l, LogLevel::kWarn);
  EXPECT_FALSE(ParseLogLevel("loud", &l));
}

}  // namespace
}  // namespace turnbroker
