"""A hello-world Flask app: the load benchmark's baseline under the same gunicorn settings."""

from flask import Flask

app = Flask(__name__)


@app.get("/healthz")
def healthz():
    return {"status": "ok"}


@app.get("/hello")
def hello():
    return {"message": "hello"}
