"""``saas.dashboard_host``: the dashboard on a host of its own.

Browsers autofill saved passwords per origin, so a tenant's look-alike hosted
form on the dashboard's origin would be offered the dashboard password. With
``saas.dashboard_host`` set (a host name, with its port when not the default),
the dashboard's pages answer only on that host and the hosted login forms
never there; both are 404 on the wrong host. Everything else (the protocol,
the management API, probes, static files) answers on every host. Unset, one
host serves all (development).
"""

from __future__ import annotations

import re

from pyramid.httpexceptions import HTTPNotFound
from pyramid.tweens import EXCVIEW

from saas.flows.hosts import request_host

_DASHBOARD = re.compile(r"^/(dashboard(/|$)|$)")
_HOSTED_FORM = re.compile(r"^/v1/apps/[^/]+/login/?$")


def _configured(value: str | None, scheme: str) -> str | None:
    if not value:
        return None
    host = value.strip().lower()
    return host if ":" in host.rsplit("]", 1)[-1] else f"{host}:{443 if scheme == 'https' else 80}"


def dashboard_host_tween_factory(handler, registry):
    setting = registry.settings.get("saas.dashboard_host")
    if not setting:
        return handler

    def dashboard_host_tween(request):
        on_dashboard_host = request_host(request) == _configured(setting, request.scheme)
        path = request.path_info
        if _DASHBOARD.match(path) and not on_dashboard_host:
            raise HTTPNotFound()
        if _HOSTED_FORM.match(path) and on_dashboard_host:
            raise HTTPNotFound()
        return handler(request)

    return dashboard_host_tween


def includeme(config) -> None:
    # Under the exception view, so the 404 is the service's usual page.
    config.add_tween("saas.dashboard_host.dashboard_host_tween_factory", under=EXCVIEW)
