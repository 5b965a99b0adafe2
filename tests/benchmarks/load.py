"""HTTP load generation: wrk when it is installed (Debian package `wrk`), else a small threaded client."""

from __future__ import annotations

import http.client
import re
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlsplit


@dataclass
class LoadResult:
    tool: str
    requests: int
    rps: float
    errors: int
    non_2xx: int
    p99_ms: float


def run_load(url: str, connections: int, seconds: float) -> LoadResult:
    """Send requests to ``url`` on ``connections`` keep-alive connections for ``seconds``."""
    if shutil.which("wrk"):
        return _wrk(url, connections, seconds)
    return _threaded(url, connections, seconds)


def _wrk(url: str, connections: int, seconds: float) -> LoadResult:
    threads = min(2, connections)
    out = subprocess.run(
        [
            "wrk",
            "--latency",
            "-t",
            str(threads),
            "-c",
            str(connections),
            "-d",
            f"{seconds:.0f}s",
            "--timeout",
            "5s",
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=seconds + 30,
    ).stdout
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    non_2xx = int(m.group(1)) if (m := re.search(r"Non-2xx or 3xx responses: (\d+)", out)) else 0
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[p99.group(2)]
    return LoadResult("wrk", requests, rps, errors, non_2xx, float(p99.group(1)) * scale)


def _threaded(url: str, connections: int, seconds: float) -> LoadResult:
    parts = urlsplit(url)
    latencies: list[float] = []
    counts = {"errors": 0, "non_2xx": 0}
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def worker():
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=5)
        mine, errors, bad = [], 0, 0
        while time.monotonic() < deadline:
            started = time.perf_counter()
            try:
                conn.request("GET", parts.path or "/")
                response = conn.getresponse()
                response.read()
                if not 200 <= response.status < 300:
                    bad += 1
            except (OSError, http.client.HTTPException):
                errors += 1
                conn.close()
                conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=5)
                continue
            mine.append(time.perf_counter() - started)
        conn.close()
        with lock:
            latencies.extend(mine)
            counts["errors"] += errors
            counts["non_2xx"] += bad

    started = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    latencies.sort()
    p99 = latencies[int(len(latencies) * 0.99) - 1] * 1000 if latencies else float("nan")
    return LoadResult("python", len(latencies), len(latencies) / elapsed, counts["errors"], counts["non_2xx"], p99)
