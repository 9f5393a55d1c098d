#!/usr/bin/env python3
"""Regenerates expected_<role>.json: the labels Prometheus 2.42's kubernetes_sd_configs
discovers from the fake API server loaded with objects/*.json.

    python3 tests/kubernetes/oracle.py [--prometheus PATH] [--promtool PATH] [--keep]

Steps (every process it starts is stopped at exit; standard library only):

1. starts fake_apiserver.py on the fixtures, on a free port;
2. computes prometheus_model.py's answer (a transliteration of Prometheus v2.42.0's
   discovery/kubernetes build functions) from the objects the fake server LISTs;
3. runs each live engine it has, with one job per role (pod, endpointslice, endpoints, service,
   node), `kubernetes_sd_configs: [{role: R, api_server: http://127.0.0.1:PORT}]`, no
   relabeling and a 1h scrape interval, and waits until /api/v1/targets?state=any lists targets
   for every job and they stay unchanged:
   - Prometheus (`--prometheus`), when that binary has Kubernetes SD. Debian's does not (it is
     built without it); an upstream 2.42.0 build does. Its answer is then the reference: the
     model must match it, and so must `promtool check service-discovery` for every job;
   - VictoriaMetrics (`--victoria-metrics`, Debian's package), whose Kubernetes SD is an
     independent reimplementation. It must find as many targets per role; its label
     differences are printed (known ones are listed in README.md), they do not fail the run;
4. writes, beside this file, expected_<role>.json (from Prometheus when it ran, else from the
   model) and requests_<engine>.json (the API requests each engine made, from /_fake/requests).

Label sets drop the labels that come from the scrape config (job, __scheme__,
__metrics_path__, __scrape_interval__, __scrape_timeout__) and keep everything else.
"""

import argparse
import collections
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
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True
import prometheus_model  # noqa: E402

ROLES = ["pod", "endpointslice", "endpoints", "service", "node"]
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


def wait_targets(proc, url, log, timeout, settle):
    """Poll a Prometheus-compatible /api/v1/targets until every job has targets that stay put."""
    deadline = time.monotonic() + timeout
    last, since, data = None, None, None
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"exited with {proc.returncode}; see {log}")
        if time.monotonic() > deadline:
            counts = {r: len(v) for r, v in (last or {}).items()}
            raise RuntimeError(f"timed out waiting for targets of every job (last: {counts}); see {log}")
        time.sleep(1)
        try:
            data = get_json(url)["data"]
        except Exception:
            continue
        per = {r: [] for r in ROLES}
        for t in (data.get("activeTargets") or []) + (data.get("droppedTargets") or []):
            dl = t.get("discoveredLabels") or {}
            if dl.get("job") in per:
                per[dl["job"]].append(clean(dl))
        per = {r: sort_sets(v) for r, v in per.items()}
        if not all(per.values()):
            last, since = per, None
            continue
        if per != last:
            last, since = per, time.monotonic()
            continue
        if time.monotonic() - since >= settle:
            return per, data


def last_seq(api):
    reqs = get_json(api + "/_fake/requests")
    return reqs[-1]["seq"] if reqs else 0


def requests_since(api, seq):
    """The requests an engine made, sorted (engines issue them concurrently)."""
    reqs = [{k: r.get(k) for k in ("method", "path", "query", "accept", "userAgent", "code")}
            for r in get_json(f"{api}/_fake/requests?since={seq}")]
    return sorted(reqs, key=lambda r: (r["path"], r["query"], r["method"]))


def diff_summary(ref, other):
    """Per role: targets by address, then which labels differ (counted)."""
    lines = []
    for role in ROLES:
        a, b = ref[role], other[role]
        lines.append(f"  {role}: {len(a)} vs {len(b)} targets")
        by_a = collections.defaultdict(list)
        by_b = collections.defaultdict(list)
        for t in a:
            by_a[t.get("__address__", "")].append(t)
        for t in b:
            by_b[t.get("__address__", "")].append(t)
        if set(by_a) != set(by_b):
            lines.append(f"    addresses only in reference: {sorted(set(by_a) - set(by_b))}; "
                         f"only in other: {sorted(set(by_b) - set(by_a))}")
        c = collections.Counter()
        for addr, ts in by_a.items():
            for ta, tb in zip(ts, by_b.get(addr, [])):
                for k in set(ta) | set(tb):
                    if k not in tb:
                        c[f"missing {k}"] += 1
                    elif k not in ta:
                        c[f"extra {k}" + (" (empty value)" if tb[k] == "" else "")] += 1
                    elif ta[k] != tb[k]:
                        c[f"differs {k}"] += 1
        for k, n in sorted(c.items()):
            lines.append(f"    {k}: {n}")
    return "\n".join(lines)


