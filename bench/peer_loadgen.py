"""The load generator for the oidc-provider peer (bench/peer/server.js).

    python -m bench.peer_loadgen FIXTURE.json SCENARIO --duration 10 --warmup 2 --users 4

The same approach as ``bench.loadgen`` (one process, asyncio, N virtual
users on ``bench.http`` connections, each repeating its scenario as fast as
the server answers), the same output (``start``, ``stop``, one JSON line),
with one addition: after printing ``start`` or ``stop`` the generator waits
for a line on stdin, so the driver's CPU snapshot is taken before the
measured requests begin and after they end, never in the middle.

Scenarios (client ``bench``, PKCE S256, ``scope=openid offline_access
profile email`` with ``prompt=consent``, which OIDC requires for
``offline_access``):

* ``peer_login``: the full login, each request timed: ``GET /auth`` →
  ``GET /interaction/:uid`` (login + consent at once) → ``GET /auth/:uid``
  → the redirect with the code → ``POST /token``. Every exchange checks
  the ES256 ID token's nonce and that a refresh token came with it.
* ``peer_exchange``: the code exchange alone. Users mint a batch of codes
  (full logins up to the code, outside any measured window), wait a second
  for the peer to settle, then spend them all on ``POST /token`` inside a
  ``start``/``stop`` window; repeated until ``--duration`` seconds of
  exchanges were measured. The driver adds up the windows.
* ``peer_refresh``: one login per user first, then refresh with rotation
  (each answer's refresh token is the next request's).
* ``peer_me``: one login per user first, then userinfo (``GET /me``) with the
  access token as a bearer token.
* ``peer_code``: the full login without its exchange (the code is left to
  expire): ``peer_login`` less this cross-checks ``peer_exchange``.
"""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import sys
import time
import uuid
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

from bench.http import Connection, Reply
from bench.loadgen import FORM, Failed, Recorder, cli, pkce_pair, target_of

CLIENT_ID = "bench"
CLIENT_REDIRECT = "https://app.example.com/callback"
SCOPE = "openid offline_access profile email"
CODES_PER_USER = 100  # codes one user mints before an exchange window
# A quiet pause between minting and spending: the node processes finish the
# minting's deferred work (V8's concurrent garbage collection) before the
# window opens, so the exchange is not charged for the logins' garbage.
SETTLE_SECONDS = 1.0
SCENARIOS = ("peer_login", "peer_exchange", "peer_refresh", "peer_me", "peer_code")


def redirected(reply: Reply, step: str) -> str:
    if reply.status not in (302, 303):
        raise Failed(f"{step}: {reply.status} {reply.body[:200]!r}")
    return reply.header(b"location")


def keep_cookies(jar: dict[str, str], reply: Reply) -> None:
    """Remember what the server set (a cleared cookie is dropped); paths are
    ignored: a cookie sent where it is not needed costs the server nothing."""
    for raw in reply.cookies:
        name, _, value = raw.split(b";", 1)[0].decode("latin-1").partition("=")
        if value:
            jar[name] = value
        else:
            jar.pop(name, None)


def cookie_header(jar: dict[str, str]) -> tuple[tuple[str, str], ...]:
    return (("Cookie", "; ".join(f"{k}={v}" for k, v in jar.items())),) if jar else ()


def _segment(jwt: str, index: int) -> dict:
    part = jwt.split(".")[index]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def check_id_token(tokens: dict, nonce: str) -> None:
    """The code exchange answered with an ES256 ID token for this login (its
    nonce). oidc-provider puts at_hash only in front-channel ID tokens, so
    unlike bench.loadgen's check there is none to compare here."""
    id_token = tokens.get("id_token")
    if not id_token:
        raise Failed(f"token: no id_token (scope {tokens.get('scope')!r})")
    if _segment(id_token, 0).get("alg") != "ES256":
        raise Failed(f"token: id_token signed with {_segment(id_token, 0).get('alg')}")
    if _segment(id_token, 1).get("nonce") != nonce:
        raise Failed("token: id_token nonce is not the login's")


