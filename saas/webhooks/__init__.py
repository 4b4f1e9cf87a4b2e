"""Webhooks: per-app endpoints told of user and login events, after commit.

* ``models`` — endpoints, the outbox of events, deliveries and their attempts.
* ``events`` — the event types, the audit records behind them, their ``data``:
  one table, spelled in Python and rendered to SQL for the sync.
* ``outbox`` — writes events and deliveries in the transaction of the change
  (a sync batch — on PostgreSQL the sync's own SQL, ``saas.sync.webhook_events``
  — or a dashboard or API action), so a rollback leaves nothing; ``dispatch``
  wakes the workers after the commit, by task name.
* ``signing`` / ``verify`` — the ``Bridgekeeper-Signature`` header, both sides.
* ``sender`` — one POST through the back-channel's SSRF guard.
* ``delivery`` — claims due deliveries, sends, records, retries, disables.
* ``endpoints`` — what the dashboard and the management API do with endpoints.
* ``retention`` — forgets settled events and expired previous secrets.

The guide for tenants is docs/webhooks.md.
"""
