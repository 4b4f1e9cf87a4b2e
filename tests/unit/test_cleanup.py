"""The hourly cleanup and the task base class it runs on."""

from __future__ import annotations

import datetime as dt

import pytest
import transaction
from pyramid import testing
from sqlalchemy import select

from saas.accounts.links import issue_link
from saas.accounts.models import AccountLink, LinkPurpose
from saas.apps.models import AppSecret, ClientSecret, SecretKind, SigningKey
from saas.apps.signing_keys import new_signing_key
from saas.crypto import hash_token
from saas.db import utcnow
from saas.tasks import BridgekeeperTask, make_celery
from tests.factories import make_app, make_member
from workers.cleanup import purge_expired, purge_expired_rows

HOUR = dt.timedelta(hours=1)


@pytest.fixture
def celery_app(app_settings):
    app = make_celery(app_settings)
    app.set_current()
    yield app
    app.dispose_engine()


def _retired_key(secret_box, app, published_until):
    key = new_signing_key(secret_box)
    key.app_id = app.id
    key.retired_at = utcnow() - 2 * HOUR
    key.published_until = published_until
    return key


def test_purge_clears_only_expired_previous_secrets_and_keys(db, passwords, secret_box):
    member = make_member(db, passwords)
    app, _ = make_app(db, secret_box, member.tenant_id)
    now = utcnow()
    expired = app.secret(SecretKind.CUSTOM_AUTH)
    expired.previous_ciphertext = secret_box.encrypt("old custom-auth secret")
    expired.previous_valid_until = now - HOUR
    in_grace = app.secret(SecretKind.CUSTOM_TOKEN)
    in_grace.previous_ciphertext = secret_box.encrypt("old custom-token secret")
    in_grace.previous_valid_until = now + HOUR
    active_kid = app.signing_keys[0].kid
    gone = _retired_key(secret_box, app, now - HOUR)
    still_published = _retired_key(secret_box, app, now + HOUR)
    db.add_all([gone, still_published])
    db.flush()
    gone_kid, published_kid = gone.kid, still_published.kid

    counts = purge_expired_rows(db, now)

    assert counts["previous_secrets_cleared"] >= 1 and counts["signing_keys_deleted"] >= 1
    db.expire_all()
    rows = {s.kind: s for s in db.scalars(select(AppSecret).where(AppSecret.app_id == app.id))}
    assert rows[SecretKind.CUSTOM_AUTH].previous_ciphertext is None
    assert rows[SecretKind.CUSTOM_AUTH].previous_valid_until is None
    assert rows[SecretKind.CUSTOM_TOKEN].previous_ciphertext is not None
    assert rows[SecretKind.CUSTOM_TOKEN].previous_valid_until == now + HOUR
    kids = set(db.scalars(select(SigningKey.kid).where(SigningKey.app_id == app.id)))
    assert kids == {active_kid, published_kid}
    assert gone_kid not in kids


def test_purge_deletes_expired_account_links_and_old_client_secret_hashes(db, passwords,
                                                                          secret_box):
    member = make_member(db, passwords)
    app, _ = make_app(db, secret_box, member.tenant_id)
    now = utcnow()
    app.client_type = "confidential"
    app.client_secret = ClientSecret(current_hash="c" * 64, previous_hash="p" * 64,
                                     previous_valid_until=now - HOUR)
    expired = issue_link(db, member, LinkPurpose.RESET_PASSWORD)
    db.flush()
    live = db.scalar(select(AccountLink).where(AccountLink.token_hash == hash_token(expired)))
    live.expires_at = now - HOUR  # this one ran out an hour ago
    fresh = issue_link(db, member, LinkPurpose.VERIFY_EMAIL)
    db.flush()

    counts = purge_expired_rows(db, now)

    assert counts["account_links_deleted"] >= 1 and counts["previous_secrets_cleared"] >= 1
    db.expire_all()
    hashes = set(db.scalars(select(AccountLink.token_hash)
                            .where(AccountLink.member_id == member.id)))
    assert hashes == {hash_token(fresh)}
    secret = db.scalar(select(ClientSecret).where(ClientSecret.app_id == app.id))
    assert secret.previous_hash is None and secret.current_hash == "c" * 64


