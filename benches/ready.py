#!/usr/bin/env python3
"""Time from process start to HTTP 200 on /-/ready, empty data dir (target: < 100 ms).
Usage: cargo build --release && python3 benches/ready.py [path/to/vigie]"""
import os, subprocess, sys, tempfile, time, urllib.request

binary = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
    os.environ.get("CARGO_TARGET_DIR", os.path.expanduser("~/.cache/vigie/target")), "release", "vigie")
runs = []
for i in range(5):
    d = tempfile.mkdtemp()
    t0 = time.monotonic()
    p = subprocess.Popen([binary, "--listen", "127.0.0.1:19191", "--data-dir", d + "/data"], stderr=subprocess.DEVNULL)
    while True:
        try:
            if urllib.request.urlopen("http://127.0.0.1:19191/-/ready", timeout=1).status == 200:
                break
        except Exception:
            time.sleep(0.001)
    runs.append((time.monotonic() - t0) * 1000)
    p.kill()
    p.wait()
runs.sort()
print(f"/-/ready after start: median {runs[len(runs)//2]:.1f} ms, max {runs[-1]:.1f} ms over {len(runs)} runs")
