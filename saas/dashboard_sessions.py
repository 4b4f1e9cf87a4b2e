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
"""

from __future__ import annotations

import json
import time
from typing import Any

from pyramid.interfaces import ISession
from zope.interface import implementer

from saas.crypto import hash_token, random_token

COOKIE_NAME = "bk_session"
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

    def invalidate(self) -> None:
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
        return request.redis_keys.global_("session", hash_token(session_id))

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
        for old_id in session.old_ids:
            pipe.delete(self._key(request, old_id))
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


def includeme(config) -> None:
    config.registry["saas.session_cookie"] = cookie_name(config.registry.settings)
    config.set_session_factory(RedisSessionFactory(config.registry.settings))
