"""The app a protocol URL names (``/v1/apps/{app_id}/...``).

Every login and token endpoint starts here, in flows and tokens alike, so it
belongs to the apps package rather than to either of them.
"""

from __future__ import annotations

from saas.apps.cache import AppConfig
from saas.client_ip import client_ip
from saas.errors import ApiError, Reason
from saas.ratelimit import enforce
from saas.redis import pipeline


def unknown_app() -> ApiError:
    return ApiError(404, "invalid_request", Reason.APP_NOT_FOUND, "unknown app")


def load_app(request, *, rate_limited: bool = False) -> AppConfig:
    """The app of the URL (404 if unknown); a login entry point also charges
    the app's rate limits, per client IP and overall (429 when spent)."""
    # The hot path opens no database session unless the cache misses.
    app_id = request.matchdict["app_id"]
    cache = request.app_cache
    if not rate_limited:
        app = cache.load(lambda: request.db, app_id)
        if app is None:
            raise unknown_app()
        return app
    limits = request.registry["saas.rate_limits"]
    buckets = [(limits["login_ip"], client_ip(request)), (limits["login_app"], "")]
    limiter = request.rate_limiter
    if cache.known(app_id):
        # An app this process has served: its settings and its rate limits in
        # one round trip (docs/performance.md, "One round trip fewer").
        pipe = pipeline(request.redis)
        pipe.get(cache.key(app_id))
        charged = limiter.queue_check(pipe, app_id, buckets)
        replies = pipe.execute()
        app = cache.answer(lambda: request.db, app_id, replies[0])
        if app is None:
            raise unknown_app()
        if charged:
            enforce(request, limiter.decision(replies[1], buckets))
        return app
    app = cache.load(lambda: request.db, app_id)
    if app is None:
        raise unknown_app()
    enforce(request, limiter.check(app.app_id, buckets))
    return app
