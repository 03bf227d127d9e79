#include "tools/bench/haproxy_chain.h"

#include <signal.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "agent/lib/errno_status.h"
#include "agent/lib/status_macros.h"

namespace shunt::bench {

namespace {

constexpr char kSuites[] =
    "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256";

// One listener, one backend; settings as the benchmark issue asks. The
// suffixes add options to the bind and server lines (TLS). HTTP mode:
// keep-alive on both sides, the upstream connection reused by requests.
std::string Config(const std::string& bind, const std::string& bind_opts,
                   const std::string& backend, const std::string& server_opts, bool http) {
  return absl::StrCat(
      "global\n"
      "  nbthread 1\n"
      "  maxconn ",
      http ? 9000 : 1000, "\n", "defaults\n",
      http ? "  mode http\n"
             "  option http-keep-alive\n"
             "  http-reuse always\n"
             "  timeout http-keep-alive 1h\n"
             "  timeout http-request 10s\n"
           : "  mode tcp\n",
      "  maxconn ", http ? 9000 : 1000, "\n",
      "  timeout connect 5s\n"
      "  timeout client 1h\n"
      "  timeout server 1h\n"
      "frontend sidecar\n"
      "  bind ",
      bind, bind_opts,
      "\n"
      "  default_backend upstream\n"
      "backend upstream\n"
      "  server upstream ",
      backend, server_opts, "\n");
}

std::string ReadText(const std::string& path) {
  std::ifstream f(path);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

// /proc/<pid>/net/tcp lists the sockets of pid's network namespace: is
// anything there listening (state 0A) on `port`?
bool ListeningIn(pid_t pid, uint16_t port) {
  std::ifstream f(absl::StrCat("/proc/", pid, "/net/tcp"));
  std::string line;
  std::getline(f, line);  // header
  while (std::getline(f, line)) {
    std::vector<std::string> cols = absl::StrSplit(line, ' ', absl::SkipEmpty());
    if (cols.size() < 4 || cols[3] != "0A") continue;
    std::vector<std::string> local = absl::StrSplit(cols[1], ':');
    uint32_t p = 0;
    if (local.size() == 2 && absl::SimpleHexAtoi(local[1], &p) && p == port) return true;
  }
  return false;
}

// Exited (a zombie until the node reaps it) or gone.
bool Exited(pid_t pid) {
  std::ifstream f(absl::StrCat("/proc/", pid, "/stat"));
  std::string stat;
  if (!std::getline(f, stat)) return true;
  size_t paren = stat.rfind(')');
  return paren == std::string::npos || paren + 2 >= stat.size() || stat[paren + 2] == 'Z' ||
         stat[paren + 2] == 'X';
}

absl::Status WaitListening(pid_t pid, uint16_t port, const std::string& log) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (std::chrono::steady_clock::now() < deadline) {
    if (ListeningIn(pid, port)) return absl::OkStatus();
    if (Exited(pid))
      return absl::InternalError(
          absl::StrCat("haproxy (pid ", pid, ") exited; its log ", log, ":\n", ReadText(log)));
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return absl::DeadlineExceededError(absl::StrCat("haproxy (pid ", pid, ") not listening on port ",
                                                  port, " after 5 s; its log ", log, ":\n",
                                                  ReadText(log)));
}

}  // namespace

absl::Status WriteText(const std::string& path, const std::string& text) {
  std::ofstream f(path);
  f << text;
  f.close();
  if (!f) return lib::ErrnoStatus(errno, absl::StrCat("write ", path));
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<HaproxyChain>> HaproxyChain::Start(
    e2e::TestNode& node, const e2e::TestPod& client, const e2e::TestPod& server, uint16_t app_port,
    uint16_t outbound_port, uint16_t inbound_port, const std::string& tag, const HaproxyTls* tls,
    bool http) {
  std::unique_ptr<HaproxyChain> chain(new HaproxyChain());
  chain->outbound_port_ = outbound_port;
  chain->inbound_port_ = inbound_port;
  const std::string base = absl::StrCat(node.work_dir(), "/haproxy-");
  const std::string out_cfg = absl::StrCat(base, "outbound-", tag, ".cfg");
  const std::string in_cfg = absl::StrCat(base, "inbound-", tag, ".cfg");
  const std::string out_log = absl::StrCat(base, "outbound-", tag, ".log");
  const std::string in_log = absl::StrCat(base, "inbound-", tag, ".log");
  std::string bind_tls, server_tls;
  if (tls) {
    // The same cipher suite as Shunt's proxies prefer (proxy/tls), so both
    // arms do the same cryptography.
    bind_tls = absl::StrCat(" ssl crt ", tls->server_pem, " ca-file ", tls->ca_file,
                            " verify required ssl-min-ver TLSv1.3 ciphersuites ", kSuites);
    server_tls = absl::StrCat(" ssl crt ", tls->client_pem, " ca-file ", tls->ca_file,
                              " verify required ssl-min-ver TLSv1.3 ciphersuites ", kSuites);
  }
  SHUNT_RETURN_IF_ERROR(
      WriteText(out_cfg, Config(absl::StrCat("127.0.0.1:", outbound_port), "",
                                absl::StrCat(server.ip, ":", inbound_port), server_tls, http)));
  SHUNT_RETURN_IF_ERROR(
      WriteText(in_cfg, Config(absl::StrCat(server.ip, ":", inbound_port), bind_tls,
                               absl::StrCat("127.0.0.1:", app_port), "", http)));
  // -db: foreground, no daemon; the node owns and reaps the processes.
  SHUNT_ASSIGN_OR_RETURN(chain->inbound_pid_,
                         node.Spawn(server, {kHaproxyBin, "-f", in_cfg, "-db"}, in_log));
  SHUNT_ASSIGN_OR_RETURN(chain->outbound_pid_,
                         node.Spawn(client, {kHaproxyBin, "-f", out_cfg, "-db"}, out_log));
  SHUNT_RETURN_IF_ERROR(WaitListening(chain->inbound_pid_, inbound_port, in_log));
  SHUNT_RETURN_IF_ERROR(WaitListening(chain->outbound_pid_, outbound_port, out_log));
  return chain;
}

void HaproxyChain::Stop() {
  if (stopped_) return;
  stopped_ = true;
  // Not reaped here, so the pids stay ours until the node's KillAndReap.
  if (outbound_pid_ > 0) kill(outbound_pid_, SIGTERM);
  if (inbound_pid_ > 0) kill(inbound_pid_, SIGTERM);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (std::chrono::steady_clock::now() < deadline &&
         !((outbound_pid_ <= 0 || Exited(outbound_pid_)) &&
           (inbound_pid_ <= 0 || Exited(inbound_pid_))))
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
}

HaproxyChain::~HaproxyChain() { Stop(); }

}  // namespace shunt::bench
