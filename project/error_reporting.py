"""Error reports to Sentry, opt-in: on only when the config has a SENTRY_DSN (a secret), and not imported otherwise.

An unhandled error becomes one event, tagged with the config's environment and release. Events are scrubbed of
the same things as the log lines: credential headers and fields by name, and the config's secret values
wherever they appear (a message, a local variable, a header).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from flask import Flask

from project.logs import SENSITIVE_NAMES, mask


def masked(value: Any, secrets: tuple[str, ...]) -> Any:
    """Return ``value`` (an event, or any part of it) with every secret value in its strings masked."""
    if isinstance(value, str):
        return mask(value, secrets)
    if isinstance(value, dict):
        return {key: masked(item, secrets) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [masked(item, secrets) for item in value]
    return value


def register(app: Flask, secrets: Iterable[str]) -> bool:
    """Start reporting the app's unhandled errors when SENTRY_DSN is set; tell whether it did."""
    dsn = app.config.get("SENTRY_DSN")
    if not dsn:
        return False
    import sentry_sdk
    from sentry_sdk.integrations.flask import FlaskIntegration
    from sentry_sdk.scrubber import DEFAULT_DENYLIST, EventScrubber

    secrets = tuple(secrets)

    def before_send(event: dict[str, Any], hint: dict[str, Any]) -> dict[str, Any]:
        return masked(event, secrets)

    sentry_sdk.init(
        dsn=dsn,
        environment=app.config.get("SENTRY_ENVIRONMENT") or app.config["CONFIG_NAME"],
        release=app.config.get("SENTRY_RELEASE") or None,
        integrations=[FlaskIntegration()],
        send_default_pii=False,
        event_scrubber=EventScrubber(denylist=[*DEFAULT_DENYLIST, *SENSITIVE_NAMES], recursive=True),
        before_send=before_send,
        before_send_transaction=before_send,
        traces_sample_rate=0,
    )
    app.extensions["error_reporting"] = "sentry"
    return True
