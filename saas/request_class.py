"""The request class, with every request method and property built in once.

``config.add_request_method`` is how Pyramid (and pyramid_tm, and our own
includes) give the request ``request.db``, ``request.redis``, ``request.tm``
and the rest. Pyramid applies them to *each* request by deriving a new class
from the request's class per request (``InstancePropertyHelper``), which cost
≈ 4 % of a login request's CPU. Once configuration is complete, the same
methods and properties are set on one request class, made the request
factory, and the per-request step has nothing left to do.
"""

from __future__ import annotations

from pyramid.config import Configurator
from pyramid.interfaces import IRequestExtensions, IRequestFactory
from pyramid.request import Request


def bake_request_extensions(config: Configurator) -> None:
    """Move the registered request extensions onto the request factory's class."""
    registry = config.registry
    extensions = registry.queryUtility(IRequestExtensions)
    if extensions is None:
        return
    factory = registry.queryUtility(IRequestFactory, default=Request)
    members = {**extensions.methods, **dict(extensions.descriptors),
               "__module__": factory.__module__}
    config.set_request_factory(type(factory.__name__, (factory,), members))
    registry.unregisterUtility(provided=IRequestExtensions)
