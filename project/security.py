"""Security headers on every response."""

from flask import Response, current_app

HEADERS = (
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'"),
    ("Referrer-Policy", "no-referrer"),
)
HSTS = ("Strict-Transport-Security", "max-age=31536000; includeSubDomains")


def add_security_headers(response: Response) -> Response:
    """Add headers that keep browsers from sniffing, framing or leaking referrers; HSTS where configured.

    A header the view set itself is kept. The names present are read in one pass: a lookup per header would
    scan the headers once each, on every response.
    """
    headers = response.headers
    present = {name.lower() for name in headers.keys()}
    wanted = (*HEADERS, HSTS) if current_app.config["HSTS"] else HEADERS
    for name, value in wanted:
        if name.lower() not in present:
            headers.add(name, value)
    return response
