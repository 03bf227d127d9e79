#include "fake_apiserver.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "absl/strings/str_cat.h"

#ifndef SHUNT_FAKE_APISERVER
#error "SHUNT_FAKE_APISERVER must name test/kubeapi/fake_apiserver.py"
#endif

namespace shunt::kubeapi {
namespace {

size_t Append(char* data, size_t size, size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

// Waits for the "READY https://..." line on `fd`.
absl::StatusOr<std::string> ReadReady(int fd, int timeout_ms) {
  std::string got;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (got.find('\n') == std::string::npos) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                          deadline - std::chrono::steady_clock::now())
                          .count();
    if (left <= 0) return absl::DeadlineExceededError("fake apiserver: no READY line: " + got);
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(left)) <= 0) continue;
    char buf[256];
    const ssize_t n = read(fd, buf, sizeof(buf));
    if (n <= 0) return absl::UnavailableError("fake apiserver exited before READY: " + got);
    got.append(buf, static_cast<size_t>(n));
  }
  const std::string line = got.substr(0, got.find('\n'));
  if (line.rfind("READY ", 0) != 0) return absl::InternalError("fake apiserver said: " + line);
  return line.substr(6);
}

}  // namespace

absl::StatusOr<std::unique_ptr<FakeApiServer>> FakeApiServer::Start(
    const std::vector<std::string>& flags, const std::string& netns) {
  std::unique_ptr<FakeApiServer> s(new FakeApiServer());
  s->netns_ = netns;
  char tmpl[] = "/tmp/shunt-fakeapi-XXXXXX";
  if (mkdtemp(tmpl) == nullptr) return absl::InternalError("mkdtemp");
  s->dir_ = tmpl;
  int out[2];
  if (pipe2(out, O_CLOEXEC) != 0) return absl::InternalError("pipe");
  const std::string log = s->dir_ + "/server.log";
  s->pid_ = fork();
  if (s->pid_ < 0) return absl::InternalError("fork");
  if (s->pid_ == 0) {
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (!netns.empty()) {
      int ns = open(netns.c_str(), O_RDONLY | O_CLOEXEC);
      if (ns < 0 || setns(ns, CLONE_NEWNET) != 0) _exit(125);
    }
    dup2(out[1], 1);
    int err = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (err >= 0) dup2(err, 2);
    std::vector<std::string> argv = {"python3", SHUNT_FAKE_APISERVER, "--dir", tmpl};
    argv.insert(argv.end(), flags.begin(), flags.end());
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    setenv("PYTHONDONTWRITEBYTECODE", "1", 1);
    execvp(args[0], args.data());
    _exit(127);
  }
  close(out[1]);
  auto ready = ReadReady(out[0], 20'000);
  close(out[0]);
  if (!ready.ok()) {
    std::ifstream err(log);
    std::string text((std::istreambuf_iterator<char>(err)), std::istreambuf_iterator<char>());
    return absl::Status(ready.status().code(), absl::StrCat(ready.status().message(), "\n", text));
  }
  s->url_ = *ready;
  std::ifstream token(s->dir_ + "/token");
  std::getline(token, s->token_);
  return s;
}

FakeApiServer::~FakeApiServer() {
  if (pid_ > 0) {
    kill(pid_, SIGTERM);
    int status = 0;
    // It exits at once on SIGTERM; give it two seconds before SIGKILL.
    for (int i = 0; i < 200 && waitpid(pid_, &status, WNOHANG) == 0; ++i) usleep(10'000);
    if (waitpid(pid_, &status, WNOHANG) == 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, &status, 0);
    }
  }
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
}

absl::StatusOr<nlohmann::json> FakeApiServer::Call(const std::string& method,
                                                   const std::string& path,
                                                   const nlohmann::json* body) {
  if (netns_.empty()) return CallHere(method, path, body);
  // setns() changes only the calling thread: a thread of its own enters the
  // server's namespace for the call.
  absl::StatusOr<nlohmann::json> result = absl::InternalError("not run");
  std::thread t([&] {
    int ns = open(netns_.c_str(), O_RDONLY | O_CLOEXEC);
    if (ns < 0 || setns(ns, CLONE_NEWNET) != 0) {
      result = absl::InternalError("setns " + netns_);
    } else {
      result = CallHere(method, path, body);
    }
    if (ns >= 0) close(ns);
  });
  t.join();
  return result;
}

absl::StatusOr<nlohmann::json> FakeApiServer::CallHere(const std::string& method,
                                                       const std::string& path,
                                                       const nlohmann::json* body) {
  CURL* c = curl_easy_init();
  if (c == nullptr) return absl::InternalError("curl_easy_init");
  std::string answer, payload = body ? body->dump() : "";
  const std::string url = url_ + path;
  curl_slist* headers = curl_slist_append(nullptr, "Content-Type: application/json");
  headers = curl_slist_append(headers, ("Authorization: Bearer " + token_).c_str());
  const std::string ca = dir_ + "/ca.crt";
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_CAINFO, ca.c_str());
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method.c_str());
  if (body != nullptr) {
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, payload.c_str());
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, static_cast<long>(payload.size()));
  }
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, Append);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &answer);
  curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
  const CURLcode rc = curl_easy_perform(c);
  long status = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  curl_slist_free_all(headers);
  curl_easy_cleanup(c);
  if (rc != CURLE_OK)
    return absl::UnavailableError(absl::StrCat(method, " ", path, ": ", curl_easy_strerror(rc)));
  if (status != 200)
    return absl::FailedPreconditionError(
        absl::StrCat(method, " ", path, ": ", status, " ", answer));
  auto j = nlohmann::json::parse(answer, nullptr, false);
  if (j.is_discarded()) return absl::InternalError(absl::StrCat(method, " ", path, ": ", answer));
  return j;
}

