"""The task system inside the app: sent by name, after commit, and the app never
imports the worker package."""

from __future__ import annotations

import ast
import json
import pathlib
import uuid

import pytest
import transaction
from pyramid import testing
from pyramid.registry import Registry

from saas.broker import long_queue
from saas.tasks import TaskName, make_celery, send_after_commit

SAAS = pathlib.Path(__file__).resolve().parents[2] / "saas"


def _imported_modules(path: pathlib.Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
    return found


def test_the_application_never_imports_the_workers():
    offenders = {str(path.relative_to(SAAS.parent)): sorted(
                     m for m in _imported_modules(path) if m.split(".")[0] == "workers")
                 for path in SAAS.rglob("*.py")}
    assert {path: names for path, names in offenders.items() if names} == {}


@pytest.fixture
def producer(app_settings, redis_client):
    """The web tier's producer, not eager, publishing to a queue of its own."""
    queue = f"bk-test-tasks-{uuid.uuid4().hex}"
    registry = Registry()
    registry["saas.celery"] = make_celery({**app_settings, "celery.always_eager": "false",
                                           "celery.default_queue": queue},
                                          set_as_current=False)
    try:
        yield registry, queue
    finally:
        redis_client.delete(queue, long_queue(queue))


def _sent(redis_client, queue: str) -> list[str]:
    """The tasks waiting in the deployment's queues (the default one, then the long one)."""
    return [json.loads(raw)["headers"]["task"]
            for name in (queue, long_queue(queue)) for raw in redis_client.lrange(name, 0, -1)]


@pytest.mark.parametrize("commit", [True, False])
def test_a_task_sent_from_a_request_goes_by_name_once_committed(producer, redis_client,
                                                                 commit):
    registry, queue = producer
    request = testing.DummyRequest()
    request.registry = registry
    request.tm = transaction.TransactionManager(explicit=True)
    request.tm.begin()
    send_after_commit(request, TaskName.DELIVER_WEBHOOKS)
    assert _sent(redis_client, queue) == []  # not before the commit
    if commit:
        request.tm.commit()
    else:
        request.tm.abort()
    assert _sent(redis_client, queue) == (["workers.webhooks.deliver"] if commit else [])


def test_outside_a_transaction_the_task_goes_at_once(producer, redis_client):
    registry, queue = producer
    request = testing.DummyRequest()
    request.registry = registry
    send_after_commit(request, TaskName.PURGE_EXPIRED)
    assert _sent(redis_client, queue) == ["workers.cleanup.purge_expired"]


def test_a_broker_outage_is_logged_not_raised(app_settings, caplog):
    registry = Registry()
    registry["saas.celery"] = make_celery({**app_settings, "celery.always_eager": "false",
                                           "celery.broker_url": "redis://127.0.0.1:1/0"},
                                          set_as_current=False)
    request = testing.DummyRequest()
    request.registry = registry
    send_after_commit(request, TaskName.DELIVER_WEBHOOKS)
    assert "could not send workers.webhooks.deliver" in caplog.text
