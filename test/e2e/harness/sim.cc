#include "sim.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "agent/datapath/uninstall.h"
#include "agent/http/client.h"
#include "agent/lib/bpf_introspect.h"
#include "agent/lib/errno_status.h"
#include "agent/lib/fs_checks.h"
#include "agent/lib/pin_layout.h"
#include "agent/lib/pinned_maps.h"
#include "agent/lib/status_macros.h"
#include "shunt/abi/pins.h"
#include "test/e2e/harness/eventually.h"
#include "test/e2e/harness/sock_util.h"
#include "test/kubeapi/driver/fake_apiserver.h"

#ifndef SHUNT_AGENT_BIN
#error "SHUNT_AGENT_BIN must name the shunt-agent binary"
#endif

namespace shunt::e2e {
namespace fs = std::filesystem;
namespace {

constexpr char kNetnsPrefix[] = "sht";
constexpr char kDirPrefix[] = "shunt-test-";

std::string Cgroup2Mount() {
  auto m = lib::FindCgroup2Mount();
  return m.ok() ? *m : "/sys/fs/cgroup";
}

bool PidAlive(pid_t pid) { return pid > 0 && (kill(pid, 0) == 0 || errno == EPERM); }

absl::Status WriteFile(const std::string& path, const std::string& text) {
  std::ofstream f(path);
  if (!f) return lib::ErrnoStatus(errno, absl::StrCat("open ", path));
  f << text;
  f.close();
  if (!f) return lib::ErrnoStatus(errno, absl::StrCat("write ", path));
  return absl::OkStatus();
}

// Removes a cgroup subtree: kills what is left inside (by pid), then rmdirs
// leaves first. Retries while the kernel finishes tearing processes down.
void RemoveCgroupTree(const std::string& dir) {
  std::error_code ec;
  if (!fs::exists(dir, ec)) return;
  std::vector<std::string> dirs;
  for (const auto& e : fs::recursive_directory_iterator(dir, ec))
    if (e.is_directory()) dirs.push_back(e.path().string());
  dirs.push_back(dir);
  std::sort(dirs.begin(), dirs.end(),
            [](const auto& a, const auto& b) { return a.size() > b.size(); });
  for (const auto& d : dirs) {
    std::ifstream procs(d + "/cgroup.procs");
    pid_t pid;
    while (procs >> pid) KillAndReap(pid);
  }
  absl::Status removed = Eventually(
      absl::StrCat("cgroup ", dir, " removed"),
      [&]() -> absl::Status {
        for (const auto& d : dirs)
          if (rmdir(d.c_str()) != 0 && errno != ENOENT)
            return lib::ErrnoStatus(errno, absl::StrCat("rmdir ", d));
        return absl::OkStatus();
      },
      1000);
  if (!removed.ok())
    std::fprintf(stderr, "e2e cleanup: %s\n", std::string(removed.message()).c_str());
}

void EnsureBpffs() {
  struct statfs st {};
  if (statfs("/sys/fs/bpf", &st) == 0 && st.f_type == BPF_FS_MAGIC) return;
  mount("bpf", "/sys/fs/bpf", "bpf", 0, nullptr);
}

// "sht<pid>..." / "shunt-test-<pid>-..." -> pid, or 0.
pid_t OwnerPid(const std::string& name, const std::string& prefix) {
  if (!absl::StartsWith(name, prefix)) return 0;
  size_t i = prefix.size(), j = i;
  while (j < name.size() && isdigit(static_cast<unsigned char>(name[j]))) ++j;
  int pid = 0;
  if (j == i || !absl::SimpleAtoi(name.substr(i, j - i), &pid)) return 0;
  return pid;
}

// The S of every 10.S.x.y address in a network namespace under /run/netns,
// except those named `own_prefix` + a tag (this process's).
std::set<int> SubnetsInUse(const std::string& own_prefix) {
  std::set<int> used;
  auto out = Sh("ip -all netns exec ip -4 -o addr show || true");
  if (!out.ok()) return used;
  bool own = false;
  std::istringstream lines(*out);
  for (std::string line; std::getline(lines, line);) {
    if (absl::StartsWith(line, "netns: ")) {
      const std::string name = line.substr(7);
      own = absl::StartsWith(name, own_prefix) && name.size() > own_prefix.size() &&
            !isdigit(static_cast<unsigned char>(name[own_prefix.size()]));
      continue;
    }
    const size_t at = line.find(" inet 10.");
    int s = 0;
    if (own || at == std::string::npos) continue;
    const std::string rest = line.substr(at + 9);
    if (absl::SimpleAtoi(rest.substr(0, rest.find('.')), &s)) used.insert(s);
  }
  return used;
}

}  // namespace

absl::StatusOr<std::string> Sh(const std::string& cmd) {
  std::string full = cmd + " 2>&1";
  FILE* p = popen(full.c_str(), "r");
  if (!p) return lib::ErrnoStatus(errno, absl::StrCat("popen ", cmd));
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), p)) > 0) out.append(buf, n);
  int rc = pclose(p);
  if (rc != 0) return absl::InternalError(absl::StrCat("`", cmd, "` failed (", rc, "): ", out));
  return out;
}

