#!/usr/bin/env python3
"""Checks fake_apiserver.py's API semantics (standard library only; starts and stops its own
server on a free port). Run: python3 tests/kubernetes/selftest.py. Prints `N passed, 0 failed`."""

import http.client
import json
import os
import subprocess
import sys
import threading
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))


class Client:
    def __init__(self, port):
        self.port = port

    def req(self, method, path, body=None, ctype="application/json", headers=None):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        h = {"Accept": "application/json"}
        if headers:
            h.update(headers)
        data = None
        if body is not None:
            data = body if isinstance(body, (bytes, str)) else json.dumps(body)
            h["Content-Type"] = ctype
        c.request(method, path, body=data, headers=h)
        r = c.getresponse()
        raw = r.read()
        c.close()
        try:
            return r.status, json.loads(raw)
        except ValueError:
            return r.status, raw.decode()

    def watch(self, path, n=None, until=None, timeout=10):
        """Read watch events until n events or until(event) is true or the stream ends."""
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        c.request("GET", path, headers={"Accept": "application/json"})
        r = c.getresponse()
        assert r.status == 200, r.status
        assert r.getheader("Transfer-Encoding") == "chunked"
        events = []
        buf = b""
        while True:
            chunk = r.read1(65536)
            if not chunk:
                break
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                if line.strip():
                    ev = json.loads(line)
                    events.append(ev)
                    if (n is not None and len(events) >= n) or (until is not None and until(ev)):
                        c.close()
                        return events
        c.close()
        return events


TESTS = []


def test(f):
    TESTS.append(f)
    return f


def names(lst):
    return [i["metadata"]["name"] for i in lst["items"]]


@test
def discovery(k):
    s, v = k.req("GET", "/version")
    assert s == 200 and v["gitVersion"] == "v1.33.0" and v["minor"] == "33"
    s, api = k.req("GET", "/api")
    assert api["kind"] == "APIVersions" and api["versions"] == ["v1"]
    s, g = k.req("GET", "/apis")
    got = {x["name"] for x in g["groups"]}
    assert {"discovery.k8s.io", "coordination.k8s.io", "events.k8s.io", "vigie.dev"} <= got, got
    s, rl = k.req("GET", "/apis/vigie.dev/v1alpha1")
    rs = {r["name"]: r for r in rl["resources"]}
    for n in ("monitors", "alertrules", "alertroutes"):
        assert rs[n]["namespaced"] and "watch" in rs[n]["verbs"] and rs[n + "/status"]["verbs"] == ["get", "patch", "update"]
    s, rl = k.req("GET", "/api/v1")
    rs = {r["name"]: r for r in rl["resources"]}
    assert rs["nodes"]["namespaced"] is False and rs["pods"]["kind"] == "Pod" and "pods/status" in rs
    s, _ = k.req("GET", "/apis/discovery.k8s.io/v1")
    assert s == 200
    s, e = k.req("GET", "/apis/nope.io/v1")
    assert s == 404 and e["kind"] == "Status"
    acc = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json"
    s, agg = k.req("GET", "/apis", headers={"Accept": acc})
    assert agg["kind"] == "APIGroupDiscoveryList" and agg["apiVersion"] == "apidiscovery.k8s.io/v2"
    vg = next(i for i in agg["items"] if i["metadata"]["name"] == "vigie.dev")
    mon = next(r for r in vg["versions"][0]["resources"] if r["resource"] == "monitors")
    assert mon["scope"] == "Namespaced" and mon["responseKind"]["kind"] == "Monitor"
    assert mon["subresources"][0]["subresource"] == "status"
    s, agg = k.req("GET", "/api", headers={"Accept": acc.replace("v=v2;", "v=v2beta1;")})
    assert agg["apiVersion"] == "apidiscovery.k8s.io/v2beta1"
    core = {r["resource"]: r for r in agg["items"][0]["versions"][0]["resources"]}
    assert core["nodes"]["scope"] == "Cluster" and core["pods"]["scope"] == "Namespaced"


