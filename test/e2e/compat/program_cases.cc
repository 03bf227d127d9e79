// Real programs from Debian: nginx serving a large file with sendfile, and
// HAProxy splicing in TCP mode in front of it; curl downloads.
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "agent/lib/status_macros.h"
#include "shunt/abi/sockmap.h"
#include "test/e2e/compat/compat_case.h"
#include "test/e2e/harness/eventually.h"
#include "test/e2e/harness/sock_util.h"

namespace shunt::e2e::compat {
namespace {

constexpr uint64_t kFileBytes = 48ull << 20;

// The file nginx serves, made once per test directory.
absl::StatusOr<std::string> ServedDir(CaseEnv& env) {
  const std::string dir = env.node.work_dir() + "/www";
  struct stat st {};
  if (stat((dir + "/big.bin").c_str(), &st) != 0) {
    SHUNT_RETURN_IF_ERROR(Sh(absl::StrCat("mkdir -p ", dir, " && head -c ", kFileBytes,
                                          " /dev/urandom > ", dir, "/big.bin"))
                              .status());
  }
  return dir;
}

absl::Status WaitListening(CaseEnv& env, const TestPod& pod, uint16_t port,
                           const std::string& log) {
  return Eventually(
      absl::StrCat(pod.name, " listens on ", port, " (log ", log, ")"),
      [&]() -> absl::Status {
        SHUNT_ASSIGN_OR_RETURN(lib::UniqueFd s, env.node.PodSocket(env.client, SOCK_STREAM));
        return ConnectTo(s.get(), pod.ip, port);
      },
      10000);
}

// Starts nginx (sendfile on) on env.port in the server pod.
absl::StatusOr<pid_t> StartNginx(CaseEnv& env, const std::string& www) {
  const std::string dir = env.node.work_dir(), tag = absl::StrCat(env.port);
  const std::string conf = absl::StrCat(dir, "/nginx-", tag, ".conf");
  std::ofstream(conf) << "daemon off; worker_processes 1; pid " << dir << "/nginx-" << tag
                      << ".pid; error_log " << dir << "/nginx-" << tag << ".err;\n"
                      << "events {}\nhttp { access_log off; sendfile on; tcp_nopush on;\n"
                      << "  client_body_temp_path " << dir << "; proxy_temp_path " << dir
                      << "; fastcgi_temp_path " << dir << "; uwsgi_temp_path " << dir
                      << "; scgi_temp_path " << dir << ";\n"
                      << "  server { listen " << env.port << "; root " << www << "; } }\n";
  const std::string log = absl::StrCat(dir, "/nginx-", tag, ".log");
  SHUNT_ASSIGN_OR_RETURN(pid_t pid,
                         env.node.Spawn(env.server, {"nginx", "-c", conf, "-p", dir}, log));
  if (auto s = WaitListening(env, env.server, env.port, log); !s.ok()) {
    KillAndReap(pid);
    return s;
  }
  return pid;
}

// curl in the client pod downloads big.bin from ip:port `times` times over
// one keep-alive connection; the outcome is its exit status and whether
// every copy has the file's bytes. (A later download starts after curl read
// everything before it: all of it can go socket to socket, while the first
// streams by TCP until curl has read what came that way.)
absl::StatusOr<Outcome> Download(CaseEnv& env, const std::string& www, const std::string& ip,
                                 uint16_t port, int times = 1) {
  const std::string got = absl::StrCat(env.node.work_dir(), "/got-", env.port);
  std::vector<std::string> argv = {"curl", "-s", "-S", "-m", "60"};
  for (int i = 0; i < times; ++i) {
    argv.insert(argv.end(), {"-o", absl::StrCat(got, "-", i),
                             absl::StrCat("http://", ip, ":", port, "/big.bin")});
  }
  SHUNT_ASSIGN_OR_RETURN(pid_t pid, env.node.Spawn(env.client, argv, got + ".log"));
  SHUNT_ASSIGN_OR_RETURN(int status, WaitExit(pid, 90000));
  int same = 0;
  for (int i = 0; i < times; ++i) {
    const std::string copy = absl::StrCat(got, "-", i);
    same += Sh(absl::StrCat("cmp ", copy, " ", www, "/big.bin")).ok();
    unlink(copy.c_str());
  }
  return Outcome{absl::StrCat("curl exit ", WIFEXITED(status) ? WEXITSTATUS(status) : -1, ", ",
                              same, " of ", times, " copies with the file's bytes"),
                 times * kFileBytes};
}

absl::StatusOr<Outcome> NginxSendfile(CaseEnv& env) {
  SHUNT_ASSIGN_OR_RETURN(std::string www, ServedDir(env));
  SHUNT_ASSIGN_OR_RETURN(pid_t nginx, StartNginx(env, www));
  // Three: the first may go wholly by TCP (nginx streams from its first
  // byte, docs/short-circuit.md rule 1), the later ones socket to socket.
  auto out = Download(env, www, env.server.ip, env.port, /*times=*/3);
  KillAndReap(nginx);
  return out;
}

// HAProxy in TCP mode, splicing both ways (splice-auto plus forced
// splicing: a 48 MiB download would otherwise rarely splice).
absl::StatusOr<Outcome> HaproxySplice(CaseEnv& env) {
  SHUNT_ASSIGN_OR_RETURN(std::string www, ServedDir(env));
  SHUNT_ASSIGN_OR_RETURN(pid_t nginx, StartNginx(env, www));
  const std::string dir = env.node.work_dir(), tag = absl::StrCat(env.port);
  const std::string cfg = absl::StrCat(dir, "/haproxy-", tag, ".cfg");
  const uint16_t front = env.port + 1000;
  std::ofstream(cfg) << "global\n  maxconn 100\ndefaults\n  mode tcp\n  timeout connect 5s\n"
                     << "  timeout client 60s\n  timeout server 60s\n  option splice-auto\n"
                     << "  option splice-request\n  option splice-response\n"
                     << "frontend f\n  bind *:" << front << "\n  default_backend b\n"
                     << "backend b\n  server s " << env.server.ip << ":" << env.port << "\n";
  const std::string log = absl::StrCat(dir, "/haproxy-", tag, ".log");
  auto haproxy = env.node.Spawn(env.proxy, {"haproxy", "-f", cfg, "-db"}, log);
  if (!haproxy.ok()) {
    KillAndReap(nginx);
    return haproxy.status();
  }
  const absl::Status up = WaitListening(env, env.proxy, front, log);
  absl::StatusOr<Outcome> out =
      up.ok() ? Download(env, www, env.proxy.ip, front) : absl::StatusOr<Outcome>(up);
  KillAndReap(*haproxy);
  KillAndReap(nginx);
  return out;
}

// A TCP proxy in Go: io.Copy both ways between two net.TCPConn, which
// Linux's Go runtime turns into splice(2) from its first read.
constexpr char kGoProxy[] = R"(package main

import (
	"io"
	"net"
	"os"
)

func main() {
	l, err := net.Listen("tcp", os.Args[1])
	if err != nil {
		panic(err)
	}
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		go func(c net.Conn) {
			u, err := net.Dial("tcp", os.Args[2])
			if err != nil {
				c.Close()
				return
			}
			done := make(chan struct{}, 2)
			go func() { io.Copy(u, c); u.(*net.TCPConn).CloseWrite(); done <- struct{}{} }()
			go func() { io.Copy(c, u); c.(*net.TCPConn).CloseWrite(); done <- struct{}{} }()
			<-done
			<-done
			c.Close()
			u.Close()
		}(c)
	}
}
)";