class PeerUser:
    """One virtual user of the peer: its connection, tokens and minted codes."""

    def __init__(self, fixture: dict, recorder: Recorder) -> None:
        self.rec = recorder
        self.web = Connection(fixture["host"], fixture["port"])
        self.refresh_token: str | None = None
        self.access_token: str | None = None
        self.codes: list[tuple[str, str, str]] = []  # (code, verifier, nonce)

    async def _call(self, step: str, timed: bool, method: str, target: str,
                    headers: tuple[tuple[str, str], ...] = (), body: bytes = b"") -> Reply:
        call = self.web.request(method, target, headers, body)
        return await (self.rec.timed(step, call) if timed else call)

    async def code(self, timed: bool) -> tuple[str, str, str]:
        """A login up to the redirect that carries the code."""
        verifier, challenge = pkce_pair()
        state, nonce = uuid.uuid4().hex, secrets.token_urlsafe(16)
        query = urlencode({"client_id": CLIENT_ID, "response_type": "code",
                           "redirect_uri": CLIENT_REDIRECT, "scope": SCOPE,
                           "prompt": "consent", "state": state, "nonce": nonce,
                           "code_challenge": challenge, "code_challenge_method": "S256"})
        jar: dict[str, str] = {}
        reply = await self._call("auth", timed, "GET", f"/auth?{query}")
        location = redirected(reply, "auth")
        keep_cookies(jar, reply)
        reply = await self._call("interaction", timed, "GET", target_of(location),
                                 cookie_header(jar))
        location = redirected(reply, "interaction")
        keep_cookies(jar, reply)
        reply = await self._call("resume", timed, "GET", target_of(location), cookie_header(jar))
        location = redirected(reply, "resume")
        params = dict(parse_qsl(urlsplit(location).query))
        if not location.startswith(CLIENT_REDIRECT + "?") or params.get("state") != state:
            raise Failed(f"resume: not the client's redirect: {location[:200]}")
        if "code" not in params:
            raise Failed(f"resume: no code in {location[:200]}")
        return params["code"], verifier, nonce

    async def exchange(self, code: str, verifier: str, nonce: str, timed: bool) -> None:
        body = urlencode({"grant_type": "authorization_code", "code": code,
                          "redirect_uri": CLIENT_REDIRECT, "code_verifier": verifier,
                          "client_id": CLIENT_ID}).encode()
        reply = await self._call("token", timed, "POST", "/token", (FORM,), body)
        if reply.status != 200:
            raise Failed(f"token: {reply.status} {reply.body[:200]!r}")
        tokens = json.loads(reply.body)
        if not tokens.get("refresh_token"):
            raise Failed(f"token: no refresh token (scope {tokens.get('scope')!r})")
        check_id_token(tokens, nonce)
        self.refresh_token, self.access_token = tokens["refresh_token"], tokens["access_token"]

    # -- scenarios ---------------------------------------------------------
    async def peer_login(self) -> None:
        await self.exchange(*await self.code(timed=True), timed=True)

    async def peer_code(self) -> None:
        """The login up to the code, which is then left to expire (a cross-check:
        a full login less this is the exchange, measured another way)."""
        await self.code(timed=True)

    async def peer_refresh(self) -> None:
        if self.refresh_token is None:
            await self.exchange(*await self.code(timed=False), timed=False)
        body = (f"grant_type=refresh_token&client_id={CLIENT_ID}&refresh_token="
                + quote(self.refresh_token, safe=""))
        reply = await self._call("refresh", True, "POST", "/token", (FORM,), body.encode())
        if reply.status != 200:
            self.refresh_token = None  # a failed rotation revokes the chain: log in again
            raise Failed(f"refresh: {reply.status} {reply.body[:200]!r}")
        rotated = json.loads(reply.body).get("refresh_token")
        if not rotated or rotated == self.refresh_token:
            raise Failed("refresh: the refresh token was not rotated")
        self.refresh_token = rotated

    async def peer_me(self) -> None:
        if self.access_token is None:
            await self.exchange(*await self.code(timed=False), timed=False)
        reply = await self._call("me", True, "GET", "/me",
                                 (("Authorization", "Bearer " + self.access_token),))
        if reply.status != 200 or b'"sub"' not in reply.body:
            raise Failed(f"me: {reply.status} {reply.body[:200]!r}")


