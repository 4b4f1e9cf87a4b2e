"""The floor: each scenario's own Redis round trips and crypto operations, in a
tight loop in one process — no HTTP, no framework, no application code.

What a request of each endpoint must do against Redis (the same commands,
keys and value sizes as the service sends, grouped into the same round
trips) and the cryptography it must compute, timed as CPU time of this
process (``time.process_time``), which is what the service's web CPU per
request is compared with. Decrypting secrets and loading keys is not part
of the floor: the service keeps them in memory.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import secrets
import time
import uuid
from collections.abc import Callable
from urllib.parse import urlencode

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

# Lua bodies of the same size and work as the service's scripts.
from saas.flows.nonces import _CONSUME
from saas.ratelimit import _BUCKETS
from saas.redis import pipeline as lean_pipeline
from saas.redis import redis_from_url
from saas.tokens.login_sessions import _ROTATE_AND_READ
from saas.users.pending import _MERGE

# The session-create script's text as saas/tokens/login_sessions.py runs it
# (KEYS: session, first refresh token, the user's sessions; ARGV: user id,
# external id, expires_at, ttl, sid, scope, auth_time, amr), held here so the
# floor imports no private name for it; tests/unit/test_bench_floor_scripts.py
# keeps the two texts equal, so this floor still replays the service's script.
SESSION_CREATE = """
local ttl = tonumber(ARGV[4])
redis.call('HSET', KEYS[1], 'user_id', ARGV[1], 'external_id', ARGV[2], 'revoked', '0',
           'expires_at', ARGV[3], 'scope', ARGV[6], 'auth_time', ARGV[7], 'amr', ARGV[8])
