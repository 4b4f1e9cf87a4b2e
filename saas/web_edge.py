"""What gunicorn did in front of the app, for the servers that do not (``saas-web``).

* **Request line** — a request line up to 8190 bytes passes (tokens
  travel in URLs), a longer one is 414 before the app runs, as gunicorn's
  ``limit_request_line`` answered.
* **Scheme behind a TLS proxy** — ``wsgi.url_scheme`` from
  ``X-Forwarded-Proto`` when the peer is one of the trusted proxies
  (``FORWARDED_ALLOW_IPS``, the list gunicorn used and ``saas.trusted_proxies``
  uses). Absolute URLs and the dashboard-host check read the scheme.
"""

from __future__ import annotations

from collections.abc import Iterable

from saas.client_ip import is_trusted_proxy, proxy_list

MAX_REQUEST_LINE = 8190
_SCHEMES = frozenset(("http", "https"))
_TOO_LONG = b"Request-URI Too Long\n"


class Edge:
    def __init__(self, app, trusted_proxies: Iterable[str] | str) -> None:
        self.app = app
        self.trusted = proxy_list(trusted_proxies)

    def __call__(self, environ, start_response):
        # "GET " + target + " HTTP/1.1": the target is the path and the query.
        target = len(environ.get("PATH_INFO", "")) + len(environ.get("QUERY_STRING", "")) + 1
        if target + len(environ.get("REQUEST_METHOD", "")) + 10 > MAX_REQUEST_LINE:
            start_response("414 Request-URI Too Long", [
                ("Content-Type", "text/plain"), ("Content-Length", str(len(_TOO_LONG))),
                ("Connection", "close")])
            return [_TOO_LONG]
        proto = environ.get("HTTP_X_FORWARDED_PROTO")
        if proto and is_trusted_proxy(environ.get("REMOTE_ADDR") or "", self.trusted):
            # The first hop's value: the scheme the client used.
            scheme = proto.partition(",")[0].strip().lower()
            if scheme in _SCHEMES:
                environ["wsgi.url_scheme"] = scheme
        return self.app(environ, start_response)
