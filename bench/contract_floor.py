"""The contract-minimum floor: what any implementation of the contract must do
per request, in plain redis-py and ``cryptography`` — not what ours does.

``bench/floor.py`` replays the service's own round trips and scripts, so a
round trip the service adds raises that floor with the service's CPU and the
ratio does not move. This floor is derived from the contract instead
(docs/protocol.md §4–§6 and §9): per endpoint, the fewest
Redis round trips the contract's order of decisions allows (a step whose
answer decides the next is a round trip; writes that follow together are one
pipeline) and the cryptography it requires. ``MINIMUM`` lists them; the unit
test counts the commands on a Redis of its own. Nothing of ``saas`` is used
but the public helper that parses a ``redis+cluster://`` URL.

The data model is the smallest that keeps the contract's promises: a session
is one string (current and previous refresh-token hashes, the rotation time,
the claims) under its id, and a refresh token is ``<sid>.<secret>``, so
rotation, reuse detection and the 10 s retry grace are one script on one key.
Revocation deletes the session key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
import uuid
from collections.abc import Callable

import redis
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from redis.cluster import RedisCluster

from saas.redis import is_cluster_url, parse_cluster_url

# Endpoint -> (Redis round trips, commands as Redis counts them: INFO
# commandstats, commands run by a script included). The service's figures
# are in bench/floor.py; these are the contract's (docs/performance.md).
MINIMUM: dict[str, tuple[int, dict[str, int]]] = {
    # the rate limit's two counters (INCRBY + EXPIRE NX each, pipelined); state
    # SET + event XADD, pipelined.
    "authorize": (2, {"incrby": 2, "expire": 2, "set": 1, "xadd": 1}),
    # consume the state atomically (script: GETDEL, remember it used);
    # replay claim SET NX + disabled-user EXISTS, pipelined; code SET + XADD.
    "callback": (3, {"evalsha": 1, "getdel": 1, "set": 3, "exists": 1, "xadd": 1}),
    # GETDEL of the code; session SET + event XADD, pipelined.
    "exchange": (2, {"getdel": 1, "set": 1, "xadd": 1}),
    # OIDC: the user's claims (HGETALL) ride on the session's pipeline.
    "exchange_oidc": (2, {"getdel": 1, "set": 1, "xadd": 1, "hgetall": 1}),
    # rotate atomically (script: GET, check, SET); event XADD.
    "refresh": (2, {"evalsha": 1, "get": 1, "set": 1, "xadd": 1}),
    # session live (EXISTS) + the user (HGETALL), pipelined.
    "me": (1, {"exists": 1, "hgetall": 1}),
    # the rate limit; replay claim SET NX; session SET + event XADD, pipelined.
    "custom_token": (3, {"incrby": 2, "expire": 2, "set": 2, "xadd": 1}),
    # as custom-token, plus the disabled-user EXISTS beside the claim (§5.2
    # applies §4.2 steps 2–4), plus the HTTP call to the tenant endpoint.
    "inapp": (3, {"incrby": 2, "expire": 2, "set": 2, "exists": 1, "xadd": 1}),
}

# The contract's atomic steps, as small as they can be.
CONSUME_STATE = """
local record = redis.call('GETDEL', KEYS[1])
if record then redis.call('SET', KEYS[2], '1', 'PX', ARGV[1]) end
return record
"""

# A session: current hash (64) .. previous hash (64) .. rotated-at ms (13) .. claims.
# ARGV: presented hash, successor hash, now ms, retry grace ms.
ROTATE = """
local s = redis.call('GET', KEYS[1])
if not s then return false end
local claims = string.sub(s, 142)
if string.sub(s, 1, 64) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2] .. ARGV[1] .. ARGV[3] .. claims, 'KEEPTTL')
  return claims
end
if string.sub(s, 65, 128) == ARGV[1]
   and tonumber(ARGV[3]) - tonumber(string.sub(s, 129, 141)) <= tonumber(ARGV[4]) then
  return claims
