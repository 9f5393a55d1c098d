#!/usr/bin/env python3
"""CPU per scraped sample on the full scrape path (fetch + parse + relabel + append),
vigie against Prometheus on the same node_exporter targets (target: ratio <= 0.25).

Starts N real prometheus-node-exporter processes on loopback, then runs each server in
turn with the same scrape config (same targets, same interval, one metric_relabel rule so
relabeling is on the path), and reads the server's own CPU time (/proc/PID/stat utime +
stime) and its own appended-samples counter over the same measuring window.

Usage: cargo build --release && python3 benches/scrape_cpu.py [--targets 24] [--seconds 60]
"""
import argparse, os, re, shutil, signal, subprocess, sys, tempfile, time

CLK_TCK = os.sysconf("SC_CLK_TCK")
from benchlib import TARGET_DIR, free_port, get, wait_http


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def counter(port, name):
    total = 0.0
    for line in get(port, "/metrics").splitlines():
        m = re.match(rf"^{name}(?:{{[^}}]*}})? (\S+)", line)
        if m:
            total += float(m.group(1))
    return total


def config(targets, interval):
    hosts = ", ".join(f"'127.0.0.1:{p}'" for p in targets)
    return f"""global:
  scrape_interval: {interval}
  scrape_timeout: {interval}
scrape_configs:
  - job_name: node
    static_configs:
      - targets: [{hosts}]
    metric_relabel_configs:
      - source_labels: [__name__]
        regex: go_gc_duration_seconds.*
        action: drop
"""


def measure(name, cmd, port, counter_name, warmup, seconds):
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_http(port, "/-/ready") or sys.exit(f"127.0.0.1:{port}/-/ready did not answer")
        time.sleep(warmup)
        c0, s0, t0 = cpu_seconds(proc.pid), counter(port, counter_name), time.monotonic()
        time.sleep(seconds)
        c1, s1, t1 = cpu_seconds(proc.pid), counter(port, counter_name), time.monotonic()
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
    samples = s1 - s0
    if samples <= 0:
        sys.exit(f"{name}: no samples appended in the window")
    us = (c1 - c0) / samples * 1e6
    print(f"{name:>10}: {samples:>10.0f} samples in {t1 - t0:.0f}s, cpu {c1 - c0:6.2f}s, {us:.3f} µs/sample")
    return us


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--targets", type=int, default=24)
    ap.add_argument("--seconds", type=int, default=60)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--interval", default="1s")
    ap.add_argument("--vigie", default=os.path.join(TARGET_DIR, "release", "vigie"))
    ap.add_argument("--prometheus", default=shutil.which("prometheus") or "/usr/bin/prometheus")
    args = ap.parse_args()
    exporter = shutil.which("prometheus-node-exporter") or sys.exit("needs prometheus-node-exporter")

    work = tempfile.mkdtemp(prefix="vigie-bench-")
    exporters, ports = [], []
    try:
        for _ in range(args.targets):
            p = free_port()
            exporters.append(subprocess.Popen([exporter, f"--web.listen-address=127.0.0.1:{p}"],
                                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            ports.append(p)
        for p in ports:
            wait_http(p, "/metrics") or sys.exit(f"node_exporter on {p} did not answer")
        page = get(ports[0], "/metrics")
        n = sum(1 for line in page.splitlines() if line and not line.startswith("#"))
        print(f"{args.targets} node_exporter targets, ~{n} samples each, scrape every {args.interval}, "
              f"{args.seconds}s window after {args.warmup}s warm-up")
        cfg = os.path.join(work, "scrape.yml")
        with open(cfg, "w") as f:
            f.write(config(ports, args.interval))

        vport = free_port()
        vigie = measure("vigie", [args.vigie, "--config", cfg, "--listen", f"127.0.0.1:{vport}",
                                  "--data-dir", os.path.join(work, "vigie")],
                        vport, "vigie_tsdb_head_samples_appended_total", args.warmup, args.seconds)
        pport = free_port()
        prom = measure("prometheus", [args.prometheus, f"--config.file={cfg}",
                                      f"--web.listen-address=127.0.0.1:{pport}",
                                      f"--storage.tsdb.path={os.path.join(work, 'prom')}"],
                       pport, "prometheus_tsdb_head_samples_appended_total", args.warmup, args.seconds)
        print(f"ratio vigie/prometheus: {vigie / prom:.3f} (target <= 0.25)")
    finally:
        for e in exporters:
            e.kill()
        for e in exporters:
            e.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
