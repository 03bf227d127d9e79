#include "pod_cgroups.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sstream>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "agent/lib/unique_fd.h"

namespace shunt::netns {
namespace {

bool IsUidChar(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || c == '-'; }

bool LooksLikeUid(const std::string& s) {
  if (s.size() < 8 || s.size() > 64) return false;
  for (char c : s)
    if (!IsUidChar(c)) return false;
  return true;
}

std::vector<std::string> SubDirs(const std::string& dir) {
  std::vector<std::string> out;
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return out;
  while (dirent* e = readdir(d)) {
    if (e->d_type != DT_DIR || e->d_name[0] == '.') continue;
    out.emplace_back(e->d_name);
  }
  closedir(d);
  return out;
}

void Walk(const std::string& dir, int depth, std::map<std::string, std::string>& out) {
  for (const std::string& name : SubDirs(dir)) {
    const std::string path = absl::StrCat(dir, "/", name);
    if (std::string uid = PodUidOfCgroupName(name); !uid.empty()) {
      out.emplace(uid, path);  // a pod's own children are its containers: not searched
      continue;
    }
    if (depth > 1) Walk(path, depth - 1, out);
  }
}

// A small kernel file read whole with read(2): a process that exits while
// its /proc files are read fails the read with ESRCH, which iostreams
// would turn into an exception.
std::string ReadSmallFile(const std::string& path) {
  std::string out;
  lib::UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return out;
  char buf[4096];
  for (;;) {
    const ssize_t n = read(fd.get(), buf, sizeof(buf));
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
    if (out.size() > (1u << 20)) break;
  }
  return out;
}

// Field 22 of /proc/PID/stat: start time in clock ticks after boot. The
// command name (field 2) may hold spaces and parentheses: count from the
// last ')'.
bool StartTime(const std::string& proc_dir, pid_t pid, unsigned long long& ticks) {
  const std::string stat = ReadSmallFile(absl::StrCat(proc_dir, "/", pid, "/stat"));
  const size_t paren = stat.rfind(')');
  if (paren == std::string::npos) return false;
  std::istringstream rest(stat.substr(paren + 1));
  std::string field;
  for (int i = 3; i <= 22; ++i)
    if (!(rest >> field)) return false;
  return absl::SimpleAtoi(field, &ticks);
}

void CollectProcs(const std::string& cgroup, int depth, std::vector<pid_t>& out) {
  for (absl::string_view line :
       absl::StrSplit(ReadSmallFile(cgroup + "/cgroup.procs"), '\n', absl::SkipEmpty())) {
    pid_t pid = 0;
    if (absl::SimpleAtoi(line, &pid) && pid > 0) out.push_back(pid);
  }
  if (depth <= 0) return;
  for (const std::string& name : SubDirs(cgroup))
    CollectProcs(absl::StrCat(cgroup, "/", name), depth - 1, out);
}

}  // namespace

std::string PodUidOfCgroupName(const std::string& name) {
  // cgroupfs: "pod<UID>"
  if (absl::StartsWith(name, "pod")) {
    std::string uid = name.substr(3);
    return LooksLikeUid(uid) ? uid : "";
  }
  // systemd: "kubepods-<qos>-pod<UID_>.slice" or "kubepods-pod<UID_>.slice"
  if (!absl::StartsWith(name, "kubepods") || !absl::EndsWith(name, ".slice")) return "";
  const size_t at = name.rfind("-pod");
  if (at == std::string::npos) return "";
  std::string uid = name.substr(at + 4, name.size() - at - 4 - 6);
  if (uid.find('-') != std::string::npos) return "";  // systemd escapes them as '_'
  uid = absl::StrReplaceAll(uid, {{"_", "-"}});
  return LooksLikeUid(uid) ? uid : "";
}

std::map<std::string, std::string> FindPodCgroups(const std::string& root, int max_depth) {
  std::map<std::string, std::string> out;
  Walk(root, max_depth, out);
  return out;
}

absl::StatusOr<pid_t> OldestProcessInCgroup(const std::string& cgroup,
                                            const std::string& proc_dir) {
  std::vector<pid_t> pids;
  CollectProcs(cgroup, 3, pids);
  pid_t oldest = 0;
  unsigned long long oldest_ticks = 0;
  for (pid_t pid : pids) {
    unsigned long long ticks = 0;
    if (!StartTime(proc_dir, pid, ticks)) continue;  // exited meanwhile
    if (oldest == 0 || ticks < oldest_ticks || (ticks == oldest_ticks && pid < oldest)) {
      oldest = pid;
      oldest_ticks = ticks;
    }
  }
  if (oldest == 0)
    return absl::NotFoundError(absl::StrCat("no process in its cgroup ", cgroup, " (yet)"));
  return oldest;
}

}  // namespace shunt::netns
