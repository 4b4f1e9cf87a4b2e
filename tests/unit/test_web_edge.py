"""What ``saas-web`` does in front of the app that gunicorn did (saas/web_edge.py)."""

from __future__ import annotations

import pytest
from webob import Request

from saas.web_edge import MAX_REQUEST_LINE, Edge


def _seen():
    seen = {}

    def app(environ, start_response):
        seen.update(environ)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]
    return seen, app


def _call(edge, path="/healthz", remote="127.0.0.1", **headers):
    request = Request.blank(path, environ={"REMOTE_ADDR": remote}, headers=headers)
    return request.get_response(edge)


@pytest.mark.parametrize(("remote", "header", "scheme"), [
    ("127.0.0.1", "https", "https"),
    ("127.0.0.1", "HTTPS, http", "https"),  # the first hop is the client's
    ("10.0.0.9", "https", "https"),  # inside a trusted network
    ("203.0.113.5", "https", "http"),  # anyone else's header is ignored
    ("127.0.0.1", "gopher", "http"),
])
def test_the_scheme_is_taken_only_from_a_trusted_proxy(remote, header, scheme):
    seen, app = _seen()
    edge = Edge(app, "127.0.0.1, 10.0.0.0/8")
    assert _call(edge, remote=remote, X_Forwarded_Proto=header).status_int == 200
    assert seen["wsgi.url_scheme"] == scheme


def test_a_request_line_of_8190_bytes_passes_and_a_longer_one_is_414():
    seen, app = _seen()
    edge = Edge(app, "127.0.0.1")
    # "GET /?q=… HTTP/1.1" is exactly the limit.
    query = "q=" + "x" * (MAX_REQUEST_LINE - len("GET /? HTTP/1.1") - 2)
    assert _call(edge, "/?" + query).status_int == 200
    seen.clear()
    answer = _call(edge, "/?" + query + "x")
    assert answer.status_int == 414
    assert not seen  # the app never ran