@test
def list_and_selectors(k):
    s, l = k.req("GET", "/api/v1/pods")
    assert s == 200 and l["kind"] == "PodList" and l["apiVersion"] == "v1" and int(l["metadata"]["resourceVersion"]) > 0
    assert len(l["items"]) == 9 and "kind" not in l["items"][0]
    s, l = k.req("GET", "/api/v1/namespaces/default/pods")
    assert sorted(names(l)) == ["node-exporter-8xq2v", "toolbox"]
    cases = {
        "app=web": 3, "app==web": 3, "app!=web": 6, "app in (web,db)": 4, "app notin (web,db)": 5,
        "app": 6, "!app": 3, "app=web,pod-template-hash": 3, "app in (db),!pod-template-hash": 1,
    }
    from urllib.parse import quote
    for sel, n in cases.items():
        s, l = k.req("GET", "/api/v1/pods?labelSelector=" + quote(sel))
        assert s == 200 and len(l["items"]) == n, (sel, len(l["items"]))
    s, l = k.req("GET", "/api/v1/pods?fieldSelector=metadata.name%3Ddb-0")
    assert names(l) == ["db-0"]
    s, l = k.req("GET", "/api/v1/pods?fieldSelector=metadata.namespace!%3Dshop")
    assert len(l["items"]) == 2
    s, l = k.req("GET", "/api/v1/pods?fieldSelector=status.phase%3DSucceeded")
    assert names(l) == ["backup-28912345-zx9vb"]
    s, e = k.req("GET", "/api/v1/pods?fieldSelector=spec.bogus%3Dx")
    assert s == 400 and e["reason"] == "BadRequest"
    s, l = k.req("GET", "/apis/vigie.dev/v1alpha1/monitors")
    assert l["kind"] == "MonitorList" and l["items"][0]["kind"] == "Monitor"
    s, l = k.req("GET", "/api/v1/nodes?labelSelector=topology.kubernetes.io%2Fzone%3Dzone-b")
    assert names(l) == ["node-b"]


@test
def pagination(k):
    got, cont, rv = [], "", None
    while True:
        s, l = k.req("GET", "/api/v1/pods?limit=4" + (f"&continue={cont}" if cont else ""))
        assert s == 200
        rv = rv or l["metadata"]["resourceVersion"]
        assert l["metadata"]["resourceVersion"] == rv  # every page at the first page's rv
        got += names(l)
        cont = l["metadata"].get("continue")
        if not cont:
            break
        assert l["metadata"]["remainingItemCount"] > 0
    assert len(got) == 9 and len(set(got)) == 9
    s, l = k.req("GET", "/api/v1/pods?limit=4&resourceVersion=0")  # rv=0: served whole
    assert len(l["items"]) == 9 and "continue" not in l["metadata"]
    s, l = k.req("GET", "/api/v1/pods?limit=2")
    cont = l["metadata"]["continue"]
    k.req("POST", "/api/v1/namespaces/default/configmaps", {"metadata": {"name": "bump"}, "data": {}})
    k.req("POST", "/_fake/compact")
    s, e = k.req("GET", f"/api/v1/pods?limit=2&continue={cont}")
    assert s == 410 and e["reason"] == "Expired" and e["code"] == 410


@test
def get_and_errors(k):
    s, p = k.req("GET", "/api/v1/namespaces/shop/pods/db-0")
    assert s == 200 and p["kind"] == "Pod" and p["apiVersion"] == "v1" and p["metadata"]["resourceVersion"]
    s, e = k.req("GET", "/api/v1/namespaces/shop/pods/nope")
    assert s == 404 and e == {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                              "message": 'pods "nope" not found', "reason": "NotFound",
                              "details": {"name": "nope", "kind": "pods"}, "code": 404}, e
    s, e = k.req("GET", "/apis/vigie.dev/v1alpha1/namespaces/shop/monitors/nope")
    assert e["message"] == 'monitors.vigie.dev "nope" not found' and e["details"]["group"] == "vigie.dev"
    s, n = k.req("GET", "/api/v1/namespaces/shop")
    assert s == 200 and n["kind"] == "Namespace"
    s, n = k.req("GET", "/api/v1/nodes/node-a")
    assert s == 200 and n["kind"] == "Node"


