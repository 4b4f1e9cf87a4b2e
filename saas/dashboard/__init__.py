"""The tenant dashboard: server-rendered pages, sessions, CSRF on every form.

Its routes are declared in ``saas.routes``; the views live in one module per
page (``auth``, ``apps``, ``overview``, ``settings``, ``secrets``, ``users``,
``audit``, ``webhooks``, ``keys``, ``members``, ``invites``; the diagnostics pages in
``debugger``, ``trial_login`` and ``attempts``).
"""
