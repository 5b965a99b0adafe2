"""Prometheus metrics the app records: requests by route and status, database pool use, readiness.

Under gunicorn each worker writes its values to files in PROMETHEUS_MULTIPROC_DIR and the master serves their
sum (:mod:`project.metrics_exporter`); elsewhere (tests, ``inv dev``) they live in the process's own registry.
"""

from __future__ import annotations

import time

from flask import Flask, Response, g, request
from prometheus_client import Counter, Gauge, Histogram
from sqlalchemy.pool import QueuePool

# Label values come from a closed set, so a client cannot grow the series without bound.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED = "<unmatched>"  # the route of a request no URL rule matched (404, 405)

REQUESTS = Counter(
    "http_requests_total", "Requests handled, by method, route and status.", ["method", "route", "status"]
)
DURATION = Histogram(
    "http_request_duration_seconds",
    "Time from the request's arrival in Flask to its response, by method and route.",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
POOL_CHECKED_OUT = Gauge(
    "db_pool_checked_out_connections", "Connections in use, summed over live workers.", multiprocess_mode="livesum"
)
POOL_OVERFLOW = Gauge(
    "db_pool_overflow_connections",
    "Connections open beyond the pool's size (negative: the pool is not full yet), summed over live workers.",
    multiprocess_mode="livesum",
)
POOL_WAITS = Counter("db_pool_checkout_waits_total", "Checkouts that found the pool exhausted and waited.")
POOL_WAIT_SECONDS = Counter("db_pool_checkout_wait_seconds_total", "Time spent waiting for a free connection.")
READY = Gauge(
    "app_ready",
    "1 when the last readiness probe found the database ready, 0 when not.",
    multiprocess_mode="livemostrecent",
)


class MeasuredQueuePool(QueuePool):
    """SQLAlchemy's QueuePool, reporting connections in use and overflow, and each checkout that had to wait."""

    def _do_get(self):
        # A checkout waits when no connection is free and no overflow is left: then the queue blocks.
        exhausted = self.checkedin() == 0 and -1 < self._max_overflow <= self.overflow()
        started = time.perf_counter() if exhausted else 0.0
        try:
            return super()._do_get()
        finally:
            if exhausted:
                POOL_WAITS.inc()
                POOL_WAIT_SECONDS.inc(time.perf_counter() - started)
            self._report()

    def _do_return_conn(self, record) -> None:
        super()._do_return_conn(record)
        self._report()

    def _report(self) -> None:
        POOL_CHECKED_OUT.set(self.checkedout())
        POOL_OVERFLOW.set(self.overflow())


def start_timer() -> None:
    g.metrics_started = time.perf_counter()


def record_request(response: Response) -> Response:
    """Count the request under its route and status and observe its duration."""
    method = request.method if request.method in METHODS else "OTHER"
    route = request.url_rule.rule if request.url_rule is not None else UNMATCHED
    REQUESTS.labels(method, route, str(response.status_code)).inc()
    started = g.get("metrics_started")
    if started is not None:
        DURATION.labels(method, route).observe(time.perf_counter() - started)
    if request.endpoint == "health.readyz":
        READY.set(1 if response.status_code == 200 else 0)
    return response


def register(app: Flask) -> None:
    """Record every request's metrics and measure the pool of the engine the app creates."""
    options = dict(app.config.get("SQLALCHEMY_ENGINE_OPTIONS") or {})
    options.setdefault("poolclass", MeasuredQueuePool)
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = options
    app.before_request(start_timer)
    app.after_request(record_request)