@test
def create_update_conflict(k):
    base = "/apis/coordination.k8s.io/v1/namespaces/shop/leases"
    lease = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "vigie-leader"},
             "spec": {"holderIdentity": "a", "leaseDurationSeconds": 15}}
    s, o = k.req("POST", base, lease)
    assert s == 201 and o["metadata"]["uid"] and o["metadata"]["creationTimestamp"] and o["metadata"]["namespace"] == "shop"
    rv1 = int(o["metadata"]["resourceVersion"])
    s, e = k.req("POST", base, lease)
    assert s == 409 and e["reason"] == "AlreadyExists"
    o["spec"]["holderIdentity"] = "b"
    s, o2 = k.req("PUT", base + "/vigie-leader", o)
    assert s == 200 and int(o2["metadata"]["resourceVersion"]) > rv1 and o2["metadata"]["uid"] == o["metadata"]["uid"]
    s, e = k.req("PUT", base + "/vigie-leader", o)  # stale resourceVersion
    assert s == 409 and e["reason"] == "Conflict", e
    s, o3 = k.req("PUT", base + "/vigie-leader", o2)  # no change: same rv, no event
    assert o3["metadata"]["resourceVersion"] == o2["metadata"]["resourceVersion"]
    s, e = k.req("POST", "/api/v1/namespaces/nowhere/configmaps", {"metadata": {"name": "x"}})
    assert s == 404 and e["message"] == 'namespaces "nowhere" not found'
    s, o = k.req("POST", "/api/v1/namespaces/shop/configmaps", {"metadata": {"generateName": "gen-"}})
    assert s == 201 and o["metadata"]["name"].startswith("gen-") and len(o["metadata"]["name"]) == 9
    s, e = k.req("PUT", base + "/vigie-leader", dict(o2, metadata=dict(o2["metadata"], name="other")))
    assert s == 400


@test
def crd_generation_and_status(k):
    base = "/apis/vigie.dev/v1alpha1/namespaces/shop/monitors"
    s, m = k.req("GET", base + "/web")
    assert m["metadata"]["generation"] == 1
    s, e = k.req("PUT", base + "/web", {k2: v for k2, v in m.items() if k2 != "metadata"} | {"metadata": {"name": "web"}})
    assert s == 422 and e["reason"] == "Invalid"  # custom resources need resourceVersion on update
    s, m2 = k.req("PATCH", base + "/web", {"spec": {"sampleLimit": 5}}, "application/merge-patch+json")
    assert s == 200 and m2["metadata"]["generation"] == 2 and m2["spec"]["sampleLimit"] == 5
    s, m3 = k.req("PATCH", base + "/web", {"metadata": {"labels": {"x": "y"}}}, "application/merge-patch+json")
    assert m3["metadata"]["generation"] == 2 and m3["metadata"]["labels"]["x"] == "y"  # metadata only
    s, m4 = k.req("PATCH", base + "/web/status", {"status": {"targetsSelected": 3}, "spec": {"sampleLimit": 7}},
                  "application/merge-patch+json")
    assert s == 200 and m4["status"] == {"targetsSelected": 3} and m4["spec"]["sampleLimit"] == 5
    assert m4["metadata"]["generation"] == 2
    s, m5 = k.req("PATCH", base + "/web", {"status": {"targetsSelected": 99}}, "application/merge-patch+json")
    assert m5["status"] == {"targetsSelected": 3}  # status ignored on the main resource
    m5["status"] = {"targetsSelected": 4, "observedGeneration": 2}
    s, m6 = k.req("PUT", base + "/web/status", m5)
    assert s == 200 and m6["status"]["targetsSelected"] == 4 and m6["metadata"]["generation"] == 2
    s, e = k.req("PATCH", base + "/web", {"spec": {}}, "application/strategic-merge-patch+json")
    assert s == 415
    s, m7 = k.req("PATCH", base + "/web", [{"op": "replace", "path": "/spec/sampleLimit", "value": 9},
                                          {"op": "test", "path": "/spec/targets", "value": "Pods"}],
                  "application/json-patch+json")
    assert s == 200 and m7["spec"]["sampleLimit"] == 9 and m7["metadata"]["generation"] == 3


