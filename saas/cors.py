"""Cross-origin calls (CORS) from the app's pages to its API endpoints.

The SDK runs on the app's own origin and calls the app's API endpoints
(``token``, ``me``, ``logout``, ``login/custom``, ``login/custom-token``; for
OpenID Connect libraries also ``userinfo`` and ``revoke``)
with ``fetch``. A browser allows that only when Bridgekeeper says so: an
``Origin`` is allowed for an app when it is the origin of one of the app's
allow-listed redirect URIs (an ``http://127.0.0.1`` or ``http://[::1]``
redirect URI allows that host on any port, as RFC 8252 loopback URIs
match). No cookies are involved (the SDK sends none, we never answer
``Allow-Credentials``): tokens travel in the body and the ``Authorization``
header only. Preflights are answered here, before routing; the app's
settings come from the Redis cache like every hot-path read.

A tween of its own, beside the SDK that needs it (``saas.sdk``).
"""

from __future__ import annotations

import logging
import re
from urllib.parse import urlsplit

import redis
import sqlalchemy.exc
from pyramid.response import Response

from saas.request_text import raw_path

log = logging.getLogger(__name__)

# The endpoints the SDK calls from the app's pages.
CORS_PATH = re.compile(
    r"^/v1/apps/(?P<app_id>[a-z0-9]{8})/"
    r"(?:token|me|logout|login/custom|login/custom-token|userinfo|revoke)$"
)
ALLOW_METHODS = "GET, POST"
ALLOW_HEADERS = "Authorization, Content-Type"
EXPOSE_HEADERS = "Retry-After, WWW-Authenticate, X-Request-ID"
PREFLIGHT_MAX_AGE = "600"
_LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1"})
_DEFAULT_PORTS = {"http": 80, "https": 443}


def _origin_of(uri: str, *, bare: bool = False) -> tuple[str, str, int | None] | None:
    """``(scheme, host, port)`` of a URI, or of an ``Origin`` value (``bare``: nothing
    but scheme, host and port); None without a host."""
    try:
        parts = urlsplit(uri.strip())
        port = parts.port
    except ValueError:
        return None
    if not parts.scheme or not parts.hostname:
        return None
    if bare and (parts.path or parts.query or parts.fragment or "@" in parts.netloc):
        return None
    scheme = parts.scheme.lower()
    if port == _DEFAULT_PORTS.get(scheme):
        port = None
    return scheme, parts.hostname.lower(), port


def origin_allowed(origin: str, redirect_uris: list[str]) -> bool:
    """Whether ``origin`` is the origin of one of the app's redirect URIs."""
    candidate = _origin_of(origin, bare=True)
    if candidate is None:
        return False
    scheme, host, _port = candidate
    for uri in redirect_uris:
        listed = _origin_of(uri)
        if listed is None:
            continue
        if scheme == "http" and host in _LOOPBACK_HOSTS and listed[:2] == (scheme, host):
            return True  # loopback: any port (RFC 8252 §7.3)
        if listed == candidate:
            return True
    return False


def _app_redirect_uris(request, app_id: str) -> list[str]:
    """The app's redirect URIs from the settings cache (PostgreSQL on a miss only)."""
    sessions = []

    def db():
        session = request.registry["saas.db_sessionmaker"]()
        sessions.append(session)
        return session

    try:
        app = request.app_cache.load(db, app_id)
    except (redis.exceptions.RedisError, sqlalchemy.exc.SQLAlchemyError) as exc:
        log.warning("CORS: the app's settings are unavailable (%s)", exc.__class__.__name__)
        return []
    finally:
        for session in sessions:
            session.close()
    return app.redirect_uris if app is not None else []


def _add_vary(response, *names: str) -> None:
    present = [v.strip() for v in response.headers.get("Vary", "").split(",") if v.strip()]
    for name in names:
        if name.lower() not in {v.lower() for v in present}:
            present.append(name)
    response.headers["Vary"] = ", ".join(present)


def cors_tween_factory(handler, registry):
    def cors_tween(request):
        origin = request.headers.get("Origin")
        match = CORS_PATH.match(raw_path(request)) if origin else None
        if match is None:
            return handler(request)
        if request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
            response = Response(status=204)
            _add_vary(response, "Origin", "Access-Control-Request-Method",
                      "Access-Control-Request-Headers")
            if origin_allowed(origin, _app_redirect_uris(request, match["app_id"])):
                response.headers.update({
                    "Access-Control-Allow-Origin": origin,
                    "Access-Control-Allow-Methods": ALLOW_METHODS,
                    "Access-Control-Allow-Headers": ALLOW_HEADERS,
                    "Access-Control-Max-Age": PREFLIGHT_MAX_AGE,
                })
            return response
        response = handler(request)
        _add_vary(response, "Origin")
        # After the view: the app's settings are in the cache by now.
        if origin_allowed(origin, _app_redirect_uris(request, match["app_id"])):
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Access-Control-Expose-Headers"] = EXPOSE_HEADERS
        return response

    return cors_tween


def includeme(config) -> None:
    # Outside the 413 guard, so even that answer reaches the app's page.
    config.add_tween("saas.cors.cors_tween_factory",
                     under="saas.logging.access_log_tween_factory",
                     over="saas.hardening.hardening_tween_factory")
