"""Server-side dashboard sessions kept in Redis.

The cookie holds only a random 256-bit session id; the data lives in Redis
under ``{prefix}:session:{id}`` with a sliding TTL (``saas.session_ttl``, idle
time) and ends, however busy, an absolute lifetime after sign-in
(``saas.session_max_age``, 7 days). The cookie is ``__Host-bk_session`` when
cookies are ``Secure`` (https: no Domain, Path=/, so no sibling host can set or
shadow it) and ``bk_session`` on a development http server. Sessions are opt-in: a
request that never touches ``request.session`` reads nothing from Redis and
sets no cookie. ``rotate()`` gives a signed-in member a fresh id (session
fixation), ``invalidate()`` ends the session.

A signed-in session also keeps its device (User-Agent), IP, sign-in time and
last-seen time, and is listed in a per-member index set
(``{prefix}:member_sessions:{member id}``, the sessions' id hashes), so the
account page can list a member's sessions and end one or all of them.
Entries of the index whose session has expired are dropped when it is read.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from pyramid.interfaces import ISession
from zope.interface import implementer

from saas.client_ip import client_ip
from saas.crypto import hash_token, random_token

COOKIE_NAME = "bk_session"
MEMBER_KEY = "member_id"  # the signed-in member's id (saas.security)
SIGNED_IN_AT = "signed_in_at"  # epoch seconds; compared with sessions_valid_after
USER_AGENT = "user_agent"
IP = "ip"
LAST_SEEN = "last_seen"
MAX_USER_AGENT = 300

SECURE_COOKIE_NAME = "__Host-bk_session"


def cookie_name(settings) -> str:
    """The session cookie's name: ``__Host-`` needs ``Secure``, so https only."""
    return SECURE_COOKIE_NAME if settings["saas.secure_cookies"] else COOKIE_NAME


@implementer(ISession)
class RedisSession(dict):
    def __init__(self, request, session_id: str | None, data: dict[str, Any] | None) -> None:
        super().__init__(data or {})
        self.request = request
        self.session_id = session_id or random_token(32)
        self.new = data is None
        self.created = self.pop("_created", time.time())
        self.changed_flag = False
        self.old_ids: list[str] = []
        self.invalidated = False

    # The dict mutators mark the session as changed.
    def _mutated(method_name):
        def method(self, *args, **kwargs):
            self.changed_flag = True
            return getattr(dict, method_name)(self, *args, **kwargs)

        method.__name__ = method_name
        return method

    __setitem__ = _mutated("__setitem__")
    __delitem__ = _mutated("__delitem__")
    clear = _mutated("clear")
    pop = _mutated("pop")
    popitem = _mutated("popitem")
    setdefault = _mutated("setdefault")
    update = _mutated("update")
    del _mutated

    def changed(self) -> None:
        self.changed_flag = True

    @property
    def id_hash(self) -> str:
        return hash_token(self.session_id)

    def invalidate(self) -> None:
        self.ended_member = self.get(MEMBER_KEY) or getattr(self, "ended_member", None)
        self.old_ids.append(self.session_id)
        dict.clear(self)
        self.session_id = random_token(32)
        self.invalidated = True
        self.changed_flag = False

    def rotate(self) -> None:
        """Keep the data under a fresh id (call on sign-in)."""
        self.old_ids.append(self.session_id)
        self.session_id = random_token(32)
        self.changed_flag = True

    def restart(self, signed_in_at: float) -> None:
        """Keep this session past a change that ends the member's others
        (``members.sessions_valid_after``): a fresh id, signed in as of then."""
        self.rotate()
        self[SIGNED_IN_AT] = signed_in_at

    def restart_clock(self) -> None:
        """The absolute lifetime counts from now (sign-in), not from the
        anonymous session that carried the sign-in form's CSRF token."""
        self.created = time.time()
        self.changed_flag = True

    # Flash messages and CSRF tokens, as ISession requires.
    def flash(self, msg, queue: str = "", allow_duplicate: bool = True) -> None:
        messages = self.setdefault("_f_" + queue, [])
        if allow_duplicate or msg not in messages:
            messages.append(msg)
            self.changed_flag = True

    def pop_flash(self, queue: str = "") -> list:
        return self.pop("_f_" + queue, [])

    def peek_flash(self, queue: str = "") -> list:
        return self.get("_f_" + queue, [])

    def new_csrf_token(self) -> str:
        token = random_token(32)
        self["_csrft_"] = token
        return token

    def get_csrf_token(self) -> str:
        return self.get("_csrft_") or self.new_csrf_token()


