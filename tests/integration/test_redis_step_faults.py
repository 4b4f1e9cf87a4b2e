"""The store's connection cut at every step of a callback: never a half-done login.

The web app's real Redis connection is cut at its k-th round trip of a
callback, for every k, in two ways: *before* the command leaves (Redis never
sees it) and *after* it was sent (Redis runs it, the reply is lost — the
ambiguous case of any network). Whatever k, the client gets either a code or
503 ``store_unavailable``, never a 500. A client that got a code has its
login recorded (``login.succeeded`` with the user upsert, exactly once) and
the code works. A client that got a 503 has no login recorded — except in
the one case no protocol can avoid: the round trip that records the login
ran and only its reply was lost; then the login did happen (the tenant
vouched for the user) and the client simply never heard. A code stored just
before a cut never reaches anyone and expires unused (60 s).
"""

from __future__ import annotations

import pytest
import redis
import webtest

from saas.config import configure
from tests.flows import CLIENT_REDIRECT, Login, query_of, tenant_token
from tests.live import committed_app
from tests.store_state import audit_types, stream_events, upserts

pytestmark = [pytest.mark.integration, pytest.mark.faults]


class Cut:
    """Which round trip to cut, and how (shared by the app's connections)."""

    step: int | None = None
    after_send: bool = False
    sent = 0


class CuttableConnection(redis.Connection):
    def send_packed_command(self, command, check_health=True):
        if Cut.step is None:
            return super().send_packed_command(command, check_health)
        Cut.sent += 1
        if Cut.sent == Cut.step and not Cut.after_send:
            self.disconnect()
            raise redis.ConnectionError("injected: cut before sending")
        super().send_packed_command(command, check_health)
        if Cut.sent == Cut.step:
            self._cut_reply = True
        return None

    def read_response(self, *args, **kwargs):
        if getattr(self, "_cut_reply", False):
            self._cut_reply = False
            self.disconnect()
            raise redis.ConnectionError("injected: reply lost")
        return super().read_response(*args, **kwargs)


@pytest.fixture
def cuttable(app_settings):
    with committed_app(app_settings, redirect_uris=[CLIENT_REDIRECT],
                       custom_auth_endpoint="https://tenant.example.com/auth") as (app, secrets):
        prefix = f"{app_settings['saas.redis_prefix']}:step"
        wsgi = configure({**app_settings, "saas.redis_prefix": prefix}).make_wsgi_app()
        pool = wsgi.registry["saas.redis"].connection_pool
        pool.connection_class = CuttableConnection
        pool.reset()
        web = webtest.TestApp(wsgi, extra_environ={"HTTP_HOST": "bk.test"})
        client = redis.Redis.from_url(app_settings["redis.url"])
        try:
            yield web, app, secrets["custom_auth"], client, prefix
        finally:
            Cut.step = None
            for key in client.scan_iter(match=f"{prefix}:*"):
                client.delete(key)
            client.close()
            wsgi.registry["saas.db_engine"].dispose()


def _round_trips(web, app, secret) -> int:
    """How many round trips a clean callback makes (cut nothing, count).

    Counted on the second: a process's first callback also asks Redis once
    whether it has the login's script (``SCRIPT EXISTS``), which later
    callbacks skip, so counting the first would number one step too many
    whenever this test is the first of its process to complete a login.
    """
    for _ in range(2):
        login = Login(web, app.app_id, secret)
        Cut.step, Cut.sent = 0, 0
        done = web.get(f"/v1/apps/{app.app_id}/callback", {
            "state": login.state, "token": tenant_token(secret, state=login.state)})
        Cut.step = None
        assert "code" in query_of(done.location)
    return Cut.sent


@pytest.mark.parametrize("after_send", [False, True], ids=["before-send", "reply-lost"])
def test_a_cut_at_any_step_of_the_callback_leaves_no_half_done_login(cuttable, after_send):
    web, app, secret, client, prefix = cuttable
    steps = _round_trips(web, app, secret)
    assert steps >= 4
    for step in range(1, steps + 1):
        user = f"step-{step}"
        login = Login(web, app.app_id, secret)
        seen = len(stream_events(client, prefix))
        Cut.step, Cut.sent, Cut.after_send = step, 0, after_send
        response = web.get(f"/v1/apps/{app.app_id}/callback", {
            "state": login.state, "token": tenant_token(secret, state=login.state,
                                                        user_id=user)},
            headers={"Accept": "application/json"}, status="*")
        Cut.step = None

        got_code = response.status_int == 302 and "code" in query_of(response.location)
        if not got_code:
            assert response.status_int == 503, (step, response.status, response.text[:200])
            assert response.json["reason"] == "store_unavailable"
        new = stream_events(client, prefix)[seen:]
        succeeded = audit_types(new)["login.succeeded"]
        assert succeeded <= 1
        assert [u["external_id"] for u in upserts(new)] == ([user] if succeeded else [])
        if got_code:
            assert succeeded == 1, step
            assert login.exchange(query_of(response.location)["code"]).json["access_token"]
        elif succeeded:  # recorded, reply lost: only the recording round trip itself
            assert after_send and step == steps, (step, after_send)
