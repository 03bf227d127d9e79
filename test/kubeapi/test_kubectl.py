"""kubeapi.kubectl: the real kubectl against the fake apiserver.

kubectl is the independent client here: if it prints what it prints against
a real cluster (discovery, Tables, `get -w` over a watch of Tables, Status
errors), the server speaks the protocol and not just our own reading of it.
KUBECTL=/path/to/kubectl picks another binary (to try an older client).
"""

import json
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from fakeclient import pod  # noqa: E402
from test_fake_apiserver import ServerTest  # noqa: E402

KUBECTL = os.environ.get("KUBECTL") or shutil.which("kubectl")
OBJECTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "testdata", "objects.json")
AGE = r"\d+[smhd]"


class KubectlTest(ServerTest):
    args = ("--objects", OBJECTS, "--bookmark-interval", "0.2")

    def setUp(self):
        if not KUBECTL:
            self.fail("kubectl is not on PATH: tools/install-deps.sh installs it (Debian's "
                      "kubernetes-client package), or set KUBECTL=/path/to/kubectl")
        super().setUp()

    def argv(self, server, *args):
        # --cache-dir keeps kubectl's discovery cache out of $HOME and per server.
        return [KUBECTL, "--kubeconfig", os.path.join(server.dir, "kubeconfig"),
                "--cache-dir", os.path.join(server.dir, "kubectl-cache"), *args]

    def kubectl(self, *args, server=None, ok=True):
        proc = subprocess.run(self.argv(server or self.s, *args), capture_output=True, text=True,
                              timeout=30, stdin=subprocess.DEVNULL)
        if ok and proc.returncode != 0:
            self.fail(f"kubectl {' '.join(args)} exited {proc.returncode}:\n{proc.stderr}")
        return proc

    def test_get_pods_all_namespaces_prints_the_usual_columns(self):
        out = self.kubectl("get", "pods", "-A").stdout.splitlines()
        self.assertEqual(out[0].split(), ["NAMESPACE", "NAME", "READY", "STATUS", "RESTARTS", "AGE"])
        self.assertEqual(len(out), 4, out)
        self.assertRegex(out[1], rf"^default\s+client\s+0/1\s+Pending\s+0\s+{AGE}$")
        self.assertRegex(out[2], rf"^shop\s+db-1\s+1/1\s+Running\s+2\s+{AGE}$")
        self.assertRegex(out[3], rf"^shop\s+web-1\s+1/1\s+Running\s+0\s+{AGE}$")
        wide = self.kubectl("get", "pods", "-n", "shop", "-o", "wide").stdout.splitlines()
        self.assertEqual(wide[0].split()[:7], ["NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE"])
        self.assertRegex(wide[2], rf"^web-1\s+1/1\s+Running\s+0\s+{AGE}\s+10\.0\.0\.11\s+node-a\s")

    def test_get_smi_resources_and_short_names(self):
        out = self.kubectl("get", "traffictargets", "-A").stdout.splitlines()
        self.assertEqual(out[0].split(), ["NAMESPACE", "NAME", "AGE"])
        self.assertRegex(out[1], rf"^shop\s+client-to-web\s+{AGE}$")
        self.assertIn("web-split", self.kubectl("get", "ts", "-n", "shop").stdout)
        svc = self.kubectl("get", "svc", "-n", "shop").stdout.splitlines()
        self.assertRegex(svc[1], rf"^web\s+ClusterIP\s+10\.96\.0\.10\s+<none>\s+80/TCP\s+{AGE}$")

    def test_get_one_object_and_not_found(self):
        got = json.loads(self.kubectl("get", "pod", "-n", "shop", "web-1", "-o", "json").stdout)
        self.assertEqual((got["kind"], got["metadata"]["name"]), ("Pod", "web-1"))
        split = json.loads(self.kubectl("get", "trafficsplit.v1alpha2.split.smi-spec.io", "-n", "shop",
                                        "web-split", "-o", "json").stdout)
        self.assertEqual(split["apiVersion"], "split.smi-spec.io/v1alpha2")
        missing = self.kubectl("get", "pod", "-n", "shop", "nope", ok=False)
        self.assertNotEqual(missing.returncode, 0)
        self.assertIn('pods "nope" not found', missing.stderr)

    def test_a_missing_crd_is_an_unknown_resource_type(self):
        s = self.start("--missing", "trafficsplits.split.smi-spec.io")
        proc = self.kubectl("get", "trafficsplits", "-A", server=s, ok=False)
        self.assertNotEqual(proc.returncode, 0)
        self.assertIn("the server doesn't have a resource type", proc.stderr)

    def test_get_pods_watch_shows_changes_as_they_happen(self):
        proc = subprocess.Popen(self.argv(self.s, "get", "pods", "-A", "-w"), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)

        def stop():
            proc.send_signal(signal.SIGTERM)
            proc.wait(5)
            proc.stdout.close()
            proc.stderr.close()

        self.addCleanup(stop)
        lines = _Lines(proc.stdout)
        header = lines.wait_for(lambda line: "NAMESPACE" in line)
        self.assertEqual(header.split(), ["NAMESPACE", "NAME", "READY", "STATUS", "RESTARTS", "AGE"])
        lines.wait_for(lambda line: "web-1" in line)  # the list is printed; the watch follows
        self.s.apply(pod("late", namespace="shop", phase="Pending"))
        self.assertRegex(lines.wait_for(lambda line: "late" in line), rf"^shop\s+late\s+0/1\s+Pending\s+0\s+{AGE}$")
        self.s.apply(pod("late", namespace="shop", phase="Failed"))
        self.assertRegex(lines.wait_for(lambda line: "late" in line), r"^shop\s+late\s+0/1\s+Failed\s")
        self.s.delete("v1", "Pod", "shop", "db-1")
        self.assertRegex(lines.wait_for(lambda line: "db-1" in line), r"^shop\s+db-1\s")
        self.assertNotIn("NAMESPACE", "".join(lines.seen[1:]))  # one header, not one per event


class _Lines:
    """Lines of a child's stdout, awaited with a deadline."""

    def __init__(self, pipe):
        self.pipe, self.buf, self.seen = pipe, b"", []

    def wait_for(self, pred, timeout=10):
        deadline = time.monotonic() + timeout
        while True:
            while b"\n" in self.buf:
                line, self.buf = self.buf.split(b"\n", 1)
                text = line.decode()
                self.seen.append(text)
                if pred(text):
                    return text
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.pipe], [], [], left)[0]:
                raise AssertionError(f"kubectl printed no such line within {timeout} s; printed {self.seen}")
            data = os.read(self.pipe.fileno(), 65536)
            if not data:
                raise AssertionError(f"kubectl's output ended; printed {self.seen}")
            self.buf += data


if __name__ == "__main__":
    unittest.main()