async def _mark(word: str) -> None:
    """Tell the driver, then wait until it has taken its snapshot."""
    print(word, flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)


async def _loop(user: PeerUser, scenario: str, rec: Recorder, stop: list[bool]) -> None:
    step = getattr(user, scenario)
    while not stop[0]:
        try:
            started = time.perf_counter()
            await step()
            if rec.recording:
                rec.iterations += 1
                rec.latencies.setdefault("iteration", []).append(time.perf_counter() - started)
        except Exception as exc:
            rec.error(exc)
            user.web.close()
            await asyncio.sleep(0.01)


async def _steady(crowd: list[PeerUser], scenario: str, rec: Recorder, warmup: float,
                  duration: float) -> float:
    """Every user repeats the scenario; one measured window after the warm-up."""
    stop = [False]
    tasks = [asyncio.create_task(_loop(u, scenario, rec, stop)) for u in crowd]
    await asyncio.sleep(warmup)
    await _mark("start")
    rec.recording = True
    started = time.perf_counter()
    await asyncio.sleep(duration)
    rec.recording = False
    measured = time.perf_counter() - started
    # Requests in flight finish outside the window, before the snapshot.
    stop[0] = True
    await asyncio.wait(tasks, timeout=10)
    await _mark("stop")
    return measured


async def _phased(crowd: list[PeerUser], rec: Recorder, warmup: float,
                  duration: float) -> tuple[float, dict]:
    """Mint codes outside the windows, spend them inside; until ``duration``
    seconds of exchanges were measured (warm-up: the same, unmeasured)."""
    minting = {"logins": 0, "errors": 0, "examples": []}

    async def mint(user: PeerUser) -> None:
        user.codes = []
        for _ in range(CODES_PER_USER):
            try:
                user.codes.append(await user.code(timed=False))
                minting["logins"] += 1
            except Exception as exc:  # counted: a failed mint is an error of the run
                minting["errors"] += 1
                if len(minting["examples"]) < 5:
                    minting["examples"].append(f"mint {exc.__class__.__name__}: {exc}"[:300])
                user.web.close()

    async def spend(user: PeerUser) -> None:
        for code in user.codes:
            try:
                started = time.perf_counter()
                await user.exchange(*code, timed=True)
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
        await asyncio.sleep(SETTLE_SECONDS)
        await _mark("start")
        rec.recording = True
        started = time.perf_counter()
        await asyncio.gather(*(spend(u) for u in crowd))
        measured += time.perf_counter() - started
        rec.recording = False
        await _mark("stop")
    return measured, minting


async def run(fixture: dict, scenario: str, users: int, warmup: float, duration: float) -> dict:
    rec = Recorder()
    crowd = [PeerUser(fixture, rec) for _ in range(users)]
    cpu0 = time.process_time()
    minting = None
    if scenario == "peer_exchange":
        seconds, minting = await _phased(crowd, rec, warmup, duration)
    else:
        seconds = await _steady(crowd, scenario, rec, warmup, duration)
    cpu = time.process_time() - cpu0
    for user in crowd:
        user.web.close()
    steps = {}
    for step, values in rec.latencies.items():
        values.sort()
        steps[step] = {"count": len(values), **{
            f"p{q}": round(values[min(len(values) - 1, int(len(values) * q / 100))] * 1000, 3)
            for q in (50, 95, 99)}}
    errors, examples = rec.errors, rec.examples
    if minting:
        errors += minting["errors"]
        examples = examples + minting["examples"]
    return {"scenario": scenario, "users": users, "seconds": round(seconds, 3),
            "iterations": rec.iterations, "requests": rec.requests, "errors": errors,
            "error_examples": examples, "steps": steps, "minted": minting,
            "loadgen_cpu_s": round(cpu, 3)}


def main() -> int:
    return cli(SCENARIOS, run, __doc__)


if __name__ == "__main__":
    sys.exit(main())
