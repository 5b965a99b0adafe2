"""Request ids, JSON log lines and metrics, in one process."""

import json
import os
import subprocess
import sys
import textwrap
import threading

import pytest
from prometheus_client import REGISTRY, generate_latest

from project import create_app, metrics_exporter
from project.configuration import ConfigError, check_value
from project.extensions import db
from tests.helpers import ROOT


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.mark.parametrize("offered", ["abc", "trace-1.a:b+c/d=e_f", "x" * 128])
def test_a_well_formed_request_id_is_kept_on_the_response_and_in_error_bodies(client, offered):
    response = client.get("/no-such-page", headers={"X-Request-ID": offered})
    assert response.status_code == 404
    assert response.headers["X-Request-ID"] == offered and response.get_json()["request_id"] == offered


@pytest.mark.parametrize("offered", [None, "", "x" * 129, "has space", "semi;colon", 'quote"', "ünï"])
def test_a_missing_or_malformed_request_id_is_replaced(client, offered):
    headers = {} if offered is None else {"X-Request-ID": offered}
    first = client.get("/healthz", headers=headers).headers["X-Request-ID"]
    second = client.get("/healthz", headers=headers).headers["X-Request-ID"]
    assert len(first) == 32 and int(first, 16) >= 0 and first != second and first != offered


def test_requests_are_counted_by_route_and_status(client):
    before = sample("http_requests_total", method="GET", route="/healthz", status="200")
    unmatched = sample("http_requests_total", method="GET", route="<unmatched>", status="404")
    timed = sample("http_request_duration_seconds_count", method="GET", route="/healthz")
    for _ in range(3):
        assert client.get("/healthz").status_code == 200
    assert client.get("/nope/7").status_code == 404
    assert sample("http_requests_total", method="GET", route="/healthz", status="200") == before + 3
    assert sample("http_requests_total", method="GET", route="<unmatched>", status="404") == unmatched + 1
    assert sample("http_request_duration_seconds_count", method="GET", route="/healthz") == timed + 3


def test_an_unusual_method_is_counted_as_other(client):
    before = sample("http_requests_total", method="OTHER", route="<unmatched>", status="405")
    client.open("/healthz", method="PROPFIND")
    assert (
        sample("http_requests_total", method="OTHER", route="/healthz", status="405")
        + sample("http_requests_total", method="OTHER", route="<unmatched>", status="405")
        == before + 1
    )


def test_readiness_is_a_gauge(client):
    assert client.get("/readyz").status_code == 200
    assert sample("app_ready") == 1.0


def test_the_pool_reports_connections_in_use_and_waits_for_a_free_one(database):
    app = create_app(
        "testing", overrides={**database, "SQLALCHEMY_ENGINE_OPTIONS": {"pool_size": 1, "max_overflow": 0}}
    )
    waits, seconds = sample("db_pool_checkout_waits_total"), sample("db_pool_checkout_wait_seconds_total")
    with app.app_context():
        engine = db.engine
        held = engine.connect()
        assert sample("db_pool_checked_out_connections") == 1 and sample("db_pool_overflow_connections") == 0
        got = threading.Event()

        def checkout():
            with engine.connect():
                got.set()

        waiter = threading.Thread(target=checkout)
        waiter.start()
        assert not got.wait(0.3)  # the only connection is held: the checkout waits
        held.close()
        waiter.join(10)
        assert got.is_set()
        assert sample("db_pool_checked_out_connections") == 0
        engine.dispose()
    assert sample("db_pool_checkout_waits_total") == waits + 1
    assert sample("db_pool_checkout_wait_seconds_total") > seconds


@pytest.mark.parametrize(
    ("name", "value", "valid"),
    [
        ("LOG_FORMAT", "yaml", "LOG_FORMAT is one of json, text"),
        ("METRICS_BIND", "9464", 'METRICS_BIND is empty (no metrics endpoint) or HOST:PORT such as "127.0.0.1:9464"'),
        ("METRICS_BIND", "127.0.0.1:70000", "METRICS_BIND is empty"),
    ],
)
def test_observability_settings_are_validated(name, value, valid):
    with pytest.raises(ConfigError) as info:
        check_value(f"config/x.json: entry 3 ({name})", name, value)
    assert str(info.value).startswith(f"config/x.json: entry 3 ({name}): '{value}' is not valid; {valid}")


SECRET = "s3cret-Qm8vTz4Lp1Wk"
LOGGING_APP = f"""
    import logging, logging.config
    from project import create_app, logs

    logging.config.dictConfig(logs.logging_config("{{log_format}}", "INFO", ["{SECRET}"]))
    app = create_app("testing", overrides={{{{"POSTGRES_HOST": "127.0.0.1", "POSTGRES_PORT": "1", "POSTGRES_USER": "u",
                                             "POSTGRES_DB": "d"}}}})
    app.config["TESTING"] = False  # errors become responses, as in production

    @app.get("/boom")
    def boom():
        app.logger.warning("about to fail with %s", "{SECRET}")
        raise RuntimeError("failed with {SECRET}")

    response = app.test_client().get("/boom", headers={{{{"X-Request-ID": "req-42"}}}})
    print("STATUS", response.status_code, response.get_json()["request_id"], flush=True)
    logging.getLogger("outside").info("no request here")
"""


def run_logging_app(log_format: str) -> list[str]:
    code = textwrap.dedent(LOGGING_APP.format(log_format=log_format))
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def test_json_log_lines_carry_the_request_id_and_the_exception_and_never_a_secret():
    out = run_logging_app("json")
    assert SECRET not in "\n".join(out)
    assert "STATUS 500 req-42" in out
    lines = [json.loads(line) for line in out if not line.startswith("STATUS")]
    warning, error, outside = (line for line in lines if line["logger"] in ("project.app", "outside"))
    assert warning["message"] == "about to fail with [Filtered]" and warning["request_id"] == "req-42"
    assert warning["level"] == "WARNING" and warning["logger"] == "project.app" and warning["time"].endswith("+00:00")
    assert error["message"] == "unhandled error" and error["request_id"] == "req-42"
    assert "RuntimeError: failed with [Filtered]" in error["exception"]
    assert outside["request_id"] == "-" and outside["message"] == "no request here"


def test_text_log_lines_name_the_request_too():
    out = run_logging_app("text")
    assert SECRET not in "\n".join(out)
    assert any("WARNING project.app [req-42] about to fail with [Filtered]" in line for line in out)


def test_the_summed_metrics_leave_out_a_worker_file_not_yet_sized(tmp_path):
    # A worker writes its counter the way the library does; another has just created its file, still empty.
    count = "from prometheus_client import Counter; Counter('jobs', 'Jobs done.').inc(3)"
    environ = {**os.environ, metrics_exporter.ENVIRONMENT_VARIABLE: str(tmp_path)}
    subprocess.run([sys.executable, "-c", count], env=environ, check=True, timeout=60)
    (tmp_path / "counter_999999.db").touch()
    (tmp_path / "gauge_livesum_999998.db").touch()

    page = generate_latest(metrics_exporter.registry(str(tmp_path))).decode()

    assert "jobs_total 3.0" in page
