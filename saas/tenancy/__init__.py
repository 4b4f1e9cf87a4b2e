"""Tenancy: what the dashboard and the management API share, so the two doors cannot drift.

* ``contexts`` — one tree of route contexts with one ACL: the caller's tenant
  (a member's session or an API key, whichever door), and the ids of the URL
  looked up within it; a foreign id is "not found".
* ``audit`` — the audit row of a tenant's change, with the actor of either door.
* ``apps``, ``users``, ``webhooks`` — one function per change a tenant makes:
  the change, its audit row and the login path's cache, in one call and one
  order. The doors only read their input and render their answer.
"""