void KillAndReap(pid_t pid) {
  if (pid <= 0) return;
  kill(pid, SIGKILL);
  waitpid(pid, nullptr, 0);  // only reaps our own children; harmless otherwise
}

absl::StatusOr<int> WaitExit(pid_t pid, int timeout_ms) {
  int st = 0;
  absl::Status failed;  // waitpid itself failed: no point in asking again
  SHUNT_RETURN_IF_ERROR(Eventually(
      absl::StrCat("pid ", pid, " exits"),
      [&]() -> absl::Status {
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid) return absl::OkStatus();
        if (r < 0) failed = lib::ErrnoStatus(errno, absl::StrCat("waitpid ", pid));
        return failed.ok() ? absl::UnavailableError("still running") : absl::OkStatus();
      },
      timeout_ms));
  if (!failed.ok()) return failed;
  return st;
}

std::string PrivilegedSkipReason() {
  if (geteuid() != 0)
    return "NOT ROOT: end-to-end tests need root for network namespaces, cgroups and BPF; "
           "run the suite as root (CI does)";
  return "";
}

void SweepStale() {
  if (DIR* d = opendir("/run/netns")) {
    while (dirent* e = readdir(d)) {
      pid_t owner = OwnerPid(e->d_name, kNetnsPrefix);
      if (owner > 0 && !PidAlive(owner)) (void)Sh(absl::StrCat("ip netns del ", e->d_name));
    }
    closedir(d);
  }
  std::error_code ec;
  for (const std::string& root :
       {std::string("/sys/fs/bpf"), Cgroup2Mount(), std::string("/tmp")}) {
    for (const auto& e : fs::directory_iterator(root, ec)) {
      const std::string name = e.path().filename().string();
      pid_t owner = OwnerPid(name, kDirPrefix);
      if (owner <= 0 || PidAlive(owner)) continue;
      if (root == "/sys/fs/bpf") {
        (void)datapath::Uninstall(e.path().string());
      } else if (root == "/tmp") {
        fs::remove_all(e.path(), ec);
      } else {
        RemoveCgroupTree(e.path().string());
      }
    }
  }
}

absl::StatusOr<std::unique_ptr<TestNode>> TestNode::Create(const std::string& tag) {
  EnsureBpffs();
  std::unique_ptr<TestNode> n(new TestNode());
  const pid_t pid = getpid();
  n->tag_ = tag;
  n->name_ = tag;
  n->prefix_ = absl::StrCat(kNetnsPrefix, pid, tag);
  const std::string id = absl::StrCat(kDirPrefix, pid, "-", tag);
  n->node_netns_ = n->prefix_ + "-node";
  n->cgroup_root_ = absl::StrCat(Cgroup2Mount(), "/", id);
  n->bpffs_ = "/sys/fs/bpf/" + id;
  n->work_dir_ = "/tmp/" + id;
  n->config_dir_ = n->work_dir_ + "/config";
  n->api_socket_ = n->work_dir_ + "/agent.sock";
  // Distinct per process and node: a pair of subnets picked by pid, moved
  // past any pair a live namespace of another process already uses (a
  // concurrent run, of this tree or another, whose pid picked the same):
  // an agent that sees two namespaces with a pod's address meshes neither.
  const std::set<int> used = SubnetsInUse(absl::StrCat(kNetnsPrefix, pid));
  int pair = pid % 50;
  for (int i = 0; i < 50 && (used.count(100 + pair * 2) || used.count(101 + pair * 2)); ++i)
    pair = (pair + 1) % 50;
  n->subnet_ = 100 + pair * 2 + (tag.empty() ? 0 : tag.back() % 2);
  std::error_code ec;
  fs::create_directories(n->config_dir_, ec);
  if (ec) return absl::InternalError(absl::StrCat("mkdir ", n->config_dir_, ": ", ec.message()));
  if (mkdir(n->cgroup_root_.c_str(), 0755) != 0 && errno != EEXIST)
    return lib::ErrnoStatus(errno, absl::StrCat("mkdir ", n->cgroup_root_));
  const std::string ns = n->node_netns_;
  SHUNT_RETURN_IF_ERROR(Sh(absl::StrCat("ip netns add ", ns)).status());
  SHUNT_RETURN_IF_ERROR(
      Sh(absl::StrCat("ip -n ", ns, " link set lo up && ip -n ", ns, " addr add 10.", n->subnet_,
                      ".0.1/32 dev lo && ", "ip netns exec ", ns,
                      " sysctl -qw net.ipv4.ip_forward=1 ", "net.ipv6.conf.all.forwarding=1"))
          .status());
  return n;
}

