"""The app a protocol URL names (``/v1/apps/{app_id}/...``).

Every login and token endpoint starts here, in flows and tokens alike, so it
belongs to the apps package rather than to either of them.
"""

from __future__ import annotations

from saas.apps.cache import AppConfig
from saas.client_ip import client_ip
from saas.errors import ApiError, Reason
from saas.ratelimit import enforce


def load_app(request, *, rate_limited: bool = False) -> AppConfig:
    """The app of the URL (404 if unknown); a login entry point also charges
    the app's rate limits, per client IP and overall (429 when spent)."""
    # The hot path opens no database session unless the cache misses.
    app = request.app_cache.load(lambda: request.db, request.matchdict["app_id"])
    if app is None:
        raise ApiError(404, "invalid_request", Reason.APP_NOT_FOUND, "unknown app")
    if rate_limited:
        limits = request.registry["saas.rate_limits"]
        enforce(request, request.rate_limiter.check(app.app_id, [
            (limits["login_ip"], client_ip(request)), (limits["login_app"], ""),
        ]))
    return app
