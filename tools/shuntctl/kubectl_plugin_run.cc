// The process side of the kubectl plugin (kubectl_plugin.h): finding
// kubectl, running `kubectl get pods` for its output, and replacing this
// process with `kubectl exec`. Never a shell: every argument goes to kubectl
// as one argv element, so a node or pod name cannot become shell syntax.
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "tools/common/flag_set.h"
#include "tools/shuntctl/kubectl_plugin.h"

namespace shunt::ctl {
namespace {

bool IsExecutableFile(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && access(path.c_str(), X_OK) == 0;
}

// `name` itself when it has a slash, else the first executable `dir/name`
// for dir in `path_env` (an empty entry is the current directory, as for
// execvp). Empty when there is none.
std::string Lookup(const std::string& name, const char* path_env) {
  if (name.find('/') != std::string::npos) return IsExecutableFile(name) ? name : "";
  if (path_env == nullptr) return "";
  for (absl::string_view dir : absl::StrSplit(path_env, ':')) {
    std::string candidate = absl::StrCat(dir.empty() ? "." : std::string(dir), "/", name);
    if (IsExecutableFile(candidate)) return candidate;
  }
  return "";
}

std::vector<char*> Argv(const std::string& program, std::vector<std::string>& args) {
  std::vector<char*> argv = {const_cast<char*>(program.c_str())};
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  return argv;
}

// The command as a user would type it, for messages only (nothing runs it).
std::string Shown(const std::vector<std::string>& args) {
  return absl::StrCat("kubectl ", absl::StrJoin(args, " "));
}

// Runs `kubectl ARGS` with this process's stdin and stderr (so that an
// interactive credential plugin can ask, and kubectl's own errors show), its
// stdout captured. UnavailableError when it cannot start or does not exit 0.
absl::StatusOr<std::string> RunForOutput(const std::string& kubectl,
                                         std::vector<std::string> args) {
  const std::string shown = Shown(args);
  int out[2];
  if (pipe2(out, O_CLOEXEC) != 0)
    return absl::InternalError(absl::StrCat("pipe for ", shown, ": ", std::strerror(errno)));
  std::vector<char*> argv = Argv(kubectl, args);
  const pid_t pid = fork();
  if (pid < 0) {
    close(out[0]);
    close(out[1]);
    return absl::InternalError(absl::StrCat("fork for ", shown, ": ", std::strerror(errno)));
  }
  if (pid == 0) {
    dup2(out[1], STDOUT_FILENO);  // dup2 clears O_CLOEXEC on the copy
    execv(kubectl.c_str(), argv.data());
    std::fprintf(stderr, "kubectl-shunt: cannot run %s: %s\n", kubectl.c_str(),
                 std::strerror(errno));
    _exit(127);
  }
  close(out[1]);
  std::string output;
  char buf[65536];
  for (;;) {
    const ssize_t n = read(out[0], buf, sizeof(buf));
    if (n > 0) {
      output.append(buf, static_cast<size_t>(n));
    } else if (n == 0 || errno != EINTR) {
      break;
    }
  }
  close(out[0]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFSIGNALED(status))
    return absl::UnavailableError(
        absl::StrCat("`", shown, "` was killed by signal ", WTERMSIG(status)));
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    return absl::UnavailableError(absl::StrCat("`", shown, "` exited ", WEXITSTATUS(status),
                                               " (kubectl's message is above)"));
  return output;
}

}  // namespace

absl::StatusOr<std::string> FindKubectl(const char* kubectl_env, const char* kubectl_path_env,
                                        const char* path_env) {
  if (kubectl_env != nullptr && *kubectl_env != '\0') {
    std::string found = Lookup(kubectl_env, path_env);
    if (found.empty())
      return absl::NotFoundError(
          absl::StrCat("KUBECTL=", kubectl_env, " is not an executable file",
                       std::strchr(kubectl_env, '/') == nullptr ? " on PATH" : ""));
    return found;
  }
  if (kubectl_path_env != nullptr && *kubectl_path_env != '\0' &&
      IsExecutableFile(kubectl_path_env))
    return std::string(kubectl_path_env);
  std::string found = Lookup("kubectl", path_env);
  if (found.empty())
    return absl::NotFoundError(
        "no kubectl on PATH: kubectl-shunt is a kubectl plugin (`kubectl shunt ...`) and needs "
        "kubectl to reach the cluster; put kubectl on PATH or set KUBECTL=/path/to/kubectl");
  return found;
}

int RunKubectlPlugin(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty()) {
    std::fputs(kPluginUsage, stderr);
    return 2;
  }
  absl::StatusOr<PluginArgs> p = ParsePluginArgs(args);
  if (!p.ok()) return cli::UsageError("kubectl shunt", p.status());
  if (p->help) {
    std::fputs(kPluginUsage, stdout);
    return 0;
  }
  auto fail = [](const absl::Status& s) {
    std::fprintf(stderr, "kubectl-shunt: %s\n", std::string(s.message()).c_str());
    return 1;
  };
  absl::StatusOr<std::string> kubectl =
      FindKubectl(std::getenv("KUBECTL"), std::getenv("KUBECTL_PATH"), std::getenv("PATH"));
  if (!kubectl.ok()) return fail(kubectl.status());
  absl::StatusOr<std::string> listed = RunForOutput(*kubectl, GetPodsArgv(*p));
  if (!listed.ok()) return fail(listed.status());
  absl::StatusOr<PodChoice> choice = ChooseAgentPod(*listed, p->node, p->namespace_);
  if (!choice.ok()) return fail(choice.status());
  if (!choice->note.empty()) std::fprintf(stderr, "kubectl-shunt: %s\n", choice->note.c_str());

  // exec, not fork: stdin, stdout, stderr, signals and the exit status (which
  // kubectl exec takes from the remote shuntctl) are kubectl's, unchanged.
  std::vector<std::string> exec_args =
      ExecArgv(*p, choice->pod, isatty(STDIN_FILENO) && isatty(STDOUT_FILENO));
  std::vector<char*> exec_argv = Argv(*kubectl, exec_args);
  std::fflush(stdout);
  execv(kubectl->c_str(), exec_argv.data());
  std::fprintf(stderr, "kubectl-shunt: cannot run %s: %s\n", kubectl->c_str(),
               std::strerror(errno));
  return 1;
}

}  // namespace shunt::ctl
