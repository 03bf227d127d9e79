"""kubeapi.kubectl_plugin: `kubectl shunt` (shuntctl run as kubectl-shunt) against the fake
apiserver, with the real kubectl finding the agent pod.

The plugin runs $KUBECTL, here a wrapper: `get` goes to the real kubectl, so pod discovery
(the label and field selectors, --kubeconfig passed through, the JSON read back) is what a
cluster would see; `exec` is recorded and answered with a canned line and exit 3, because
the fake server cannot do exec (an upgrade of the connection to SPDY or WebSocket streams,
then a container to run in). What is left untested here is kubectl exec itself.

SHUNTCTL=/path/to/shuntctl names the built binary (CTest sets it); KUBECTL=/path/to/kubectl
picks the real kubectl, as for kubeapi.kubectl.
"""

import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from test_fake_apiserver import ServerTest  # noqa: E402

SHUNTCTL = os.environ.get("SHUNTCTL")
REAL_KUBECTL = os.environ.get("KUBECTL") or shutil.which("kubectl")
CANNED = "canned output of shuntctl in the agent pod"
LABEL = "app.kubernetes.io/name=shunt-agent"

WRAPPER = """#!/bin/sh
# The plugin's kubectl: `get` to the real one, `exec` recorded (see the test's docstring).
for a in "$@"; do
  case "$a" in
    exec) printf '%s\\0' "$@" > {dir}/exec.argv; echo {canned}; exit 3 ;;
    get) printf '%s\\0' "$@" > {dir}/get.argv; break ;;
  esac
done
exec {kubectl} --cache-dir {dir}/kubectl-cache "$@"
"""


def agent_pod(name, node, namespace="shunt-system", phase="Running",
              created="2026-12-01T10:00:00Z"):
    """An agent pod as the DaemonSet (deploy/kubernetes/daemonset.yaml) makes them."""
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": namespace, "creationTimestamp": created,
                         "labels": {"app.kubernetes.io/name": "shunt-agent",
                                    "app.kubernetes.io/part-of": "shunt"}},
            "spec": {"nodeName": node, "containers": [{"name": "agent", "image": "shunt/agent:dev"},
                                                      {"name": "kube-rbac-proxy", "image": "x"}]},
            "status": {"phase": phase}}


