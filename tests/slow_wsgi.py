"""The real app plus a slow endpoint, to show that gunicorn lets in-flight requests finish on SIGTERM."""

import time

from wsgi import app


@app.get("/slow")
def slow():
    time.sleep(1.5)
    return {"finished": True}
