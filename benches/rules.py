#!/usr/bin/env python3
"""Rule evaluation time, vigie against Prometheus on the same rules and data (target:
ratio <= 0.5).

One Python target serves 10,000 series (100 shards x 100 instances of a counter and a
gauge, the counters moving at each scrape). Each server in turn scrapes it and evaluates
the same rule file: 1,000 alerting rules in 10 groups (rates over counters, per-shard sums,
gauges against thresholds; some fire so templates run). After a warm-up, the groups'
`evaluationTime` from `/api/v1/rules` (same field on both) is sampled at each evaluation;
the report gives the median total per round and the per-group figures, and the ratio.

Usage: cargo build --release && python3 benches/rules.py [--interval 5] [--rounds 8]
"""
import argparse, json, os, shutil, statistics, subprocess, sys, tempfile, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from benchlib import TARGET_DIR, free_port, get, wait_http

SHARDS, INSTANCES, GROUPS, RULES_PER_GROUP = 100, 100, 10, 100


class Page:
    def __init__(self):
        self.n = 0
        self.lock = threading.Lock()

    def render(self):
        with self.lock:
            self.n += 1
            n = self.n
        out = ["# TYPE bench_requests_total counter"]
        for s in range(SHARDS):
            for i in range(INSTANCES):
                out.append(f'bench_requests_total{{shard="{s}",instance="i{i}"}} {n * (s + i + 1)}')
        out.append("# TYPE bench_load gauge")
        for s in range(SHARDS):
            for i in range(INSTANCES):
                out.append(f'bench_load{{shard="{s}",instance="i{i}"}} {((s * 7 + i * 13 + n) % 100) / 100}')
        return ("\n".join(out) + "\n").encode()


def serve(page):
    class H(BaseHTTPRequestHandler):
        def do_GET(self):
            body = page.render()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a):
            pass

    port = free_port()
    srv = ThreadingHTTPServer(("127.0.0.1", port), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return port


def rules_yaml(interval):
    lines = ["groups:"]
    for g in range(GROUPS):
        lines += [f"  - name: bench{g}", f"    interval: {interval}s", "    rules:"]
        for r in range(RULES_PER_GROUP):
            shard = (g * RULES_PER_GROUP + r) % SHARDS
            kind = r % 4
            if kind == 0:
                expr = f'rate(bench_requests_total{{shard="{shard}"}}[1m]) > {shard + 50}'
            elif kind == 1:
                expr = f'sum by (shard) (rate(bench_requests_total{{shard="{shard}"}}[1m])) > 1000'
            elif kind == 2:
                expr = f'bench_load{{shard="{shard}"}} > 0.95'
            else:
                expr = f'avg_over_time(bench_load{{shard="{shard}"}}[1m]) < 0.02'
            lines += [
                f"      - alert: Bench{g}_{r}",
                f"        expr: {expr}",
                "        for: 30s",
                "        labels:",
                "          severity: warning",
                "        annotations:",
                "          summary: '{{ $labels.instance }} at {{ humanize $value }}'",
            ]
    return "\n".join(lines) + "\n"


def config(target_port, interval):
    return f"""global:
  scrape_interval: {interval}s
  scrape_timeout: {interval}s
  evaluation_interval: {interval}s
rule_files: ['rules.yml']
scrape_configs:
  - job_name: bench
    static_configs:
      - targets: ['127.0.0.1:{target_port}']
"""


def sample_rounds(port, rounds, interval):
    """Per round: {group: evaluationTime}; a round is kept once every group evaluated anew."""
    seen, out = {}, []
    deadline = time.monotonic() + rounds * interval * 4 + 60
    while len(out) < rounds and time.monotonic() < deadline:
        time.sleep(interval / 2)
        try:
            data = json.loads(get(port, "/api/v1/rules?exclude_alerts=true", timeout=30))["data"]["groups"]
        except Exception:
            continue
        cur = {g["name"]: (g["lastEvaluation"], g["evaluationTime"]) for g in data}
        if len(cur) < GROUPS:
            continue
        fresh = all(seen.get(k, ("",))[0] != v[0] for k, v in cur.items())
        if fresh and seen:
            out.append({k: v[1] for k, v in cur.items()})
        if fresh or not seen:
            seen = cur
    return out


def run(name, cmd, port, dirpath, rounds, interval, warmup):
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=open(os.path.join(dirpath, f"{name}.log"), "w"))
    try:
        if not wait_http(port, "/-/ready", 60, proc):
            sys.exit(f"{name} did not start; see {dirpath}/{name}.log")
        time.sleep(warmup)
        got = sample_rounds(port, rounds, interval)
        if len(got) < rounds // 2:
            sys.exit(f"{name}: only {len(got)} evaluation rounds seen")
        firing = json.loads(get(port, "/api/v1/alerts", timeout=30))["data"]["alerts"]
        return got, len(firing)
    finally:
        proc.terminate()
        proc.wait()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--interval", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--warmup", type=int, default=75, help="seconds before sampling (rate windows fill)")
    ap.add_argument("--only", choices=["prometheus", "vigie"], help="run one server (for profiling)")
    a = ap.parse_args()
    vigie = os.path.join(TARGET_DIR, "release", "vigie")
    prom = shutil.which("prometheus")
    if not os.path.exists(vigie) or not prom:
        sys.exit("needs target/release/vigie (cargo build --release) and the prometheus package")
    page = Page()
    target = serve(page)
    results = {}
    for name in [a.only] if a.only else ["prometheus", "vigie"]:
        d = tempfile.mkdtemp(prefix=f"bench-rules-{name}-")
        with open(os.path.join(d, "rules.yml"), "w") as f:
            f.write(rules_yaml(a.interval))
        cfgp = os.path.join(d, "config.yml")
        with open(cfgp, "w") as f:
            f.write(config(target, a.interval))
        port = free_port()
        if name == "prometheus":
            cmd = [prom, f"--config.file={cfgp}", f"--storage.tsdb.path={d}/data", f"--web.listen-address=127.0.0.1:{port}"]
        else:
            cmd = [vigie, "run", "--config", cfgp, "--data-dir", f"{d}/data", "--listen", f"127.0.0.1:{port}"]
        rounds, firing = run(name, cmd, port, d, a.rounds, a.interval, a.warmup)
        totals = [sum(r.values()) for r in rounds]
        per_group = statistics.median([v for r in rounds for v in r.values()])
        results[name] = (statistics.median(totals), per_group, firing, len(rounds))
        shutil.rmtree(d, ignore_errors=True)
    print(f"{GROUPS * RULES_PER_GROUP} alerting rules in {GROUPS} groups over {2 * SHARDS * INSTANCES} series, every {a.interval}s")
    print(f"{'server':<12}{'total/round':>14}{'median/group':>15}{'alerts':>8}{'rounds':>8}")
    for name, (total, group, firing, n) in results.items():
        print(f"{name:<12}{total * 1000:>12.1f}ms{group * 1000:>13.2f}ms{firing:>8}{n:>8}")
    if len(results) < 2:
        return
    ratio = results["vigie"][0] / results["prometheus"][0]
    group_ratio = results["vigie"][1] / results["prometheus"][1]
    print(f"ratio vigie/prometheus: total per round (median) {ratio:.2f}, per group (median) {group_ratio:.2f}  (target <= 0.5)")


if __name__ == "__main__":
    main()
