"""kubeapi.protocol: the fake apiserver seen from outside, as the kube source sees it.

Each test starts its own server (port 0, a temporary directory; the cleanup
stops it by pid and removes the directory, also when the test fails) and
talks to it with http.client over TLS verified against its ca.crt. Watches
are read incrementally with deadlines; where a test must show that an event
did NOT come, it writes a marker and checks that the marker comes next.
Faults and the control API are in test_fake_apiserver_faults.py.
"""

import os
import shutil
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from fakeapi import certs  # noqa: E402
from fakeclient import FakeServer, pod  # noqa: E402

TABLE_ACCEPT = ("application/json;as=Table;v=v1;g=meta.k8s.io,"
                "application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json")


class ServerTest(unittest.TestCase):
    args = ("--bookmark-interval", "0.2")

    @classmethod
    def setUpClass(cls):
        cls.certs = tempfile.mkdtemp(prefix="fake-apiserver-certs-")
        cls.addClassCleanup(shutil.rmtree, cls.certs, True)
        certs.ensure_certs(cls.certs)

    def setUp(self):
        self.s = self.start(*self.args)

    def start(self, *args):
        server = FakeServer(*args, certs_from=self.certs)

        def stop():
            code = server.stop()
            self.assertNotIn("Traceback", server.final_log)  # no request may crash a handler
            self.assertEqual(code, 0, server.final_log)

        self.addCleanup(stop)
        return server

    def rv(self):
        return int(self.s.control("/fake/state", method="GET")["resourceVersion"])

    def assertStatus(self, payload, code, reason):
        self.assertEqual(payload["kind"], "Status")
        self.assertEqual(payload["apiVersion"], "v1")
        self.assertEqual(payload["status"], "Failure")
        self.assertEqual((payload["code"], payload["reason"]), (code, reason), payload)

    def assertError(self, ev, code, reason):
        self.assertEqual(ev["type"], "ERROR", ev)
        self.assertStatus(ev["object"], code, reason)


def names(events):
    return [(e["type"], e["object"]["metadata"]["name"]) for e in events]


class AuthAndTlsTest(ServerTest):
    def test_requests_without_the_token_get_401_status(self):
        for token in (None, "wrong"):
            for path in ("/api/v1/pods", "/fake/state", "/version"):
                status, _, body = self.s.request("GET", path, token=token)
                self.assertEqual(status, 401, path)
                self.assertStatus(body, 401, "Unauthorized")
        self.assertEqual(self.s.get("/api/v1/pods")[0], 200)

    def test_the_server_certificate_verifies_against_ca_crt_only(self):
        import ssl
        conn = self.s.connect(ca=os.path.join(self.s.dir, "wrong-ca.crt"))
        with self.assertRaises(ssl.SSLCertVerificationError):
            conn.request("GET", "/version")
        conn.close()
        status, _, version = self.s.get("/version")  # ca.crt, hostname 127.0.0.1 checked
        self.assertEqual((status, version["major"]), (200, "1"))

    def test_kubeconfig_and_token_files(self):
        with open(os.path.join(self.s.dir, "kubeconfig")) as f:
            text = f.read()
        self.assertIn(f"server: https://127.0.0.1:{self.s.port}", text)
        self.assertIn(f'token: "{self.s.token}"', text)
        self.assertIn("certificate-authority-data: ", text)
        self.assertIn("current-context: shunt-fake", text)

    def test_keep_alive_serves_several_requests_on_one_connection(self):
        conn = self.s.connect()
        for _ in range(3):
            self.assertEqual(self.s.request("GET", "/api/v1/pods", conn=conn)[0], 200)
        conn.close()

    def test_sigterm_exits_0(self):
        self.assertEqual(self.s.stop(), 0)


