#!/usr/bin/env python3
"""PromQL latency and query memory, vigie against Prometheus 2.42 on the same backfilled data.

Generates OpenMetrics text (10,000 `http_requests_total` counters, 1,000 gauges, a classic
histogram of 800 bucket series; 4 h at 15 s: about 11 M samples), imports it with
`vigie import openmetrics` and `promtool tsdb create-blocks-from openmetrics`, starts both
servers on the blocks and times range queries over 1 h at a 15 s step through the HTTP API
(median of --runs after one warm-up run), then the peak memory growth (VmHWM) of one query
that reads every sample.

Usage: cargo build --release && python3 benches/query.py [--runs 5] [--keep]
Targets (issue 4): `sum by (job) (rate(x[5m]))` <= 0.5x Prometheus latency; the 10M-sample
query's memory <= 0.5x Prometheus's.
"""
import argparse, json, os, shutil, signal, statistics, subprocess, sys, tempfile, time
import urllib.parse

from benchlib import TARGET_DIR, free_port, get, wait_http
STEP_S, POINTS = 15, 960  # 4 h

QUERIES = [
    ("sum by (job) (rate(http_requests_total[5m]))", "sum by job of rates"),
    ('sum(rate(http_requests_total{code=~"5.."}[5m])) / sum(rate(http_requests_total[5m]))', "error ratio"),
    ("topk(5, sum by (instance) (rate(http_requests_total[5m])))", "top instances"),
    ("histogram_quantile(0.99, sum by (le, job) (rate(latency_seconds_bucket[5m])))", "p99 latency by job"),
    ("avg by (job) (memory_bytes)", "avg gauge by job"),
    ("max_over_time(memory_bytes[10m])", "max over time"),
    ("count by (code) (http_requests_total)", "count by code"),
    ('increase(http_requests_total{job="job-1"}[1h])', "increase, one job"),
    ("rate(http_requests_total[5m]) > 0.9", "filter"),
    ("quantile by (job) (0.9, rate(http_requests_total[5m]))", "quantile by job"),
]
BIG_QUERY = "sum(count_over_time(http_requests_total[4h]))"


def generate(path, base):
    codes = ["200", "201", "204", "301", "304", "400", "404", "500", "502", "503"]
    with open(path, "w") as f:
        f.write("# TYPE http_requests counter\n")
        n = 0
        for job in range(10):
            for inst in range(100):
                for code in codes:
                    lab = f'job="job-{job}",instance="inst-{inst}",code="{code}"'
                    v, step = 1000.0 + n, 1 + n % 7
                    jitter = 100 + (n * 37) % 800
                    lines = []
                    for i in range(POINTS):
                        v += step + (i % 3)
                        lines.append(f"http_requests_total{{{lab}}} {v:.0f} {base + i * STEP_S}.{jitter:03d}\n")
                    f.write("".join(lines))
                    n += 1
        f.write("# TYPE memory_bytes gauge\n")
        for job in range(10):
            for inst in range(100):
                lab = f'job="job-{job}",instance="inst-{inst}"'
                jitter = 100 + (inst * 53) % 800
                f.write("".join(
                    f"memory_bytes{{{lab}}} {1e8 + ((i * 7919 + inst) % 1000) * 4096:.0f} {base + i * STEP_S}.{jitter:03d}\n"
                    for i in range(POINTS)))
        f.write("# TYPE latency_seconds histogram\n")
        bounds = ["0.01", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "+Inf"]
        for job in range(10):
            for inst in range(10):
                jitter = 100 + (job * 10 + inst) * 7 % 800
                for b, le in enumerate(bounds):
                    lab = f'job="job-{job}",instance="inst-{inst}",le="{le}"'
                    f.write("".join(
                        f"latency_seconds_bucket{{{lab}}} {(i + 1) * (b + 1) * 10} {base + i * STEP_S}.{jitter:03d}\n"
                        for i in range(POINTS)))
        f.write("# EOF\n")


