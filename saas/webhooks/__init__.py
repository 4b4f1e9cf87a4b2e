"""Webhooks: per-app endpoints told of user and login events, after commit.

* ``models`` — endpoints, the outbox of events, deliveries and their attempts.
* ``outbox`` — writes events and deliveries in the transaction of the change
  (the sync batch, a dashboard or API action), so a rollback leaves nothing.
* ``signing`` / ``verify`` — the ``Bridgekeeper-Signature`` header.
* ``sender`` — one POST through the back-channel's SSRF guard.
* ``delivery`` — picks due deliveries, sends, records, retries, disables.
* ``endpoints`` — what the dashboard and the management API do with endpoints.
"""
