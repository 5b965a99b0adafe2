"""Observing `inv prod`: JSON log lines with request ids, and metrics that add up across gunicorn's workers."""

import json
import os
import re
import signal
import subprocess
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

from devtools import prod as production
from devtools.processes import free_port
from project.configuration import load_config
from tests.helpers import STRONG_PASSWORD, STRONG_SECRET_KEY, Gunicorn, request, spawn, wait_until_serving

SENTINEL = "sentinel-Vq7Jm2Lx9Pd4"


def scrape(url: str) -> dict[tuple[str, frozenset], float]:
    """Return the samples of a Prometheus text page as {(name, labels): value}."""
    from prometheus_client.parser import text_string_to_metric_families

    status, body = request(url)
    assert status == 200
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(body.decode())
        for sample in family.samples
    }


def requests_total(samples, route: str, status: str) -> float:
    labels = frozenset({"method": "GET", "route": route, "status": status}.items())
    return samples.get(("http_requests_total", labels), 0.0)


def get_many(base: str, paths: list[str], headers: dict[str, str]) -> list[int]:
    with ThreadPoolExecutor(max_workers=6) as pool:
        return list(pool.map(lambda path: request(base + path, headers=headers)[0], paths))


def access_lines(log, request_id: str, count: int, timeout: float = 10) -> list[dict]:
    """Wait for ``count`` access lines naming ``request_id`` (a worker logs a request after its client has the
    answer)."""
    deadline = time.monotonic() + timeout
    while True:
        lines = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
        access = [line for line in lines if line.get("logger") == "gunicorn.access"]
        ours = [line for line in access if line.get("request_id") == request_id]
        if len(ours) >= count or time.monotonic() > deadline:
            return ours
        time.sleep(0.05)


def test_prod_logs_json_with_request_ids_and_metrics_add_up_across_workers(postgresql_server, tmp_path):
    port, metrics_port = free_port(), free_port()
    config = load_config(
        "production",
        environ={"SECRET_KEY": STRONG_SECRET_KEY, "POSTGRES_PASSWORD": STRONG_PASSWORD, "POSTGRES_DB": "observed"},
    ).replace(GUNICORN_WORKERS="3")
    plan = production.prepare(config, port=port, metrics_port=metrics_port, cluster=postgresql_server.cluster)
    assert plan.env["METRICS_BIND"] == f"127.0.0.1:{metrics_port}"  # loopback, apart from the app's port
    base, metrics = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{metrics_port}/metrics"
    # Credentials a client sends, and a query string that carries one: none may reach a log line.
    headers = {"Authorization": f"Bearer {SENTINEL}", "Cookie": f"session={SENTINEL}", "X-Request-ID": "trace-1.a:b"}
    log = tmp_path / "gunicorn.log"
    with log.open("wb") as out:
        process = spawn(plan.command, env=plan.env, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_until_serving(base, process)
        before = scrape(metrics)
        first = get_many(base, ["/healthz"] * 20 + ["/readyz"] * 6 + [f"/nope?token={SENTINEL}"] * 4, headers)
        # A worker that dies takes nothing from the sums: its counts stay, its replacement adds its own.
        # The worker that served the most of them is the one killed, so its counts are the ones at stake.
        workers = Gunicorn(process, base).workers()
        assert len(workers) == 3
        served = Counter(line["pid"] for line in access_lines(log, "trace-1.a:b", 30))
        busiest, _ = served.most_common(1)[0]
        assert set(served) <= workers
        os.kill(busiest, signal.SIGKILL)
        # app_ready is the live workers' latest probe: one more probe after the kill, so a live worker has one.
        second = get_many(base, ["/healthz"] * 10 + ["/readyz"], {"X-Request-ID": "x" * 129})
        after = scrape(metrics)
        status, body = request(base + "/nope", headers={"X-Request-ID": "bad id <script>"})
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
    assert first == [200] * 26 + [404] * 4 and second == [200] * 11
    healthz = requests_total(after, "/healthz", "200") - requests_total(before, "/healthz", "200")
    assert healthz == 30
    assert requests_total(after, "/readyz", "200") - requests_total(before, "/readyz", "200") == 7
    assert requests_total(after, "<unmatched>", "404") == 4
    ready = frozenset()
    assert after[("app_ready", ready)] == 1.0
    assert ("db_pool_checked_out_connections", ready) in after and ("db_pool_checkout_waits_total", ready) in after
    # The error body names the request; a malformed id is replaced, never echoed.
    request_id = json.loads(body)["request_id"]
    assert status == 404 and re.fullmatch(r"[0-9a-f]{32}", request_id)

    text = log.read_text()
    assert SENTINEL not in text and STRONG_SECRET_KEY not in text and STRONG_PASSWORD not in text
    lines = [json.loads(line) for line in text.splitlines() if line.strip()]  # every line is one JSON object
    access = [line for line in lines if line["logger"] == "gunicorn.access"]
    assert len(access) >= 41
    assert {line["level"] for line in lines} <= {"INFO", "WARNING", "ERROR"} and all("time" in line for line in lines)
    ours = [line for line in access if line["request_id"] == "trace-1.a:b"]
    assert sorted(line["path"] for line in ours) == ["/healthz"] * 20 + ["/nope"] * 4 + ["/readyz"] * 6
    assert {line["status"] for line in ours} == {200, 404} and all(line["method"] == "GET" for line in ours)
    assert all(isinstance(line["duration_ms"], float) for line in ours)
    replaced = [line["request_id"] for line in access if line["path"] == "/healthz" and line not in ours]
    assert len(replaced) >= 10 and all(re.fullmatch(r"[0-9a-f]{32}", r) for r in replaced)
    assert request_id in {line["request_id"] for line in access}
    assert any(line["message"].startswith("Serving metrics at") for line in lines)
    # The killed worker's lines stay, and the requests after it were served by the others.
    assert busiest in {line["pid"] for line in access} and len({line["pid"] for line in access}) >= 2
