"""The real app plus two views of the tests' own: a slow one, to show that gunicorn lets in-flight requests
finish on SIGTERM, and one that reads from the database, for outages whatever the app's own views are."""

import time

from sqlalchemy import text

from project.extensions import db
from wsgi import app


@app.get("/slow")
def slow():
    time.sleep(1.5)
    return {"finished": True}


@app.get("/probe")
def probe():
    return {"database": db.session.execute(text("SELECT current_database()")).scalar_one()}
