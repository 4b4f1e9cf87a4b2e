"""The two other WSGI apps of the benchmark, served by gunicorn beside the service.

* ``tenant()`` — the Python example tenant endpoint
  (``examples/python/tenant_endpoint.py``) with the app's custom-auth secret
  from ``BENCH_TENANT_SECRET``.
* ``empty()`` — a Pyramid app with one view returning a plain response: the
  reference cost of "a Pyramid request behind gunicorn" that the ratios use.
"""

from __future__ import annotations

import importlib.util
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def tenant():
    path = os.path.join(ROOT, "examples", "python", "tenant_endpoint.py")
    spec = importlib.util.spec_from_file_location("tenant_endpoint_example", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.make_app(os.environ["BENCH_TENANT_SECRET"])


def _hello(request):
    from pyramid.response import Response

    return Response(b"ok", content_type="text/plain")


def empty_configurator():
    from pyramid.config import Configurator

    config = Configurator()
    config.add_route("home", "/")
    config.add_view(_hello, route_name="home")
    return config


def empty():
    return empty_configurator().make_wsgi_app()
