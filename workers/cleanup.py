"""Periodic cleanup: forget what no token or login can use any more."""

from __future__ import annotations

import datetime as dt
import logging

from celery import shared_task
from sqlalchemy import delete, update
from sqlalchemy.orm import Session

from saas.accounts.models import AccountLink
from saas.apps.models import AppSecret, ClientSecret, SigningKey
from saas.db import utcnow
from saas.tasks import BridgekeeperTask, TaskName

log = logging.getLogger(__name__)


def purge_expired_rows(session: Session, now: dt.datetime) -> dict[str, int]:
    """Clear previous secrets past their grace period, delete retired keys and
    expired account links.

    A previous secret past ``previous_valid_until`` no longer verifies anything,
    so keeping its ciphertext (or a client secret's hash) only widens what a
    leak would expose. A retired signing key past ``published_until`` has left
    the JWKS and every token it signed has expired. A mailed account link past
    ``expires_at`` opens nothing, used or not. Runs in the caller's transaction.
    """
    cleared = session.execute(
        update(AppSecret)
        .where(AppSecret.previous_valid_until < now)
        .values(previous_ciphertext=None, previous_valid_until=None)
    )
    deleted = session.execute(
        delete(SigningKey).where(
            SigningKey.published_until < now,
            # Never a key still in use, even if published_until was set early.
            SigningKey.retired_at.is_not(None),
        )
    )
    cleared_client = session.execute(
        update(ClientSecret)
        .where(ClientSecret.previous_valid_until < now)
        .values(previous_hash=None, previous_valid_until=None)
    )
    links = session.execute(delete(AccountLink).where(AccountLink.expires_at < now))
    return {
        "previous_secrets_cleared": cleared.rowcount + cleared_client.rowcount,
        "signing_keys_deleted": deleted.rowcount,
        "account_links_deleted": links.rowcount,
    }


@shared_task(name=TaskName.PURGE_EXPIRED.value, base=BridgekeeperTask, bind=True)
def purge_expired(self: BridgekeeperTask) -> dict[str, int]:
    """Hourly (beat): run :func:`purge_expired_rows` in one transaction."""
    with self.db_session() as session:
        counts = purge_expired_rows(session, utcnow())
    log.info(
        "purge_expired: %(previous_secrets_cleared)d previous secrets cleared, "
        "%(signing_keys_deleted)d signing keys deleted, "
        "%(account_links_deleted)d account links deleted",
        counts,
        extra=counts,
    )
    return counts
