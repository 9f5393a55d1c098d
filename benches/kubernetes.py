#!/usr/bin/env python3
"""Kubernetes reconcile at scale: vigie (`--discovery kubernetes`, release build) against the
fake API server of tests/kubernetes with N pods in 100 namespaces and M Monitors, each
selecting N/M pods. All pods point at one loopback metrics page (pod IPs 127.0.x.y, the
page listens on 0.0.0.0), scraped every 60 s.

Reports:
1. time from start until every Monitor's targets are discovered;
2. time from a Monitor edit (its selector moved to other pods) until vigie's targets for it
   are the new pods, and until the first of them is scraped, over several edits;
3. vigie's resident memory with the caches filled, against an empty cluster: bytes per pod.
prometheus-operator's documented chain for the same edit (CRD → config Secret → kubelet
sync → reloader → /-/reload) takes 1-3 minutes (discovery-semantics.md §9.1 #2).

Usage: python3 benches/kubernetes.py [--pods 10000] [--monitors 1000] [--edits 5]
(builds the release binary first)
"""
import argparse, http.server, json, os, socketserver, subprocess, sys, tempfile, threading, time, urllib.parse, urllib.request

from benchlib import TARGET_DIR, free_port, get, wait_http

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FAKE = os.path.join(ROOT, "tests", "kubernetes", "fake_apiserver.py")


