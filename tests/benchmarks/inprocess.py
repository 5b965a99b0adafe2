"""Where a request's time goes, without HTTP: each load-benchmark app called as WSGI in one process, interleaved.

``python -m tests.benchmarks.inprocess USER_ID`` under the production environment prints microseconds per request
as JSON: the project's ``GET /users/<id>``, its view's database read alone (the session, SQLAlchemy, the round
trip), the raw psycopg2 endpoint, and hello.
"""

from __future__ import annotations

import json
import statistics
import sys
import time

from werkzeug.test import EnvironBuilder

ROUNDS, CALLS = 5, 400


def per_call(function, calls: int = CALLS) -> float:
    started = time.perf_counter()
    for _ in range(calls):
        function()
    return (time.perf_counter() - started) / calls * 1e6


def wsgi_call(app, path: str):
    environ = EnvironBuilder(path=path, headers={"X-Forwarded-For": "192.0.2.1"}).get_environ()

    def call():
        body = b"".join(app(dict(environ), lambda status, headers, exc_info=None: None))
        if not body:
            raise RuntimeError(f"{path} answered nothing")

    return call


def main(user_id: int) -> dict[str, float]:
    from project.api.users import USER_BY_ID
    from project.extensions import autocommit_reads, db
    from tests.benchmarks import hello_wsgi, raw_wsgi
    from wsgi import app

    def read_only():
        with app.app_context():
            autocommit_reads()
            db.session.execute(USER_BY_ID, {"id": user_id}).one()
            db.session.remove()

    calls = {
        "ours": wsgi_call(app, f"/users/{user_id}"),
        "ours_read": read_only,
        "raw": wsgi_call(raw_wsgi.app, f"/users/{user_id}"),
        "hello": wsgi_call(hello_wsgi.app, "/hello"),
    }
    for call in calls.values():
        per_call(call, 50)  # warm pools and caches
    times: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(ROUNDS):
        for name, call in calls.items():
            times[name].append(per_call(call))
    return {name: statistics.median(values) for name, values in times.items()}


if __name__ == "__main__":
    print(json.dumps(main(int(sys.argv[1]))))
