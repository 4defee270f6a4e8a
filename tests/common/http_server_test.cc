// HttpRequestParser (common/http_server.h): framing, limits and refusals,
// byte by byte as a slow peer sends them. HttpServer's answers on its I/O
// thread over loopback sockets here; the rest of the server is tested over
// sockets through the agent (tests/pcscf/agent_*_test.cc).
#include "turnbroker/common/http_server.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <future>
#include <string>
#include <thread>

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

// A loopback client that writes raw bytes and reads whole answers.
class RawClient {
 public:
  explicit RawClient(int port, int receive_buffer = 0) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (receive_buffer > 0)
      ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &receive_buffer, sizeof receive_buffer);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  }
  ~RawClient() { ::close(fd_); }
  bool connected() const { return connected_; }

  bool Send(const std::string& data) {
    return ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(data.size());
  }

  // The body of the next answer, or "" after `timeout_ms` without one.
  std::string ReadBody(int timeout_ms = 5'000) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    while (true) {
      size_t head_end = buf_.find("\r\n\r\n");
      if (head_end != std::string::npos) {
        size_t cl = buf_.find("Content-Length: ");
        size_t length = cl < head_end ? std::strtoul(buf_.c_str() + cl + 16, nullptr, 10) : 0;
        if (buf_.size() >= head_end + 4 + length) {
          std::string body = buf_.substr(head_end + 4, length);
          buf_.erase(0, head_end + 4 + length);
          return body;
        }
      }
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                      deadline - std::chrono::steady_clock::now())
                      .count();
      if (left <= 0) return "";
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left)) <= 0) continue;
      char chunk[64 * 1024];
      ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
      if (n <= 0) return "";
      buf_.append(chunk, static_cast<size_t>(n));
    }
  }

 private:
  int fd_ = -1;
  bool connected_ = false;
  std::string buf_;
};

std::string Get(const std::string& target) {
  return "GET " + target + " HTTP/1.1\r\nHost: x\r\n\r\n";
}

// A server with one worker: "/block" holds it until released; "/inline/..."
// is answered on the I/O thread with its target ("/inline/big": 8 MiB).
class InlineServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    HttpServerOptions o;
    o.threads = 1;
    auto handler = [this](const HttpRequest& r) {
      HttpResponse res;
      if (r.path == "/block") released_.wait();
      res.body = r.path == "/inline/big" ? std::string(8 << 20, 'x') : r.target;
      return res;
    };
    auto answers_inline = [](const HttpRequest& r) { return r.path.rfind("/inline/", 0) == 0; };
    ASSERT_TRUE(server_.Start(o, handler, nullptr, answers_inline).ok());
  }
  void TearDown() override {
    release_.set_value();
    server_.Stop();
  }

  std::promise<void> release_;
  std::shared_future<void> released_ = release_.get_future().share();
  HttpServer server_;
};

TEST_F(InlineServerTest, AnAnswerThatWaitsOnNothingIsNotHeldBehindABusyWorker) {
  RawClient blocked(server_.port());
  ASSERT_TRUE(blocked.Send(Get("/block")));
  std::this_thread::sleep_for(std::chrono::milliseconds(100));  // the worker holds it
  RawClient other(server_.port());
  ASSERT_TRUE(other.Send(Get("/inline/a")));
  EXPECT_EQ(other.ReadBody(2'000), "/inline/a");
  EXPECT_EQ(blocked.ReadBody(100), "");       // still held
  ASSERT_TRUE(other.Send(Get("/inline/b")));  // keep-alive
  EXPECT_EQ(other.ReadBody(2'000), "/inline/b");
}

TEST_F(InlineServerTest, AnAnswerLargerThanTheSocketTakesIsWrittenWholeThenTheConnectionGoesOn) {
  RawClient c(server_.port(), /*receive_buffer=*/4096);
  ASSERT_TRUE(c.Send(Get("/inline/big")));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // the socket fills up
  EXPECT_EQ(c.ReadBody(10'000).size(), 8u << 20);
  ASSERT_TRUE(c.Send(Get("/inline/after")));
  EXPECT_EQ(c.ReadBody(2'000), "/inline/after");
}

TEST_F(InlineServerTest, PipelinedRequestsAreAnsweredInOrderWhereverTheyRun) {
  release_.set_value();  // "/block" answers at once here
  release_ = std::promise<void>();
  RawClient c(server_.port());
  ASSERT_TRUE(c.Send(Get("/inline/1") + Get("/block?2") + Get("/inline/3") + Get("/inline/4") +
                     Get("/block?5")));
  for (const char* want : {"/inline/1", "/block?2", "/inline/3", "/inline/4", "/block?5"}) {
    EXPECT_EQ(c.ReadBody(2'000), want);
  }
  ASSERT_TRUE(c.Send(Get("/inline/6")));
  EXPECT_EQ(c.ReadBody(2'000), "/inline/6");
}

}  // namespace
}  // namespace turnbroker
