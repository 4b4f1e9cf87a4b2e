"""The management API (``/v1/manage/…``): JSON, authenticated by tenant API keys.

Routes in ``saas.routes``, views in ``apps``, ``secrets``, ``users``, ``audit``
and ``webhooks``; every route's factory (``contexts``) resolves the key's
tenant and the ids of the URL within it. The OpenAPI document of the whole
public surface is served at ``/v1/openapi.json`` (``saas.openapi``).
Reference: docs/management-api.md.
"""