absl::StatusOr<TestPod*> TestNode::AddPod(const PodSpec& spec) {
  auto pod = std::make_unique<TestPod>();
  const int idx = static_cast<int>(pods_.size());
  pod->name = spec.name;
  pod->namespace_ = spec.namespace_;
  pod->service_account = spec.service_account;
  pod->annotations = spec.annotations;
  pod->netns = absl::StrCat(prefix_, "-", spec.name);
  pod->ip = absl::StrCat("10.", subnet_, ".1.", idx + 2);
  if (spec.ipv6) pod->ip6 = absl::StrCat("fd00:0:", subnet_, "::1:", idx + 2);
  // A UID as the API server gives one, unique per test process and node;
  // the pod's cgroup is named after it as the kubelet's cgroupfs driver does.
  pod->uid = absl::StrFormat("%08x-%04x-4%03x-8000-%012x", getpid(), subnet_, idx, idx);
  pod->cgroup = absl::StrCat(cgroup_root_, "/pod", pod->uid);
  pod->host_veth = absl::StrCat(prefix_, "p", idx);
  if (mkdir(pod->cgroup.c_str(), 0755) != 0 && errno != EEXIST)
    return lib::ErrnoStatus(errno, absl::StrCat("mkdir ", pod->cgroup));
  SHUNT_RETURN_IF_ERROR(SetUpPodNetwork(*pod));
  SHUNT_RETURN_IF_ERROR(StartSandbox(*pod));
  pods_.push_back(std::move(pod));
  TestPod* out = pods_.back().get();
  if (!spec.in_config) out->namespace_.clear();  // marks "not in config"
  SHUNT_RETURN_IF_ERROR(WriteManifests());
  return out;
}

std::string TestNode::PodYaml() const {
  std::string yaml;
  for (const auto& p : pods_) {
    if (p->namespace_.empty()) continue;
    absl::StrAppend(&yaml, "---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: ", p->name,
                    "\n  namespace: ", p->namespace_, "\n  uid: ", p->uid, "\n");
    if (!p->annotations.empty()) absl::StrAppend(&yaml, "  annotations:\n");
    for (const auto& [k, v] : p->annotations) absl::StrAppend(&yaml, "    ", k, ": \"", v, "\"\n");
    absl::StrAppend(
        &yaml, "spec:\n  serviceAccountName: ", p->service_account, "\n  nodeName: ", name_,
        "\n  containers:\n  - name: main\n    image: busybox\nstatus:\n  podIP: ", p->ip, "\n");
    if (!p->ip6.empty())
      absl::StrAppend(&yaml, "  podIPs:\n  - ip: ", p->ip, "\n  - ip: ", p->ip6, "\n");
    // Where the node's proxy listens (the node's address on its link).
    if (!link_ip_.empty()) absl::StrAppend(&yaml, "  hostIP: ", link_ip_, "\n");
  }
  return yaml;
}

