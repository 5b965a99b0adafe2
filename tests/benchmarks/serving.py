"""P3 and P3b: gunicorn under the production config (TLS to the database, the app role), GET /users/<id> against
a hello-world app and against a raw pooled psycopg2 endpoint, same gunicorn settings, runs interleaved."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys

from tests.benchmarks.harness import Measurement, ratio_spread, server_with_database
from tests.benchmarks.load import run_load
from tests.helpers import ROOT


def drive(env: dict[str, str], seconds: float, rounds: int) -> tuple[dict[str, list], int]:
    """Serve ours, hello and raw under gunicorn with ``env`` and load each in turn, ``rounds`` times; return the
    results per app and the id of the user read."""
    from tests.helpers import gunicorn, request

    results: dict[str, list] = {"ours": [], "hello": [], "raw": []}
    with (
        gunicorn(env, workers=2) as ours,
        gunicorn(env, app="tests.benchmarks.hello_wsgi:app", workers=2) as hello,
        gunicorn(env, app="tests.benchmarks.raw_wsgi:app", workers=2) as raw,
    ):
        body = json.dumps({"email": "load@example.com", "name": "Load"}).encode()
        user_id = json.loads(request(f"{ours.url}/users", "POST", body)[1])["id"]
        urls = {
            "ours": f"{ours.url}/users/{user_id}",
            "hello": f"{hello.url}/hello",
            "raw": f"{raw.url}/users/{user_id}",
        }
        for url in urls.values():
            run_load(url, 16, 1)  # warm every worker's pool
        for _ in range(rounds):
            for name, url in urls.items():
                results[name].append(run_load(url, 16, seconds))
    return results, user_id


def in_process(env: dict[str, str], user_id: int) -> str:
    """Say how long one request takes in-process for each app, to tell where a gap in throughput lies."""
    times = json.loads(
        subprocess.run(
            [sys.executable, "-m", "tests.benchmarks.inprocess", str(user_id)],
            cwd=ROOT,
            env={**env, "PYTHONPATH": str(ROOT)},
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    )
    return (
        f"in-process per request: ours {times['ours']:.0f} us (its read alone {times['ours_read']:.0f} us), "
        f"raw {times['raw']:.0f} us, hello {times['hello']:.0f} us"
    )


def bench_load(seconds: float = 5.0, rounds: int = 4) -> list[Measurement]:
    """GET /users/<id> under gunicorn against a hello-world app and a raw pooled psycopg2 endpoint."""
    from tests.helpers import production_database, production_env

    with server_with_database("bench_load") as (cluster, _):
        production_database(cluster, "bench_load_prod")
        env = production_env(cluster, "bench_load_prod")
        results, user_id = drive(env, seconds, rounds)
        where = in_process(env, user_id)
    rows = []
    for row_id, baseline, goal in (("P3", "hello", ">= 0.45"), ("P3b", "raw", ">= 0.75")):
        a = statistics.median(r.rps for r in results["ours"])
        b = statistics.median(r.rps for r in results[baseline])
        errors = sum(r.errors + r.non_2xx for r in results["ours"] + results[baseline])
        rows.append(
            Measurement(
                row_id,
                f"GET /users/<id> / {'hello' if baseline == 'hello' else 'raw psycopg2 endpoint'} rps, 2 workers",
                f"{a:.0f} rps",
                f"{b:.0f} rps",
                a / b,
                goal,
                f"{results['ours'][0].tool}, 16 conns; errors+non-2xx {errors}; "
                f"p99 {results['ours'][0].p99_ms:.1f} ms ({baseline} {results[baseline][0].p99_ms:.1f} ms); {where}",
                spread=ratio_spread([r.rps for r in results["ours"]], [r.rps for r in results[baseline]]),
            )
        )
    return rows
