#!/usr/bin/env python3
"""Swarm discovery, vigie against Prometheus 2.42's dockerswarm_sd_configs on the same
swarm (needs a Docker engine in swarm mode, as .ci/run sets up).

1. Time from `docker service create` of a labelled service to its first successful scrape.
   vigie (zero-config, events) and two Prometheus servers (tasks role, refresh_interval
   default 60 s and 5 s, relabeling that keeps labelled running tasks on the shared
   network) run as swarm services on one attachable overlay network, all scraping every
   1 s; each round creates a service, polls the three /api/v1/targets every 50 ms until
   its target is up, then removes it.
2. Docker API requests per minute at rest with `--services` labelled services: each server
   runs on the host against its own counting proxy in front of the Docker socket.

Usage: python3 benches/swarm.py [--rounds 3] [--services 100] [--rest 120] [--skip-latency] [--skip-rest]
(builds the release binary and the images first)
"""
import argparse, json, os, shutil, socket, statistics, subprocess, sys, tempfile, threading, time
import urllib.request

from benchlib import free_port, wait_http

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def sh(*args, check=True, quiet=False):
    r = subprocess.run(list(args), capture_output=True, text=True)
    if check and r.returncode != 0:
        sys.exit(f"{' '.join(args)}: {r.stderr.strip()}")
    return r.stdout.strip()


def build_prometheus_image(work):
    ctx = os.path.join(work, "prom-image")
    os.makedirs(ctx)
    binary = shutil.which("prometheus")
    files = [binary, "/etc/ssl/certs/ca-certificates.crt"]
    for line in sh("ldd", binary).splitlines():
        part = line.split("=>")[-1].split()
        if part and part[0].startswith("/"):
            files.append(part[0])
    for f in files:
        dest = os.path.join(ctx, f.lstrip("/"))
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        shutil.copy(f, dest)
    with open(os.path.join(ctx, "Dockerfile"), "w") as f:
        f.write('FROM scratch\nCOPY . /\nENTRYPOINT ["/usr/bin/prometheus"]\n')
    sh("docker", "build", "-q", "-t", "vigie-bench-prometheus:1", ctx)


def prometheus_config(net, refresh, host="unix:///var/run/docker.sock"):
    return f"""global: {{scrape_interval: 1s, scrape_timeout: 1s}}
scrape_configs:
  - job_name: swarm
    dockerswarm_sd_configs:
      - {{host: {host}, role: tasks, port: 9100, refresh_interval: {refresh}}}
    relabel_configs:
      - {{source_labels: [__meta_dockerswarm_service_label_vigie_scrape], regex: 'true', action: keep}}
      - {{source_labels: [__meta_dockerswarm_task_desired_state], regex: running, action: keep}}
      - {{source_labels: [__meta_dockerswarm_network_name], regex: '{net}', action: keep}}
      - {{source_labels: [__meta_dockerswarm_service_name], target_label: swarm_service}}
"""


