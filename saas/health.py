"""Liveness and readiness probes for load balancers and orchestrators."""

from __future__ import annotations

import logging

from pyramid.view import view_config
from sqlalchemy import text

log = logging.getLogger(__name__)


def check_database(request) -> str | None:
    try:
        with request.registry["saas.db_engine"].connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as exc:
        log.warning("readiness: database check failed: %s", exc.__class__.__name__)
        return "unreachable"
    return None


def check_redis(request) -> str | None:
    try:
        request.redis.ping()
    except Exception as exc:
        log.warning("readiness: redis check failed: %s", exc.__class__.__name__)
        return "unreachable"
    return None


@view_config(route_name="healthz", renderer="json", request_method="GET")
def healthz(request):
    return {"status": "ok"}


@view_config(route_name="readyz", renderer="json", request_method="GET")
def readyz(request):
    checks = {"postgres": check_database(request), "redis": check_redis(request)}
    failing = sorted(name for name, problem in checks.items() if problem)
    if failing:
        request.response.status_int = 503
        return {"status": "unavailable", "failing": failing,
                "checks": {n: p or "ok" for n, p in checks.items()}}
    return {"status": "ok", "checks": {name: "ok" for name in checks}}
