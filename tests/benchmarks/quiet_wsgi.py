"""The real app with its observability taken out, for the benchmark of what logging and metrics cost per request.

No access log line, no metric recorded, the pool unmeasured; request ids stay (they are part of the responses).
"""

import logging

from sqlalchemy.pool import QueuePool

from project import create_app, metrics
from project.configuration import load_config

config = load_config()
app = create_app(config["FLASK_CONFIG"], overrides={**config, "SQLALCHEMY_ENGINE_OPTIONS": {"poolclass": QueuePool}})
app.before_request_funcs[None].remove(metrics.start_timer)
app.after_request_funcs[None].remove(metrics.record_request)
logging.getLogger("gunicorn.access").disabled = True
