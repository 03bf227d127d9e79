"""kubeapi.protocol, second half: faults armed through /fake/fault and the control API.

Same harness as test_fake_apiserver.py: a server per test, TLS verified,
watches read with deadlines.
"""

import json
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from fakeclient import pod  # noqa: E402
from test_fake_apiserver import ServerTest, names  # noqa: E402


class FaultTest(ServerTest):
    def test_expire_watches_gives_error_410_and_ends_every_watch(self):
        old = str(self.rv())
        self.s.apply(pod("a"))
        watches = [self.s.watch("/api/v1/pods", resourceVersion=old),
                   self.s.watch("/api/v1/namespaces/default/pods", resourceVersion=old)]
        for w in watches:
            self.addCleanup(w.close)
            self.assertEqual(names([w.next()]), [("ADDED", "a")])
        self.s.fault(expire_watches=True)
        for w in watches:
            [err] = w.wait_end()
            self.assertError(err, 410, "Expired")
            self.assertTrue(err["object"]["message"].startswith("too old resource version: "))
            self.assertEqual(w.ended, "clean")
        resumed = self.s.watch("/api/v1/pods", resourceVersion=old)  # history is gone too
        self.addCleanup(resumed.close)
        [err] = resumed.wait_end()
        self.assertError(err, 410, "Expired")

    def test_expired_continue_is_410(self):
        self.s.control("/fake/bulk", [pod(f"p{i}") for i in range(5)])
        _, _, first = self.s.get("/api/v1/pods", limit=2)
        self.s.fault(expire_continue=True)
        status, _, err = self.s.get("/api/v1/pods", limit=2, **{"continue": first["metadata"]["continue"]})
        self.assertEqual(status, 410)
        self.assertStatus(err, 410, "Expired")
        _, _, again = self.s.get("/api/v1/pods", limit=2)  # a new list gets a new, valid token
        self.assertEqual(self.s.get("/api/v1/pods", limit=2, **{"continue": again["metadata"]["continue"]})[0], 200)

    def test_continue_tokens_expire_after_the_ttl(self):
        s = self.start("--continue-ttl", "0")
        s.control("/fake/bulk", [pod(f"p{i}") for i in range(3)])
        _, _, first = s.get("/api/v1/pods", limit=1)
        status, _, err = s.get("/api/v1/pods", limit=1, **{"continue": first["metadata"]["continue"]})
        self.assertEqual((status, err["reason"]), (410, "Expired"))

    def test_throttle_gives_429_with_retry_after(self):
        self.s.fault(throttle=2, retry_after=7)
        for _ in range(2):
            status, resp, err = self.s.get("/api/v1/pods")
            self.assertEqual(status, 429)
            self.assertEqual(resp.getheader("Retry-After"), "7")
            self.assertStatus(err, 429, "TooManyRequests")
            self.assertEqual(err["details"]["retryAfterSeconds"], 7)
        self.assertEqual(self.s.control("/fake/state", method="GET")["throttle"], 0)  # /fake is never throttled
        self.assertEqual(self.s.get("/api/v1/pods")[0], 200)

    def test_drop_mid_event_sends_half_an_event_then_closes(self):
        w = self.s.watch("/api/v1/pods", resourceVersion=str(self.rv()))
        self.addCleanup(w.close)
        self.s.fault(drop_mid_event=1)
        self.s.apply(pod("victim"))
        self.assertIsNone(w.next_line())  # no complete line...
        self.assertTrue(w.ended.startswith("abrupt"), w.ended)  # ...and no terminating chunk
        self.assertTrue(w.buf.startswith(b'{"type":"ADDED","object":{"kind":"Pod"'), w.buf)
        with self.assertRaises(ValueError):
            json.loads(w.buf)
        again = self.s.watch("/api/v1/pods", resourceVersion=str(self.rv() - 1))  # the fault is spent
        self.addCleanup(again.close)
        self.assertEqual(names([again.next()]), [("ADDED", "victim")])

    def test_malformed_event_then_the_stream_ends(self):
        w = self.s.watch("/api/v1/pods", resourceVersion=str(self.rv()))
        self.addCleanup(w.close)
        self.s.fault(malformed=1)
        self.s.apply(pod("x"))
        self.assertEqual(w.next_line(), b'{"type":"ADDED","object":{"kind":\n')
        self.assertIsNone(w.next_line())
        self.assertEqual(w.ended, "clean")

    def test_reset_clears_faults(self):
        self.s.fault(throttle=5, drop_mid_event=3, malformed=2, watchlist=False)
        state = self.s.fault(reset=True)
        self.assertEqual((state["throttle"], state["drop_mid_event"], state["malformed"], state["watchlist"]),
                         (0, 0, 0, True))
        status, _, err = self.s.request("POST", "/fake/fault", {"thrtotle": 1})  # a typo is refused
        self.assertEqual(status, 400)

    def test_missing_crd_is_404_until_installed(self):
        s = self.start("--missing", "trafficsplits.split.smi-spec.io", "--bookmark-interval", "0.2")
        path = "/apis/split.smi-spec.io/v1alpha4/namespaces/ns/trafficsplits"
        split = {"apiVersion": "split.smi-spec.io/v1alpha4", "kind": "TrafficSplit",
                 "metadata": {"name": "s", "namespace": "ns"}, "spec": {"service": "web"}}
        for p in (path, path + "/s", "/apis/split.smi-spec.io/v1alpha4/trafficsplits",
                  "/apis/split.smi-spec.io/v1alpha2/trafficsplits", "/apis/split.smi-spec.io/v1alpha4"):
            status, _, err = s.get(p)
            self.assertEqual(status, 404, p)
            self.assertStatus(err, 404, "NotFound")
        self.assertEqual(s.get(path, watch="1")[0], 404)
        _, _, groups = s.get("/apis")
        self.assertNotIn("split.smi-spec.io", [g["name"] for g in groups["groups"]])
        self.assertEqual(s.request("POST", "/fake/apply", split)[0], 404)
        s.fault(install=["trafficsplits.split.smi-spec.io"])
        _, _, groups = s.get("/apis")
        self.assertIn("split.smi-spec.io", [g["name"] for g in groups["groups"]])
        self.assertEqual(s.get(path)[0], 200)
        w = s.watch(path, resourceVersion="0")
        self.addCleanup(w.close)
        s.apply(split)
        self.assertEqual(names([w.next()]), [("ADDED", "s")])
        s.fault(uninstall=["trafficsplits.split.smi-spec.io"])  # the open watch ends...
        w.wait_end()
        self.assertEqual(w.ended, "clean")
        self.assertEqual(s.get(path)[0], 404)  # ...and it is 404 again
        self.assertEqual(s.control("/fake/watches", method="GET"), {})

    def test_token_rotation(self):
        old = self.s.token
        self.s.fault(token="rotated-token")
        self.assertEqual(self.s.request("GET", "/api/v1/pods", token=old)[0], 401)
        self.assertEqual(self.s.request("GET", "/api/v1/pods", token="rotated-token")[0], 200)
        with open(os.path.join(self.s.dir, "token")) as f:
            self.assertEqual(f.read().strip(), "rotated-token")
        with open(os.path.join(self.s.dir, "kubeconfig")) as f:
            self.assertIn('token: "rotated-token"', f.read())
        self.s.token = "rotated-token"


