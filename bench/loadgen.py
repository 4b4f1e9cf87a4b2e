"""The load generator: one process, asyncio (uvloop when installed), N virtual users.

    python -m bench.loadgen FIXTURE.json SCENARIO --duration 10 --warmup 2 --users 4

Each virtual user repeats its scenario as fast as the server answers. After
``--warmup`` seconds the generator prints ``start`` (the runner snapshots the
server processes' CPU and Redis counters), records ``--duration`` seconds,
prints ``stop`` and then one JSON line: completed iterations and requests,
per-step latencies (p50/p95/p99, ms), errors with examples, and its own CPU.

Scenarios: ``redirect`` (authorize → tenant endpoint → callback → token with
PKCE), ``oidc_redirect`` (the same with ``response_type=code``, ``client_id``,
``scope=openid profile email`` and a nonce; the token response must carry an
ID token with that nonce and the access token's ``at_hash``), ``authorize``,
``custom_token``, ``refresh``, ``me``, ``inapp`` (back-channel login),
``exchange`` and ``empty`` (a bare Pyramid app, for the reference cost).

``exchange`` is the code exchange alone (``POST /token`` with PKCE), as
``bench.peer_loadgen``'s ``peer_exchange`` measures the peer's: users mint
a batch of codes each (redirect logins up to the code, outside any measured
window), then spend them all inside a ``start``/``stop`` window, repeated
until ``--duration`` seconds of exchanges were measured. After printing
``start`` or ``stop`` it waits for a line on stdin, so the runner can let
the sync drain the minting's events and take its snapshot first.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import hmac
import json
import os
import secrets
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

from bench.http import Connection, Reply

CLIENT_REDIRECT = "https://app.example.com/callback"
TENANT_USER = {"id": "alice", "passphrase": "wonderland"}  # examples/python/tenant_endpoint.py
OIDC_SCOPE = "openid profile email"
CODES_PER_USER = 100  # codes one user mints before an exchange window (codes live 60 s)
FORM = ("Content-Type", "application/x-www-form-urlencoded")
JSON = ("Content-Type", "application/json")


class Failed(Exception):
    """An answer other than the scenario expects: counted as an error."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


_HS256_HEADER = _b64(b'{"alg":"HS256","typ":"JWT"}')