def target_state(port, service):
    """'up' once a scrape of the service's target succeeded, 'seen' once it is a target."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/targets", timeout=2) as r:
            d = json.loads(r.read())
    except Exception:
        return None
    state = None
    for t in d["data"]["activeTargets"]:
        if t["labels"].get("swarm_service") == service:
            state = "up" if t["health"] == "up" else (state or "seen")
    return state


def latency_rounds(args, work, net):
    servers = {}
    vport = free_port()
    sh("docker", "service", "create", "-d", "--name", "bench-vigie", "--network", net,
       "--mount", "type=bind,src=/var/run/docker.sock,dst=/var/run/docker.sock",
       "--mount", "type=tmpfs,dst=/data", "--publish", f"mode=host,target=9090,published={vport}",
       "vigie:bench", "run", "--listen", "0.0.0.0:9090", "--discovery", "swarm", "--data-dir", "/data")
    servers["vigie"] = vport
    for name, refresh in [("prometheus_60s", "60s"), ("prometheus_5s", "5s")]:
        cfg = os.path.join(work, f"{name}.yml")
        with open(cfg, "w") as f:
            f.write(prometheus_config(net, refresh))
        port = free_port()
        sh("docker", "service", "create", "-d", "--name", f"bench-{name.replace('_', '-')}", "--network", net,
           "--mount", "type=bind,src=/var/run/docker.sock,dst=/var/run/docker.sock",
           "--mount", f"type=bind,src={cfg},dst=/prometheus.yml", "--mount", "type=tmpfs,dst=/prom",
           "--publish", f"mode=host,target=9090,published={port}",
           "vigie-bench-prometheus:1", "--config.file=/prometheus.yml", "--storage.tsdb.path=/prom",
           "--web.listen-address=0.0.0.0:9090")
        servers[name] = port
    for name, port in servers.items():
        if not wait_http(port, "/-/ready", 90):
            sys.exit(f"{name} did not start")
    times = {n: [] for n in servers}
    seen = {n: [] for n in servers}
    for r in range(args.rounds):
        svc = f"bench-target-{r}"
        t0 = time.monotonic()
        sh("docker", "service", "create", "-d", "--name", svc, "--network", net, "--mount", "type=tmpfs,dst=/data",
           "--label", "vigie.scrape=true", "--label", "vigie.port=9100", "--label", "vigie.interval=1s",
           "vigie:bench", "run", "--listen", "0.0.0.0:9100", "--discovery", "none", "--data-dir", "/data")
        pending = set(servers)
        unseen = set(servers)
        deadline = t0 + 150
        while pending and time.monotonic() < deadline:
            for n in list(pending):
                state = target_state(servers[n], svc)
                if state and n in unseen:
                    seen[n].append(time.monotonic() - t0)
                    unseen.discard(n)
                if state == "up":
                    times[n].append(time.monotonic() - t0)
                    pending.discard(n)
            time.sleep(0.05)
        for n in pending:
            times[n].append(float("nan"))
        for n in unseen:
            seen[n].append(float("nan"))
        print(f"round {r}: " + ", ".join(f"{n} seen {seen[n][-1]:.2f}s up {times[n][-1]:.2f}s" for n in servers), flush=True)
        sh("docker", "service", "rm", svc)
        time.sleep(3)
    return times, seen


class CountingProxy:
    """A Unix socket in front of the Docker socket, counting HTTP requests."""

    def __init__(self, path):
        self.path, self.count, self.lock = path, 0, threading.Lock()
        self.srv = socket.socket(socket.AF_UNIX)
        self.srv.bind(path)
        self.srv.listen(64)
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        while True:
            c, _ = self.srv.accept()
            d = socket.socket(socket.AF_UNIX)
            d.connect("/var/run/docker.sock")
            threading.Thread(target=self.pipe, args=(c, d, True), daemon=True).start()
            threading.Thread(target=self.pipe, args=(d, c, False), daemon=True).start()

    def pipe(self, src, dst, count):
        try:
            while True:
                b = src.recv(65536)
                if not b:
                    break
                if count:
                    n = sum(b.count(m) for m in (b"GET /", b"POST /", b"HEAD /"))
                    with self.lock:
                        self.count += n
                dst.sendall(b)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


def api_calls_at_rest(args, work, net):
    for i in range(args.services):
        sh("docker", "service", "create", "-d", "--name", f"bench-rest-{i}", "--network", net,
           "--mount", "type=tmpfs,dst=/data", "--label", "vigie.scrape=true", "--label", "vigie.port=9100",
           "vigie:bench", "run", "--listen", "0.0.0.0:9100", "--discovery", "none", "--data-dir", "/data")
    procs, proxies = [], {}
    vigie = os.path.join(os.environ.get("CARGO_TARGET_DIR", os.path.expanduser("~/.cache/vigie/target")), "release", "vigie")
    for name in ["vigie", "prometheus_60s", "prometheus_5s"]:
        sock = os.path.join(work, f"{name}.sock")
        proxies[name] = CountingProxy(sock)
        port = free_port()
        log = open(os.path.join(work, f"{name}-rest.log"), "w")
        if name == "vigie":
            cmd = [vigie, "run", "--listen", f"127.0.0.1:{port}", "--data-dir", os.path.join(work, "vdata"),
                   "--discovery", "swarm", "--swarm-host", f"unix://{sock}", "--swarm-network", net]
        else:
            cfg = os.path.join(work, f"{name}-rest.yml")
            with open(cfg, "w") as f:
                f.write(prometheus_config(net, name.split("_")[1], f"unix://{sock}"))
            cmd = ["prometheus", f"--config.file={cfg}", f"--storage.tsdb.path={os.path.join(work, name + '-tsdb')}",
                   f"--web.listen-address=127.0.0.1:{port}"]
        procs.append(subprocess.Popen(cmd, stdout=log, stderr=log))
    time.sleep(20)  # settle: first lists, tasks of the services starting
    start = {n: p.count for n, p in proxies.items()}
    time.sleep(args.rest)
    per_min = {n: (p.count - start[n]) * 60 / args.rest for n, p in proxies.items()}
    for p in procs:
        p.terminate()
        p.wait(timeout=30)
    for i in range(args.services):
        sh("docker", "service", "rm", f"bench-rest-{i}", check=False)
    return per_min


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--services", type=int, default=100)
    ap.add_argument("--rest", type=float, default=120)
    ap.add_argument("--skip-latency", action="store_true")
    ap.add_argument("--skip-rest", action="store_true")
    args = ap.parse_args()
    if sh("docker", "info", "--format", "{{.Swarm.LocalNodeState}}") != "active":
        sys.exit("needs a Docker engine in swarm mode")
    subprocess.run([os.path.join(ROOT, "scripts", "build-image.sh"), "vigie:bench"], check=True)
    work = tempfile.mkdtemp(prefix="bench-swarm-")
    os.chmod(work, 0o755)
    build_prometheus_image(work)
    net = "bench-swarm-net"
    sh("docker", "network", "create", "-d", "overlay", "--attachable", net)
    try:
        if not args.skip_latency:
            times, seen = latency_rounds(args, work, net)
            print("\ntime from service create to the task being a target (median of rounds):")
            for n, v in seen.items():
                ok = [x for x in v if x == x]
                print(f"  {n:16} {statistics.median(ok) if ok else float('nan'):6.2f} s   {['%.2f' % x for x in v]}")
            print("\ntime from service create to first successful scrape (median of rounds):")
            for n, v in times.items():
                ok = [x for x in v if x == x]
                print(f"  {n:16} {statistics.median(ok) if ok else float('nan'):6.2f} s   {['%.2f' % x for x in v]}")
            base = statistics.median([x for x in times["vigie"] if x == x])
            for n in ("prometheus_60s", "prometheus_5s"):
                ok = [x for x in times[n] if x == x]
                if ok:
                    print(f"  ratio vigie / {n}: {base / statistics.median(ok):.2f}")
        for s in ("bench-vigie", "bench-prometheus-60s", "bench-prometheus-5s"):
            sh("docker", "service", "rm", s, check=False)
        if not args.skip_rest:
            calls = api_calls_at_rest(args, work, net)
            print(f"\nDocker API requests per minute at rest with {args.services} labelled services:")
            for n, v in calls.items():
                print(f"  {n:16} {v:7.1f}")
    finally:
        for s in ("bench-vigie", "bench-prometheus-60s", "bench-prometheus-5s"):
            sh("docker", "service", "rm", s, check=False)
        time.sleep(5)
        sh("docker", "network", "rm", net, check=False)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
