// HttpRequestParser (common/http_server.h): framing, limits and refusals,
// byte by byte as a slow peer sends them. The server itself is tested over
// sockets through the agent (tests/pcscf/agent_*_test.cc).
#include "turnbroker/common/http_server.h"

#include <gtest/gtest.h>

#include <string>

namespace turnbroker {
namespace {

using Result = HttpRequestParser::Result;

// Feeds `in` in pieces of `piece` bytes; returns the last result and
// leaves what was not consumed in *rest.
Result FeedInPieces(HttpRequestParser& p, const std::string& in, size_t piece,
                    std::string* rest = nullptr) {
  std::string pending;
  Result r = Result::kNeedMore;
  for (size_t pos = 0; pos < in.size();) {
    pending.append(in.substr(pos, piece));
    pos += piece;
    size_t used = 0;
    r = p.Feed(pending, &used);
    pending.erase(0, used);
    if (r != Result::kNeedMore) break;
  }
  if (rest) *rest = pending;
  return r;
}

TEST(HttpRequestParserTest, ParsesARequestSentByteByByte) {
  HttpRequestParser p;
  std::string rest;
  ASSERT_EQ(FeedInPieces(p,
                         "POST /v1/credentials/a%2Fb/refresh?impu=sip%3Aa%40b&x=1+2 HTTP/1.1\r\n"
                         "Host: agent\r\nContent-Length: 2\r\n\r\n{}GET /next",
                         1, &rest),
            Result::kDone);
  const HttpRequest& r = p.request();
  EXPECT_EQ(r.method, "POST");
  EXPECT_EQ(r.path, "/v1/credentials/a/b/refresh");
  EXPECT_EQ(r.query.find("impu")->second, "sip:a@b");
  EXPECT_EQ(r.query.find("x")->second, "1 2");
  EXPECT_EQ(*r.Header("host"), "agent");
  EXPECT_EQ(r.body, "{}");
  EXPECT_TRUE(p.keep_alive());
  EXPECT_EQ(rest, "") << "stops after the body; the rest is the next request's";
}

TEST(HttpRequestParserTest, LeavesAPipelinedRequestForTheNextParse) {
  HttpRequestParser p;
  std::string in = "GET /healthz HTTP/1.1\r\n\r\nGET /metrics HTTP/1.0\r\n\r\n";
  size_t used = 0;
  ASSERT_EQ(p.Feed(in, &used), Result::kDone);
  EXPECT_EQ(p.request().path, "/healthz");
  p.Reset();
  size_t used2 = 0;
  ASSERT_EQ(p.Feed(std::string_view(in).substr(used), &used2), Result::kDone);
  EXPECT_EQ(p.request().path, "/metrics");
  EXPECT_FALSE(p.keep_alive()) << "HTTP/1.0 without keep-alive";
  EXPECT_EQ(used + used2, in.size());
}

TEST(HttpRequestParserTest, DecodesChunkedBodies) {
  HttpRequestParser p;
  ASSERT_EQ(FeedInPieces(p,
                         "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                         "3;ext=1\r\nabc\r\nA\r\n0123456789\r\n0\r\nX-Trailer: y\r\n\r\n",
                         2),
            Result::kDone);
  EXPECT_EQ(p.request().body, "abc0123456789");
}

struct Refusal {
  std::string request;
  int status;
  std::string field;
};

TEST(HttpRequestParserTest, RefusesWithTheStatusAndFieldToFix) {
  HttpLimits limits;
  limits.max_body_bytes = 16;
  limits.max_header_bytes = 256;
  const std::string big_chunk = "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n11\r\n";
  for (const Refusal& c : std::vector<Refusal>{
           {"POST / HTTP/1.1\r\nHost: a\r\n\r\n", 411, "Content-Length"},
           {"POST / HTTP/1.1\r\nContent-Length: 17\r\n\r\n", 413, "body"},
           {big_chunk, 413, "body"},
           {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n9\r\n123456789\r\n9\r\n", 413,
            "body"},
           {"POST / HTTP/1.1\r\nContent-Encoding: gzip\r\nContent-Length: 1\r\n\r\n", 415,
            "Content-Encoding"},
           {"POST / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", 400,
            "Transfer-Encoding"},
           {"POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501,
            "Transfer-Encoding"},
           {"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400,
            "Content-Length"},
           {"GET / HTTP/2.0\r\n\r\n", 505, "version"},
           {"GET http://x/ HTTP/1.1\r\n\r\n", 400, "path"},
           {"GET /%zz HTTP/1.1\r\n\r\n", 400, "path"},
           {"GET / HTTP/1.1\r\n folded: x\r\n\r\n", 400, "headers"},
           {"GET / HTTP/1.1\r\nExpect: magic\r\n\r\n", 417, "Expect"},
           {"GET / HTTP/1.1\r\nX: " + std::string(300, 'a') + "\r\n\r\n", 431, "headers"},
       }) {
    HttpRequestParser p(limits);
    EXPECT_EQ(FeedInPieces(p, c.request, 3), Result::kError) << c.request;
    EXPECT_EQ(p.error().status, c.status) << c.request << p.error().message;
    EXPECT_EQ(p.error().field, c.field) << c.request;
  }
}

TEST(HttpRequestParserTest, AsksForContinueOnlyBeforeTheBody) {
  HttpRequestParser p;
  size_t used = 0;
  ASSERT_EQ(p.Feed("POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n", &used),
            Result::kNeedMore);
  EXPECT_TRUE(p.wants_continue());
  EXPECT_TRUE(p.started());
  ASSERT_EQ(p.Feed("{}", &used), Result::kDone);
}

TEST(HttpJsonErrorTest, NamesTheFieldAndSurvivesBytesThatAreNotUtf8) {
  HttpResponse r = HttpJsonError(404, "path: no such endpoint: /\xff", "path");
  EXPECT_EQ(r.status, 404);
  EXPECT_NE(r.body.find("\"field\":\"path\""), std::string::npos) << r.body;
  EXPECT_NE(r.body.find("\"code\":\"NOT_FOUND\""), std::string::npos) << r.body;
}

}  // namespace
}  // namespace turnbroker
