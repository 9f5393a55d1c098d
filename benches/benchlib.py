"""Helpers the bench scripts share: the build directory, free loopback ports, HTTP GET and
waiting for an endpoint. Imported as `from benchlib import ...` (the scripts run from
`benches/`, which Python puts on the path)."""
import os, socket, time, urllib.request

TARGET_DIR = os.environ.get("CARGO_TARGET_DIR", os.path.expanduser("~/.cache/vigie/target"))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(port, path, timeout=10):
    """The body of GET http://127.0.0.1:PORT/PATH as text."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as r:
        return r.read().decode()


def wait_http(port, path, deadline=30, proc=None):
    """True once PATH answers, False after `deadline` seconds or when `proc` exits."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if proc is not None and proc.poll() is not None:
            return False
        try:
            get(port, path, timeout=2)
            return True
        except Exception:
            time.sleep(0.05)
    return False