absl::Status TestNode::SetUpPodNetwork(const TestPod& pod) {
  const std::string& p = pod.netns;
  const std::string& v = pod.host_veth;
  SHUNT_RETURN_IF_ERROR(
      Sh(absl::StrCat("ip netns add ", p, " && ip -n ", p, " link set lo up && ", "ip link add ", v,
                      " netns ", node_netns_, " type veth peer name eth0 netns ", p, " && ip -n ",
                      p, " addr add ", pod.ip, "/32 dev eth0 && ip -n ", p,
                      " link set eth0 up && ip -n ", p, " route add default dev eth0 && ", "ip -n ",
                      node_netns_, " link set ", v, " up && ",
                      // Proxy ARP answers after a random delay of up to
                      // proxy_delay (0.8 s by default): a pod's first
                      // connection would wait that long for its gateway.
                      "ip netns exec ", node_netns_, " sysctl -qw net.ipv4.conf.", v,
                      ".proxy_arp=1 net.ipv4.neigh.", v, ".proxy_delay=0 && ip -n ", node_netns_,
                      " route add ", pod.ip, "/32 dev ", v))
          .status());
  if (pod.ip6.empty()) return absl::OkStatus();
  // IPv6: the node side answers as fe80::1 (the pod's gateway), the pod's
  // address is routed to its veth; nodad, so nothing waits on duplicate
  // address detection.
  return Sh(absl::StrCat("ip -n ", node_netns_, " addr add fe80::1/64 dev ", v, " nodad && ip -n ",
                         p, " addr add ", pod.ip6, "/128 dev eth0 nodad && ip -n ", p,
                         " -6 route add default via fe80::1 dev eth0 && ip -n ", node_netns_,
                         " -6 route add ", pod.ip6, "/128 dev ", v))
      .status();
}

absl::Status TestNode::RecreatePodNetwork(const TestPod& pod) {
  // Delete the veth first: that is synchronous, while a deleted namespace
  // releases its devices later, from a kernel work queue, and the node-side
  // name would still be taken when we re-create it.
  SHUNT_RETURN_IF_ERROR(Sh(absl::StrCat("ip -n ", node_netns_, " link del ", pod.host_veth,
                                        " && ip netns del ", pod.netns))
                            .status());
  SHUNT_RETURN_IF_ERROR(SetUpPodNetwork(pod));
  for (auto& p : pods_)
    if (p.get() == &pod) return StartSandbox(*p);
  return absl::NotFoundError(absl::StrCat("pod ", pod.name, " is not this node's"));
}

absl::Status TestNode::StartSandbox(TestPod& pod) {
  // The pod's "pause" process: the oldest in its cgroup, holding its
  // namespace, as a container runtime's sandbox does. A new sandbox (the
  // pod's network made anew) replaces the old one.
  if (pod.sandbox_pid > 0) {
    children_.erase(std::remove(children_.begin(), children_.end(), pod.sandbox_pid),
                    children_.end());
    KillAndReap(pod.sandbox_pid);
  }
  SHUNT_ASSIGN_OR_RETURN(pod.sandbox_pid, Spawn(pod, {"sleep", "infinity"},
                                                work_dir_ + "/sandbox-" + pod.name + ".log"));
  return absl::OkStatus();
}

std::vector<nlohmann::json> TestNode::PodObjects() const {
  std::vector<nlohmann::json> out;
  for (const auto& p : pods_)
    if (!p->namespace_.empty()) {
      out.push_back(
          kubeapi::PodObject(p->namespace_, p->name, name_, p->ip, p->service_account, p->uid));
      if (!p->ip6.empty()) out.back()["status"]["podIPs"] = {{{"ip", p->ip}}, {{"ip", p->ip6}}};
      // Where the node's proxy listens (the node's address on its link).
      if (!link_ip_.empty()) out.back()["status"]["hostIP"] = link_ip_;
      for (const auto& [k, v] : p->annotations) out.back()["metadata"]["annotations"][k] = v;
    }
  return out;
}

absl::Status TestNode::WriteManifests(const std::vector<const TestNode*>& others) {
  if (api_server_ != nullptr) {
    nlohmann::json pods = nlohmann::json::array();
    for (auto& p : PodObjects()) pods.push_back(std::move(p));
    for (const TestNode* o : others)
      for (auto& p : o->PodObjects()) pods.push_back(std::move(p));
    return api_server_->Bulk(pods).status();
  }
  std::string yaml = PodYaml();
  for (const TestNode* o : others) yaml += o->PodYaml();
  return WriteConfigFile("pods.yaml", yaml);
}

