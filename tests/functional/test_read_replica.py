"""``DATABASE_READ_URL``: lists and charts are read through a second engine.

The "replica" is a second engine on the run's own database (the same data),
with an application name of its own. What proves the reads go through it:
rows of the test's open transaction are seen by the primary's session (the
requests share that transaction) and never by another connection, so a list
served by the replica shows only the rows committed beside it.
"""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
import webtest
from sqlalchemy import delete, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import sessionmaker

from saas.audit.models import AuditEvent
from saas.audit.types import Outcome
from saas.config import configure
from saas.tenants.models import Member
from tests.conftest import RUN_ID
from tests.functional.dashboard_helpers import sign_in
from tests.functional.test_manage_support import Api

READ_APP_NAME = f"bk-read-{RUN_ID}"


@pytest.fixture(scope="module")
def replica_wsgi_app(app_settings):
    url = make_url(app_settings["sqlalchemy.url"]).update_query_dict(
        {"application_name": READ_APP_NAME})
    config = configure({**app_settings,
                        "sqlalchemy.read_url": url.render_as_string(hide_password=False)})
    app = config.make_wsgi_app()
    yield app
    app.registry["saas.db_read_engine"].dispose()
    app.registry["saas.db_engine"].dispose()


@pytest.fixture
def replica_webapp(replica_wsgi_app, db_connection):
    """As the ``webapp`` fixture: the primary's sessions share the test's transaction;
    the replica's engine is left as configured."""
    replica_wsgi_app.registry["saas.db_sessionmaker"] = sessionmaker(
        bind=db_connection, join_transaction_mode="create_savepoint", expire_on_commit=False)
    return webtest.TestApp(replica_wsgi_app, extra_environ={"HTTP_HOST": "bk.test"})


@pytest.fixture
def committed_events(engine, tenant):
    """Two login rows of the tenant's app, committed (visible to every connection)."""
    now = dt.datetime.now(dt.UTC)
    ids = [uuid.uuid4(), uuid.uuid4()]
    with engine.begin() as connection:
        connection.execute(AuditEvent.__table__.insert(), [
            {"id": event_id, "tenant_id": tenant.tenant_id, "app_id": tenant.app.app_id,
             "type": "login.succeeded", "outcome": Outcome.SUCCESS,
             "at": now - dt.timedelta(minutes=n + 1),
             "details": {"marker": f"committed-{event_id}"}}
            for n, event_id in enumerate(ids)])
    yield {str(event_id) for event_id in ids}
    with engine.begin() as connection:
        connection.execute(delete(AuditEvent).where(AuditEvent.app_id == tenant.app.app_id))


@pytest.fixture
def uncommitted_event(db, tenant) -> str:
    """A login row in the test's open transaction: the primary's sessions only."""
    event = AuditEvent(tenant_id=tenant.tenant_id, app_id=tenant.app.app_id,
                       type="login.succeeded", outcome=Outcome.SUCCESS,
                       at=dt.datetime.now(dt.UTC), details={"marker": "uncommitted"})
    db.add(event)
    db.commit()  # to the savepoint
    return str(event.id)


def _ids(response) -> set[str]:
    return {event["id"] for event in response.json["events"]}


def test_the_apis_lists_and_charts_are_read_from_the_replica(
        replica_webapp, webapp, tenant, committed_events, uncommitted_event):
    replica, primary = Api(replica_webapp, tenant.key), Api(webapp, tenant.key)
    audit = tenant.app_path + "/audit"
    assert _ids(replica.get(audit)) == committed_events
    assert _ids(primary.get(audit)) == committed_events | {uncommitted_event}

    def logins(api: Api) -> int:
        stats = api.get(tenant.app_path + "/stats", bucket="hour").json
        return sum(bucket["logins"] for bucket in stats["buckets"])

    assert (logins(replica), logins(primary)) == (2, 3)
    # The tenant's user exists only in the open transaction.
    assert replica.get(tenant.app_path + "/users").json["users"] == []
    assert [u["external_id"] for u in primary.get(tenant.app_path + "/users").json["users"]] \
        == ["user-1"]


def test_the_dashboards_audit_page_is_read_from_the_replica(
        replica_webapp, db, tenant, committed_events, uncommitted_event):
    member = db.scalars(select(Member).where(Member.tenant_id == tenant.tenant_id)).one()
    sign_in(replica_webapp, member.email)
    page = replica_webapp.get(f"/dashboard/apps/{tenant.app.app_id}/audit").text
    assert all(f"committed-{event_id}" in page for event_id in committed_events)
    assert "uncommitted-" not in page


def test_the_replica_engine_is_read_only_and_named(replica_wsgi_app):
    engine = replica_wsgi_app.registry["saas.db_read_engine"]
    with engine.connect() as connection:
        assert connection.execute(text("SHOW transaction_read_only")).scalar() == "on"
        assert connection.execute(text("SHOW application_name")).scalar() == READ_APP_NAME
        with pytest.raises(DBAPIError, match="read-only transaction"):
            connection.execute(text("CREATE TEMP TABLE bk_replica_probe (n int)"))


def test_without_a_read_url_the_primary_serves_the_reads(registry):
    assert registry.get("saas.db_read_sessionmaker") is None
