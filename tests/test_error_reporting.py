"""Error reports: off and not imported without a SENTRY_DSN; one scrubbed event per unhandled error with one.

The app runs in a child process (sentry_sdk.init is process-wide) and reports to a fake ingestion endpoint on
loopback, which records what it receives.
"""

import gzip
import json
import os
import subprocess
import sys
import textwrap
import threading
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.helpers import ROOT, STRONG_PASSWORD, STRONG_SECRET_KEY

SENTINEL = "sentinel-Hk3Wq8Zr5Tn1"
# The secrets come in through the environment: from Python 3.13 an event's frames show the source of `python -c`,
# and a secret is never a literal in an app's source.
APP = """
    import os
    import sys
    from project import create_app
    from project.configuration import load_config

    config = load_config("testing", environ={}).replace(
        POSTGRES_PORT="1", SECRET_KEY=os.environ["KEY"], POSTGRES_PASSWORD=os.environ["PASSWORD"], **{extra}
    )
    app = create_app("testing", overrides=config)
    app.config["TESTING"] = False  # errors become responses, as in production

    @app.get("/boom")
    def boom():
        token = os.environ["TOKEN"]  # a local variable an event would show
        raise RuntimeError("failed while holding " + app.config["SECRET_KEY"])

    client = app.test_client()
    token = os.environ["TOKEN"]
    headers = {"Authorization": "Bearer " + token, "Cookie": "session=" + token, "X-Request-ID": "req-7"}
    print(client.get("/boom", headers=headers).status_code, client.get("/nope").status_code)
    if "sentry_sdk" in sys.modules:
        import sentry_sdk
        sentry_sdk.flush(timeout=10)
    print("sentry_sdk imported:", "sentry_sdk" in sys.modules)
"""


class Ingestion(BaseHTTPRequestHandler):
    received: list[bytes] = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        encoding = self.headers.get("Content-Encoding", "")
        if encoding == "gzip":
            body = gzip.decompress(body)
        elif encoding == "deflate":
            body = zlib.decompress(body)
        elif encoding == "br":
            pytest.fail("the fake ingestion endpoint cannot read brotli")
        self.received.append(body)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args):
        pass


@pytest.fixture
def ingestion():
    Ingestion.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Ingestion)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def run_app(**extra: str) -> list[str]:
    code = textwrap.dedent(APP.replace("{extra}", repr(extra)))
    env = {**os.environ, "KEY": STRONG_SECRET_KEY, "PASSWORD": STRONG_PASSWORD, "TOKEN": SENTINEL}
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def events(bodies: list[bytes]) -> list[dict]:
    """Return the event items of the envelopes received (one JSON header line, then header/payload pairs)."""
    found = []
    for body in bodies:
        lines = body.split(b"\n")
        for header, payload in zip(lines[1::2], lines[2::2], strict=False):
            if json.loads(header).get("type") == "event":
                found.append(json.loads(payload))
    return found


def test_without_a_dsn_nothing_is_reported_and_sentry_is_not_imported(ingestion):
    assert run_app() == ["500 404", "sentry_sdk imported: False"]
    assert Ingestion.received == []


def test_with_a_dsn_an_unhandled_error_sends_one_scrubbed_event(ingestion):
    port = ingestion.server_address[1]
    out = run_app(SENTRY_DSN=f"http://publickey@127.0.0.1:{port}/42", SENTRY_RELEASE="1.2.3")
    assert out == ["500 404", "sentry_sdk imported: True"]
    raw = b"\n".join(Ingestion.received)
    assert SENTINEL.encode() not in raw and STRONG_SECRET_KEY.encode() not in raw
    assert STRONG_PASSWORD.encode() not in raw
    (event,) = events(Ingestion.received)
    assert event["environment"] == "testing" and event["release"] == "1.2.3"
    (exception,) = event["exception"]["values"]
    assert exception["type"] == "RuntimeError" and exception["value"] == "failed while holding [Filtered]"
    assert event["request"]["url"].endswith("/boom")