redis.call('EXPIRE', KEYS[1], ttl)
redis.call('HSET', KEYS[2], 'sid', ARGV[5])
redis.call('EXPIRE', KEYS[2], ttl)
redis.call('SADD', KEYS[3], ARGV[5])
-- The set lives as long as its longest session (EXPIRE GT, or NX if it has none).
local left = redis.call('TTL', KEYS[3])
if left < ttl then redis.call('EXPIRE', KEYS[3], ttl) end
return 1
"""

OIDC_SCOPES = ("openid", "profile", "email")  # the OIDC redirect login's granted scopes


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class Floor:
    """The operations, with keys under a prefix of their own."""

    def __init__(self, topology, iterations: int) -> None:
        self.iterations = iterations
        self.redis = redis_from_url(topology.redis_url)
        self.prefix = f"floor{uuid.uuid4().hex[:6]}"
        self.app_id = topology.app_id
        self.tag = "{" + self.app_id + "}"
        self.secret = topology.secrets["custom_auth"].encode()
        self.ec_key = ec.generate_private_key(ec.SECP256R1())
        self.ec_public = self.ec_key.public_key()
        self.consume = self.redis.register_script(_CONSUME)
        self.buckets = self.redis.register_script(_BUCKETS)
        self.rotate = self.redis.register_script(_ROTATE_AND_READ)
        self.create = self.redis.register_script(SESSION_CREATE)
        self.config_key = f"{topology.prefix}:{self.tag}:config"
        self.merge = self.redis.register_script(_MERGE)
        self.event = json.dumps({"v": 1, "id": str(uuid.uuid4()), "audit": [{
            "type": "login.succeeded", "outcome": "success", "app_id": self.app_id,
            "tenant_id": str(uuid.uuid4()), "reason": None, "user_id": str(uuid.uuid4()),
            "external_id": "1001", "ip": "127.0.0.1", "user_agent": None,
            "request_id": uuid.uuid4().hex, "at_ms": 0, "details": {"attempt_id": "x" * 32,
                                                                     "flow": "redirect"},
            "id": str(uuid.uuid4())}], "user": {"app_uuid": str(uuid.uuid4()),
                                                "app_id": self.app_id, "user_id": "u" * 36,
                                                "external_id": "1001", "login_at_ms": 0,
                                                "custom": {"plan": "pro"}, "profile": None}})

    def pipeline(self):
        return lean_pipeline(self.redis)

    def key(self, *parts: str) -> str:
        return ":".join((self.prefix, self.tag, *parts))

    # -- crypto ----------------------------------------------------------------
    def hs256_sign(self, claims: dict) -> str:
        signing_input = _b64(b'{"alg":"HS256","typ":"bk-request+jwt"}') + "." + _b64(
            json.dumps(claims, separators=(",", ":")).encode())
        return signing_input + "." + _b64(hmac.new(self.secret, signing_input.encode(),
                                                   hashlib.sha256).digest())

    def hs256_verify(self, token: str) -> dict:
        signing_input, _, signature = token.rpartition(".")
        expected = hmac.new(self.secret, signing_input.encode(), hashlib.sha256).digest()
        if not hmac.compare_digest(_b64(expected), signature):
            raise ValueError("signature")
        payload = signing_input.split(".")[1]
        return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))

    def es256_sign(self, claims: dict, typ: str = "at+jwt") -> str:
        header = b'{"alg":"ES256","kid":"k","typ":"%s"}' % typ.encode()
        signing_input = (_b64(header) + "."
                         + _b64(json.dumps(claims, separators=(",", ":")).encode()))
        r, s = decode_dss_signature(self.ec_key.sign(signing_input.encode(),
                                                     ec.ECDSA(hashes.SHA256())))
        return signing_input + "." + _b64(r.to_bytes(32, "big") + s.to_bytes(32, "big"))

    def es256_verify(self, token: str) -> None:
        from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

        signing_input, _, signature = token.rpartition(".")
        raw = base64.urlsafe_b64decode(signature + "==")
        self.ec_public.verify(encode_dss_signature(int.from_bytes(raw[:32], "big"),
                                                   int.from_bytes(raw[32:], "big")),
                              signing_input.encode(), ec.ECDSA(hashes.SHA256()))

    def access_claims(self, scope: str = "") -> dict:
        now = int(time.time())
        claims = {"iss": "http://127.0.0.1/v1/apps/" + self.app_id, "aud": self.app_id,
                  "sub": str(uuid.uuid4()), "ext": "1001", "sid": uuid.uuid4().hex, "iat": now,
                  "exp": now + 900, "jti": uuid.uuid4().hex}
        if scope:
            claims["scope"] = scope
        return claims

    def id_token(self, access_token: str, nonce: str) -> str:
        """OIDC: at_hash (left half of the access token's SHA-256), ES256 signature."""
        now = int(time.time())
        at_hash = _b64(hashlib.sha256(access_token.encode("ascii")).digest()[:16])
        return self.es256_sign({
            "iss": "http://127.0.0.1/v1/apps/" + self.app_id, "sub": str(uuid.uuid4()),
            "aud": self.app_id, "azp": self.app_id, "exp": now + 900, "iat": now,
            "auth_time": now, "sid": uuid.uuid4().hex, "at_hash": at_hash, "amr": ["ext"],
            "nonce": nonce}, typ="JWT")

    # -- the round trips each endpoint makes ---------------------------------------
    # Every endpoint first reads the app's settings (Redis is their source of
    # truth; parsing is cached in process, so only the GET is floor).
    def config(self) -> None:
        self.redis.get(self.config_key)

    def rate_limit(self) -> None:
        self.buckets(keys=[self.key("rl", "login_ip", "a" * 24),
                           self.key("rl", "login_app", "all")],
                     args=[time.time(), 1, 1e-9, 1e6, 1e6, 1e6, 1e6])

    def claim_and_check(self, digest: str) -> None:
        pipe = self.pipeline()
        pipe.set(self.key("token-used", digest), "1", nx=True, ex=60)
        pipe.exists(self.key("user-disabled", "u"))
        pipe.execute()

    def authorize(self, oidc: bool = False) -> None:
        self.config()
        self.rate_limit()
        state = f"{self.app_id}.{secrets.token_urlsafe(24)}"
        binding = _sha("bk-state-binding:" + state)
        # The record as saas.flows.entry.start_attempt writes it.
        record = json.dumps({"redirect_uri": "https://app.example.com/callback",
                             "client_state": "s" * 32, "code_challenge": "c" * 43,
                             "attempt_id": uuid.uuid4().hex, "started_at": 0,
                             "flow": "redirect", "data": None, "response_mode": "query",
                             "scopes": list(OIDC_SCOPES) if oidc else [],
                             "nonce": "n" * 32 if oidc else None, "host": "127.0.0.1:6543"})
        self.hs256_sign({"app_id": self.app_id, "iat": 0, "exp": 300, "jti": uuid.uuid4().hex})
        pipe = self.pipeline()
        pipe.set(self.key("state", state), record, ex=600)
        pipe.xadd(self.key("events"), {"event": self.event})
        pipe.execute()
        self.last_state = (state, binding, record)

    def login_writes(self, pipe) -> None:
        pipe.xadd(self.key("events"), {"event": self.event})
        # ARGV as saas.users.pending's merge script takes them for a login
        # (the example tenant's user: custom plan and lang).
        self.merge(keys=[self.key("pending", "u")],
                   args=[600, 1, 1, "", "c.plan", "v" * 24, '"pro"', "c.lang", "v" * 24,
                         '"en"'], client=pipe)

    def callback(self, oidc: bool = False) -> None:
        state, binding, _record = self.last_state
        self.config()
        hmac.compare_digest(binding, _sha("bk-state-binding:" + state))
        token = self.hs256_sign({"user_id": 1001, "custom": {"plan": "pro"}, "state": state,
                                 "iat": 0, "exp": 60, "jti": uuid.uuid4().hex})
        self.consume(keys=[self.key("state", state), self.key("state-used", state)],
                     args=[600000, "mark"])
        claims = self.hs256_verify(token)
        uuid.uuid5(uuid.NAMESPACE_URL, str(claims["user_id"]))
        self.claim_and_check(_sha(token.rpartition(".")[2]))
        code = secrets.token_urlsafe(32)
        pipe = self.pipeline()
        # The payload as saas.flows.login.issue_login_code writes it.
        pipe.set(self.key("code", _sha(code)), json.dumps({
            "user_id": "u" * 36, "external_id": "1001",
            "redirect_uri": "https://app.example.com/callback", "code_challenge": "c" * 43,
            "attempt_id": uuid.uuid4().hex, "auth_time": 0, "sid": uuid.uuid4().hex,
            "scopes": list(OIDC_SCOPES) if oidc else [], "nonce": "n" * 32 if oidc else None,
            "amr": ["ext"]}), ex=60)
        self.login_writes(pipe)
        pipe.execute()
        self.last_code = code

    def token(self, oidc: bool = False) -> None:
        code = self.last_code
        self.config()
        verifier = secrets.token_urlsafe(48)
        _b64(hashlib.sha256(verifier.encode()).digest())
        self.consume(keys=[self.key("code", _sha(code)), self.key("code-used", _sha(code))],
                     args=[600000, "keep"])
        self.session_and_access(self.pipeline(), oidc=oidc)

    def session_and_access(self, pipe, oidc: bool = False) -> None:
        sid = uuid.uuid4().hex
        refresh = f"{sid}.{secrets.token_urlsafe(32)}"
        scope = " ".join(OIDC_SCOPES) if oidc else ""
        # ARGV as saas.tokens.login_sessions.SessionStore.create sends them.
        self.create(keys=[self.key("sess", sid), self.key("rt", _sha(refresh)),
                          self.key("user-sessions", "u")],
                    args=["u" * 36, "1001", "0", 3600, sid, scope,
                          int(time.time()) if oidc else 0, '["ext"]' if oidc else ""],
                    client=pipe)
        pipe.xadd(self.key("events"), {"event": self.event})
        if oidc:  # profile/email granted: the user's overlay rides the same round trip
            pipe.hgetall(self.key("pending", "u"))
        pipe.execute()
        access_token = self.es256_sign(self.access_claims(scope))
        if oidc:
            self.id_token(access_token, "n" * 32)
        self.last_refresh = refresh

    def custom_token(self) -> None:
        token = self.hs256_sign({"sub": "user-1", "iat": 0, "exp": 300, "jti": uuid.uuid4().hex,
                                 "skyprofile": {"name": "User"}, "custom": {"plan": "pro"}})
        self.config()
        self.rate_limit()
        claims = self.hs256_verify(token)
        uuid.uuid5(uuid.NAMESPACE_URL, claims["sub"])
        self.claim_and_check(_sha(claims["jti"]))
        pipe = self.pipeline()
        self.login_writes(pipe)
        self.session_and_access(pipe)

    def refresh(self) -> None:
        presented = self.last_refresh
        self.config()
        sid = presented.partition(".")[0]
        mac = hmac.new(b"k" * 32, presented.encode(), hashlib.sha256).digest()
        successor = sid + "." + _b64(mac)
        self.rotate(keys=[self.key("rt", _sha(presented)), self.key("sess", sid),
                          self.key("rt", _sha(successor))],
                    args=[int(time.time() * 1000), 10000, _sha(successor), sid])
        self.redis.xadd(self.key("events"), {"event": self.event})
        self.es256_sign(self.access_claims())
        self.last_refresh = successor

    def me(self) -> None:
        # The user's overlay in Redis is complete after their first /me (it
        # holds the stored row then): no PostgreSQL read on the hot path.
        self.config()
        self.es256_verify(self.access_token)
        pipe = self.pipeline()
        pipe.hget(self.key("sess", "s"), "revoked")
        pipe.hgetall(self.key("overlay"))
        pipe.execute()

    def inapp(self, tenant) -> None:
        self.config()
        self.rate_limit()
        state = f"{self.app_id}.{secrets.token_urlsafe(24)}"
        request_token = self.hs256_sign({"app_id": self.app_id, "iat": 0, "exp": 300,
                                         "jti": uuid.uuid4().hex, "data": {"id": "alice"}})
        tenant.request("GET", "/?" + urlencode({"redirect_uri": "http://x/cb?flow=custom",
                                                "state": state, "token": request_token}))
        reply = tenant.getresponse()
        reply.read()
        token = reply.getheader("Location", "").rpartition("token=")[2].partition("&")[0]
        with contextlib.suppress(ValueError):
            self.hs256_verify(token)  # signed with the app's secret: the floor's cost either way
        uuid.uuid5(uuid.NAMESPACE_URL, "1001")
        self.claim_and_check(_sha(token[-43:]))
        pipe = self.pipeline()
        self.login_writes(pipe)
        self.session_and_access(pipe)

    def time(self, step: Callable[[], None], repeats: int = 3) -> float:
        """CPU ms per call of ``step`` after a warm-up: the best of ``repeats``
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

    def cleanup(self) -> None:
        for key in self.redis.scan_iter(match=f"{self.prefix}:*", count=1000):
            self.redis.delete(key)


def measure(topology, iterations: int = 2000) -> dict[str, dict]:
    """CPU ms per request of each scenario's floor."""
    import http.client
    import urllib.request

    # One request fills the app's settings cache; the floor reads that entry.
    urllib.request.urlopen(f"http://127.0.0.1:{topology.web_port}/v1/apps/"
                           f"{topology.app_id}/.well-known/jwks.json", timeout=10).read()
    floor = Floor(topology, iterations)
    floor.access_token = floor.es256_sign(floor.access_claims())
    try:
        authorize = floor.time(floor.authorize)

        def dance() -> None:
            floor.authorize()
            floor.callback()
            floor.token()

        redirect = floor.time(dance)

        def oidc_dance() -> None:
            floor.authorize(oidc=True)
            floor.callback(oidc=True)
            floor.token(oidc=True)

        # As the service's user overlay is after the user's first ID token
        # with profile claims (complete: no PostgreSQL read from then on).
        floor.redis.hset(floor.key("pending", "u"), "complete", "1")
        oidc_redirect = floor.time(oidc_dance)
        custom = floor.time(floor.custom_token)
        refresh = floor.time(floor.refresh)
        floor.redis.hset(floor.key("overlay"), mapping={
            "complete": "1", "first_login": "1", "last_login": "2",
            "c.plan": "0" * 24 + '|"pro"', "p.name": "0" * 24 + '|"User 1"'})
        me = floor.time(floor.me)
        tenant = http.client.HTTPConnection("127.0.0.1", topology.tenant_port)

        def inapp() -> None:
            try:
                floor.inapp(tenant)
            finally:
                tenant.close()  # the service opens a connection per back-channel call

        inapp_ms = floor.time(inapp)
    finally:
        floor.cleanup()
    return {
        "authorize": {"ms_per_request": authorize, "requests": 1},
        # Three service requests per login: the ratio is per request.
        "redirect": {"ms_per_request": redirect / 3, "ms_per_login": redirect, "requests": 3},
        "oidc_redirect": {"ms_per_request": oidc_redirect / 3, "ms_per_login": oidc_redirect,
                          "requests": 3},
        "custom_token": {"ms_per_request": custom, "requests": 1},
        "refresh": {"ms_per_request": refresh, "requests": 1},
        "me": {"ms_per_request": me, "requests": 1},
        "inapp": {"ms_per_request": inapp_ms, "requests": 1},
    }