def hs256(secret: str, claims: dict) -> str:
    """A tenant server's custom token (the generator's cost, not the server's)."""
    signing_input = _HS256_HEADER + "." + _b64(json.dumps(claims, separators=(",", ":")).encode())
    mac = hmac.new(secret.encode(), signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + _b64(mac)


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    return verifier, _b64(hashlib.sha256(verifier.encode()).digest())


def _claims(jwt: str) -> dict:
    payload = jwt.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def check_id_token(tokens: dict, nonce: str) -> None:
    """The token response of an OIDC code exchange carries an ID token for this
    login: its nonce, and an at_hash of the access token beside it (the
    signature is the client library's check, not the generator's cost)."""
    id_token = tokens.get("id_token")
    if not id_token:
        raise Failed(f"token: no id_token (scope {tokens.get('scope')!r})")
    claims = _claims(id_token)
    if claims.get("nonce") != nonce:
        raise Failed(f"token: id_token nonce {claims.get('nonce')!r}, sent {nonce!r}")
    digest = hashlib.sha256(tokens["access_token"].encode("ascii")).digest()
    if claims.get("at_hash") != _b64(digest[:16]):
        raise Failed("token: id_token at_hash is not the access token's")


def target_of(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + ("?" + parts.query if parts.query else "")


def expect(reply: Reply, status: int, step: str) -> Reply:
    if reply.status != status:
        raise Failed(f"{step}: {reply.status} {reply.body[:200]!r}")
    return reply


class Recorder:
    def __init__(self) -> None:
        self.recording = False
        self.latencies: dict[str, list[float]] = {}
        self.iterations = 0
        self.requests = 0
        self.errors = 0
        self.examples: list[str] = []
        self.id_tokens = 0  # ID tokens checked (nonce, at_hash) while recording

    async def timed(self, step: str, call: Awaitable[Reply]) -> Reply:
        started = time.perf_counter()
        reply = await call
        if self.recording:
            self.latencies.setdefault(step, []).append(time.perf_counter() - started)
            if step != "tenant":  # only the service's requests count
                self.requests += 1
        return reply

    def error(self, exc: BaseException) -> None:
        if self.recording:
            self.errors += 1
            if len(self.examples) < 5:
                self.examples.append(f"{exc.__class__.__name__}: {exc}"[:300])


class User:
    """One virtual user: its own connections (browser, app server) and state."""

    def __init__(self, fixture: dict, recorder: Recorder) -> None:
        self.fx = fixture
        self.rec = recorder
        self.web = Connection(fixture["web_host"], fixture["web_port"])
        self.tenant = Connection(fixture["tenant_host"], fixture["tenant_port"])
        self.app_path = f"/v1/apps/{fixture['app_id']}"
        self.refresh_token: str | None = None
        self.access_token: str | None = None
        self.codes: list[tuple[str, str, str | None]] = []  # minted for ``exchange``

    # -- scenarios ---------------------------------------------------------
    async def redirect(self) -> None:
        await self._redirect_login(oidc=False)

    async def oidc_redirect(self) -> None:
        """The same login as an OpenID Connect client asks for it: an ID token
        comes back, its nonce the one sent and its at_hash the access token's."""
        await self._redirect_login(oidc=True)

    async def _redirect_login(self, oidc: bool) -> None:
        await self._exchange(*await self._code(oidc), oidc)

    async def _code(self, oidc: bool) -> tuple[str, str, str | None]:
        """A redirect login up to the client's redirect with the code."""
        verifier, challenge = pkce_pair()
        params = {"redirect_uri": CLIENT_REDIRECT, "code_challenge": challenge,
                  "code_challenge_method": "S256", "state": uuid.uuid4().hex}
        nonce = None
        if oidc:
            nonce = secrets.token_urlsafe(16)
            params.update({"response_type": "code", "client_id": self.fx["app_id"],
                           "scope": OIDC_SCOPE, "nonce": nonce})
        started = expect(await self.rec.timed("authorize", self.web.request(
            "GET", f"{self.app_path}/authorize?{urlencode(params)}")), 302, "authorize")
        cookie = started.cookies[0].split(b";", 1)[0].decode() if started.cookies else ""
        tenant_params = dict(parse_qsl(urlsplit(started.header(b"location")).query))
        # The user signs in on the tenant's form (hidden fields + credentials).
        verdict = expect(await self.rec.timed("tenant", self.tenant.request(
            "POST", "/", (FORM,), urlencode({**tenant_params, **TENANT_USER}).encode()
        )), 302, "tenant")
        back = expect(await self.rec.timed("callback", self.web.request(
            "GET", target_of(verdict.header(b"location")), (("Cookie", cookie),))), 302,
            "callback")
        code = dict(parse_qsl(urlsplit(back.header(b"location")).query)).get("code")
        if not code:
            raise Failed(f"callback: no code in {back.header(b'location')[:200]}")
        return code, verifier, nonce

    async def _exchange(self, code: str, verifier: str, nonce: str | None, oidc: bool) -> None:
        body = {"grant_type": "authorization_code", "code": code,
                "redirect_uri": CLIENT_REDIRECT, "code_verifier": verifier}
        if oidc:
            body["client_id"] = self.fx["app_id"]
        reply = expect(await self.rec.timed("token", self.web.request(
            "POST", f"{self.app_path}/token", (FORM,), urlencode(body).encode())), 200, "token")
        if oidc:
            check_id_token(json.loads(reply.body), nonce)
            if self.rec.recording:
                self.rec.id_tokens += 1

    async def authorize(self) -> None:
        """The first step alone (its state is left to expire)."""
        query = urlencode({"redirect_uri": CLIENT_REDIRECT, "code_challenge": pkce_pair()[1],
                           "state": uuid.uuid4().hex})
        expect(await self.rec.timed("authorize", self.web.request(
            "GET", f"{self.app_path}/authorize?{query}")), 302, "authorize")

    def _custom_token(self) -> bytes:
        now = int(time.time())
        n = secrets.randbelow(1000)
        token = hs256(self.fx["custom_token_secret"], {
            "sub": f"user-{n}", "iat": now, "exp": now + 300, "jti": uuid.uuid4().hex,
            "skyprofile": {"name": f"User {n}"}, "custom": {"plan": "pro", "n": n}})
        return json.dumps({"token": token}).encode()

    async def custom_token(self) -> None:
        reply = expect(await self.rec.timed("custom_token", self.web.request(
            "POST", f"{self.app_path}/login/custom-token", (JSON,), self._custom_token())), 200,
            "custom_token")
        tokens = json.loads(reply.body)
        self.refresh_token = tokens["refresh_token"]
        self.access_token = tokens["access_token"]

    async def refresh(self) -> None:
        if self.refresh_token is None:
            await self.custom_token()
        body = "grant_type=refresh_token&refresh_token=" + quote(self.refresh_token, safe="")
        reply = expect(await self.rec.timed("refresh", self.web.request(
            "POST", f"{self.app_path}/token", (FORM,), body.encode())), 200, "refresh")
        self.refresh_token = json.loads(reply.body)["refresh_token"]

    async def me(self) -> None:
        if self.access_token is None:
            await self.custom_token()
        reply = expect(await self.rec.timed("me", self.web.request(
            "GET", f"{self.app_path}/me", (("Authorization", "Bearer " + self.access_token),))),
            200, "me")
        if b'"external_id"' not in reply.body:
            raise Failed("me: no user in the answer")

    async def inapp(self) -> None:
        body = json.dumps({"data": TENANT_USER}).encode()
        expect(await self.rec.timed("inapp", self.web.request(
            "POST", f"{self.app_path}/login/custom", (JSON,), body)), 200, "inapp")

    async def exchange(self) -> None:
        """One minted code spent (``run`` mints them outside the windows)."""
        await self._exchange(*self.codes.pop(), oidc=False)

    async def empty(self) -> None:
        expect(await self.rec.timed("empty", self.web.request("GET", "/")), 200, "empty")


async def _user_loop(user: User, scenario: Callable[[], Awaitable[None]], rec: Recorder,
                     deadline: list[float]) -> None:
    while time.perf_counter() < deadline[0]:
        try:
            started = time.perf_counter()
            await scenario()
            if rec.recording:
                rec.iterations += 1
                rec.latencies.setdefault("iteration", []).append(time.perf_counter() - started)
        except Exception as exc:
            rec.error(exc)
            user.web.close()
            user.tenant.close()
            await asyncio.sleep(0.01)


async def _mark(word: str) -> None:
    """Tell the runner, then wait until it has taken its snapshot."""
    print(word, flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)


async def _phased(crowd: list[User], rec: Recorder, warmup: float, duration: float) -> float:
    """``exchange``: mint codes outside the windows, spend them inside, until
    ``duration`` seconds of exchanges were measured (the warm-up: the same,
    unmeasured). Returns the measured seconds."""

    async def mint(user: User) -> None:
        user.codes = []
        for _ in range(CODES_PER_USER):
            try:
                user.codes.append(await user._code(oidc=False))
            except Exception as exc:  # a failed mint is an error of the run
                rec.errors += 1
                if len(rec.examples) < 5:
                    rec.examples.append(f"mint {exc.__class__.__name__}: {exc}"[:300])
                user.web.close()
                user.tenant.close()

    async def spend(user: User) -> None:
        while user.codes:
            try:
                started = time.perf_counter()
                await user.exchange()
                if rec.recording:
                    rec.iterations += 1
                    rec.latencies.setdefault("iteration", []).append(
                        time.perf_counter() - started)
            except Exception as exc:
                rec.error(exc)
                user.web.close()

    warm_until = time.perf_counter() + warmup
    while True:  # at least one whole cycle warms up
        await asyncio.gather(*(mint(u) for u in crowd))
        await asyncio.gather(*(spend(u) for u in crowd))
        if time.perf_counter() >= warm_until:
            break
    measured = 0.0
    while measured < duration:
        await asyncio.gather(*(mint(u) for u in crowd))
        await _mark("start")
        rec.recording = True
        started = time.perf_counter()
        await asyncio.gather(*(spend(u) for u in crowd))
        measured += time.perf_counter() - started
        rec.recording = False
        await _mark("stop")
    return measured


async def run(fixture: dict, scenario: str, users: int, warmup: float, duration: float) -> dict:
    rec = Recorder()
    crowd = [User(fixture, rec) for _ in range(users)]
    if scenario == "exchange":
        cpu0 = time.process_time()
        wall = await _phased(crowd, rec, warmup, duration)
        cpu = time.process_time() - cpu0  # minting included: an upper bound
        tasks = []
    else:
        deadline = [time.perf_counter() + warmup + duration + 3600]
        tasks = [asyncio.create_task(_user_loop(u, getattr(u, scenario), rec, deadline))
                 for u in crowd]
        await asyncio.sleep(warmup)
        cpu0, wall0 = time.process_time(), time.perf_counter()
        rec.recording = True
        print("start", flush=True)
        await asyncio.sleep(duration)
        rec.recording = False
        print("stop", flush=True)
        wall = time.perf_counter() - wall0
        cpu = time.process_time() - cpu0
        deadline[0] = 0.0
    if tasks:
        await asyncio.wait(tasks, timeout=10)
    for user in crowd:
        user.web.close()
        user.tenant.close()
    steps = {}
    for step, values in rec.latencies.items():
        values.sort()
        steps[step] = {"count": len(values), **{
            f"p{q}": round(values[min(len(values) - 1, int(len(values) * q / 100))] * 1000, 3)
            for q in (50, 95, 99)}}
    return {"scenario": scenario, "users": users, "seconds": round(wall, 3),
            "iterations": rec.iterations, "requests": rec.requests, "errors": rec.errors,
            "error_examples": rec.examples, "steps": steps, "id_tokens": rec.id_tokens,
            "loadgen_cpu_s": round(cpu, 3)}


def cli(scenarios: list[str], run_scenario, description: str = __doc__) -> int:
    """The command line of a load generator: fixture, scenario, users, timing;
    prints the result as one JSON line (shared with bench.peer_loadgen)."""
    parser = argparse.ArgumentParser(description=description.splitlines()[0])
    parser.add_argument("fixture")
    parser.add_argument("scenario", choices=scenarios)
    parser.add_argument("--users", type=int, default=4)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--duration", type=float, default=10.0)
    args = parser.parse_args()
    with open(args.fixture) as handle:
        fixture = json.load(handle)
    try:
        import uvloop
    except ImportError:  # plain asyncio works, at a higher CPU cost per request
        uvloop = None
    runner = uvloop.run if uvloop and not os.environ.get("BENCH_NO_UVLOOP") else asyncio.run
    result = runner(run_scenario(fixture, args.scenario, args.users, args.warmup,
                                 args.duration))
    print(json.dumps(result), flush=True)
    return 0


def main() -> int:
    return cli(["redirect", "oidc_redirect", "authorize", "custom_token", "refresh", "me",
                "inapp", "exchange", "empty"], run)


if __name__ == "__main__":
    sys.exit(main())