class KubectlPluginTest(ServerTest):
    def setUp(self):
        if not SHUNTCTL:
            self.fail("SHUNTCTL is not set: run through ctest, or SHUNTCTL=build/tools/shuntctl/shuntctl")
        if not REAL_KUBECTL:
            self.fail("kubectl is not on PATH: tools/install-deps.sh installs it, or set KUBECTL")
        super().setUp()
        self.dir = tempfile.mkdtemp(prefix="kubectl-shunt-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        # Installed as the docs say: a symlink named kubectl-shunt.
        self.plugin = os.path.join(self.dir, "kubectl-shunt")
        os.symlink(os.path.abspath(SHUNTCTL), self.plugin)
        self.wrapper = os.path.join(self.dir, "kubectl-wrapper")
        with open(self.wrapper, "w") as f:
            f.write(WRAPPER.format(dir=shlex.quote(self.dir), canned=shlex.quote(CANNED),
                                   kubectl=shlex.quote(REAL_KUBECTL)))
        os.chmod(self.wrapper, 0o755)
        self.kubeconfig = os.path.join(self.s.dir, "kubeconfig")
        self.s.apply(agent_pod("shunt-agent-n1", "n1"))
        self.s.apply(agent_pod("shunt-agent-n2", "n2"))
        # Near misses that must not be picked: unlabelled in the namespace, labelled elsewhere.
        self.s.apply({**agent_pod("not-an-agent", "n2"),
                      "metadata": {"name": "not-an-agent", "namespace": "shunt-system"}})
        self.s.apply(agent_pod("agent-elsewhere", "n2", namespace="default"))

    def run_plugin(self, *args, env=None, argv0=None):
        if env is None:
            env = {**os.environ, "KUBECTL": self.wrapper}
            env.pop("KUBECTL_PATH", None)
        return subprocess.run([argv0 or self.plugin, *args], capture_output=True, text=True,
                              timeout=60, stdin=subprocess.DEVNULL, env=env)

    def recorded(self, verb):
        path = os.path.join(self.dir, f"{verb}.argv")
        if not os.path.exists(path):
            return None
        with open(path) as f:
            return f.read().split("\0")[:-1]

    def test_node_n2_runs_shuntctl_in_its_agent_pod_and_passes_the_exit_status(self):
        p = self.run_plugin("status", "--node", "n2", "--kubeconfig", self.kubeconfig)
        self.assertEqual(p.returncode, 3, p.stderr)
        self.assertEqual(p.stdout, CANNED + "\n")
        self.assertEqual(p.stderr, "")
        self.assertEqual(self.recorded("get"),
                         ["--kubeconfig", self.kubeconfig, "get", "pods", "-n", "shunt-system",
                          "-l", LABEL, "--field-selector", "spec.nodeName=n2", "-o", "json"])
        self.assertEqual(self.recorded("exec"),
                         ["--kubeconfig", self.kubeconfig, "exec", "-n", "shunt-system",
                          "shunt-agent-n2", "-c", "agent", "--", "shuntctl", "status"])
        # The real kubectl asked the fake server with both selectors.
        lists = [r for r in self.s.control("/fake/requests", method="GET")
                 if r["path"] == "/api/v1/namespaces/shunt-system/pods"]
        self.assertEqual(len(lists), 1, lists)
        self.assertEqual(lists[0]["query"].get("labelSelector"), LABEL)
        self.assertEqual(lists[0]["query"].get("fieldSelector"), "spec.nodeName=n2")

    def test_plugin_flags_anywhere_the_rest_in_order(self):
        p = self.run_plugin("flows", "--to", "shop/web", f"--kubeconfig={self.kubeconfig}",
                            "--node=n1", "-o", "json")
        self.assertEqual(p.returncode, 3, p.stderr)
        self.assertEqual(self.recorded("exec"),
                         ["--kubeconfig", self.kubeconfig, "exec", "-n", "shunt-system",
                          "shunt-agent-n1", "-c", "agent", "--", "shuntctl", "flows", "--to",
                          "shop/web", "-o", "json"])

    def test_unknown_node_names_it_and_what_was_searched(self):
        p = self.run_plugin("status", "--node", "n9", "--kubeconfig", self.kubeconfig)
        self.assertEqual(p.returncode, 1)
        self.assertEqual(p.stderr,
                         "kubectl-shunt: no Shunt agent pod on node n9: found no pods labelled "
                         f"{LABEL} in namespace shunt-system there; is the node name right "
                         "(kubectl get nodes)?\n")
        self.assertIsNone(self.recorded("exec"))

    def test_several_nodes_without_node_lists_them(self):
        p = self.run_plugin("status", "--kubeconfig", self.kubeconfig)
        self.assertEqual(p.returncode, 1)
        self.assertEqual(p.stderr, "kubectl-shunt: Shunt agents run on 2 nodes (n1, n2): pass "
                                   "--node NODE to say which one to ask\n")
        self.assertNotIn("--field-selector", self.recorded("get"))
        self.assertIsNone(self.recorded("exec"))

    def test_one_node_without_node_and_the_newest_of_a_rollout(self):
        self.s.delete("v1", "Pod", "shunt-system", "shunt-agent-n2")
        self.s.apply(agent_pod("shunt-agent-n1-new", "n1", created="2026-12-05T10:00:00Z"))
        p = self.run_plugin("drops", "--kubeconfig", self.kubeconfig)
        self.assertEqual(p.returncode, 3, p.stderr)
        self.assertEqual(self.recorded("exec")[5], "shunt-agent-n1-new")
        self.assertEqual(p.stderr, "kubectl-shunt: 2 Shunt agent pods are Running on node n1 "
                                   "(shunt-agent-n1-new, shunt-agent-n1), as during a rollout; "
                                   "using the newest, shunt-agent-n1-new\n")

    def test_namespace_flag_searches_there(self):
        self.s.apply(agent_pod("mesh-agent-n3", "n3", namespace="mesh"))
        p = self.run_plugin("-n", "mesh", "services", "--node", "n3",
                            "--kubeconfig", self.kubeconfig)
        self.assertEqual(p.returncode, 3, p.stderr)
        self.assertEqual(self.recorded("exec")[2:7], ["exec", "-n", "mesh", "mesh-agent-n3", "-c"])

    def test_kubectl_failing_is_reported(self):
        p = self.run_plugin("status", "--node", "n1", "--kubeconfig", self.kubeconfig,
                            "--context", "no-such-context")
        self.assertEqual(p.returncode, 1)
        self.assertIn("no-such-context", p.stderr)  # kubectl's own message
        self.assertIn("kubectl-shunt: `kubectl --kubeconfig", p.stderr)
        self.assertIn("exited 1 (kubectl's message is above)", p.stderr)

    def test_without_kubectl_says_it_is_a_plugin(self):
        env = {k: v for k, v in os.environ.items() if k not in ("KUBECTL", "KUBECTL_PATH")}
        env["PATH"] = self.dir  # kubectl-shunt, but no kubectl
        p = self.run_plugin("status", "--node", "n1", env=env)
        self.assertEqual(p.returncode, 1)
        self.assertIn("no kubectl on PATH: kubectl-shunt is a kubectl plugin", p.stderr)

    def test_through_kubectl_itself(self):
        # What users type: kubectl finds kubectl-shunt on PATH and hands it the arguments.
        path = os.pathsep.join([self.dir, os.path.dirname(REAL_KUBECTL), os.environ.get("PATH", "")])
        env = {**os.environ, "KUBECTL": self.wrapper, "PATH": path}
        p = subprocess.run([REAL_KUBECTL, "shunt", "policy", "check", "--from", "a/b", "--to", "c/d",
                            "--port", "80", "--node", "n1", "--kubeconfig", self.kubeconfig],
                           capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
                           env=env)
        self.assertEqual(p.returncode, 3, p.stderr)
        self.assertEqual(p.stdout, CANNED + "\n")
        self.assertEqual(self.recorded("exec"),
                         ["--kubeconfig", self.kubeconfig, "exec", "-n", "shunt-system",
                          "shunt-agent-n1", "-c", "agent", "--", "shuntctl", "policy", "check",
                          "--from", "a/b", "--to", "c/d", "--port", "80"])

    def test_help_and_mistakes_need_no_cluster(self):
        env = {**os.environ, "KUBECTL": "/nonexistent"}
        p = self.run_plugin("--help", env=env)
        self.assertEqual(p.returncode, 0)
        self.assertIn("usage: kubectl shunt COMMAND", p.stdout)
        p = self.run_plugin(env=env)
        self.assertEqual(p.returncode, 2)
        self.assertIn("usage: kubectl shunt COMMAND", p.stderr)
        p = self.run_plugin("status", "--port", "80", "--node", "n1", env=env)
        self.assertEqual(p.returncode, 2)
        self.assertEqual(p.stderr, "kubectl shunt: --port does not apply to 'status' "
                                   "(see kubectl shunt --help)\n")


if __name__ == "__main__":
    unittest.main()