std::string FakeApiServer::WriteKubeconfig(const std::string& name, const std::string& ca_file,
                                           const std::string& server,
                                           const std::string& tls_server_name) const {
  const std::string path = dir_ + "/" + name;
  std::ofstream out(path);
  out << "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
      << "contexts: [{name: c, context: {cluster: k, user: u}}]\n"
      << "clusters: [{name: k, cluster: {server: '" << (server.empty() ? url_ : server)
      << "', certificate-authority: " << ca_file;
  if (!tls_server_name.empty()) out << ", tls-server-name: " << tls_server_name;
  out << "}}]\nusers: [{name: u, user: {tokenFile: token}}]\n";
  return path;
}

absl::StatusOr<nlohmann::json> FakeApiServer::Apply(const nlohmann::json& object) {
  return Call("POST", "/fake/apply", &object);
}

absl::StatusOr<nlohmann::json> FakeApiServer::Bulk(const nlohmann::json& objects) {
  return Call("POST", "/fake/bulk", &objects);
}

absl::Status FakeApiServer::Delete(const std::string& api_version, const std::string& kind,
                                   const std::string& namespace_, const std::string& name) {
  const nlohmann::json body = {
      {"apiVersion", api_version}, {"kind", kind}, {"namespace", namespace_}, {"name", name}};
  return Call("POST", "/fake/delete", &body).status();
}

absl::StatusOr<nlohmann::json> FakeApiServer::Fault(const nlohmann::json& fault) {
  auto r = Call("POST", "/fake/fault", &fault);
  if (r.ok() && fault.contains("token")) token_ = fault["token"].get<std::string>();
  return r;
}

absl::StatusOr<nlohmann::json> FakeApiServer::Requests() { return Call("GET", "/fake/requests"); }

absl::Status FakeApiServer::ClearRequests() {
  const nlohmann::json empty = nlohmann::json::object();
  return Call("POST", "/fake/requests/clear", &empty).status();
}

absl::StatusOr<nlohmann::json> FakeApiServer::State() { return Call("GET", "/fake/state"); }

nlohmann::json PodObject(const std::string& namespace_, const std::string& name,
                         const std::string& node, const std::string& ip,
                         const std::string& service_account, const std::string& uid) {
  nlohmann::json pod = {
      {"apiVersion", "v1"},
      {"kind", "Pod"},
      {"metadata", {{"name", name}, {"namespace", namespace_}}},
      {"spec",
       {{"nodeName", node},
        {"serviceAccountName", service_account},
        {"containers", {{{"name", "main"}, {"image", "busybox"}}}}}},
      {"status", {{"phase", "Running"}, {"podIP", ip}, {"podIPs", {{{"ip", ip}}}}}}};
  if (!uid.empty()) pod["metadata"]["uid"] = uid;
  return pod;
}

}  // namespace shunt::kubeapi