@test
def server_side_apply(k):
    base = "/apis/vigie.dev/v1alpha1/namespaces/shop/alertrules"
    st = {"apiVersion": "vigie.dev/v1alpha1", "kind": "AlertRule", "metadata": {"name": "web", "namespace": "shop"},
          "status": {"observedGeneration": 1, "groups": [{"name": "shop-web", "valid": True}],
                     "conditions": [{"type": "Accepted", "status": "True", "reason": "Valid", "message": "",
                                     "lastTransitionTime": "2025-06-02T10:00:00Z"}]}}
    s, e = k.req("PATCH", base + "/web/status", st, "application/apply-patch+yaml")
    assert s == 422 and "fieldManager" in e["message"]
    s, o = k.req("PATCH", base + "/web/status?fieldManager=vigie&force=true", st, "application/apply-patch+yaml")
    assert s == 200 and o["status"]["groups"][0]["valid"] is True and o["metadata"]["generation"] == 1
    mf = [m for m in o["metadata"]["managedFields"] if m["manager"] == "vigie"]
    assert mf and mf[0]["operation"] == "Apply" and mf[0]["subresource"] == "status"
    s, o2 = k.req("PATCH", base + "/web/status?fieldManager=vigie&force=true", st, "application/apply-patch+yaml")
    assert o2["metadata"]["resourceVersion"] == o["metadata"]["resourceVersion"]  # no-op
    st2 = json.loads(json.dumps(st))
    del st2["status"]["groups"]
    s, o3 = k.req("PATCH", base + "/web/status?fieldManager=vigie&force=true", st2, "application/apply-patch+yaml")
    assert "groups" not in o3["status"] and "conditions" in o3["status"]  # fields no longer applied are removed
    # apply on the main resource creates, and ignores status
    new = {"apiVersion": "vigie.dev/v1alpha1", "kind": "AlertRule", "metadata": {"name": "applied"},
           "spec": {"groups": [{"name": "g", "rules": [{"record": "r", "expr": "1"}]}]}, "status": {"x": 1}}
    s, o4 = k.req("PATCH", base + "/applied?fieldManager=vigie", new, "application/apply-patch+yaml")
    assert s == 201 and "status" not in o4 and o4["metadata"]["generation"] == 1
    new["spec"]["groups"][0]["interval"] = "1m"
    s, o5 = k.req("PATCH", base + "/applied?fieldManager=vigie", new, "application/apply-patch+yaml")
    assert s == 200 and o5["metadata"]["generation"] == 2


@test
def finalizers_and_delete(k):
    base = "/api/v1/namespaces/shop/configmaps"
    s, o = k.req("POST", base, {"metadata": {"name": "fin", "finalizers": ["vigie.dev/cleanup"]}, "data": {"a": "1"}})
    s, d = k.req("DELETE", base + "/fin")
    assert s == 200 and d["metadata"]["deletionTimestamp"]
    s, g = k.req("GET", base + "/fin")
    assert s == 200
    s, u = k.req("PATCH", base + "/fin", {"metadata": {"finalizers": None}}, "application/merge-patch+json")
    assert s == 200
    s, g = k.req("GET", base + "/fin")
    assert s == 404
    s, o = k.req("POST", base, {"metadata": {"name": "plain"}})
    s, e = k.req("DELETE", base + "/plain", {"preconditions": {"resourceVersion": "1"}})
    assert s == 409
    s, d = k.req("DELETE", base + "/plain")
    assert s == 200 and d["metadata"]["name"] == "plain"
    s, e = k.req("DELETE", base + "/plain")
    assert s == 404


