"""Helpers that drive the login protocol the way a client app and a tenant do."""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
import uuid
from urllib.parse import parse_qs, urlsplit

import jwt

CLIENT_REDIRECT = "https://app.example.com/callback"


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    return verifier, challenge.rstrip(b"=").decode()


def query_of(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def authorize(webapp, app_id: str, *, redirect_uri: str = CLIENT_REDIRECT,
              state: str | None = "client-state", challenge: str | None = None, status=302,
              **extra):
    params = {"redirect_uri": redirect_uri, "code_challenge": challenge or pkce_pair()[1]}
    if state is not None:
        params["state"] = state
    params.update(extra)
    return webapp.get(f"/v1/apps/{app_id}/authorize", params=params, status=status)


def tenant_token(secret: str, user_id="user-1", **claims) -> str:
    now = int(time.time())
    payload = {"user_id": user_id, "iat": now, "exp": now + 60, "jti": uuid.uuid4().hex}
    payload.update(claims)
    return jwt.encode({k: v for k, v in payload.items() if v is not None}, secret,
                      algorithm="HS256")


def callback(webapp, app_id: str, status=302, **params):
    return webapp.get(f"/v1/apps/{app_id}/callback", params={"flow": "custom", **params},
                      status=status)


class Login:
    """One login in progress: started at authorize, finished with the tenant's verdict."""

    def __init__(self, webapp, app_id: str, secret: str, **authorize_kwargs) -> None:
        self.webapp = webapp
        self.app_id = app_id
        self.secret = secret
        self.verifier, challenge = pkce_pair()
        self.redirect_uri = authorize_kwargs.pop("redirect_uri", CLIENT_REDIRECT)
        started = authorize(webapp, app_id, challenge=challenge, redirect_uri=self.redirect_uri,
                            **authorize_kwargs)
        self.tenant_url = started.location
        self.tenant_params = query_of(started.location)
        self.state = self.tenant_params["state"]

    def finish(self, status=302, bound=True, **claims):
        if bound:
            claims.setdefault("state", self.state)
        token = tenant_token(self.secret, **claims)
        return callback(self.webapp, self.app_id, status=status, token=token, state=self.state)

    def exchange(self, code: str, status=200, verifier: str | None = None):
        return self.webapp.post(f"/v1/apps/{self.app_id}/token", {
            "grant_type": "authorization_code", "code": code,
            "redirect_uri": self.redirect_uri, "code_verifier": verifier or self.verifier,
        }, status=status)

    def tokens(self, **claims) -> dict:
        done = self.finish(**claims)
        code = query_of(done.location)["code"]
        return self.exchange(code).json