def status_kb(pid, key):
    """A `/proc/PID/status` figure in kB (`VmHWM`, `VmRSS`)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def timed(port, q, start, end, runs):
    path = "/api/v1/query_range?" + urllib.parse.urlencode({"query": q, "start": start, "end": end, "step": STEP_S})
    body = json.loads(get(port, path, timeout=300))  # warm-up, and the result for the cross-check
    if body.get("status") != "success":
        sys.exit(f"{q}: {body}")
    took = []
    for _ in range(runs):
        t0 = time.perf_counter()
        get(port, path, timeout=300)
        took.append(time.perf_counter() - t0)
    return statistics.median(took), len(body["data"]["result"])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--vigie", default=os.path.join(TARGET_DIR, "release", "vigie"))
    ap.add_argument("--prometheus", default=shutil.which("prometheus") or "/usr/bin/prometheus")
    ap.add_argument("--promtool", default=shutil.which("promtool") or "/usr/bin/promtool")
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="vigie-query-")
    procs = []
    try:
        now = int(time.time())
        base = (now - 5 * 3600) // 60 * 60
        om = os.path.join(work, "data.om")
        t0 = time.monotonic()
        generate(om, base)
        print(f"generated {os.path.getsize(om) >> 20} MB in {time.monotonic() - t0:.0f}s", flush=True)
        subprocess.run([args.vigie, "import", "openmetrics", om, "--data-dir", os.path.join(work, "vigie")],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        subprocess.run([args.promtool, "tsdb", "create-blocks-from", "openmetrics", om, os.path.join(work, "prom")],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.remove(om)
        vport, pport = free_port(), free_port()
        cfg = os.path.join(work, "prometheus.yml")
        with open(cfg, "w") as f:
            f.write("global: {scrape_interval: 1h}\n")
        servers = {
            "vigie": [args.vigie, "run", "--discovery", "none", "--listen", f"127.0.0.1:{vport}",
                      "--data-dir", os.path.join(work, "vigie")],
            "prometheus": [args.prometheus, f"--config.file={cfg}", f"--web.listen-address=127.0.0.1:{pport}",
                           f"--storage.tsdb.path={os.path.join(work, 'prom')}"],
        }
        ports = {"vigie": vport, "prometheus": pport}
        # One server at a time, so they do not share the two cores.
        results = {}
        for name, cmd in servers.items():
            p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            procs.append(p)
            wait_http(ports[name], "/-/ready", deadline=120) or sys.exit(f"{name} was not ready within 120 s")
            time.sleep(2)
            start, end = base + 2 * 3600, base + 3 * 3600
            results[name] = [timed(ports[name], q, start, end, args.runs) for q, _ in QUERIES]
            before = status_kb(p.pid, "VmRSS")
            path = "/api/v1/query?" + urllib.parse.urlencode({"query": BIG_QUERY, "time": base + POINTS * STEP_S})
            t0 = time.perf_counter()
            big = json.loads(get(ports[name], path, timeout=300))
            big_s = time.perf_counter() - t0
            results[name].append((big_s, big["data"]["result"][0]["value"][1], max(0, status_kb(p.pid, "VmHWM") - before)))
            p.send_signal(signal.SIGTERM)
            p.wait(30)
        print(f"\n{'query (1 h range, 15 s step)':<34}{'vigie ms':>10}{'prom ms':>10}{'ratio':>8}{'series':>8}")
        for i, (q, label) in enumerate(QUERIES):
            (v, vn), (p, pn) = results["vigie"][i], results["prometheus"][i]
            flag = "" if vn == pn else f"  (series differ: {vn} vs {pn})"
            print(f"{label:<34}{v * 1e3:>10.1f}{p * 1e3:>10.1f}{v / p:>8.2f}{vn:>8}{flag}")
        vb, pb = results["vigie"][-1], results["prometheus"][-1]
        print(f"\n{BIG_QUERY}: {vb[1]} samples (prometheus: {pb[1]})")
        print(f"  latency  vigie {vb[0]:.2f} s, prometheus {pb[0]:.2f} s, ratio {vb[0] / pb[0]:.2f}")
        print(f"  peak memory growth  vigie {vb[2] >> 10} MB, prometheus {pb[2] >> 10} MB, "
              f"ratio {vb[2] / max(pb[2], 1):.2f} (target <= 0.5)")
        print(f"ratio on the target query (sum by job of rates): {results['vigie'][0][0] / results['prometheus'][0][0]:.2f} "
              "(target <= 0.5)")
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