def prom_config(api):
    return {"global": {"scrape_interval": "1h", "scrape_timeout": "10s"},
            "scrape_configs": [{"job_name": role, "kubernetes_sd_configs": [{"role": role, "api_server": api}]}
                               for role in ROLES]}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prometheus", default="prometheus")
    ap.add_argument("--promtool", default="promtool")
    ap.add_argument("--victoria-metrics", default="victoria-metrics")
    ap.add_argument("--objects", default=os.path.join(HERE, "objects"))
    ap.add_argument("--out", default=HERE)
    ap.add_argument("--timeout", type=float, default=90)
    ap.add_argument("--settle", type=float, default=8, help="seconds the targets must stay unchanged")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (logs, configs, targets)")
    a = ap.parse_args()

    tmp = tempfile.mkdtemp(prefix="vigie-k8s-oracle.")
    procs = []
    failed = False
    try:
        fake_log = open(os.path.join(tmp, "fake_apiserver.log"), "w")
        fake = subprocess.Popen([sys.executable, os.path.join(HERE, "fake_apiserver.py"), "0",
                                 "--objects", a.objects], stdout=subprocess.PIPE, stderr=fake_log, text=True)
        procs.append(fake)
        line = fake.stdout.readline().split()
        if len(line) != 2 or line[0] != "LISTENING":
            raise SystemExit(f"fake apiserver did not start: {line!r} (see {tmp}/fake_apiserver.log)")
        api = f"http://127.0.0.1:{line[1]}"
        print(f"fake apiserver: {api}")
        cfg_path = os.path.join(tmp, "prometheus.yml")
        with open(cfg_path, "w") as f:
            json.dump(prom_config(api), f, indent=2)  # JSON is YAML

        model = prometheus_model.discover(prometheus_model.fetch_objects(api))
        print("model (Prometheus v2.42.0 build functions):", {r: len(v) for r, v in model.items()})

        results = {}
        requests = {}
        # Prometheus, if this binary has Kubernetes SD.
        if shutil.which(a.prometheus):
            port = free_port()
            log = os.path.join(tmp, "prometheus.log")
            p = subprocess.Popen([a.prometheus, f"--config.file={cfg_path}",
                                  f"--storage.tsdb.path={os.path.join(tmp, 'prometheus-data')}",
                                  f"--web.listen-address=127.0.0.1:{port}"],
                                 stdout=open(log, "w"), stderr=subprocess.STDOUT)
            seq = last_seq(api)
            procs.append(p)
            try:
                results["prometheus"], data = wait_targets(p, f"http://127.0.0.1:{port}/api/v1/targets?state=any",
                                                           log, a.timeout, a.settle)
                with open(os.path.join(tmp, "prometheus_targets.json"), "w") as f:
                    json.dump(data, f, indent=2, sort_keys=True)
            except RuntimeError as e:
                text = open(log).read()
                if "field kubernetes_sd_configs not found" in text:
                    print(f"prometheus ({a.prometheus}): built without Kubernetes SD (Debian's is); skipped")
                else:
                    raise SystemExit(f"prometheus: {e}")
            stop(p)
            if "prometheus" in results:
                requests["prometheus"] = requests_since(api, seq)
        else:
            print(f"prometheus: {a.prometheus} not found; skipped")
        # VictoriaMetrics, an independent implementation, as a live check of the fake server.
        if shutil.which(a.victoria_metrics):
            port = free_port()
            log = os.path.join(tmp, "victoria-metrics.log")
            p = subprocess.Popen([a.victoria_metrics, f"-storageDataPath={os.path.join(tmp, 'vm-data')}",
                                  f"-httpListenAddr=127.0.0.1:{port}", f"-promscrape.config={cfg_path}"],
                                 stdout=open(log, "w"), stderr=subprocess.STDOUT)
            seq = last_seq(api)
            procs.append(p)
            try:
                results["victoria-metrics"], data = wait_targets(
                    p, f"http://127.0.0.1:{port}/api/v1/targets?state=any", log, a.timeout, a.settle)
                with open(os.path.join(tmp, "victoria-metrics_targets.json"), "w") as f:
                    json.dump(data, f, indent=2, sort_keys=True)
            except RuntimeError as e:
                raise SystemExit(f"victoria-metrics: {e}")
            stop(p)
            requests["victoria-metrics"] = requests_since(api, seq)
        else:
            print(f"victoria-metrics: {a.victoria_metrics} not found; skipped")
        if not results:
            raise SystemExit("no live engine ran: need a Prometheus with Kubernetes SD or VictoriaMetrics")
        for engine, per in results.items():
            print(f"{engine} targets:", {r: len(v) for r, v in per.items()})

        reference = results.get("prometheus", model)
        source = "prometheus" if "prometheus" in results else "model"
        if "prometheus" in results:
            if model != results["prometheus"]:
                failed = True
                print("MODEL DIFFERS FROM PROMETHEUS (fix prometheus_model.py):\n"
                      + diff_summary(results["prometheus"], model), file=sys.stderr)
            for role in ROLES:
                out = subprocess.run([a.promtool, "check", "service-discovery", "--timeout=10s", cfg_path, role],
                                     capture_output=True, text=True)
                if out.returncode != 0:
                    failed = True
                    print(f"promtool {role}: {out.stderr[-2000:]}", file=sys.stderr)
                    continue
                pt = sort_sets([clean(t["discoveredLabels"]) for t in json.loads(out.stdout)])
                if pt != results["prometheus"][role]:
                    failed = True
                    print(f"promtool {role} differs from /api/v1/targets (de-duplicated targets?)", file=sys.stderr)
        if "victoria-metrics" in results:
            vm = results["victoria-metrics"]
            print(f"victoria-metrics vs {source} (known differences: README.md):\n" + diff_summary(reference, vm))
            bad = [r for r in ROLES if len(vm[r]) != len(reference[r])]
            if bad:
                failed = True
                print(f"victoria-metrics found a different number of targets for {bad}", file=sys.stderr)
        if failed:
            raise SystemExit(f"oracle checks failed; nothing written (temp dir {tmp})")

        for role in ROLES:
            with open(os.path.join(a.out, f"expected_{role}.json"), "w") as f:
                json.dump(reference[role], f, indent=2, sort_keys=True)
                f.write("\n")
        for engine, reqs in requests.items():
            with open(os.path.join(a.out, f"requests_{engine}.json"), "w") as f:
                json.dump(reqs, f, indent=2)
                f.write("\n")
        print(f"wrote expected_<role>.json (source: {source}) and requests_<engine>.json to {a.out}")
    except SystemExit:
        failed = True
        raise
    finally:
        for p in reversed(procs):
            stop(p)
        if a.keep or failed:
            print(f"temp dir kept: {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
