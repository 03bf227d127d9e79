#include "agent/mtls/proxy_supervisor.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <fstream>
#include <iterator>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "agent/lib/errno_status.h"
#include "agent/lib/fmt_absl.h"
#include "agent/lib/fs_checks.h"
#include "agent/lib/status_macros.h"
#include "spdlog/spdlog.h"

namespace shunt::mtls {
namespace {

constexpr int kChildControlFd = 3;
constexpr int64_t kMaxBackoffMs = 10000;
constexpr int64_t kHealthyRunMs = 30000;

}  // namespace

absl::StatusOr<std::string> ProxyCgroup(const std::string& cgroup_root) {
  SHUNT_ASSIGN_OR_RETURN(std::string mount, lib::FindCgroup2Mount());
  std::ifstream in("/proc/self/cgroup");
  std::string line, own;
  while (std::getline(in, line))
    if (absl::StartsWith(line, "0::")) own = mount + line.substr(3);
  std::string root = cgroup_root;
  while (root.size() > 1 && root.back() == '/') root.pop_back();
  if (own == root || absl::StartsWith(own, root + "/")) return std::string();
  const std::string dir = root + "/shunt-proxy";
  if (mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST)
    return lib::ErrnoStatus(errno, absl::StrCat("mtls: the proxy's cgroup ", dir));
  return dir;
}

ProxySupervisor::~ProxySupervisor() {
  // Only the channel closes: the proxy drains what it carries, then exits.
  channel_.reset();
}

std::vector<int> ProxySupervisor::PollFds() const {
  std::vector<int> fds;
  if (channel_) fds.push_back(channel_->fd());
  if (pidfd_.valid()) fds.push_back(pidfd_.get());
  return fds;
}

void ProxySupervisor::SetConfig(const nlohmann::json& config) {
  config_ = config;
  if (!channel_) return;
  if (absl::Status st = channel_->Send({{"config", config_}}); !st.ok())
    spdlog::warn("mtls: proxy pid {}: {}", pid_, st.message());
}

void ProxySupervisor::Start(int64_t now_ms) {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
    last_error_ = absl::StrCat("socketpair: ", strerror(errno));
    next_start_ms_ = now_ms + backoff_ms_;
    return;
  }
  std::vector<std::string> argv = {launch_.bin, absl::StrCat("--control-fd=", kChildControlFd)};
  argv.insert(argv.end(), launch_.args.begin(), launch_.args.end());
  const pid_t pid = fork();
  if (pid < 0) {
    last_error_ = absl::StrCat("fork: ", strerror(errno));
    close(sv[0]);
    close(sv[1]);
    next_start_ms_ = now_ms + backoff_ms_;
    return;
  }
  if (pid == 0) {
    // The child: the channel at fd 3 (kept across exec), signals as new.
    dup2(sv[1], kChildControlFd);
    if (!launch_.cgroup.empty()) {
      const std::string procs = launch_.cgroup + "/cgroup.procs";
      const int fd = open(procs.c_str(), O_WRONLY | O_CLOEXEC);
      if (fd < 0 || write(fd, "0", 1) != 1) {
        dprintf(2, "shunt-proxy: join %s: %s\n", procs.c_str(), strerror(errno));
        _exit(126);
      }
      close(fd);
    }
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    execv(args[0], args.data());
    dprintf(2, "shunt-proxy: exec %s: %s\n", argv[0].c_str(), strerror(errno));
    _exit(127);
  }
  close(sv[1]);
  pid_ = pid;
  pidfd_.Reset(static_cast<int>(syscall(SYS_pidfd_open, pid, 0)));
  channel_ = std::make_unique<proxy::LineChannel>(lib::UniqueFd(sv[0]));
  // Writes to a live proxy are quick (it reads all the time); a stuck one
  // must not stall the agent's loop for long.
  timeval tv{.tv_sec = 2, .tv_usec = 0};
  setsockopt(channel_->fd(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  started_ms_ = now_ms;
  ++starts_;
  spdlog::info("mtls: started {} (pid {})", launch_.bin, pid);
  if (!config_.is_null()) SetConfig(config_);
}

void ProxySupervisor::Reap(int64_t now_ms, const std::string& why) {
  int st = 0;
  if (pid_ > 0 && waitpid(pid_, &st, 0) == pid_) {
    last_exit_ = WIFSIGNALED(st) ? absl::StrCat("killed by signal ", WTERMSIG(st))
                                 : absl::StrCat("exited with status ", WEXITSTATUS(st));
  } else {
    last_exit_ = why;
  }
  spdlog::warn("mtls: proxy pid {} {}{}; restarting in {} ms", pid_, last_exit_,
               last_error_.empty() ? "" : absl::StrCat(" (", last_error_, ")"), backoff_ms_);
  pid_ = -1;
  pidfd_.Reset();
  channel_.reset();
  ready_ = false;
  next_start_ms_ = now_ms + backoff_ms_;
  if (now_ms - started_ms_ >= kHealthyRunMs) {
    backoff_ms_ = 100;
    next_start_ms_ = now_ms + backoff_ms_;
  }
  backoff_ms_ = std::min(kMaxBackoffMs, backoff_ms_ * 2);
}

void ProxySupervisor::Handle(const nlohmann::json& doc) {
  if (doc.contains("ready")) {
    ready_ = true;
    last_error_.clear();
    spdlog::info("mtls: proxy pid {} ready: {}", pid_, doc["ready"].dump());
    RetirePredecessor();
  } else if (doc.contains("report")) {
    report_ = doc["report"];
    if (auto ev = report_.find("refusal_events"); ev != report_.end() && ev->is_array()) {
      for (auto& e : *ev)
        if (refusals_.size() < 10000) refusals_.push_back(e);
      report_.erase("refusal_events");
    }
    // Per-request windows are the telemetry's (MtlsController passes them
    // on each tick); the status keeps what was lost on the way.
    if (auto r = report_.find("http_recent"); r != report_.end() && r->is_object()) {
      if (auto d = r->find("dropped"); d != r->end() && d->is_number_unsigned())
        requests_dropped_ += d->get<uint64_t>();
      if (auto q = r->find("requests"); q != r->end() && q->is_array() && !q->empty()) {
        if (requests_.size() < 60)
          requests_.push_back(std::move(*q));
        else
          requests_dropped_ += q->size();
      }
    }
    if (report_.is_object()) {
      report_.erase("http_recent");
      report_["http_recent_dropped"] = requests_dropped_;
    }
  } else if (doc.contains("applied") && doc["applied"].is_number_unsigned()) {
    applied_generation_ = doc["applied"].get<uint64_t>();
  } else if (doc.contains("config_error") && doc["config_error"].is_string()) {
    last_error_ = doc["config_error"].get<std::string>();
    spdlog::error("mtls: the proxy rejected its config: {}", last_error_);
  } else if (doc.contains("error") && doc["error"].is_string()) {
    last_error_ = doc["error"].get<std::string>();
  }
}

void ProxySupervisor::RetirePredecessor() {
  if (launch_.pid_file.empty()) return;
  std::ifstream in(launch_.pid_file);
  pid_t old = 0;
  if (in >> old && old > 0 && old != pid_) {
    // Only a proxy: the pid must run our program with a control channel
    // (a pid the file names may have been reused since).
    char exe[PATH_MAX] = "";
    const ssize_t n = readlink(absl::StrCat("/proc/", old, "/exe").c_str(), exe, sizeof(exe) - 1);
    std::ifstream cmd(absl::StrCat("/proc/", old, "/cmdline"));
    std::string args((std::istreambuf_iterator<char>(cmd)), std::istreambuf_iterator<char>());
    char want[PATH_MAX] = "";
    if (n > 0 && realpath(launch_.bin.c_str(), want) && std::string(exe, n) == want &&
        // (the proxy rewrites its flags' dashes in place: --control_fd=)
        args.find("--control") != std::string::npos) {
      kill(old, SIGTERM);
      spdlog::info("mtls: the earlier proxy (pid {}) drains the connections it carries", old);
    }
  }
  in.close();
  const std::string tmp = launch_.pid_file + ".tmp";
  std::ofstream(tmp) << pid_ << "\n";
  if (rename(tmp.c_str(), launch_.pid_file.c_str()) != 0)
    spdlog::warn("mtls: cannot write {}: {}", launch_.pid_file, strerror(errno));
}

bool ProxySupervisor::Tick(int64_t now_ms) {
  const bool was_ready = ready_;
  if (pid_ < 0 && !config_.is_null() && now_ms >= next_start_ms_) Start(now_ms);
  if (channel_) {
    std::vector<nlohmann::json> docs;
    absl::Status st = channel_->Read(&docs);
    for (const auto& d : docs) Handle(d);
    if (!st.ok() && pid_ > 0) {
      // Closed or broken: the proxy is going; wait for it to exit.
      channel_.reset();
      ready_ = false;
    }
  }
  if (pidfd_.valid()) {
    pollfd p{pidfd_.get(), POLLIN, 0};
    if (poll(&p, 1, 0) == 1) Reap(now_ms, "exited");
  }
  return ready_ != was_ready;
}

std::vector<nlohmann::json> ProxySupervisor::TakeRefusals() {
  std::vector<nlohmann::json> out;
  out.swap(refusals_);
  return out;
}

std::vector<nlohmann::json> ProxySupervisor::TakeRequests() {
  std::vector<nlohmann::json> out;
  out.swap(requests_);
  return out;
}

nlohmann::json ProxySupervisor::StatusJson(int64_t now_ms) const {
  return {{"bin", launch_.bin},
          {"pid", pid_},
          {"ready", ready_},
          {"starts", starts_},
          {"up_for_s", pid_ > 0 ? (now_ms - started_ms_) / 1000 : 0},
          {"last_exit", last_exit_},
          {"last_error", last_error_},
          {"applied_generation", applied_generation_}};
}

}  // namespace shunt::mtls
