"""A steady, bounded HTTP load on one URL: a few keep-alive clients, each at a fixed pace.

Counts what a user would notice: requests that failed (a socket error or a status other than 2xx), the longest
time with no successful answer at all, and which release answered (the ``X-Release`` header, "1" without it).
"""

from __future__ import annotations

import http.client
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from urllib.parse import urlsplit

PAUSE_NOTED = 1.0  # seconds without a successful answer that the report lists one by one


@dataclass
class Report:
    sent: int = 0
    failed: int = 0
    longest_pause: float = 0.0
    releases: Counter = field(default_factory=Counter)
    failures: Counter = field(default_factory=Counter)
    # Every pause longer than PAUSE_NOTED: (seconds since the load started when it ended, its length, the UTC
    # time it ended, to match against the proxy's log).
    pauses: list = field(default_factory=list)

    def summary(self) -> str:
        served = ", ".join(f"release {r}: {n}" for r, n in sorted(self.releases.items()))
        lines = [f"requests sent {self.sent}, failed {self.failed}, longest pause {self.longest_pause:.2f} s"]
        lines.append(f"answered by {served or 'nobody'}")
        lines += [f"  {n} x {what}" for what, n in self.failures.most_common(5)]
        lines += [
            f"  a pause of {length:.2f} s ending {at:.1f} s into the load, at {utc}" for at, length, utc in self.pauses
        ]
        return "\n".join(lines)


class Load:
    """``clients`` threads, each sending one request every ``1 / rate`` seconds to ``url`` until stopped."""

    def __init__(self, url: str, clients: int = 4, rate: float = 20.0, timeout: float = 10.0):
        parts = urlsplit(url)
        self.host, self.port, self.path = parts.hostname, parts.port or 80, parts.path or "/"
        self.clients, self.interval, self.timeout = clients, 1 / rate, timeout
        self.report = Report()
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.threads: list[threading.Thread] = []
        self.last_success = self.started = 0.0

    def start(self) -> None:
        self.last_success = self.started = time.monotonic()
        self.threads = [threading.Thread(target=self.client, daemon=True) for _ in range(self.clients)]
        for thread in self.threads:
            thread.start()

    def stop(self) -> Report:
        self.stopping.set()
        for thread in self.threads:
            thread.join()
        self.threads = []
        return self.report

    def client(self) -> None:
        connection = None
        next_at = time.monotonic()
        while not self.stopping.is_set():
            next_at += self.interval
            if connection is None:
                connection = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            outcome, release = self.one(connection)
            if outcome is not None:
                connection.close()
                connection = None
            self.record(outcome, release)
            self.stopping.wait(max(0.0, next_at - time.monotonic()))
        if connection is not None:
            connection.close()

    def one(self, connection: http.client.HTTPConnection) -> tuple[str | None, str]:
        """Send one request; return (what failed or None, the release that answered)."""
        try:
            connection.request("GET", self.path)
            response = connection.getresponse()
            response.read()
        except (OSError, http.client.HTTPException) as exc:
            return type(exc).__name__, ""
        if not 200 <= response.status < 300:
            return f"status {response.status}", ""
        return None, response.getheader("X-Release", "1")

    def record(self, outcome: str | None, release: str) -> None:
        now = time.monotonic()
        with self.lock:
            self.report.sent += 1
            if outcome is None:
                self.report.releases[release] += 1
                pause = now - self.last_success
                self.report.longest_pause = max(self.report.longest_pause, pause)
                if pause > PAUSE_NOTED:
                    utc = time.strftime("%H:%M:%S", time.gmtime())
                    self.report.pauses.append((now - self.started, pause, utc))
                self.last_success = now
            else:
                self.report.failed += 1
                self.report.failures[outcome] += 1
