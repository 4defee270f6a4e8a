#include "process.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

namespace turnbroker::testing {

TempDir::TempDir() {
  const char* base = std::getenv("TMPDIR");
  std::string tmpl = std::string(base && *base ? base : "/tmp") + "/turnbroker-test-XXXXXX";
  if (!mkdtemp(tmpl.data())) std::abort();
  path_ = tmpl;
}

TempDir::~TempDir() {
  if (std::getenv("TURNBROKER_KEEP_TEST_DIRS")) return;
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

namespace {

bool CanBind(int type, int port) {
  int fd = socket(AF_INET, type, 0);
  if (fd < 0) return false;
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bool ok = bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  close(fd);
  return ok;
}

}  // namespace

int FreePort() {
  // Random ports in a range the kernel does not hand out as ephemeral
  // ports, checked free for TCP and UDP, and never repeated in one process.
  static std::mt19937 rng(std::random_device{}() ^ static_cast<unsigned>(getpid()));
  static std::vector<int> used;
  for (int attempt = 0; attempt < 1000; ++attempt) {
    int port = 20000 + static_cast<int>(rng() % 12000);
    if (std::find(used.begin(), used.end(), port) != used.end()) continue;
    if (CanBind(SOCK_STREAM, port) && CanBind(SOCK_DGRAM, port) && CanBind(SOCK_STREAM, port + 1) &&
        CanBind(SOCK_DGRAM, port + 1)) {
      used.push_back(port);
      used.push_back(port + 1);
      return port;
    }
  }
  std::abort();
}

std::string BuiltBinary(const std::string& name) {
  for (const char* dir : {"broker", "ctl", "turn-plugin", "pcscf-plugin", "bench", "tests"}) {
    std::string p = std::string(TURNBROKER_BINARY_DIR) + "/" + dir + "/" + name;
    if (access(p.c_str(), X_OK) == 0) return p;
  }
  return std::string(TURNBROKER_BINARY_DIR) + "/" + name;
}

bool WaitUntil(const std::function<bool()>& done, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return done();
}

Subprocess::Subprocess(std::vector<std::string> argv, std::string log_path,
                       std::vector<std::string> extra_env)
    : log_path_(std::move(log_path)) {
  pid_t parent = getpid();
  pid_ = fork();
  if (pid_ == 0) {
    setpgid(0, 0);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);
    // Signals blocked by the test (e.g. for sigwait) must not stay blocked.
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    int fd = open(log_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      dup2(fd, STDOUT_FILENO);
      dup2(fd, STDERR_FILENO);
      close(fd);
    }
    int devnull = open("/dev/null", O_RDONLY);
    if (devnull >= 0) dup2(devnull, STDIN_FILENO);
    for (std::string& e : extra_env) putenv(e.data());
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    execvp(args[0], args.data());
    fprintf(stderr, "exec %s: %s\n", args[0], strerror(errno));
    _exit(127);
  }
  setpgid(pid_, pid_);
}

Subprocess::~Subprocess() { Kill(); }

bool Subprocess::running() {
  if (status_) return false;
  int st;
  if (waitpid(pid_, &st, WNOHANG) == pid_) {
    status_ = st;
    return false;
  }
  return true;
}

namespace {

// True when every thread of `pid` is stopped ('T' or 't' in its stat).
bool AllThreadsStopped(pid_t pid) {
  std::error_code ec;
  std::filesystem::directory_iterator tasks("/proc/" + std::to_string(pid) + "/task", ec);
  if (ec) return false;
  for (const auto& task : tasks) {
    std::ifstream in(task.path() / "stat");
    std::string stat;
    std::getline(in, stat);
    size_t paren = stat.rfind(')');  // the name may hold spaces
    if (paren == std::string::npos || paren + 2 >= stat.size()) return false;
    char state = stat[paren + 2];
    if (state != 'T' && state != 't') return false;
  }
  return true;
}

}  // namespace

void Subprocess::Signal(int signal) {
  if (!running()) return;
  kill(pid_, signal);
  if (signal == SIGSTOP) {
    WaitUntil([this] { return AllThreadsStopped(pid_); }, std::chrono::seconds(5));
  }
}

std::optional<int> Subprocess::Wait(std::chrono::milliseconds timeout) {
  if (WaitUntil([this] { return !running(); }, timeout)) return status_;
  return std::nullopt;
}

void Subprocess::Kill() {
  if (pid_ <= 0 || status_) return;
  kill(-pid_, SIGKILL);
  kill(pid_, SIGKILL);
  int st;
  if (waitpid(pid_, &st, 0) == pid_) status_ = st;
}

std::string Subprocess::Output() const {
  std::ifstream in(log_path_);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::optional<std::string> Subprocess::WaitForOutput(const std::string& text,
                                                     std::chrono::milliseconds timeout) {
  std::optional<std::string> line;
  WaitUntil(
      [&] {
        std::string out = Output();
        size_t at = out.find(text);
        if (at == std::string::npos) return false;
        size_t start = out.rfind('\n', at);
        start = start == std::string::npos ? 0 : start + 1;
        size_t end = out.find('\n', at);
        line = out.substr(start, end == std::string::npos ? std::string::npos : end - start);
        return true;
      },
      timeout);
  return line;
}

int64_t ResidentKb(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::stoll(line.substr(6));
  return -1;
}

RunResult Run(const std::vector<std::string>& argv, std::chrono::milliseconds timeout,
              std::vector<std::string> extra_env) {
  TempDir dir;
  Subprocess p(argv, dir.File("out"), std::move(extra_env));
  RunResult r;
  auto st = p.Wait(timeout);
  if (!st) p.Kill();
  r.output = p.Output();
  if (st && WIFEXITED(*st)) r.exit_code = WEXITSTATUS(*st);
  return r;
}

}  // namespace turnbroker::testing
