"""The hot path's round-trip savers: the lean pipeline, the session-creation
script that shares it, and the event encoding (docs/performance.md)."""

from __future__ import annotations

import json
import uuid

from saas.login_events import AuditRecord, UserUpsert, encode_event
from saas.redis import LeanPipeline, pipeline
from saas.tokens.login_sessions import SessionStore, new_sid

APP = "app00001"


def test_lean_pipeline_resends_only_a_script_redis_lost(redis_client, redis_prefix):
    """Scripts are checked once per process; if Redis has lost one (a restart),
    that script alone is sent again and the rest of the pipeline ran once."""
    counter = f"{redis_prefix}:lean:{uuid.uuid4().hex}"
    # A script body Redis has never seen, marked as known: as after a restart.
    body = f"-- {uuid.uuid4().hex}\nreturn redis.call('INCR', KEYS[1])"
    script = redis_client.register_script(body)
    LeanPipeline._loaded.add(script.sha)
    pipe = pipeline(redis_client)
    assert isinstance(pipe, LeanPipeline)
    pipe.incr(counter)
    script(keys=[counter], client=pipe)
    pipe.incr(counter)
    # The re-sent script runs after the pipeline: its INCR comes last.
    assert pipe.execute() == [1, 3, 2]
    assert redis_client.get(counter) == b"3"
    assert redis_client.script_exists(script.sha) == [True]
    # Loaded now: the next pipeline sends no SCRIPT EXISTS and still works.
    pipe = pipeline(redis_client)
    script(keys=[counter], client=pipe)
    assert pipe.execute() == [4]
    redis_client.delete(counter)


def test_lean_pipeline_still_raises_command_errors(redis_client, redis_prefix):
    key = f"{redis_prefix}:lean:{uuid.uuid4().hex}"
    redis_client.set(key, "text")
    pipe = pipeline(redis_client)
    pipe.incr(key)
    try:
        pipe.execute()
    except Exception as exc:  # the point is that it raises
        assert "not an integer" in str(exc)
    else:
        raise AssertionError("a failed command must raise")
    finally:
        redis_client.delete(key)


def test_session_creation_shares_a_pipeline_and_keeps_the_longest_ttl(backend):
    client, keys = backend
    store = SessionStore(client, keys, b"k" * 32)
    pipe = pipeline(client)
    sid = new_sid()
    refresh = store.create(APP, sid, "user-1", "ext-1", ttl=1000, client=pipe)
    pipe.set(keys.app(APP, "other"), "1")
    pipe.execute()
    session = store.get(APP, sid)
    assert (session.user_id, session.external_id) == ("user-1", "ext-1")
    assert store.session_of_refresh_token(APP, refresh) == sid
    user_sessions = keys.app(APP, "user-sessions", "user-1")
    assert 990 < client.ttl(user_sessions) <= 1000
    # A shorter session never shortens the set's life; a longer one extends it.
    store.create(APP, new_sid(), "user-1", "ext-1", ttl=100)
    assert 990 < client.ttl(user_sessions) <= 1000
    store.create(APP, new_sid(), "user-1", "ext-1", ttl=5000)
    assert 4990 < client.ttl(user_sessions) <= 5000
    assert client.scard(user_sessions) == 3


def test_rotation_answers_with_the_session_in_the_same_call(backend):
    client, keys = backend
    store = SessionStore(client, keys, b"k" * 32)
    sid = new_sid()
    first = store.create(APP, sid, "user-2", "ext-2", ttl=3600)
    rotation = store.rotate(APP, first)
    assert rotation.outcome == "rotated"
    assert (rotation.session.user_id, rotation.session.external_id) == ("user-2", "ext-2")
    assert rotation.session.expires_at > 0
    store.revoke(APP, sid)
    assert store.rotate(APP, rotation.refresh_token).outcome == "revoked"


def test_events_encode_fields_in_order_and_fall_back_for_huge_integers():
    audit = AuditRecord("login.succeeded", "success", app_id="abcd1234",
                        details={"flow": "redirect", "name": "Zoë"})
    user = UserUpsert("ns", "abcd1234", "uid", "ext", 1, {"plan": "pro"}, None)
    body = json.loads(encode_event([audit], user, "event-1")["event"])
    assert body["id"] == "event-1" and body["v"] == 1
    assert list(body["audit"][0]) == list(audit.__dataclass_fields__)
    assert body["audit"][0]["details"] == {"flow": "redirect", "name": "Zoë"}
    assert body["user"]["custom"] == {"plan": "pro"}
    # orjson stops at 64-bit integers; a tenant may send more.
    big = UserUpsert("ns", "abcd1234", "uid", "ext", 1, {"big": 2 ** 70}, None)
    assert json.loads(encode_event([audit], big)["event"])["user"]["custom"] == {"big": 2 ** 70}


def test_app_settings_are_parsed_once_and_a_changed_entry_is_seen_at_once(backend):
    import dataclasses

    from saas.apps.cache import AppConfig, AppConfigCache, SecretVersions

    client, keys = backend
    cache = AppConfigCache(client, keys)
    config = AppConfig(
        id=str(uuid.uuid4()), app_id=APP, tenant_id=str(uuid.uuid4()), name="One",
        custom_auth_endpoint=None, redirect_uris=["https://a/cb"], backchannel=False,
        custom_token_enabled=False, require_bound_tokens=False, access_token_ttl=900,
        refresh_token_ttl=3600, hosted_form=None, restart_url=None,
        secrets={"custom_auth": SecretVersions("c", None, None)})
    client.set(keys.app(APP, "config"), config.to_json())
    first = cache.load(lambda: None, APP)
    assert first == config
    assert cache.load(lambda: None, APP) is first  # same bytes: no parsing again
    # Another process writes the cache through: the next request sees it.
    client.set(keys.app(APP, "config"), dataclasses.replace(config, name="Two").to_json())
    assert cache.load(lambda: None, APP).name == "Two"