class DiscoveryTest(ServerTest):
    def test_discovery_documents(self):
        _, resp, api = self.s.get("/api")
        self.assertEqual((api["kind"], api["versions"]), ("APIVersions", ["v1"]))
        self.assertEqual(resp.getheader("Content-Type"), "application/json")
        _, _, core = self.s.get("/api/v1")
        pods = next(r for r in core["resources"] if r["name"] == "pods")
        self.assertEqual((pods["kind"], pods["namespaced"], pods["shortNames"]), ("Pod", True, ["po"]))
        self.assertIn("watch", pods["verbs"])
        ns = next(r for r in core["resources"] if r["name"] == "namespaces")
        self.assertFalse(ns["namespaced"])
        _, _, groups = self.s.get("/apis")
        split = next(g for g in groups["groups"] if g["name"] == "split.smi-spec.io")
        self.assertEqual([v["version"] for v in split["versions"]], ["v1alpha4", "v1alpha2"])
        self.assertEqual(split["preferredVersion"]["version"], "v1alpha4")
        _, _, access = self.s.get("/apis/access.smi-spec.io/v1alpha3")
        self.assertEqual(access["resources"][0]["kind"], "TrafficTarget")
        self.assertEqual(self.s.get("/apis/nope.example/v1")[0], 404)

    def test_trafficsplit_is_one_storage_at_two_versions(self):
        self.s.apply({"apiVersion": "split.smi-spec.io/v1alpha2", "kind": "TrafficSplit",
                      "metadata": {"name": "s", "namespace": "ns"}, "spec": {"service": "web"}})
        _, _, v4 = self.s.get("/apis/split.smi-spec.io/v1alpha4/namespaces/ns/trafficsplits")
        self.assertEqual((v4["kind"], v4["apiVersion"]), ("TrafficSplitList", "split.smi-spec.io/v1alpha4"))
        self.assertEqual(v4["items"][0]["spec"], {"service": "web"})
        _, _, one = self.s.get("/apis/split.smi-spec.io/v1alpha2/namespaces/ns/trafficsplits/s")
        self.assertEqual(one["apiVersion"], "split.smi-spec.io/v1alpha2")


