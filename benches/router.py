#!/usr/bin/env python3
"""Alert routing, vigie against Alertmanager 0.25 on the same load (target: dispatch
latency from POST to webhook <= group_wait + 50 ms at p99; CPU and memory side by side).

10,000 alerts in 1,000 aggregation groups (group_by [alertname, group]; 10 alerts each)
are posted in batches of 256 every 0.1 s, as Prometheus sends them, to each server in turn; one
webhook receiver records when each group's first notification arrives. The latency of a
group is arrival - post time of the batch that created it - group_wait. Then every alert
is re-posted each 5 s for `--steady` seconds (Prometheus's resends), and the CPU used in
that phase and the peak resident memory are read from /proc.

Usage: cargo build --release && python3 benches/router.py [--groups 1000] [--per-group 10]
"""
import argparse, json, os, shutil, statistics, subprocess, sys, tempfile, threading, time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from benchlib import TARGET_DIR, free_port, wait_http

GROUP_WAIT_S = 1.0


class Receiver:
    def __init__(self):
        self.first = {}  # groupKey -> arrival (monotonic)
        self.count = 0
        self.lock = threading.Lock()
        receiver = self

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                now = time.monotonic()
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                key = json.loads(body)["groupKey"]
                with receiver.lock:
                    receiver.count += 1
                    receiver.first.setdefault(key, now)
                # One write for the whole answer: split writes meet Nagle and delayed ACKs.
                self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")

            def log_message(self, *a):
                pass

        # A deep accept queue, so a burst of flushes is not slowed by SYN retries.
        ThreadingHTTPServer.request_queue_size = 1024
        self.port = free_port()
        self.srv = ThreadingHTTPServer(("127.0.0.1", self.port), H)
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()


def config(hook_port):
    return f"""route:
  receiver: hook
  group_by: [alertname, group]
  group_wait: {int(GROUP_WAIT_S * 1000)}ms
  group_interval: 5m
  repeat_interval: 4h
receivers:
  - name: hook
    webhook_configs:
      - url: http://127.0.0.1:{hook_port}/
"""


def alerts(groups, per_group):
    out = []
    for g in range(groups):
        for i in range(per_group):
            out.append({
                "labels": {"alertname": f"Bench{g % 10}", "group": f"g{g}", "instance": f"i{i}", "severity": "page"},
                "annotations": {"summary": f"alert {i} of group {g}"},
                "generatorURL": "http://prometheus/graph",
            })
    return out


def post(port, batch):
    data = json.dumps(batch).encode()
    req = urllib.request.Request(f"http://127.0.0.1:{port}/api/v2/alerts", data=data,
                                 headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(req, timeout=30) as r:
        r.read()


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def run(name, cmd, port, args, work):
    hook = Receiver()
    cfg = os.path.join(work, f"{name}.yml")
    with open(cfg, "w") as f:
        f.write(config(hook.port))
    log = open(os.path.join(work, f"{name}.log"), "w")
    proc = subprocess.Popen(cmd(cfg), stdout=log, stderr=log)
    try:
        if not wait_http(port, "/-/ready", 30, proc):
            sys.exit(f"{name} did not start; see {log.name}")
        batch_alerts = alerts(args.groups, args.per_group)
        created = {}  # group label -> monotonic time of the post that created it
        cpu0 = cpu_seconds(proc.pid)
        # Batches at a fixed pace, the same for both servers, so their groups fall due on
        # the same timeline and the receiver sees the same load.
        start = time.monotonic()
        for n, i in enumerate(range(0, len(batch_alerts), 256)):
            time.sleep(max(0.0, start + n * args.batch_every - time.monotonic()))
            batch = batch_alerts[i:i + 256]
            t = time.monotonic()
            post(port, batch)
            for a in batch:
                created.setdefault(a["labels"]["group"], t)
        post_s = time.monotonic() - start
        deadline = time.monotonic() + GROUP_WAIT_S + 30
        while len(hook.first) < args.groups and time.monotonic() < deadline:
            time.sleep(0.05)
        burst_cpu = cpu_seconds(proc.pid) - cpu0
        lat = []
        for key, arrived in hook.first.items():
            g = key.split('group="')[1].split('"')[0]
            lat.append((arrived - created[g] - GROUP_WAIT_S) * 1000)
        lat.sort()
        missing = args.groups - len(lat)
        # Steady state: Prometheus re-posts every alert each resend period.
        cpu1 = cpu_seconds(proc.pid)
        end = time.monotonic() + args.steady
        rounds = 0
        while time.monotonic() < end:
            t = time.monotonic()
            for i in range(0, len(batch_alerts), 256):
                post(port, batch_alerts[i:i + 256])
            rounds += 1
            time.sleep(max(0.0, 5.0 - (time.monotonic() - t)))
        steady_cpu = cpu_seconds(proc.pid) - cpu1
        return {
            "post_phase_s": post_s,
            "p50_ms": statistics.median(lat) if lat else float("nan"),
            "p99_ms": lat[int(len(lat) * 0.99) - 1] if lat else float("nan"),
            "max_ms": lat[-1] if lat else float("nan"),
            "missing_groups": missing,
            "notifications": hook.count,
            "burst_cpu_s": burst_cpu,
            "steady_cpu_s": steady_cpu,
            "steady_rounds": rounds,
            "peak_rss_mib": peak_rss_mib(proc.pid),
        }
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        hook.srv.shutdown()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--groups", type=int, default=1000)
    ap.add_argument("--per-group", type=int, default=10)
    ap.add_argument("--steady", type=float, default=30)
    ap.add_argument("--batch-every", type=float, default=0.1, help="seconds between batches of 256 alerts")
    ap.add_argument("--only", choices=["vigie", "alertmanager"])
    args = ap.parse_args()
    vigie = os.path.join(TARGET_DIR, "release", "vigie")
    am = shutil.which("prometheus-alertmanager")
    work = tempfile.mkdtemp(prefix="bench-router-")
    results = {}
    if args.only != "alertmanager":
        port = free_port()
        results["vigie"] = run("vigie", lambda cfg: [vigie, "run", "--listen", f"127.0.0.1:{port}", "--data-dir",
                                                    os.path.join(work, "vigie-data"), "--router-config", cfg],
                               port, args, work)
    if args.only != "vigie":
        if am is None:
            sys.exit("prometheus-alertmanager not found (apt-get install prometheus-alertmanager)")
        port = free_port()
        results["alertmanager"] = run("alertmanager", lambda cfg: [am, f"--config.file={cfg}",
                                                                   f"--storage.path={os.path.join(work, 'am-data')}",
                                                                   f"--web.listen-address=127.0.0.1:{port}",
                                                                   "--cluster.listen-address="],
                                      port, args, work)
    print(f"{args.groups * args.per_group} alerts in {args.groups} groups, group_wait {GROUP_WAIT_S}s, "
          f"steady phase {args.steady}s")
    keys = ["post_phase_s", "p50_ms", "p99_ms", "max_ms", "missing_groups", "notifications", "burst_cpu_s", "steady_cpu_s",
            "peak_rss_mib"]
    print(f"{'':16}" + "".join(f"{n:>14}" for n in results) + ("   ratio" if len(results) == 2 else ""))
    for k in keys:
        row = f"{k:16}" + "".join(f"{r[k]:>14.1f}" for r in results.values())
        if len(results) == 2:
            a, b = results["vigie"][k], results["alertmanager"][k]
            row += f"   {a / b:.2f}" if b else "      -"
        print(row)
    if os.environ.get("KEEP"):
        print("work dir kept:", work)
    else:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
