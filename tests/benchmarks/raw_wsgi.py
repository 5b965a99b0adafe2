"""The load benchmark's second baseline: GET /users/<id> as a raw pooled psycopg2 endpoint, no ORM, no Flask-SQLAlchemy.

What a hand-tuned endpoint costs: one autocommit SELECT per request on a pooled connection.
"""

import json
import threading

from flask import Flask
from psycopg2.pool import ThreadedConnectionPool

from project.configuration import load_config
from project.settings import connection_params

app = Flask(__name__)
_pool: ThreadedConnectionPool | None = None
_lock = threading.Lock()


def pool() -> ThreadedConnectionPool:
    global _pool
    with _lock:
        if _pool is None:
            _pool = ThreadedConnectionPool(1, 5, **connection_params(load_config()))
    return _pool


@app.get("/healthz")
def healthz():
    return {"status": "ok"}


@app.get("/users/<int:user_id>")
def get_user(user_id: int):
    conn = pool().getconn()
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("SELECT id, email, name, created_at FROM users WHERE id = %s", (user_id,))
            row = cur.fetchone()
    finally:
        pool().putconn(conn)
    if row is None:
        return {"error": "Not Found"}, 404
    return app.response_class(
        json.dumps({"id": row[0], "email": row[1], "name": row[2], "created_at": row[3].isoformat()}),
        mimetype="application/json",
    )