class RedisSessionFactory:
    def __init__(self, settings) -> None:
        self.ttl = settings["saas.session_ttl"]
        self.max_age = settings["saas.session_max_age"]
        self.secure = settings["saas.secure_cookies"]
        self.cookie = cookie_name(settings)

    def _key(self, request, session_id: str) -> str:
        # Keyed by the id's hash, like API keys and refresh tokens: a copy of
        # Redis (a dump, a replica, a debugging session) holds no usable cookie.
        return session_key(request, hash_token(session_id))

    def __call__(self, request) -> RedisSession:
        session_id = request.cookies.get(self.cookie)
        data = None
        if session_id and 20 <= len(session_id) <= 64:
            raw = request.redis.get(self._key(request, session_id))
            if raw is not None:
                data = json.loads(raw)
        if data is not None and time.time() - float(data.get("_created", 0)) >= self.max_age:
            # Past its absolute lifetime: gone, however recently it was used.
            request.redis.delete(self._key(request, session_id))
            data = None
        session = RedisSession(request, session_id if data is not None else None, data)
        request.add_response_callback(lambda req, resp: self._save(req, resp, session))
        return session

    def _save(self, request, response, session: RedisSession) -> None:
        pipe = request.redis.pipeline(transaction=False)
        member_id = session.get(MEMBER_KEY) or getattr(session, "ended_member", None)
        for old_id in session.old_ids:
            pipe.delete(self._key(request, old_id))
            if member_id:
                pipe.srem(index_key(request, member_id), hash_token(old_id))
        if session.invalidated and not session.changed_flag:
            pipe.execute()
            # An expired cookie with the same attributes (a __Host- cookie
            # without Secure would be refused, so not deleted).
            response.set_cookie(self.cookie, "", max_age=0, path="/", httponly=True,
                                secure=self.secure, samesite="Lax")
            return
        if session.changed_flag or not session.new:
            payload = dict(session, _created=session.created)
            # Idle timeout, but never past the absolute end.
            left = self.max_age - (time.time() - session.created)
            ttl = max(1, min(self.ttl, int(left)))
            if session.get(MEMBER_KEY):
                payload.update(_device(request))
                index = index_key(request, session[MEMBER_KEY])
                pipe.sadd(index, session.id_hash)
                pipe.expire(index, self.max_age)  # outlives no session it lists
            pipe.set(self._key(request, session.session_id), json.dumps(payload), ex=ttl)
            pipe.execute()
            response.set_cookie(
                self.cookie,
                session.session_id,
                max_age=ttl,
                path="/",
                httponly=True,
                secure=self.secure,
                samesite="Lax",
            )
        else:
            pipe.execute()


def session_key(request, id_hash: str) -> str:
    return request.redis_keys.global_("session", id_hash)


def index_key(request, member_id) -> str:
    return request.redis_keys.global_("member_sessions", str(member_id))


def _device(request) -> dict[str, Any]:
    return {USER_AGENT: (request.user_agent or "")[:MAX_USER_AGENT],
            IP: client_ip(request), LAST_SEEN: time.time()}


@dataclass(frozen=True)
class SessionInfo:
    """One of a member's dashboard sessions, as the account page shows it."""

    ref: str  # names the session in a form, without being its id or its key
    user_agent: str
    ip: str
    signed_in_at: float | None
    last_seen: float | None
    current: bool


def session_ref(id_hash: str) -> str:
    return hash_token("ref:" + id_hash)[:32]


def _listed(request, member_id) -> dict[str, dict[str, Any]]:
    """The member's live sessions by id hash; dead index entries are dropped."""
    index = index_key(request, member_id)
    hashes = sorted(h.decode() if isinstance(h, bytes) else h
                    for h in request.redis.smembers(index))
    if not hashes:
        return {}
    # One GET per session in a pipeline, not MGET: on a Redis Cluster the
    # sessions live in different slots and a multi-key read is refused.
    pipe = request.redis.pipeline(transaction=False)
    for id_hash in hashes:
        pipe.get(session_key(request, id_hash))
    raws = pipe.execute()
    live, dead = {}, []
    for id_hash, raw in zip(hashes, raws, strict=True):
        data = json.loads(raw) if raw is not None else None
        if data is None or data.get(MEMBER_KEY) != str(member_id):
            dead.append(id_hash)
        else:
            live[id_hash] = data
    if dead:
        request.redis.srem(index, *dead)
    return live


def member_sessions(request, member_id) -> list[SessionInfo]:
    """The member's dashboard sessions, the current one first, then by last seen."""
    current = request.session.id_hash if request.cookies.get(COOKIE_NAME) else None
    rows = [SessionInfo(ref=session_ref(id_hash), user_agent=data.get(USER_AGENT, ""),
                        ip=data.get(IP, ""),
                        signed_in_at=data.get(SIGNED_IN_AT, data.get("_created")),
                        last_seen=data.get(LAST_SEEN), current=id_hash == current)
            for id_hash, data in _listed(request, member_id).items()]
    return sorted(rows, key=lambda row: (not row.current, -(row.last_seen or 0)))


def _end(request, member_id, hashes: list[str]) -> int:
    if hashes:
        pipe = request.redis.pipeline(transaction=False)
        for id_hash in hashes:  # one key per DEL: the sessions' slots differ on a cluster
            pipe.delete(session_key(request, id_hash))
        pipe.srem(index_key(request, member_id), *hashes)
        pipe.execute()
    return len(hashes)


def end_session(request, member_id, ref: str) -> bool:
    """End the member's session named ``ref`` (never the current one: sign out for that)."""
    current = request.session.id_hash
    found = [h for h in _listed(request, member_id) if session_ref(h) == ref and h != current]
    return _end(request, member_id, found) == 1


def end_all_sessions(request, member_id) -> int:
    """End every session of the member (a password reset from a link)."""
    return _end(request, member_id, list(_listed(request, member_id)))


def end_other_sessions(request, member_id) -> int:
    """End every session of the member but the current one; how many ended."""
    current = request.session.id_hash if request.cookies.get(COOKIE_NAME) else None
    return _end(request, member_id, [h for h in _listed(request, member_id) if h != current])


def includeme(config) -> None:
    config.registry["saas.session_cookie"] = cookie_name(config.registry.settings)
    config.set_session_factory(RedisSessionFactory(config.registry.settings))