@test
def watch_basics(k):
    s, l = k.req("GET", "/api/v1/namespaces/shop/configmaps")
    rv = l["metadata"]["resourceVersion"]
    out = {}

    def reader():
        out["ev"] = k.watch(f"/api/v1/namespaces/shop/configmaps?watch=true&resourceVersion={rv}", n=3)

    t = threading.Thread(target=reader)
    t.start()
    time.sleep(0.3)
    base = "/api/v1/namespaces/shop/configmaps"
    k.req("POST", base, {"metadata": {"name": "w1"}, "data": {"a": "1"}})
    k.req("PATCH", base + "/w1", {"data": {"a": "2"}}, "application/merge-patch+json")
    k.req("POST", "/api/v1/namespaces/default/configmaps", {"metadata": {"name": "other-ns"}})
    k.req("DELETE", base + "/w1")
    t.join(10)
    types = [e["type"] for e in out["ev"]]
    assert types == ["ADDED", "MODIFIED", "DELETED"], types
    assert out["ev"][1]["object"]["data"] == {"a": "2"} and out["ev"][0]["object"]["kind"] == "ConfigMap"
    rvs = [int(e["object"]["metadata"]["resourceVersion"]) for e in out["ev"]]
    assert rvs == sorted(rvs) and rvs[0] > int(rv)
    # replay from history: the same three events again
    ev = k.watch(f"/api/v1/namespaces/shop/configmaps?watch=1&resourceVersion={rv}&timeoutSeconds=1")
    assert [e["type"] for e in ev] == ["ADDED", "MODIFIED", "DELETED"]
    # rv=0: current objects as ADDED first, then the stream; timeoutSeconds ends it
    t0 = time.time()
    ev = k.watch("/api/v1/pods?watch=true&resourceVersion=0&timeoutSeconds=1")
    assert len(ev) == 9 and all(e["type"] == "ADDED" for e in ev) and 0.8 < time.time() - t0 < 3


@test
def watch_selector_transitions(k):
    base = "/api/v1/namespaces/shop/configmaps"
    k.req("POST", base, {"metadata": {"name": "sel", "labels": {"tier": "a"}}})
    s, o = k.req("GET", base + "/sel")
    rv = o["metadata"]["resourceVersion"]
    out = {}
    t = threading.Thread(target=lambda: out.setdefault(
        "ev", k.watch(f"{base}?watch=true&labelSelector=tier%3Da&resourceVersion={rv}", n=2)))
    t.start()
    time.sleep(0.3)
    k.req("PATCH", base + "/sel", {"metadata": {"labels": {"tier": "b"}}}, "application/merge-patch+json")
    k.req("PATCH", base + "/sel", {"metadata": {"labels": {"tier": "a"}}}, "application/merge-patch+json")
    t.join(10)
    assert [e["type"] for e in out["ev"]] == ["DELETED", "ADDED"], out


