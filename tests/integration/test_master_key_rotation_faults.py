"""``saas-admin rotate-master-key`` is online and resumable.

The operator's procedure (docs/operations.md): deploy the new key as
``SAAS_MASTER_KEY`` with the old one in ``SAAS_MASTER_KEY_PREVIOUS``, run the
rotation, then drop the old key. Here a real ``saas-admin`` process rotates
one row per transaction and is held on a row the test locks; meanwhile a live
server keeps logging users in (for apps whose secrets are already rotated and
for the rest) and the management API rotates an app secret. The rotation is
then SIGKILLed; running it again finishes the remaining values only, and a
server that knows only the new key logs everyone in (the login cache, which
holds ciphertexts, was refreshed by the rotation).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid

import httpx
import jwt
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from saas.config import SETTINGS
from saas.crypto import SecretBox
from tests.conftest import MASTER_KEY
from tests.factories import make_api_key
from tests.flows import CLIENT_REDIRECT
from tests.functional.test_cli import write_ini
from tests.live import committed_app, live_server
from tests.waiting import REQUEST_SECONDS, finish, processes, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.faults]

NEW_KEY = "rotated-master-key-0123456789abcdef-rotated"
SAAS_ADMIN = os.path.join(sys.prefix, "bin", "saas-admin")
CLEAN_ENV = {k: v for k, v in os.environ.items()
             if k not in {s.env for s in SETTINGS if s.env}}


def ciphertexts(engine) -> dict[str, str]:
    with engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT 's/' || id || '/c', current_ciphertext FROM app_secrets UNION ALL "
            "SELECT 's/' || id || '/p', previous_ciphertext FROM app_secrets "
            "WHERE previous_ciphertext IS NOT NULL UNION ALL "
            "SELECT 'k/' || kid, private_key_ciphertext FROM signing_keys")).all()
    return dict(rows)


def under(box: SecretBox, values: dict[str, str]) -> set[str]:
    found = set()
    for name, ciphertext in values.items():
        with contextlib.suppress(ValueError):
            box.decrypt(ciphertext)
            found.add(name)
    return found


def custom_token_login(base: str, app, secret: str) -> httpx.Response:
    now = int(time.time())
    token = jwt.encode({"sub": f"u-{uuid.uuid4().hex[:8]}", "iat": now, "exp": now + 300},
                       secret, algorithm="HS256")
    return httpx.post(f"{base}/v1/apps/{app.app_id}/login/custom-token", json={"token": token},
                      timeout=REQUEST_SECONDS)


def rotation(ini: str, *extra: str) -> subprocess.Popen:
    return subprocess.Popen([SAAS_ADMIN, ini, "rotate-master-key", *extra], env=CLEAN_ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_rotation_is_online_and_resumable(app_settings, redis_client, tmp_path):
    old_box, new_box = SecretBox(MASTER_KEY), SecretBox(NEW_KEY)
    new_settings = {**app_settings, "saas.master_key": NEW_KEY,
                    "saas.master_key_previous": MASTER_KEY}
    forward = write_ini(tmp_path / "forward.ini", new_settings)
    back = write_ini(tmp_path / "back.ini", {**app_settings,
                                             "saas.master_key_previous": NEW_KEY})
    engine = create_engine(app_settings["sqlalchemy.url"])
    with contextlib.ExitStack() as stack:
        made = [stack.enter_context(committed_app(
            app_settings, redirect_uris=[CLIENT_REDIRECT], custom_token_enabled=True))
            for _ in range(3)]
        stack.callback(engine.dispose)
        # Whatever happens, leave every secret under the run's key for later tests.
        stack.callback(lambda: subprocess.run([SAAS_ADMIN, back, "rotate-master-key"],
                                              env=CLEAN_ENV, capture_output=True, check=True))
        before = ciphertexts(engine)
        assert under(old_box, before) == set(before)
        secret_ids = sorted(row.split("/")[1] for row in before if row.endswith("/c"))
        held_id = secret_ids[2]  # the third row the rotation meets
        # The API rotates a secret of an app whose rows are not held (it would
        # wait for the test's lock, as the rotation does).
        with engine.connect() as conn:
            held_app = conn.execute(text("SELECT app_id FROM app_secrets WHERE id = :id"),
                                    {"id": held_id}).scalar_one()
        target = next(i for i, (app, _) in enumerate(made) if app.id != held_app)
        with Session(engine) as session:
            _key, api_key = make_api_key(session, made[target][0].tenant_id, "rotation")
            session.commit()

        base = stack.enter_context(live_server(new_settings))  # new key, old as previous
        lock = engine.connect()
        lock.execute(text("SELECT id FROM app_secrets WHERE id = :id FOR UPDATE"),
                     {"id": held_id})
        process = rotation(forward, "--batch-size", "1")
        try:
            # As long as the rotation process runs (it starts slowly on a busy machine).
            wait_until(lambda: len(under(new_box, ciphertexts(engine))) >= 2,
                       "two rows rotated before the held one", progress=processes(process))
            wait_until(lambda: lock.execute(text(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                "AND datname = current_database()")).scalar() >= 1, "the rotation to wait",
                progress=processes(process))
            midway = under(new_box, ciphertexts(engine))
            assert 2 <= len(midway) < len(before)

            # Online: logins of every app, rotated or not, and a secret rotation.
            for app, secrets in made:
                answer = custom_token_login(base, app, secrets["custom_token"])
                assert answer.status_code == 200, answer.text
            rotated = httpx.post(
                f"{base}/v1/manage/apps/{made[target][0].app_id}/secrets/custom_token/rotate",
                json={"grace_seconds": 60}, headers={"Authorization": f"Bearer {api_key}"},
                timeout=REQUEST_SECONDS)
            assert rotated.status_code == 200, rotated.text
            made[target][1]["custom_token"] = rotated.json()["current"]

            process.send_signal(signal.SIGKILL)  # interrupted mid-way
            process.wait(timeout=10)
        finally:
            lock.rollback()
            lock.close()
            if process.poll() is None:
                process.kill()

        interrupted = ciphertexts(engine)
        remaining = set(interrupted) - under(new_box, interrupted)
        assert remaining and len(remaining) < len(interrupted)
        assert under(old_box, interrupted) >= remaining  # nothing left unreadable

        again = rotation(forward)
        out, err = finish(again, "the resumed rotation")
        assert again.returncode == 0, err
        assert out.strip() == f'{{"reencrypted": {len(remaining)}}}'  # only the rest
        after = ciphertexts(engine)
        assert under(new_box, after) == set(after)
        assert not under(old_box, after) - under(new_box, after)

        # The old key can go now: a server with the new key alone logs everyone in.
        only_new = {**app_settings, "saas.master_key": NEW_KEY}
        with live_server(only_new) as fresh:
            for app, secrets in made:
                answer = custom_token_login(fresh, app, secrets["custom_token"])
                assert answer.status_code == 200, answer.text