end
redis.call('DEL', KEYS[1])
return false
"""

SESSION_TTL = 30 * 24 * 3600
# The rate limit's fixed window and its caps: never reached by the timing loops
# (the comparison is the work, not a refusal).
RATE_WINDOW = 60
RATE_CAP = 10**12
NO_HASH = "0" * 64
OIDC_SCOPE = "openid profile email"


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def client_from_url(url: str) -> redis.Redis | RedisCluster:
    """Plain redis-py: a client, or a cluster client for ``redis+cluster://``."""
    if is_cluster_url(url):
        nodes, options = parse_cluster_url(url)
        return RedisCluster(startup_nodes=nodes, **options)
    return redis.Redis.from_url(url)


class ContractFloor:
    """Each endpoint's contract minimum; keys under a prefix of their own."""

    def __init__(self, redis_url: str, app_id: str, secret: bytes, iterations: int = 2000,
                 events_key: str | None = None) -> None:
        self.redis = client_from_url(redis_url)
        self.iterations = iterations
        self.app_id = app_id
        self.secret = secret
        self.prefix = f"cfloor{uuid.uuid4().hex[:6]}"
        self.tag = "{" + app_id + "}"
        self.events = events_key or f"{self.prefix}:{{events}}"
        self.ec_key = ec.generate_private_key(ec.SECP256R1())
        self.ec_public = self.ec_key.public_key()
        self.successor_key = secrets.token_bytes(32)
        self.consume = self.redis.register_script(CONSUME_STATE)
        self.rotate = self.redis.register_script(ROTATE)
        self.issuer = "http://127.0.0.1/v1/apps/" + app_id
        self.user_id = str(uuid.uuid5(uuid.NAMESPACE_URL, app_id + "/1001"))
        self.redis.hset(self.key("user", self.user_id), mapping={
            "external_id": "1001", "created_at": "0", "last_login_at": "0",
            "custom": '{"plan":"pro"}', "profile": '{"name":"User 1"}', "disabled": "0"})
        self.access_token = self.es256_sign(self.access_claims("s" * 32))
        self.state = self.code = self.refresh_token = ""
        self.tenant_tokens: list[str] = []
        # The client's PKCE pair: computing the challenge is the client's work.
        self.verifier = secrets.token_urlsafe(48)
        self.challenge = _b64(hashlib.sha256(self.verifier.encode()).digest())

    def key(self, *parts: str) -> str:
        return ":".join((self.prefix, self.tag, *parts))

    def pipeline(self):
        return self.redis.pipeline(transaction=False)

    # -- crypto ----------------------------------------------------------------
    def hs256_sign(self, claims: dict, typ: str = "JWT") -> str:
        header = _b64(b'{"alg":"HS256","typ":"%s"}' % typ.encode())
        signing_input = header + "." + _b64(json.dumps(claims, separators=(",", ":")).encode())
        mac = hmac.new(self.secret, signing_input.encode(), hashlib.sha256).digest()
        return signing_input + "." + _b64(mac)

    def hs256_verify(self, token: str) -> tuple[dict, bytes]:
        """The claims and the signature's bytes (the replay digest's input)."""
        signing_input, _, signature = token.rpartition(".")
        expected = hmac.new(self.secret, signing_input.encode(), hashlib.sha256).digest()
        raw = _b64decode(signature)
        if not hmac.compare_digest(expected, raw):
            raise ValueError("signature")
        header, _, payload = signing_input.partition(".")
        if json.loads(_b64decode(header)).get("alg") != "HS256":
            raise ValueError("alg")
        return json.loads(_b64decode(payload)), raw

    def es256_sign(self, claims: dict, typ: str = "at+jwt") -> str:
        header = _b64(b'{"alg":"ES256","kid":"k","typ":"%s"}' % typ.encode())
        signing_input = header + "." + _b64(json.dumps(claims, separators=(",", ":")).encode())
        r, s = decode_dss_signature(self.ec_key.sign(signing_input.encode(),
                                                     ec.ECDSA(hashes.SHA256())))
        return signing_input + "." + _b64(r.to_bytes(32, "big") + s.to_bytes(32, "big"))

    def es256_verify(self, token: str) -> dict:
        signing_input, _, signature = token.rpartition(".")
        raw = _b64decode(signature)
        self.ec_public.verify(encode_dss_signature(int.from_bytes(raw[:32], "big"),
                                                   int.from_bytes(raw[32:], "big")),
                              signing_input.encode(), ec.ECDSA(hashes.SHA256()))
        return json.loads(_b64decode(signing_input.split(".")[1]))

    def access_claims(self, sid: str, scope: str = "") -> dict:
        now = int(time.time())
        claims = {"iss": self.issuer, "aud": self.app_id, "sub": self.user_id, "ext": "1001",
                  "sid": sid, "iat": now, "exp": now + 900, "jti": secrets.token_hex(16)}
        if scope:
            claims["scope"] = scope
        return claims

    def event(self, kind: str) -> dict:
        return {"event": json.dumps({
            "type": kind, "app_id": self.app_id, "user_id": self.user_id, "external_id": "1001",
            "ip": "127.0.0.1", "at_ms": int(time.time() * 1000), "id": str(uuid.uuid4())})}

    # -- the endpoints ---------------------------------------------------------
    def rate_limit(self, address: str = "127.0.0.1") -> None:
        """Every login entry point is limited per app and client address, and
        per app (protocol.md, "Rate limits": 429 ``rate_limited``): the two
        counters of a fixed window, counted in one pipeline before anything
        the request would write."""
        window = str(int(time.time()) // RATE_WINDOW)
        pipe = self.pipeline()
        for key in (self.key("rl", address, window), self.key("rl", window)):
            pipe.incr(key)
            pipe.expire(key, 2 * RATE_WINDOW, nx=True)
        per_address, _, per_app, _ = pipe.execute()
        if max(per_address, per_app) > RATE_CAP:
            raise ValueError("rate_limited")

    def authorize(self, oidc: bool = False) -> str:
        """The rate limit; state SET + event XADD; the request token (HS256),
        the binding hash."""
        self.rate_limit()
        state = f"{self.app_id}.{secrets.token_urlsafe(24)}"
        request_token = self.hs256_sign({"app_id": self.app_id, "iat": int(time.time()),
                                         "exp": int(time.time()) + 300,
                                         "jti": secrets.token_hex(16)}, typ="bk-request+jwt")
        record = json.dumps({"redirect_uri": "https://app.example.com/callback",
                             "client_state": "s" * 32, "code_challenge": self.challenge,
                             "scope": OIDC_SCOPE if oidc else "",
                             "nonce": "n" * 32 if oidc else None})
        self.binding = _sha(state)  # the cookie's hash of the state
        pipe = self.pipeline()
        pipe.set(self.key("state", state), record, ex=600)
        pipe.xadd(self.events, self.event("login.started"))
        pipe.execute()
        self.state = state
        return request_token

    def tenant_token(self) -> str:
        """What the tenant endpoint sends back, signed beforehand: its signing
        is the tenant's CPU, not the service's. (No ``state`` claim: it is
        optional, and the state is only known inside the timed loop.)"""
        return self.hs256_sign({"user_id": 1001, "iat": int(time.time()),
                                "jti": secrets.token_hex(16), "custom": {"plan": "pro"}})

    def callback(self) -> str:
        """Consume the state; verify the tenant's token; claim it and check the
        user; code SET + event XADD."""
        state, token = self.state, self.tenant_tokens.pop()
        if not hmac.compare_digest(self.binding, _sha(state)):
            raise ValueError("state_not_bound")
        record = self.consume(keys=[self.key("state", state), self.key("state-used", state)],
                              args=[600_000])
        if record is None:
            raise ValueError("state_unknown")
        claims, signature = self.hs256_verify(token)
        if claims.get("state", state) != state:
            raise ValueError("claims_invalid")
        external_id = str(claims["user_id"])
        user_id = str(uuid.uuid5(uuid.NAMESPACE_URL, self.app_id + "/" + external_id))
        pipe = self.pipeline()
        pipe.set(self.key("replay", hashlib.sha256(signature).hexdigest()), "1", nx=True,
                 ex=86_400)
        pipe.exists(self.key("disabled", user_id))
        claimed, disabled = pipe.execute()
        if not claimed or disabled:
            raise ValueError("token_replayed or user_disabled")
        attempt = json.loads(record)
        code = secrets.token_urlsafe(32)
        pipe = self.pipeline()
        pipe.set(self.key("code", _sha(code)), json.dumps({
            "user_id": user_id, "external_id": external_id,
            "redirect_uri": attempt["redirect_uri"], "code_challenge": attempt["code_challenge"],
            "scope": attempt["scope"], "nonce": attempt["nonce"],
            "auth_time": int(time.time()), "custom": claims.get("custom")}), ex=60)
        pipe.xadd(self.events, self.event("login.succeeded"))
        pipe.execute()
        self.code = code
        return code

    def new_session(self, pipe, user_id: str, external_id: str, scope: str = "") -> tuple[
            str, str]:
        """Queue the session SET on ``pipe``; its id and first refresh token."""
        sid = secrets.token_hex(16)
        refresh_token = f"{sid}.{secrets.token_urlsafe(32)}"
        claims = json.dumps({"user_id": user_id, "external_id": external_id, "scope": scope})
        pipe.set(self.key("sess", sid), _sha(refresh_token) + NO_HASH + "0" * 13 + claims,
                 ex=SESSION_TTL)
        return sid, refresh_token

    def exchange(self) -> dict:
        """GETDEL of the code; PKCE S256; session SET + event XADD; ES256 sign
        (and the ID token for an OpenID Connect login)."""
        record = self.redis.getdel(self.key("code", _sha(self.code)))
        if record is None:
            raise ValueError("code_invalid")
        attempt = json.loads(record)
        challenge = _b64(hashlib.sha256(self.verifier.encode()).digest())
        if (not hmac.compare_digest(challenge, attempt["code_challenge"])
                or attempt["redirect_uri"] != "https://app.example.com/callback"):
            raise ValueError("pkce_invalid")
        oidc = bool(attempt["scope"])
        pipe = self.pipeline()
        sid, refresh_token = self.new_session(pipe, attempt["user_id"], attempt["external_id"],
                                              attempt["scope"])
        pipe.xadd(self.events, self.event("token.issued"))
        if oidc:
            pipe.hgetall(self.key("user", attempt["user_id"]))
        pipe.execute()
        access_token = self.es256_sign(self.access_claims(sid, attempt["scope"]))
        answer = {"access_token": access_token, "refresh_token": refresh_token}
        if oidc:
            now = int(time.time())
            answer["id_token"] = self.es256_sign({
                "iss": self.issuer, "sub": attempt["user_id"], "aud": self.app_id,
                "exp": now + 900, "iat": now, "auth_time": attempt["auth_time"], "sid": sid,
                "nonce": attempt["nonce"],
                "at_hash": _b64(hashlib.sha256(access_token.encode()).digest()[:16])},
                typ="JWT")
        self.refresh_token = refresh_token
        return answer

    def refresh(self) -> str:
        """Rotate atomically (the successor derived, so a retry gets the same);
        event XADD; ES256 sign."""
        presented = self.refresh_token
        sid = presented.partition(".")[0]
        mac = hmac.new(self.successor_key, presented.encode(), hashlib.sha256).digest()
        successor = sid + "." + _b64(mac)
        claims = self.rotate(keys=[self.key("sess", sid)],
                             args=[_sha(presented), _sha(successor), int(time.time() * 1000),
                                   10_000])
        if claims is None:
            raise ValueError("refresh_invalid")
        session = json.loads(claims)
        self.redis.xadd(self.events, self.event("token.refreshed"))
        self.es256_sign(self.access_claims(sid, session["scope"]))
        self.refresh_token = successor
        return successor

    def me(self) -> dict:
        """ES256 verify; the session's liveness and the user, one round trip."""
        claims = self.es256_verify(self.access_token)
        if claims["exp"] < time.time() or claims["aud"] != self.app_id:
            raise ValueError("claims_invalid")
        pipe = self.pipeline()
        pipe.exists(self.key("sess", claims["sid"]))
        pipe.hgetall(self.key("user", claims["sub"]))
        live, user = pipe.execute()
        if not live:
            raise ValueError("session_revoked")
        return {"id": claims["sub"], "app_id": self.app_id,
                "external_id": user[b"external_id"].decode(),
                "custom": json.loads(user[b"custom"]), "profile": json.loads(user[b"profile"]),
                "created_at": user[b"created_at"].decode(),
                "last_login_at": user[b"last_login_at"].decode()}

    def _login(self, external_id: str, replay_key: str, check_disabled: bool) -> dict:
        """The shared tail of the one-request logins: claim, session, event, sign."""
        user_id = str(uuid.uuid5(uuid.NAMESPACE_URL, self.app_id + "/" + external_id))
        if check_disabled:
            pipe = self.pipeline()
            pipe.set(self.key("replay", replay_key), "1", nx=True, ex=3600)
            pipe.exists(self.key("disabled", user_id))
            claimed, disabled = pipe.execute()
        else:
            claimed, disabled = self.redis.set(self.key("replay", replay_key), "1", nx=True,
                                               ex=3600), 0
        if not claimed or disabled:
            raise ValueError("token_replayed or user_disabled")
        pipe = self.pipeline()
        sid, refresh_token = self.new_session(pipe, user_id, external_id)
        pipe.xadd(self.events, self.event("login.succeeded"))
        pipe.execute()
        return {"access_token": self.es256_sign(self.access_claims(sid)),
                "refresh_token": refresh_token}

    def custom_token(self, token: str) -> dict:
        """The rate limit; HS256 verify of the tenant's token; replay claim (by
        jti); session + event; ES256 sign."""
        self.rate_limit()
        claims, _signature = self.hs256_verify(token)
        if not (claims["iat"] <= time.time() + 30 < claims["exp"] + 30):
            raise ValueError("claims_invalid")
        return self._login(claims["sub"], claims["jti"], check_disabled=False)

    def inapp(self, call_tenant: Callable[[str, str], str]) -> dict:
        """Sign the request token, call the tenant endpoint, then as a custom
        token with the disabled-user check (§5.2: steps 2–4 of the callback).
        The user in ``data`` is the example tenant endpoint's."""
        self.rate_limit()
        state = f"{self.app_id}.{secrets.token_urlsafe(24)}"
        request_token = self.hs256_sign({"app_id": self.app_id, "iat": int(time.time()),
                                         "exp": int(time.time()) + 300,
                                         "jti": secrets.token_hex(16),
                                         "data": {"id": "alice", "passphrase": "wonderland"}},
                                        typ="bk-request+jwt")
        token = call_tenant(state, request_token)
        claims, signature = self.hs256_verify(token)
        if claims.get("state", state) != state:
            raise ValueError("claims_invalid")
        external_id = str(claims["user_id"])
        return self._login(external_id, hashlib.sha256(signature).hexdigest(),
                           check_disabled=True)

    # -- timing ----------------------------------------------------------------
    def time(self, step: Callable[[], object], repeats: int = 3) -> float:
        """CPU ms per call of ``step`` after a warm-up, the best of ``repeats``
        loops (contention on a shared machine only ever adds CPU time)."""
        for _ in range(min(50, self.iterations)):
            step()
        best = float("inf")
        for _ in range(repeats):
            started = time.process_time()
            for _ in range(self.iterations):
                step()
            best = min(best, (time.process_time() - started) * 1000 / self.iterations)
        return best

    def custom_token_request(self) -> str:
        """A fresh token as the tenant's server signs it (outside the timing)."""
        now = int(time.time())
        return self.hs256_sign({"sub": "user-1", "iat": now, "exp": now + 300,
                                "jti": secrets.token_hex(16), "custom": {"plan": "pro"},
                                "skyprofile": {"name": "User"}})

    def cleanup(self) -> None:
        for key in self.redis.scan_iter(match=f"{self.prefix}:*", count=1000):
            self.redis.delete(key)
        self.redis.close()


def tenant_caller(port: int) -> Callable[[str, str], str]:
    """The in-app login's call to the tenant endpoint: a connection per call,
    as the service opens one; the token from the redirect's ``Location``."""
    import http.client
    from urllib.parse import urlencode

    def call(state: str, request_token: str) -> str:
        tenant = http.client.HTTPConnection("127.0.0.1", port)
        try:
            tenant.request("GET", "/?" + urlencode({"redirect_uri": "http://x/cb?flow=custom",
                                                    "state": state, "token": request_token}))
            reply = tenant.getresponse()
            reply.read()
            return reply.getheader("Location", "").rpartition("token=")[2].partition("&")[0]
        finally:
            tenant.close()

    return call


def measure_floor(floor: ContractFloor, tenant_port: int | None = None) -> dict[str, dict]:
    """CPU ms per request of each scenario's contract minimum (names as
    bench/floor.py's, so the runner pairs them)."""
    tokens: list[str] = []

    def custom() -> None:
        floor.custom_token(tokens.pop())

    def dance(oidc: bool = False) -> None:
        floor.authorize(oidc)
        floor.callback()
        floor.exchange()

    runs = min(50, floor.iterations) + 3 * floor.iterations  # warm-up + timed loops
    authorize = floor.time(floor.authorize)
    floor.tenant_tokens = [floor.tenant_token() for _ in range(2 * runs + 1)]
    redirect = floor.time(dance)
    oidc = floor.time(lambda: dance(oidc=True))
    floor.authorize()
    floor.callback()
    floor.exchange()  # a session to refresh
    refresh = floor.time(floor.refresh)
    floor.access_token = floor.es256_sign(floor.access_claims(floor.refresh_token[:32]))
    me = floor.time(floor.me)
    # The tenant's own signing is not the service's work: tokens made beforehand.
    tokens.extend(floor.custom_token_request() for _ in range(runs))
    custom_ms = floor.time(custom)
    found = {
        "authorize": {"ms_per_request": authorize, "requests": 1},
        "redirect": {"ms_per_request": redirect / 3, "ms_per_login": redirect, "requests": 3},
        "oidc_redirect": {"ms_per_request": oidc / 3, "ms_per_login": oidc, "requests": 3},
        "custom_token": {"ms_per_request": custom_ms, "requests": 1},
        "refresh": {"ms_per_request": refresh, "requests": 1},
        "me": {"ms_per_request": me, "requests": 1},
    }
    if tenant_port is not None:
        call = tenant_caller(tenant_port)
        found["inapp"] = {"ms_per_request": floor.time(lambda: floor.inapp(call)),
                          "requests": 1}
    return found


def measure(topology, iterations: int = 2000) -> dict[str, dict]:
    """The contract floor on the benchmark's Redis, beside ``bench.floor.measure``."""
    floor = ContractFloor(topology.redis_url, topology.app_id,
                          topology.secrets["custom_auth"].encode(), iterations)
    try:
        return measure_floor(floor, topology.tenant_port)
    finally:
        floor.cleanup()
