"""HTTP hardening: security headers on every response, and the client's
address and scheme taken from trusted proxies only (TRUSTED_PROXIES).

From the project template: `copier update` merges its changes into your
edits (README.md, "Layout").
"""

from flask import Flask, Response, request
from werkzeug.middleware.proxy_fix import ProxyFix

# Safe for the pages this app serves: no inline scripts or styles, no frames.
# Loosen the Content-Security-Policy here when a page needs more.
HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; frame-ancestors 'none'; base-uri 'self';"
        " form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "strict-origin-when-cross-origin",
}


def init_app(app: Flask) -> None:
    """Add the headers and, behind proxies, read their X-Forwarded-* headers."""
    proxies: int = app.config["TRUSTED_PROXIES"]
    if proxies:
        # Only the X-Forwarded-For and -Proto values the last `proxies` hops
        # appended are believed; a client cannot spoof its address past them.
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=proxies, x_proto=proxies
        )

    @app.after_request
    def _add_headers(response: Response) -> Response:
        for name, value in HEADERS.items():
            response.headers.setdefault(name, value)
        if request.is_secure and not app.debug:
            response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
        return response
