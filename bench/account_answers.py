"""Do the account pages tell a known address from an unknown one? Measured, not asserted.

    python -m bench.account_answers [--rounds 300]

For the password-reset request and sign-up (``PAGES``) this
posts the form alternately for an address that has an account and for one
that has none, against the real app on a scratch PostgreSQL database and
Redis (tasks queued on the Redis broker as production does, never run). It
checks that the two answers are byte-identical apart from per-request ids,
then prints each side's response times (median, 10th–90th percentile) and a
bootstrap 95 % interval for the difference of the medians. A difference whose
interval spans zero, or is small beside the spread, is lost in the noise an
attacker would have to beat. ``make bench-accounts`` runs it.
"""

from __future__ import annotations

import argparse
import random
import re
import statistics
import time
import uuid
from collections.abc import Callable

import psycopg
import redis
import webtest

from bench.sync import ADMIN_DSN, REDIS_URL, scratch_database
from saas.config import configure
from saas.passwords import Passwords
from saas.tenants.services import sign_up

VARYING_HEADERS = {"X-Request-ID", "Date", "Set-Cookie"}


def _settings(url: str, prefix: str) -> dict[str, str]:
    return {
        "sqlalchemy.url": url,
        "redis.url": REDIS_URL,
        "celery.broker_url": REDIS_URL,
        # The request only queues its task (the account work, the mail), as in production.
        "celery.always_eager": "false",
        "celery.default_queue": f"{prefix}-tasks",  # deleted with the prefix's keys
        "saas.master_key": "bench-" + "k" * 40,
        "saas.public_base_url": "http://bk.test",
        "saas.redis_prefix": prefix,
        "saas.secure_cookies": "false",
        "saas.ratelimit.enabled": "false",  # the limits would answer 429 long before 300 rounds
    }


def _answer(page: webtest.TestResponse, email: str) -> tuple:
    """What must not differ: status, headers but ids, and the body with the
    address the visitor typed (echoed back to them) and the form's CSRF token
    written alike."""
    headers = tuple(sorted((k, v) for k, v in page.headerlist
                           if k not in VARYING_HEADERS and k != "Content-Length"))
    body = page.body.replace(email.encode(), b"EMAIL")
    body = re.sub(rb'name="csrf_token" value="[^"]+"', b"CSRF", body)
    return page.status_int, headers, body


def _reset_request(browser: webtest.TestApp, email: str) -> webtest.TestResponse:
    form = browser.get("/dashboard/forgot-password").forms[0]
    form["email"] = email
    return form.submit()


def _sign_up(browser: webtest.TestApp, email: str) -> webtest.TestResponse:
    form = browser.get("/dashboard/signup").forms[0]
    form["tenant_name"], form["email"] = "Bench", email
    form["password"] = "a long and unusual passphrase"
    return form.submit()


PAGES: dict[str, Callable[[webtest.TestApp, str], webtest.TestResponse]] = {
    "password reset request": _reset_request,
    "sign-up": _sign_up,
}


def _bootstrap_interval(a: list[float], b: list[float], draws: int = 2000) -> tuple[float, float]:
    rng = random.Random(7)
    diffs = sorted(statistics.median(rng.choices(a, k=len(a)))
                   - statistics.median(rng.choices(b, k=len(b))) for _ in range(draws))
    return diffs[int(draws * 0.025)], diffs[int(draws * 0.975)]


def _ms(values: list[float]) -> str:
    deciles = statistics.quantiles(values, n=10)
    return f"{statistics.median(values):7.2f} ms ({deciles[0]:.2f}–{deciles[-1]:.2f})"


def measure(app, page: str, known: str, rounds: int) -> None:
    post = PAGES[page]
    times: dict[str, list[float]] = {"known": [], "unknown": []}
    answers: dict[str, set] = {"known": set(), "unknown": set()}
    order = random.Random(11)
    for _ in range(rounds):
        # Which side goes first is drawn each round: drift in the machine's load
        # hits both alike, and so does the garbage collector, which a strict
        # alternation can lock onto one side (a tail that looks like a leak).
        sides = ("known", "unknown") if order.random() < 0.5 else ("unknown", "known")
        for side in sides:
            email = known if side == "known" else f"nobody-{uuid.uuid4().hex[:12]}@example.com"
            browser = webtest.TestApp(app, extra_environ={"HTTP_HOST": "bk.test"})
            started = time.perf_counter()
            answer = post(browser, email)
            times[side].append((time.perf_counter() - started) * 1000)
            answers[side].add(_answer(answer, email))
    identical = answers["known"] == answers["unknown"] and len(answers["known"]) == 1
    low, high = _bootstrap_interval(times["known"], times["unknown"])
    print(f"\n{page} ({rounds} rounds each)")
    print(f"  answers byte-identical apart from ids: {'yes' if identical else 'NO'}")
    print(f"  known address:   {_ms(times['known'])}")
    print(f"  unknown address: {_ms(times['unknown'])}")
    print(f"  median difference, 95 % interval: {low:+.2f} to {high:+.2f} ms")
    print(f"  interval includes 0: {'yes' if low <= 0 <= high else 'no'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=300)
    args = parser.parse_args()
    name, url = scratch_database()
    prefix = f"bkans{uuid.uuid4().hex[:8]}"
    try:
        settings = _settings(url, prefix)
        app = configure(settings).make_wsgi_app()
        known = "owner@example.com"
        with app.registry["saas.db_sessionmaker"]() as db:
            sign_up(db, Passwords(), tenant_name="Bench", email=known,
                    password="correct horse battery staple")
            db.commit()
        for page in PAGES:
            measure(app, page, known, args.rounds)
    finally:
        client = redis.Redis.from_url(REDIS_URL)
        for key in client.scan_iter(f"{prefix}*"):
            client.delete(key)
        with psycopg.connect(ADMIN_DSN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
