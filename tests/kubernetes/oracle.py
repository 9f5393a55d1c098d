#!/usr/bin/env python3
"""Regenerates expected_<role>.json: what Prometheus's kubernetes_sd_configs discovers from the
fake API server loaded with objects/*.json.

    python3 tests/kubernetes/oracle.py [--prometheus prometheus] [--promtool promtool] [--keep]

Starts fake_apiserver.py on a free port, then Prometheus (temp dir, free port) with one job per
role and no relabeling, waits until /api/v1/targets?state=any lists targets for every job and
they stop changing, and writes, beside this file:

  expected_<role>.json      sorted discovered label sets (job-derived labels dropped)
  prometheus_requests.json  the API requests Prometheus made (from /_fake/requests)

As a cross-check it also runs `promtool check service-discovery` for every job (this lists
every discovered target, without the scrape pool's de-duplication of identical targets) and
fails if the two disagree. Standard library only; every process it starts is stopped at exit.
"""

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROLES = ["pod", "endpointslice", "endpoints", "service", "node"]
# Labels that come from the scrape config, not from discovery.
JOB_LABELS = {"job", "__scrape_interval__", "__scrape_timeout__", "__scheme__", "__metrics_path__"}


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def get_json(url, timeout=5):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return json.load(r)


def clean(labels):
    return {k: v for k, v in sorted(labels.items()) if k not in JOB_LABELS}


def sort_sets(sets):
    return sorted(sets, key=lambda d: (d.get("__address__", ""), json.dumps(d, sort_keys=True)))


def stop(proc):
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prometheus", default="prometheus")
    ap.add_argument("--promtool", default="promtool")
    ap.add_argument("--objects", default=os.path.join(HERE, "objects"))
    ap.add_argument("--out", default=HERE)
    ap.add_argument("--timeout", type=float, default=90)
    ap.add_argument("--settle", type=float, default=8, help="seconds the targets must stay unchanged")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (logs, config, targets)")
    a = ap.parse_args()

    tmp = tempfile.mkdtemp(prefix="vigie-k8s-oracle.")
    fake = prom = None
    try:
        fake_log = open(os.path.join(tmp, "fake_apiserver.log"), "w")
        fake = subprocess.Popen([sys.executable, os.path.join(HERE, "fake_apiserver.py"), "0",
                                 "--objects", a.objects], stdout=subprocess.PIPE, stderr=fake_log, text=True)
        line = fake.stdout.readline().split()
        if len(line) != 2 or line[0] != "LISTENING":
            raise SystemExit(f"fake apiserver did not start: {line!r} (see {tmp}/fake_apiserver.log)")
        api = f"http://127.0.0.1:{line[1]}"
        print(f"fake apiserver: {api}")

        cfg = {"global": {"scrape_interval": "1h", "scrape_timeout": "10s"},
               "scrape_configs": [{"job_name": role,
                                   "kubernetes_sd_configs": [{"role": role, "api_server": api}]}
                                  for role in ROLES]}
        cfg_path = os.path.join(tmp, "prometheus.yml")
        with open(cfg_path, "w") as f:
            json.dump(cfg, f, indent=2)  # JSON is YAML
        port = free_port()
        prom_log = open(os.path.join(tmp, "prometheus.log"), "w")
        prom = subprocess.Popen([a.prometheus, f"--config.file={cfg_path}",
                                 f"--storage.tsdb.path={os.path.join(tmp, 'data')}",
                                 f"--web.listen-address=127.0.0.1:{port}"],
                                stdout=prom_log, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}/api/v1/targets?state=any"

        deadline = time.monotonic() + a.timeout
        last, since = None, None
        while True:
            if prom.poll() is not None:
                raise SystemExit(f"prometheus exited; see {tmp}/prometheus.log")
            if time.monotonic() > deadline:
                raise SystemExit(f"timed out waiting for targets of every job; last: "
                                 f"{ {r: len(v) for r, v in (last or {}).items()} } (see {tmp}/prometheus.log)")
            time.sleep(1)
            try:
                data = get_json(url)["data"]
            except Exception:
                continue
            per = {r: [] for r in ROLES}
            for t in data.get("activeTargets", []) + data.get("droppedTargets", []):
                dl = t["discoveredLabels"]
                if dl.get("job") in per:
                    per[dl["job"]].append(clean(dl))
            per = {r: sort_sets(v) for r, v in per.items()}
            if not all(per.values()):
                last, since = per, None
                continue
            if per != last:
                last, since = per, time.monotonic()
                continue
            if time.monotonic() - since >= a.settle:
                break
        with open(os.path.join(tmp, "targets.json"), "w") as f:
            json.dump(data, f, indent=2, sort_keys=True)
        requests = get_json(api + "/_fake/requests")
        print("prometheus targets:", {r: len(v) for r, v in last.items()})

        # Cross-check with promtool, which lists every discovered target without de-duplication.
        mismatch = False
        for role in ROLES:
            out = subprocess.run([a.promtool, "check", "service-discovery", "--timeout=10s", cfg_path, role],
                                 capture_output=True, text=True)
            with open(os.path.join(tmp, f"promtool_{role}.json"), "w") as f:
                f.write(out.stdout)
            if out.returncode != 0:
                print(f"promtool {role} failed: {out.stderr[-2000:]}", file=sys.stderr)
                mismatch = True
                continue
            pt = sort_sets([clean(t["discoveredLabels"]) for t in json.loads(out.stdout)])
            if pt != last[role]:
                mismatch = True
                only_pt = [t for t in pt if t not in last[role]]
                only_prom = [t for t in last[role] if t not in pt]
                print(f"role {role}: promtool found {len(pt)} targets, Prometheus {len(last[role])}; "
                      f"only promtool: {json.dumps(only_pt)[:2000]}; only Prometheus: {json.dumps(only_prom)[:2000]}",
                      file=sys.stderr)
        if mismatch:
            raise SystemExit(f"promtool and Prometheus disagree; see {tmp}")

        for role in ROLES:
            with open(os.path.join(a.out, f"expected_{role}.json"), "w") as f:
                json.dump(last[role], f, indent=2, sort_keys=True)
                f.write("\n")
        summary = [{k: r.get(k) for k in ("method", "path", "query", "accept", "contentType", "userAgent", "code",
                                          "watch")} for r in requests]
        with open(os.path.join(a.out, "prometheus_requests.json"), "w") as f:
            json.dump(summary, f, indent=2)
            f.write("\n")
        print(f"wrote expected_{{{','.join(ROLES)}}}.json and prometheus_requests.json to {a.out}")
    finally:
        stop(prom)
        stop(fake)
        if a.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