// Three requests through the Go proxy on one connection, each answered
// with 16 MiB. (The first answer streams from its first byte and may go by
// TCP until the client caught up with it; the later ones start caught up.)
absl::StatusOr<Outcome> GoIoCopyProxy(CaseEnv& env) {
  const std::string dir = env.node.work_dir() + "/goproxy";
  struct stat st {};
  if (stat((dir + "/goproxy").c_str(), &st) != 0) {
    SHUNT_RETURN_IF_ERROR(Sh("mkdir -p " + dir).status());
    std::ofstream(dir + "/main.go") << kGoProxy;
    auto built = Sh("cd " + dir + " && HOME=" + dir + " GOCACHE=" + dir +
                    "/cache GO111MODULE=off go build -o goproxy main.go");
    if (!built.ok())
      return absl::FailedPreconditionError(
          absl::StrCat("go build (golang-go: tools/install-deps.sh): ", built.status().message()));
  }
  auto listener = env.node.PodSocket(env.server, SOCK_STREAM);
  if (!listener.ok()) return listener.status();
  SHUNT_RETURN_IF_ERROR(ListenOn(listener->get(), env.port));
  const uint16_t front = env.port + 2000;
  SHUNT_ASSIGN_OR_RETURN(pid_t proxy,
                         env.node.Spawn(env.proxy,
                                        {dir + "/goproxy", absl::StrCat(":", front),
                                         absl::StrCat(env.server.ip, ":", env.port)},
                                        absl::StrCat(dir, "/goproxy-", env.port, ".log")));
  constexpr int kRounds = 3;
  constexpr size_t kAnswer = 16 << 20;
  absl::StatusOr<Outcome> out = [&]() -> absl::StatusOr<Outcome> {
    SHUNT_ASSIGN_OR_RETURN(lib::UniqueFd c, env.node.PodSocket(env.client, SOCK_STREAM));
    SHUNT_RETURN_IF_ERROR(Eventually(
        "the Go proxy listens", [&] { return ConnectTo(c.get(), env.proxy.ip, front); }, 10000));
    lib::UniqueFd s;
    std::string all;
    for (int round = 0; round < kRounds; ++round) {
      SHUNT_RETURN_IF_ERROR(WriteAll(c.get(), "GET"));
      if (!s.valid()) {
        SHUNT_ASSIGN_OR_RETURN(s, AcceptOne(listener->get()));
      }
      SHUNT_ASSIGN_OR_RETURN(std::string req, ReadExactly(s.get(), 3));
      const std::string answer = RandomBytes(kAnswer, 51 + round);
      absl::StatusOr<std::string> got = absl::UnknownError("not read");
      std::thread reader([&] { got = ReadExactly(c.get(), kAnswer, 60000); });
      absl::Status wrote = WriteAll(s.get(), answer, 60000);
      reader.join();
      SHUNT_RETURN_IF_ERROR(wrote);
      if (!got.ok()) return got.status();
      all += req + *got;
    }
    return Outcome{absl::StrCat(kRounds, " requests, answers ", Digest(all)), kRounds * kAnswer};
  }();
  KillAndReap(proxy);
  return out;
}

}  // namespace

std::vector<Case> ProgramCases() {
  return {
      {"NginxSendfile", Path::kShortCircuit, 0, NginxSendfile},
      // curl's leg: HAProxy splices into its socket toward curl (sendmsg,
      // redirected); nginx's leg takes TCP (HAProxy splices from it).
      {"HaproxySplice", Path::kShortCircuit, 0, HaproxySplice},
      // The same split: the proxy's writes toward the client are redirected,
      // its splice reads take TCP.
      {"GoIoCopyProxy", Path::kShortCircuit, 0, GoIoCopyProxy},
  };
}

}  // namespace shunt::e2e::compat
