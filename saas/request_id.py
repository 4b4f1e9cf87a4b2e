"""``X-Request-ID`` on every response: the caller's when sane, else a new one."""

from __future__ import annotations

import re
import secrets

from pyramid.tweens import INGRESS

HEADER = "X-Request-ID"
_SANE = re.compile(r"^[A-Za-z0-9._:-]{8,128}$")


def request_id_for(headers) -> str:
    incoming = headers.get(HEADER, "")
    return incoming if _SANE.match(incoming) else secrets.token_hex(16)


def request_id_tween_factory(handler, registry):
    def request_id_tween(request):
        request.request_id = request_id_for(request.headers)
        response = handler(request)
        response.headers[HEADER] = request.request_id
        return response

    return request_id_tween


def includeme(config) -> None:
    # Outermost, so even error responses made by other tweens carry the id.
    config.add_tween("saas.request_id.request_id_tween_factory", under=INGRESS)
