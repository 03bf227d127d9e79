#include "ctl.h"

#include <sys/socket.h>

#include <chrono>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
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
  if (auto s = WriteAll(sock->get(), absl::StrCat("GET ", path, " HTTP/1.1\r\nHost: ", host_port,
                                                  "\r\nUser-Agent: shunt-e2e\r\n\r\n"));
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

absl::StatusOr<std::vector<nlohmann::json>> WaitFlows(const TestNode& node, const std::string& args,
                                                      size_t n) {
  for (int i = 0;; ++i) {
    auto flows = ShuntctlFlows(node, args);
    if (!flows.ok() || flows->size() >= n || i >= 30) return flows;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

}  // namespace shunt::e2e