absl::Status TestNode::Link(TestNode& a, TestNode& b) {
  // Link addresses in a /30 of our own, distinct per test process.
  const int k = getpid() % 250;
  const std::string va = a.prefix_ + "x", vb = b.prefix_ + "x";
  const std::string ip_a = absl::StrCat("192.168.", k, ".1"),
                    ip_b = absl::StrCat("192.168.", k, ".2");
  a.link_ip_ = ip_a;
  b.link_ip_ = ip_b;
  a.link_ip6_ = absl::StrCat("fd01::", k, ":1");
  b.link_ip6_ = absl::StrCat("fd01::", k, ":2");
  return Sh(absl::StrCat(
                "ip link add ", va, " netns ", a.node_netns_, " type veth peer name ", vb,
                " netns ", b.node_netns_, " && ip -n ", a.node_netns_, " addr add ", ip_a,
                "/30 dev ", va, " && ip -n ", b.node_netns_, " addr add ", ip_b, "/30 dev ", vb,
                " && ip -n ", a.node_netns_, " link set ", va, " up && ip -n ", b.node_netns_,
                " link set ", vb, " up && ip -n ", a.node_netns_, " route add 10.", b.subnet_,
                ".0.0/16 via ", ip_b, " && ip -n ", b.node_netns_, " route add 10.", a.subnet_,
                ".0.0/16 via ", ip_a, " && ip -n ", a.node_netns_, " addr add fd01::", k,
                ":1/112 dev ", va, " nodad && ip -n ", b.node_netns_, " addr add fd01::", k,
                ":2/112 dev ", vb, " nodad && ip -n ", a.node_netns_,
                " -6 route add fd00:0:", b.subnet_, "::/64 via fd01::", k, ":2 && ip -n ",
                b.node_netns_, " -6 route add fd00:0:", a.subnet_, "::/64 via fd01::", k, ":1"))
      .status();
}

absl::Status TestNode::WriteConfigFile(const std::string& file, const std::string& yaml) {
  // Write then rename, as kubectl-style tools do, so the agent never reads half a file.
  const std::string tmp = config_dir_ + "/." + file + ".tmp";
  SHUNT_RETURN_IF_ERROR(WriteFile(tmp, yaml));
  if (rename(tmp.c_str(), (config_dir_ + "/" + file).c_str()) != 0)
    return lib::ErrnoStatus(errno, "rename manifest");
  return absl::OkStatus();
}

absl::Status TestNode::StartAgent(const std::vector<std::string>& extra_flags) {
  std::vector<std::string> argv = {
      SHUNT_AGENT_BIN,
      "--node=" + name_,
      api_server_ != nullptr ? "--source=kube" : "--config-dir=" + config_dir_,
      "--cgroup-root=" + cgroup_root_,
      "--bpffs=" + bpffs_,
      "--api-socket=" + api_socket_,
      "--rescan-ms=100"};
  if (api_server_ != nullptr)
    argv.push_back("--kubeconfig=" +
                   (kubeconfig_.empty() ? api_server_->kubeconfig() : kubeconfig_));
  argv.insert(argv.end(), extra_flags.begin(), extra_flags.end());
  const std::string log = work_dir_ + "/agent.log";
  const std::string node_ns = "/run/netns/" + node_netns_;
  pid_t pid = fork();
  if (pid < 0) return lib::ErrnoStatus(errno, "fork agent");
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    // A process group of its own, which its children (the mTLS proxy)
    // share: the test's teardown ends them all.
    setpgid(0, 0);
    // The agent runs with the node's network, as a hostNetwork DaemonSet
    // pod does: the node side of every pod veth is in its namespace.
    int ns = open(node_ns.c_str(), O_RDONLY | O_CLOEXEC);
    if (ns < 0 || setns(ns, CLONE_NEWNET) != 0) _exit(125);
    close(ns);
    int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
    }
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    execv(args[0], args.data());
    _exit(127);
  }
  agent_pid_ = pid;
  setpgid(pid, pid);
  agent_groups_.push_back(pid);
  // Ready when the API answers; an early exit is a failure with its log.
  bool exited = false;
  int st = 0;
  absl::Status up = Eventually(
      "agent API answers",
      [&]() -> absl::Status {
        if (waitpid(pid, &st, WNOHANG) == pid) {
          exited = true;  // stop waiting: reported below
          return absl::OkStatus();
        }
        return http::UnixRequest(api_socket_, "GET", "/v1/ping", "", 200).status();
      },
      10000);
  if (exited) {
    agent_pid_ = -1;
    return absl::InternalError(absl::StrCat("agent exited (status ", st, "): ", AgentLog()));
  }
  if (!up.ok()) return absl::DeadlineExceededError(absl::StrCat(up.message(), "\n", AgentLog()));
  return absl::OkStatus();
}

