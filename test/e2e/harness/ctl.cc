#include "ctl.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "agent/lib/errno_status.h"
#include "agent/lib/status_macros.h"
#include "test/e2e/harness/eventually.h"
#include "test/e2e/harness/sock_util.h"

namespace shunt::e2e {

namespace {

absl::StatusOr<std::vector<nlohmann::json>> JsonLines(const std::string& cmd) {
  auto text = Sh(absl::StrCat(SHUNTCTL_BIN, " --api-socket ", cmd));
  if (!text.ok()) return text.status();
  std::vector<nlohmann::json> out;
  std::istringstream lines(*text);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("note: ", 0) == 0) continue;  // advice on stderr, not data
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded()) return absl::InternalError("shuntctl: not JSON: " + line);
    out.push_back(std::move(j));
  }
  return out;
}

}  // namespace

absl::StatusOr<std::vector<nlohmann::json>> ShuntctlDrops(const TestNode& node) {
  return JsonLines(absl::StrCat(node.api_socket(), " drops -o json"));
}

absl::StatusOr<nlohmann::json> ShuntctlJson(const TestNode& node, const std::string& args) {
  auto text = Sh(absl::StrCat(SHUNTCTL_BIN, " --api-socket ", node.api_socket(), " ", args,
                              " -o json 2>/dev/null"));
  if (!text.ok()) return text.status();
  auto j = nlohmann::json::parse(*text, nullptr, false);
  if (j.is_discarded()) return absl::InternalError("shuntctl " + args + ": not JSON: " + *text);
  return j;
}

absl::StatusOr<std::vector<nlohmann::json>> ShuntctlFlows(const TestNode& node,
                                                          const std::string& args) {
  return JsonLines(absl::StrCat(node.api_socket(), " flows -o json ", args));
}

absl::StatusOr<std::string> HttpGetInNode(const TestNode& node, const std::string& host_port,
                                          const std::string& path) {
  const size_t colon = host_port.rfind(':');
  if (colon == std::string::npos) return absl::InvalidArgumentError("no port in " + host_port);
  auto sock = node.NodeSocket(SOCK_STREAM);
  if (!sock.ok()) return sock.status();
  if (auto s = ConnectTo(sock->get(), host_port.substr(0, colon),
                         std::stoi(host_port.substr(colon + 1)));
      !s.ok())
    return s;
  if (auto s = WriteAll(sock->get(),
                        absl::StrCat("GET ", path, " HTTP/1.1\r\nHost: ", host_port,
                                     "\r\nUser-Agent: shunt-e2e\r\nConnection: close\r\n\r\n"));
      !s.ok())
    return s;
  auto resp = ReadToEof(sock->get());
  if (!resp.ok()) return resp.status();
  const size_t head_end = resp->find("\r\n\r\n");
  if (head_end == std::string::npos) return absl::InternalError("no HTTP header in: " + *resp);
  const std::string status_line = resp->substr(0, resp->find("\r\n"));
  if (status_line.find(" 200 ") == std::string::npos)
    return absl::FailedPreconditionError(
        absl::StrCat(path, ": ", status_line, ": ", resp->substr(head_end + 4)));
  return resp->substr(head_end + 4);
}

absl::StatusOr<pid_t> StartFollower(const TestNode& node, const std::vector<std::string>& args,
                                    const std::string& out) {
  std::vector<std::string> argv = {SHUNTCTL_BIN, "--api-socket", node.api_socket()};
  argv.insert(argv.end(), args.begin(), args.end());
  pid_t pid = fork();
  if (pid < 0) return lib::ErrnoStatus(errno, "fork shuntctl");
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    int fd = open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0 || dup2(fd, 1) < 0) _exit(126);
    std::vector<char*> cargs;
    for (auto& a : argv) cargs.push_back(a.data());
    cargs.push_back(nullptr);
    execv(cargs[0], cargs.data());
    _exit(127);
  }
  // /proc/PID/syscall names the call a blocked process is in.
  const std::string syscall_file = absl::StrCat("/proc/", pid, "/syscall");
  const std::string what = absl::StrCat("shuntctl ", absl::StrJoin(args, " "));
  int ended = -1;  // its wait status, once it has ended
  absl::Status asleep =
      Eventually(absl::StrCat(what, " made its first request"), [&]() -> absl::Status {
        if (int st = 0; waitpid(pid, &st, WNOHANG) == pid) {
          ended = st;
          return absl::OkStatus();  // stop waiting: reported below
        }
        std::ifstream f(syscall_file);
        long nr = -1;
        if (f >> nr && (nr == SYS_clock_nanosleep || nr == SYS_nanosleep)) return absl::OkStatus();
        return absl::FailedPreconditionError(absl::StrCat("in system call ", nr));
      });
  if (ended >= 0) return absl::InternalError(absl::StrCat(what, " ended (status ", ended, ")"));
  if (!asleep.ok()) {
    KillAndReap(pid);
    return asleep;
  }
  return pid;
}

absl::StatusOr<std::string> WaitFirstLine(const std::string& file, int timeout_ms) {
  std::string text;
  SHUNT_RETURN_IF_ERROR(Eventually(
      absl::StrCat(file, " has a line"),
      [&]() -> absl::Status {
        std::ifstream f(file);
        std::stringstream ss;
        ss << f.rdbuf();
        text = ss.str();
        if (text.find('\n') != std::string::npos) return absl::OkStatus();
        return absl::NotFoundError(absl::StrCat("holds '", text, "'"));
      },
      timeout_ms));
  return text.substr(0, text.find('\n'));
}

absl::StatusOr<std::vector<nlohmann::json>> WaitFlows(const TestNode& node, const std::string& args,
                                                      size_t n) {
  std::vector<nlohmann::json> flows;
  SHUNT_RETURN_IF_ERROR(Eventually(
      absl::StrCat("shuntctl flows ", args, " lists ", n, " flows"), [&]() -> absl::Status {
        SHUNT_ASSIGN_OR_RETURN(flows, ShuntctlFlows(node, args));
        if (flows.size() >= n) return absl::OkStatus();
        return absl::NotFoundError(
            absl::StrCat(flows.size(), " flows: ", nlohmann::json(flows).dump()));
      }));
  return flows;
}

}  // namespace shunt::e2e