class ControlTest(ServerTest):
    def test_apply_and_delete_errors(self):
        status, _, err = self.s.request("POST", "/fake/apply", {"apiVersion": "v1", "kind": "Nope",
                                                                "metadata": {"name": "x"}})
        self.assertEqual(status, 400)
        self.assertStatus(err, 400, "BadRequest")
        self.assertEqual(self.s.request("POST", "/fake/apply", {"apiVersion": "v1", "kind": "Pod",
                                                                "metadata": {"name": "x"}})[0], 400)
        self.assertEqual(self.s.request("POST", "/fake/delete", {"apiVersion": "v1", "kind": "Pod",
                                                                 "namespace": "d", "name": "x"})[0], 404)

    def test_requests_log_and_open_watches(self):
        self.s.get("/api/v1/pods", limit=3)
        w = self.s.watch("/api/v1/namespaces/ns/pods", resourceVersion="0")
        self.addCleanup(w.close)
        self.s.request("GET", "/api/v1/pods", token=None)
        log = self.s.control("/fake/requests", method="GET")
        self.assertEqual([(r["method"], r["path"], r["status"], r["watch"]) for r in log],
                         [("GET", "/api/v1/pods", 200, False), ("GET", "/api/v1/namespaces/ns/pods", 200, True),
                          ("GET", "/api/v1/pods", 401, False)])
        self.assertEqual(log[0]["query"], {"limit": "3"})
        self.assertEqual(log[1]["query"], {"watch": "1", "resourceVersion": "0"})
        self.assertTrue(0 < log[0]["time"] <= log[1]["time"] <= log[2]["time"])
        self.assertEqual(self.s.control("/fake/watches", method="GET"), {"/api/v1/namespaces/ns/pods": 1})
        self.s.control("/fake/requests/clear")
        self.assertEqual(self.s.control("/fake/requests", method="GET"), [])
        w.close()
        # The server notices a client gone from an idle watch at its next poll
        # (0.5 s): poll the condition, with a deadline.
        deadline = time.monotonic() + 5
        while self.s.control("/fake/watches", method="GET") and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertEqual(self.s.control("/fake/watches", method="GET"), {})

    def test_bulk_of_10000_pods_is_fast_and_every_watch_sees_it(self):
        w = self.s.watch("/api/v1/pods", resourceVersion=str(self.rv()), fieldSelector="spec.nodeName=node-1")
        self.addCleanup(w.close)
        pods = [pod(f"pod-{i:05}", namespace=f"ns-{i % 50}", node=f"node-{i % 4}") for i in range(10_000)]
        started = time.monotonic()
        done = self.s.control("/fake/bulk", pods)
        bulk_s = time.monotonic() - started
        self.assertEqual(done["applied"], 10_000)
        seen = w.take(2_500, timeout=10)
        self.assertEqual({e["type"] for e in seen}, {"ADDED"})
        self.assertEqual(seen[-1]["object"]["metadata"]["name"], "pod-09997")
        started = time.monotonic()
        total, cont = 0, ""
        while True:
            _, _, page = self.s.get("/api/v1/pods", limit=500, **({"continue": cont} if cont else {}))
            total += len(page["items"])
            cont = page["metadata"].get("continue")
            if not cont:
                break
        list_s = time.monotonic() - started
        self.assertEqual(total, 10_000)
        sys.stderr.write(f"\n  10,000 pods: bulk {bulk_s:.2f} s, paged list {list_s:.2f} s\n")
        self.assertLess(bulk_s, 10)
        self.assertLess(list_s, 10)


if __name__ == "__main__":
    unittest.main()