absl::Status TestNode::StopAgent(int sig) {
  if (agent_pid_ <= 0) return absl::FailedPreconditionError("agent not running");
  kill(agent_pid_, sig);
  auto st = WaitExit(agent_pid_, 10000);
  if (!st.ok()) {
    KillAndReap(agent_pid_);
    agent_pid_ = -1;
    return st.status();
  }
  agent_pid_ = -1;
  return absl::OkStatus();
}

absl::StatusOr<uint64_t> TestNode::AppliedGeneration() {
  SHUNT_ASSIGN_OR_RETURN(nlohmann::json st, AgentStatus());
  if (!st.contains("generation") || !st["generation"].is_number_unsigned())
    return absl::InternalError("agent status has no generation: " + st.dump());
  return st["generation"].get<uint64_t>();
}

absl::Status TestNode::WaitGeneration(uint64_t after, int timeout_ms) {
  return Eventually(
      absl::StrCat("agent applies a generation after ", after),
      [&]() -> absl::Status {
        SHUNT_ASSIGN_OR_RETURN(uint64_t g, AppliedGeneration());
        if (g > after) return absl::OkStatus();
        return absl::FailedPreconditionError(absl::StrCat("generation ", g));
      },
      timeout_ms);
}

absl::Status TestNode::ApplyManifests(const std::vector<const TestNode*>& others, int timeout_ms) {
  SHUNT_ASSIGN_OR_RETURN(uint64_t before, AppliedGeneration());
  SHUNT_RETURN_IF_ERROR(WriteManifests(others));
  return WaitGeneration(before, timeout_ms);
}

absl::Status TestNode::ApplyConfigFile(const std::string& file, const std::string& yaml,
                                       int timeout_ms) {
  SHUNT_ASSIGN_OR_RETURN(uint64_t before, AppliedGeneration());
  SHUNT_RETURN_IF_ERROR(WriteConfigFile(file, yaml));
  return WaitGeneration(before, timeout_ms);
}

absl::StatusOr<nlohmann::json> TestNode::AgentStatus() {
  SHUNT_ASSIGN_OR_RETURN(http::Response r, http::UnixRequest(api_socket_, "GET", "/v1/status"));
  auto j = nlohmann::json::parse(r.body, nullptr, false);
  if (j.is_discarded()) return absl::InternalError("agent status is not JSON: " + r.body);
  return j;
}

absl::Status TestNode::WaitMeshed(int timeout_ms) {
  size_t want = 0;
  for (const auto& p : pods_) want += !p->namespace_.empty();
  return Eventually(
      absl::StrCat(want, " local pods meshed"),
      [&]() -> absl::Status {
        SHUNT_ASSIGN_OR_RETURN(nlohmann::json st, AgentStatus());
        size_t meshed = 0;
        for (const auto& p : st["local_pods"]) meshed += p["problem"].get<std::string>().empty();
        if (meshed == want && st["local_pods"].size() == want) return absl::OkStatus();
        return absl::FailedPreconditionError(absl::StrCat("status: ", st.dump()));
      },
      timeout_ms);
}