@test
def watch_bookmarks_and_initial_events(k):
    t0 = time.time()
    ev = k.watch("/api/v1/nodes?watch=true&allowWatchBookmarks=true&resourceVersion=0",
                 until=lambda e: e["type"] == "BOOKMARK")
    assert [e["type"] for e in ev] == ["ADDED", "ADDED", "BOOKMARK"]
    bm = ev[-1]["object"]
    assert bm["kind"] == "Node" and bm["apiVersion"] == "v1" and bm["metadata"]["resourceVersion"]
    assert time.time() - t0 < 5  # the test server runs with --bookmark-interval 1
    ev = k.watch("/apis/vigie.dev/v1alpha1/monitors?watch=true&sendInitialEvents=true"
                 "&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true",
                 until=lambda e: e["type"] == "BOOKMARK")
    assert [e["type"] for e in ev] == ["ADDED", "BOOKMARK"]
    assert ev[-1]["object"]["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}
    s, e = k.req("GET", "/api/v1/pods?watch=true&sendInitialEvents=true")
    assert s == 422


@test
def watch_expired(k):
    base = "/api/v1/namespaces/shop/configmaps"
    s, l = k.req("GET", base)
    old = l["metadata"]["resourceVersion"]
    k.req("POST", base, {"metadata": {"name": "after-compact"}})
    s, c = k.req("POST", "/_fake/compact")
    assert s == 200
    ev = k.watch(f"{base}?watch=true&resourceVersion={old}")
    assert len(ev) == 1 and ev[0]["type"] == "ERROR"
    st = ev[0]["object"]
    assert st["kind"] == "Status" and st["code"] == 410 and st["reason"] == "Expired" and "too old resource version" in st["message"]
    # the current rv still works
    ev = k.watch(f"{base}?watch=true&resourceVersion={c['resourceVersion']}&timeoutSeconds=1")
    assert ev == []


@test
def watch_close_and_state(k):
    out = {}
    t = threading.Thread(target=lambda: out.setdefault("ev", k.watch("/api/v1/services?watch=true&resourceVersion=0")))
    t.start()
    deadline = time.time() + 5
    while time.time() < deadline:
        s, w = k.req("GET", "/_fake/watches")
        if any(x["resource"] == "services" for x in w):
            break
        time.sleep(0.1)
    assert any(x["resource"] == "services" for x in w)
    s, r = k.req("POST", "/_fake/close-watches")
    t.join(5)
    assert not t.is_alive() and len(out["ev"]) == 7
    s, st = k.req("GET", "/_fake/state")
    assert st["objects"]["pods"] == 9 and int(st["resourceVersion"]) > 0


@test
def request_log_and_failures(k):
    k.req("DELETE", "/_fake/requests")
    k.req("PATCH", "/apis/vigie.dev/v1alpha1/namespaces/shop/alertroutes/oncall/status?fieldManager=vigie",
          {"status": {"conditions": []}}, "application/apply-patch+yaml")
    s, reqs = k.req("GET", "/_fake/requests")
    assert len(reqs) == 1
    r = reqs[0]
    assert r["method"] == "PATCH" and r["path"].endswith("/oncall/status") and r["params"]["fieldManager"] == "vigie"
    assert r["contentType"] == "application/apply-patch+yaml" and r["body"] == {"status": {"conditions": []}} and r["code"] == 200
    k.req("POST", "/_fake/fail", {"method": "GET", "path": "^/api/v1/nodes$", "code": 503, "reason": "ServiceUnavailable", "count": 1})
    s, e = k.req("GET", "/api/v1/nodes")
    assert s == 503 and e["reason"] == "ServiceUnavailable"
    s, e = k.req("GET", "/api/v1/nodes")
    assert s == 200


@test
def reset(k):
    k.req("POST", "/api/v1/namespaces/shop/configmaps", {"metadata": {"name": "gone-after-reset"}})
    s, st0 = k.req("GET", "/_fake/state")
    s, r = k.req("POST", "/_fake/reset")
    assert s == 200 and r["objects"] == 38
    s, st = k.req("GET", "/_fake/state")
    assert int(st["resourceVersion"]) > int(st0["resourceVersion"]) and st["objects"]["configmaps"] == 0
    s, m = k.req("GET", "/apis/vigie.dev/v1alpha1/namespaces/shop/monitors/web")
    assert m["metadata"]["generation"] == 1 and "status" not in m


def main():
    p = subprocess.Popen([sys.executable, os.path.join(HERE, "fake_apiserver.py"), "0",
                          "--objects", os.path.join(HERE, "objects"), "--bookmark-interval", "1"],
                         stdout=subprocess.PIPE, text=True)
    try:
        port = int(p.stdout.readline().split()[1])
        k = Client(port)
        passed = failed = 0
        for t in TESTS:
            k.req("POST", "/_fake/reset")
            try:
                t(k)
                passed += 1
                print(f"ok   {t.__name__}")
            except Exception:
                failed += 1
                print(f"FAIL {t.__name__}")
                traceback.print_exc()
        print(f"{passed} passed, {failed} failed")
        return 1 if failed else 0
    finally:
        p.terminate()
        p.wait(5)


if __name__ == "__main__":
    sys.exit(main())