def test_purge_never_deletes_a_key_that_was_not_retired(db, passwords, secret_box):
    member = make_member(db, passwords)
    app, _ = make_app(db, secret_box, member.tenant_id)
    active = app.signing_keys[0]
    active.published_until = utcnow() - HOUR  # set by mistake; the key still signs
    db.flush()

    assert purge_expired_rows(db, utcnow())["signing_keys_deleted"] == 0
    db.expire_all()
    assert db.get(SigningKey, active.kid) is not None


def test_purge_is_idempotent(db, passwords, secret_box):
    member = make_member(db, passwords)
    app, _ = make_app(db, secret_box, member.tenant_id)
    secret = app.secret(SecretKind.CUSTOM_AUTH)
    secret.previous_ciphertext = secret_box.encrypt("old")
    secret.previous_valid_until = utcnow() - HOUR
    db.flush()

    purge_expired_rows(db, utcnow())
    again = purge_expired_rows(db, utcnow())

    assert again == {"previous_secrets_cleared": 0, "signing_keys_deleted": 0,
                     "account_links_deleted": 0}


def test_eager_purge_runs_inline_and_returns_counts(celery_app):
    assert celery_app.conf.task_always_eager is True

    result = purge_expired.delay()

    counts = result.get(timeout=5)
    assert set(counts) == {"previous_secrets_cleared", "signing_keys_deleted",
                           "account_links_deleted"}
    assert all(isinstance(n, int) and n >= 0 for n in counts.values())


def test_celery_configuration(celery_app):
    conf = celery_app.conf
    assert conf.accept_content == ["json"]
    assert conf.task_serializer == conf.result_serializer == "json"
    assert conf.task_acks_late and conf.task_reject_on_worker_lost
    assert conf.task_time_limit == 300 and conf.task_soft_time_limit == 240
    assert conf.task_ignore_result is True
    assert conf.timezone == "UTC"
    assert conf.beat_schedule["purge-expired"]["task"] == "workers.cleanup.purge_expired"
    assert conf.beat_schedule["purge-expired"]["schedule"] == 3600.0
    assert "workers.cleanup.purge_expired" in celery_app.tasks
    assert isinstance(celery_app.tasks["workers.cleanup.purge_expired"], BridgekeeperTask)


def test_db_session_rolls_back_when_the_task_fails(celery_app):
    task = celery_app.tasks["workers.cleanup.purge_expired"]
    with pytest.raises(RuntimeError), task.db_session() as session:
        session.execute(select(1))
        raise RuntimeError("boom")
    # The pool got its connection back without an open transaction.
    with task.db_session() as session:
        assert session.execute(select(1)).scalar_one() == 1


class _Request(testing.DummyRequest):
    def __init__(self) -> None:
        super().__init__()
        self.tm = transaction.TransactionManager(explicit=True)


@pytest.mark.parametrize("commit", [True, False])
def test_task_sent_from_a_request_waits_for_commit(celery_app, commit):
    calls: list[str] = []

    @celery_app.task(name=f"tests.record_{commit}", base=BridgekeeperTask)
    def record(value: str) -> None:
        calls.append(value)

    request = _Request()
    testing.setUp(request=request)
    try:
        request.tm.begin()
        assert record.delay("sent") is None
        assert calls == []
        if commit:
            request.tm.commit()
        else:
            request.tm.abort()
    finally:
        testing.tearDown()
    assert calls == (["sent"] if commit else [])


def test_task_sent_outside_a_request_goes_at_once(celery_app):
    calls: list[str] = []

    @celery_app.task(name="tests.record_now", base=BridgekeeperTask)
    def record(value: str) -> None:
        calls.append(value)

    record.delay("now")
    assert calls == ["now"]