std::string TestNode::AgentLog() const {
  std::ifstream f(work_dir_ + "/agent.log");
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

absl::StatusOr<lib::Counters> TestNode::Counters() const {
  SHUNT_ASSIGN_OR_RETURN(auto maps, lib::PinnedMaps::Open(lib::PinLayout(bpffs_), true));
  return lib::ReadCounters(maps->counters_fd());
}

absl::StatusOr<uint64_t> TestNode::SockhashEntries() const {
  SHUNT_ASSIGN_OR_RETURN(auto fd,
                         lib::OpenPin(lib::PinLayout(bpffs_).Map(SHUNT_MAP_SOCKHASH), true));
  SHUNT_ASSIGN_OR_RETURN(auto facts, lib::DescribeMap(fd.get()));
  return facts.entries;
}

absl::StatusOr<std::vector<uint64_t>> TestNode::TcpReasonCounts() const {
  SHUNT_ASSIGN_OR_RETURN(auto fd,
                         lib::OpenPin(lib::PinLayout(bpffs_).Map(SHUNT_MAP_TCP_REASONS), true));
  SHUNT_ASSIGN_OR_RETURN(lib::TcpReasonCounts c, lib::ReadTcpReasons(fd.get()));
  return std::vector<uint64_t>(c.begin(), c.end());
}

absl::StatusOr<uint64_t> TestNode::SockrefEntries() const {
  SHUNT_ASSIGN_OR_RETURN(auto fd,
                         lib::OpenPin(lib::PinLayout(bpffs_).Map(SHUNT_MAP_SOCKREF), true));
  SHUNT_ASSIGN_OR_RETURN(auto facts, lib::DescribeMap(fd.get()));
  return facts.entries;
}

absl::StatusOr<lib::UniqueFd> TestNode::SocketIn(const std::string& netns_path,
                                                 const std::string& cgroup, int type, int domain,
                                                 int protocol) const {
  return SocketAs(cgroup, netns_path, domain, type, protocol);
}

absl::StatusOr<lib::UniqueFd> TestNode::PodSocket(const TestPod& pod, int type, int domain,
                                                  int protocol) const {
  return SocketIn("/run/netns/" + pod.netns, pod.cgroup, type, domain, protocol);
}

absl::StatusOr<std::vector<lib::UniqueFd>> TestNode::PodSockets(const TestPod& pod, int type,
                                                                int count, int domain) const {
  return SocketsAs(pod.cgroup, "/run/netns/" + pod.netns, domain, type, 0, count);
}

absl::StatusOr<lib::UniqueFd> TestNode::NodeSocket(int type, int domain, int protocol) const {
  return SocketIn("/run/netns/" + node_netns_, cgroup_root_, type, domain, protocol);
}

absl::StatusOr<pid_t> TestNode::Spawn(const TestPod& pod, const std::vector<std::string>& argv,
                                      const std::string& log_file) {
  return SpawnIn("/run/netns/" + pod.netns, pod.cgroup + "/cgroup.procs", argv, log_file);
}

absl::StatusOr<pid_t> TestNode::SpawnInNode(const std::vector<std::string>& argv,
                                            const std::string& log_file) {
  return SpawnIn("/run/netns/" + node_netns_, cgroup_root_ + "/cgroup.procs", argv, log_file);
}

absl::StatusOr<pid_t> TestNode::SpawnIn(const std::string& netns, const std::string& procs,
                                        const std::vector<std::string>& argv,
                                        const std::string& log_file) {
  pid_t pid = fork();
  if (pid < 0) return lib::ErrnoStatus(errno, "fork");
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    int cg = open(procs.c_str(), O_WRONLY);
    if (cg < 0 || write(cg, "0", 1) != 1) _exit(126);
    close(cg);
    int ns = open(netns.c_str(), O_RDONLY);
    if (ns < 0 || setns(ns, CLONE_NEWNET) != 0) _exit(125);
    close(ns);
    int fd = open(log_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
    }
    std::vector<char*> args;
    std::vector<std::string> copy = argv;
    for (auto& a : copy) args.push_back(a.data());
    args.push_back(nullptr);
    execvp(args[0], args.data());
    _exit(127);
  }
  children_.push_back(pid);
  return pid;
}

absl::StatusOr<uint64_t> TestNode::VethBytes(const TestPod& pod) const {
  SHUNT_ASSIGN_OR_RETURN(std::string out, Sh(absl::StrCat("ip -n ", node_netns_,
                                                          " -s -j link show dev ", pod.host_veth)));
  auto j = nlohmann::json::parse(out, nullptr, false);
  if (j.is_discarded() || j.empty()) return absl::InternalError("ip -j: " + out);
  const auto& s = j[0]["stats64"];
  return s["rx"]["bytes"].get<uint64_t>() + s["tx"]["bytes"].get<uint64_t>();
}

TestNode::~TestNode() {
  for (pid_t c : children_) KillAndReap(c);
  if (agent_pid_ > 0) KillAndReap(agent_pid_);
  // The proxies of every agent this node ran, also those still draining.
  for (pid_t g : agent_groups_) kill(-g, SIGKILL);
  if (auto r = datapath::Uninstall(bpffs_); !r.ok())
    std::fprintf(stderr, "e2e cleanup: %s\n", std::string(r.status().message()).c_str());
  for (const auto& p : pods_) (void)Sh("ip netns del " + p->netns);
  (void)Sh("ip netns del " + node_netns_);
  RemoveCgroupTree(cgroup_root_);
  std::error_code ec;
  fs::remove_all(bpffs_, ec);
  fs::remove_all(work_dir_, ec);
}

}  // namespace shunt::e2e