class Page(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"app_up 1\n"
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    request_queue_size = 1024

    def handle_error(self, request, client_address):
        pass  # a scrape that gave up (timeout) closes early


def objects(n_pods, n_monitors, port, with_monitors=True):
    ns = [f"ns{i}" for i in range(100)]
    items = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": n}} for n in ns]
    for i in range(n_pods):
        app = f"app{i % n_monitors}"
        items.append({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": f"pod{i}", "namespace": ns[(i % n_monitors) % 100], "labels": {"app": app}},
            "spec": {"nodeName": "node-a", "containers": [{"name": "app", "image": "app:1",
                     "ports": [{"name": "metrics", "containerPort": port, "protocol": "TCP"}]}]},
            "status": {"phase": "Running", "podIP": f"127.0.{i // 250}.{i % 250 + 1}",
                       "conditions": [{"type": "Ready", "status": "True"}]},
        })
    if not with_monitors:
        # One Monitor that selects nothing: the pod cache is filled, no target exists.
        items.append({"apiVersion": "vigie.dev/v1alpha1", "kind": "Monitor", "metadata": {"name": "none", "namespace": "ns0"},
                      "spec": {"selector": {"matchLabels": {"app": "none"}}, "endpoints": [{"port": "metrics"}]}})
    for j in range(n_monitors if with_monitors else 0):
        items.append({
            "apiVersion": "vigie.dev/v1alpha1", "kind": "Monitor",
            "metadata": {"name": f"m{j}", "namespace": ns[j % 100]},
            "spec": {"selector": {"matchLabels": {"app": f"app{j}"}}, "namespaceSelector": {"own": True},
                     "endpoints": [{"port": "metrics", "interval": "60s"}]},
        })
    return {"apiVersion": "v1", "kind": "List", "items": items}


def start_fake(work, objs):
    d = os.path.join(work, "objects-" + str(len(objs["items"])))
    os.makedirs(d)
    with open(os.path.join(d, "objects.json"), "w") as f:
        json.dump(objs, f)
    p = subprocess.Popen([sys.executable, FAKE, "0", "--objects", d, "--history-size", "100000"],
                         stdout=subprocess.PIPE, stderr=open(os.path.join(work, "fake.log"), "w"), text=True)
    port = int(p.stdout.readline().split()[1])
    return p, port


def start_vigie(work, api_port, name):
    kubeconfig = os.path.join(work, f"kubeconfig-{name}")
    with open(kubeconfig, "w") as f:
        f.write(f"apiVersion: v1\nkind: Config\nclusters: [{{name: f, cluster: {{server: 'http://127.0.0.1:{api_port}'}}}}]\n"
                "users: [{name: f, user: {}}]\ncontexts: [{name: f, context: {cluster: f, user: f}}]\ncurrent-context: f\n")
    port = free_port()
    env = dict(os.environ, KUBECONFIG=kubeconfig, RUST_LOG="warn")
    p = subprocess.Popen([os.path.join(TARGET_DIR, "release", "vigie"), "run", "--listen", f"127.0.0.1:{port}",
                          "--data-dir", os.path.join(work, f"data-{name}"), "--discovery", "kubernetes"],
                         env=env, stdout=subprocess.DEVNULL, stderr=open(os.path.join(work, f"vigie-{name}.log"), "w"))
    if not wait_http(port, "/-/ready", 60, p):
        sys.exit("vigie did not start")
    return p, port


def watching(api_port, resource):
    """Whether a client watches `resource` on the fake server (its list is done)."""
    w = json.loads(get(api_port, "/_fake/watches"))
    items = w if isinstance(w, list) else w.get("watches", w.get("items", []))
    return any(resource in json.dumps(x) for x in items)


def rss_kib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def pools(port):
    d = json.loads(get(port, "/api/v1/targets", timeout=60))
    out = {}
    for t in d["data"]["activeTargets"]:
        out.setdefault(t["scrapePool"], []).append(t)
    return out


def patch(api_port, path, body):
    req = urllib.request.Request(f"http://127.0.0.1:{api_port}{path}", data=json.dumps(body).encode(), method="PATCH",
                                 headers={"Content-Type": "application/merge-patch+json"})
    urllib.request.urlopen(req, timeout=30).read()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pods", type=int, default=10000)
    ap.add_argument("--monitors", type=int, default=1000)
    ap.add_argument("--edits", type=int, default=5)
    args = ap.parse_args()
    subprocess.run(["cargo", "build", "--release", "--quiet", "--bin", "vigie"], cwd=ROOT, check=True,
                   env=dict(os.environ, CARGO_TARGET_DIR=TARGET_DIR))
    work = tempfile.mkdtemp(prefix="bench-kube-")
    page = Server(("0.0.0.0", 0), Page)
    threading.Thread(target=page.serve_forever, daemon=True).start()
    mport = page.server_address[1]
    procs = []
    try:
        empty, eport = start_fake(work, objects(0, 1, mport))
        procs.append(empty)
        v0, _ = start_vigie(work, eport, "empty")
        procs.append(v0)
        time.sleep(5)
        base_rss = rss_kib(v0.pid)
        # The same pods without Monitors: what the watch caches alone cost.
        podsonly, pport = start_fake(work, objects(args.pods, args.monitors, mport, with_monitors=False))
        procs.append(podsonly)
        v1, _ = start_vigie(work, pport, "pods-only")
        procs.append(v1)
        # Wait until the caches hold every pod (the fake server lists them slowly).
        end = time.monotonic() + 300
        while time.monotonic() < end and not watching(pport, "pods"):
            time.sleep(1)
        time.sleep(20)
        cache_rss = rss_kib(v1.pid)
        v1.terminate()

        fake, aport = start_fake(work, objects(args.pods, args.monitors, mport))
        procs.append(fake)
        t0 = time.monotonic()
        v, vport = start_vigie(work, aport, "full")
        procs.append(v)
        per = args.pods // args.monitors
        while True:
            p = pools(vport)
            got = sum(len(ts) for k, ts in p.items() if k.startswith("monitor/"))
            if got >= args.pods:
                break
            if time.monotonic() - t0 > 600:
                sys.exit(f"only {got} of {args.pods} targets after 600 s")
            time.sleep(0.5)
        discovered = time.monotonic() - t0
        time.sleep(5)
        full_rss = rss_kib(v.pid)

        applied, scraped = [], []
        for e in range(args.edits):
            j = e * 7 % args.monitors
            ns = f"ns{j % 100}"
            # Monitors select in their own namespace: move the selector to pods there.
            target_app = next(a for a in range(args.monitors) if a % 100 == j % 100 and a != j)
            want = {f"pod{i}" for i in range(args.pods) if i % args.monitors == target_app}
            t = time.monotonic()
            patch(aport, f"/apis/vigie.dev/v1alpha1/namespaces/{ns}/monitors/m{j}",
                  {"spec": {"selector": {"matchLabels": {"app": f"app{target_app}"}}}})
            seen_at = up_at = None
            while time.monotonic() - t < 120 and up_at is None:
                pool = f"monitor/{ns}/m{j}/0"
                d = json.loads(get(vport, "/api/v1/targets?scrapePool=" + urllib.parse.quote(pool, safe=""), timeout=60))
                ts = d["data"]["activeTargets"]
                pods = {x["labels"].get("pod") for x in ts}
                if seen_at is None and pods == want:
                    seen_at = time.monotonic() - t
                if seen_at is not None and any(x["health"] == "up" for x in ts):
                    up_at = time.monotonic() - t
                time.sleep(0.02)
            applied.append(seen_at)
            scraped.append(up_at)
            print(f"edit {e}: Monitor {ns}/m{j} → app{target_app}: targets replaced after {seen_at:.3f} s, "
                  f"first scrape after {up_at if up_at is None else round(up_at, 2)} s", flush=True)

        print(f"\n{args.pods} pods, {args.monitors} Monitors ({per} pods each):")
        print(f"  start → all targets discovered:          {discovered:.1f} s")
        ok = sorted(x for x in applied if x is not None)
        print(f"  Monitor edit → new targets (median):      {ok[len(ok) // 2]:.3f} s   {['%.3f' % x for x in applied]}")
        ok = sorted(x for x in scraped if x is not None)
        if ok:
            print(f"  Monitor edit → first new scrape (median): {ok[len(ok) // 2]:.2f} s   (60 s interval: mostly the scrape slot)")
        print(f"  prometheus-operator's chain for an edit: 1-3 minutes (config Secret, kubelet sync, reloader)")
        print(f"  RSS: empty cluster {base_rss / 1024:.0f} MiB; {args.pods} pods cached, no Monitors "
              f"{cache_rss / 1024:.0f} MiB ({(cache_rss - base_rss) * 1024 / args.pods:.0f} bytes per cached pod); "
              f"with the Monitors {full_rss / 1024:.0f} MiB ({(full_rss - base_rss) * 1024 / args.pods:.0f} bytes per "
              f"scraped pod: cache, target, scrape loop and its series)")
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=20)
            except Exception:
                p.kill()
        page.shutdown()


if __name__ == "__main__":
    main()