class ListTest(ServerTest):
    def test_paging_is_one_snapshot(self):
        self.s.control("/fake/bulk", [pod(f"p{i:02}") for i in range(25)])
        _, _, first = self.s.get("/api/v1/pods", limit=10)
        rv = first["metadata"]["resourceVersion"]
        self.assertEqual(first["metadata"]["remainingItemCount"], 15)
        self.s.apply(pod("p00", node="node-z"))  # a write between pages is not seen by them
        self.s.apply(pod("zz-new"))
        pages, cont = [first], first["metadata"]["continue"]
        while cont:
            status, _, page = self.s.get("/api/v1/pods", limit=10, **{"continue": cont})
            self.assertEqual(status, 200, page)
            self.assertEqual(page["metadata"]["resourceVersion"], rv)
            pages.append(page)
            cont = page["metadata"].get("continue", "")
        self.assertEqual([len(p["items"]) for p in pages], [10, 10, 5])
        self.assertNotIn("remainingItemCount", pages[-1]["metadata"])
        items = [i for p in pages for i in p["items"]]
        self.assertEqual([i["metadata"]["name"] for i in items], [f"p{i:02}" for i in range(25)])
        self.assertEqual(items[0]["spec"]["nodeName"], "node-a")
        for item in items:
            self.assertNotIn("kind", item)
            self.assertNotIn("apiVersion", item)
        _, _, fresh = self.s.get("/api/v1/pods")
        self.assertEqual(len(fresh["items"]), 26)
        self.assertGreater(int(fresh["metadata"]["resourceVersion"]), int(rv))

    def test_field_and_label_selectors(self):
        self.s.control("/fake/bulk", [pod("a1", node="node-a"), pod("a2", node="node-a", labels={"app": "web"}),
                                      pod("b1", node="node-b", labels={"app": "web"})])
        for sel in ("spec.nodeName=node-a", "spec.nodeName==node-a"):
            _, _, got = self.s.get("/api/v1/pods", fieldSelector=sel)  # urlencode sends %3D
            self.assertEqual([i["metadata"]["name"] for i in got["items"]], ["a1", "a2"])
        _, _, web = self.s.get("/api/v1/pods", labelSelector="app=web")
        self.assertEqual([i["metadata"]["name"] for i in web["items"]], ["a2", "b1"])
        _, _, both = self.s.get("/api/v1/pods", labelSelector="app=web", fieldSelector="spec.nodeName=node-b")
        self.assertEqual([i["metadata"]["name"] for i in both["items"]], ["b1"])
        status, _, bad = self.s.get("/api/v1/pods", fieldSelector="spec.nope=x")
        self.assertEqual(status, 400)
        self.assertStatus(bad, 400, "BadRequest")

    def test_namespaced_paths_and_get_one(self):
        self.s.control("/fake/bulk", [pod("x", namespace="a"), pod("y", namespace="b"),
                                      {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a"}}])
        _, _, in_a = self.s.get("/api/v1/namespaces/a/pods")
        self.assertEqual([i["metadata"]["name"] for i in in_a["items"]], ["x"])
        status, _, one = self.s.get("/api/v1/namespaces/b/pods/y")
        self.assertEqual((status, one["kind"], one["apiVersion"]), (200, "Pod", "v1"))
        status, _, missing = self.s.get("/api/v1/namespaces/a/pods/y")
        self.assertEqual(status, 404)
        self.assertStatus(missing, 404, "NotFound")
        self.assertEqual(missing["message"], 'pods "y" not found')
        _, _, ns = self.s.get("/api/v1/namespaces/a")
        self.assertEqual((ns["kind"], ns["metadata"]["name"]), ("Namespace", "a"))

    def test_resource_version_semantics(self):
        self.s.apply(pod("a"))
        now = self.rv()
        for params in ({"resourceVersion": "0"}, {"resourceVersion": str(now - 1),
                                                  "resourceVersionMatch": "NotOlderThan"}):
            _, _, got = self.s.get("/api/v1/pods", **params)
            self.assertEqual(got["metadata"]["resourceVersion"], str(now))
        started = time.monotonic()
        status, _, err = self.s.get("/api/v1/pods", resourceVersion=str(now + 100),
                                    resourceVersionMatch="NotOlderThan")
        self.assertEqual(status, 504)
        self.assertStatus(err, 504, "Timeout")
        self.assertEqual(err["details"]["causes"][0]["reason"], "ResourceVersionTooLarge")
        self.assertGreaterEqual(time.monotonic() - started, 2.5)  # it waited, as the watch cache does

    def test_table_for_kubectl(self):
        self.s.apply(pod("web", namespace="shop", ip="10.0.0.9"))
        _, resp, tab = self.s.request("GET", "/api/v1/pods", headers={"Accept": TABLE_ACCEPT})
        self.assertEqual(resp.getheader("Content-Type"), "application/json;as=Table;v=v1;g=meta.k8s.io")
        self.assertEqual(tab["kind"], "Table")
        self.assertEqual([c["name"] for c in tab["columnDefinitions"] if c["priority"] == 0],
                         ["Name", "Ready", "Status", "Restarts", "Age"])
        row = tab["rows"][0]
        self.assertEqual(row["cells"][:4], ["web", "0/1", "Running", "0"])
        self.assertEqual(row["object"]["metadata"]["namespace"], "shop")


class WatchTest(ServerTest):
    def test_replay_from_a_resource_version_then_live(self):
        a = self.s.apply(pod("a"))
        self.s.apply(pod("b"))
        self.s.apply(pod("a", phase="Succeeded"))
        w = self.s.watch("/api/v1/pods", resourceVersion=a["metadata"]["resourceVersion"])
        self.addCleanup(w.close)
        self.assertEqual(w.status, 200)
        self.assertEqual(w.resp.getheader("Content-Type"), "application/json")
        self.assertEqual(w.resp.getheader("Transfer-Encoding"), "chunked")
        replay = w.take(2)
        self.assertEqual(names(replay), [("ADDED", "b"), ("MODIFIED", "a")])
        self.assertEqual(replay[0]["object"]["kind"], "Pod")  # events carry kind/apiVersion
        self.assertEqual(replay[0]["object"]["apiVersion"], "v1")
        last = self.s.apply(pod("b", phase="Failed"))
        gone = self.s.delete("v1", "Pod", "default", "a")
        live = w.take(2)
        self.assertEqual(names(live), [("MODIFIED", "b"), ("DELETED", "a")])
        self.assertEqual(live[0]["object"]["metadata"]["resourceVersion"], last["metadata"]["resourceVersion"])
        deleted = live[1]["object"]
        self.assertEqual(deleted["status"]["phase"], "Succeeded")  # the last state...
        self.assertEqual(deleted["metadata"]["resourceVersion"], gone["metadata"]["resourceVersion"])
        self.assertGreater(int(gone["metadata"]["resourceVersion"]), int(last["metadata"]["resourceVersion"]))

    def test_uid_and_creation_timestamp_are_kept_on_replace(self):
        first = self.s.apply(pod("a"))
        second = self.s.apply(pod("a", phase="Failed"))
        self.assertEqual(second["metadata"]["uid"], first["metadata"]["uid"])
        self.assertEqual(second["metadata"]["creationTimestamp"], first["metadata"]["creationTimestamp"])
        given = pod("b")
        given["metadata"]["uid"] = "given-uid"
        self.assertEqual(self.s.apply(given)["metadata"]["uid"], "given-uid")

    def test_selector_transitions(self):
        self.s.apply(pod("mover", node="node-a"))
        rv = str(self.rv())
        on_a = self.s.watch("/api/v1/pods", resourceVersion=rv, fieldSelector="spec.nodeName=node-a")
        on_b = self.s.watch("/api/v1/pods", resourceVersion=rv, fieldSelector="spec.nodeName=node-b")
        self.addCleanup(on_a.close)
        self.addCleanup(on_b.close)
        self.s.apply(pod("mover", node="node-b"))
        left = on_a.next()
        self.assertEqual(names([left]), [("DELETED", "mover")])
        self.assertEqual(left["object"]["spec"]["nodeName"], "node-b")  # its new state
        self.assertEqual(names([on_b.next()]), [("ADDED", "mover")])
        self.s.apply(pod("mover", node="node-b", phase="Failed"))
        self.assertEqual(names([on_b.next()]), [("MODIFIED", "mover")])
        self.s.apply(pod("marker", node="node-a"))  # node-a saw nothing of the MODIFIED
        self.assertEqual(names([on_a.next()]), [("ADDED", "marker")])

    def test_bookmarks_only_when_allowed(self):
        self.s.apply(pod("a"))
        rv = str(self.rv())
        with_bm = self.s.watch("/api/v1/pods", resourceVersion=rv, allowWatchBookmarks="true")
        without = self.s.watch("/api/v1/pods", resourceVersion=rv)
        self.addCleanup(with_bm.close)
        self.addCleanup(without.close)
        for _ in range(2):  # two intervals have passed once two bookmarks came
            bm = with_bm.next(timeout=3, skip_bookmarks=False)
            self.assertEqual(bm, {"type": "BOOKMARK", "object": {
                "kind": "Pod", "apiVersion": "v1", "metadata": {"resourceVersion": rv}}})
        self.s.apply(pod("marker"))
        self.assertEqual(names([without.next(skip_bookmarks=False)]), [("ADDED", "marker")])

    def test_timeout_seconds_ends_the_body_cleanly(self):
        started = time.monotonic()
        w = self.s.watch("/api/v1/pods", resourceVersion=str(self.rv()), timeoutSeconds="1")
        self.addCleanup(w.close)
        self.assertEqual(w.wait_end(timeout=5), [])
        self.assertEqual(w.ended, "clean")
        self.assertGreaterEqual(time.monotonic() - started, 0.9)

    def test_max_watch_seconds_caps_the_timeout(self):
        s = self.start("--max-watch-seconds", "1")
        w = s.watch("/api/v1/pods", timeoutSeconds="600")
        self.addCleanup(w.close)
        w.wait_end(timeout=5)
        self.assertEqual(w.ended, "clean")

    def test_watchlist_initial_events_then_end_bookmark_then_live(self):
        self.s.control("/fake/bulk", [pod("a"), pod("b"), pod("c", node="node-b")])
        rv = str(self.rv())
        w = self.s.watch("/api/v1/pods", sendInitialEvents="true", allowWatchBookmarks="true",
                         resourceVersion="", resourceVersionMatch="NotOlderThan",
                         fieldSelector="spec.nodeName=node-a")
        self.addCleanup(w.close)
        self.assertEqual(names(w.take(2)), [("ADDED", "a"), ("ADDED", "b")])
        end = w.next(skip_bookmarks=False)
        self.assertEqual(end, {"type": "BOOKMARK", "object": {"kind": "Pod", "apiVersion": "v1", "metadata": {
            "resourceVersion": rv, "annotations": {"k8s.io/initial-events-end": "true"}}}})
        self.s.apply(pod("d"))
        self.assertEqual(names([w.next()]), [("ADDED", "d")])

    def test_legacy_watch_from_0_sends_current_state_without_end_bookmark(self):
        self.s.apply(pod("a"))
        w = self.s.watch("/api/v1/pods", resourceVersion="0", allowWatchBookmarks="true")
        self.addCleanup(w.close)
        self.assertEqual(names([w.next()]), [("ADDED", "a")])
        self.s.apply(pod("b"))
        while True:
            ev = w.next(skip_bookmarks=False)
            self.assertNotIn("annotations", ev["object"]["metadata"])
            if ev["type"] != "BOOKMARK":
                break
        self.assertEqual(names([ev]), [("ADDED", "b")])

    def test_watchlist_refused_when_the_gate_is_off(self):
        s = self.start("--no-watchlist")
        params = {"sendInitialEvents": "true", "allowWatchBookmarks": "true", "resourceVersion": "",
                  "resourceVersionMatch": "NotOlderThan"}
        status, _, err = s.get("/api/v1/pods", watch="1", **params)
        self.assertEqual(status, 422)
        self.assertStatus(err, 422, "Invalid")
        self.assertIn("sendInitialEvents is forbidden for watch unless the WatchList feature gate is enabled",
                      err["message"])
        self.assertEqual(err["details"]["causes"][0]["field"], "sendInitialEvents")
        plain = s.watch("/api/v1/pods", resourceVersion="")  # plain watches work
        self.addCleanup(plain.close)
        self.assertEqual(plain.status, 200)
        # ... and on a server with the gate on, sendInitialEvents without watch is refused
        status, _, err = self.s.get("/api/v1/pods", sendInitialEvents="true")
        self.assertEqual(status, 422)
        self.assertIn("sendInitialEvents is forbidden for list", err["message"])
        self.s.fault(watchlist=False)
        self.assertEqual(self.s.get("/api/v1/pods", watch="1", **params)[0], 422)

    def test_watch_from_a_compacted_resource_version_is_200_then_error_410(self):
        w = self.s.watch("/api/v1/pods", resourceVersion="5")  # before the first RV the server has
        self.addCleanup(w.close)
        self.assertEqual(w.status, 200)
        [err] = w.wait_end()
        self.assertError(err, 410, "Expired")
        self.assertEqual(err["object"]["message"], "too old resource version: 5 (1000)")
        self.assertEqual(w.ended, "clean")
        old = str(self.rv())
        self.s.apply(pod("a"))
        live = self.s.watch("/api/v1/pods", resourceVersion=old)
        self.addCleanup(live.close)
        self.s.fault(compact=True)  # open watches go on...
        self.s.apply(pod("b"))
        self.assertEqual(names(live.take(2)), [("ADDED", "a"), ("ADDED", "b")])
        again = self.s.watch("/api/v1/pods", resourceVersion=old)  # ...new ones from before fail
        self.addCleanup(again.close)
        [err] = again.wait_end()
        self.assertError(err, 410, "Expired")

    def test_table_watch_as_kubectl_get_w(self):
        self.s.apply(pod("a"))
        w = self.s.watch("/api/v1/pods", resourceVersion=str(self.rv()))
        w.close()
        conn = self.s.connect()
        self.addCleanup(conn.close)
        conn.request("GET", f"/api/v1/pods?watch=true&resourceVersion={self.rv()}",
                     headers={"Authorization": f"Bearer {self.s.token}", "Accept": TABLE_ACCEPT})
        resp = conn.getresponse()
        self.assertEqual(resp.getheader("Content-Type"), "application/json;as=Table;v=v1;g=meta.k8s.io")
        self.s.apply(pod("b"))
        self.s.apply(pod("c"))
        import json
        first, second = json.loads(resp.readline()), json.loads(resp.readline())
        self.assertEqual(first["object"]["kind"], "Table")
        self.assertEqual(first["object"]["rows"][0]["cells"][0], "b")
        self.assertTrue(first["object"]["columnDefinitions"])
        self.assertIsNone(second["object"]["columnDefinitions"])  # kubectl keeps the first ones


if __name__ == "__main__":
    unittest.main()
