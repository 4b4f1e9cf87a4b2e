"""The operator CLI ``saas-admin`` (DESIGN §8.1, §12 "CLI output").

The CLI commits through its own engine, so these tests write an ini file for
the run's database, call ``saas.cli.main`` in-process and look at the effects
through fresh connections (never the rolled-back ``db`` fixture). Data really
commits: emails are unique per test and the tenants are deleted afterwards.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from alembic.config import Config as AlembicConfig
from alembic.script import ScriptDirectory
from argon2 import PasswordHasher
from sqlalchemy import create_engine, inspect, select, text
from sqlalchemy.orm import Session

from saas.accounts.models import Passkey, TotpFactor
from saas.accounts.recovery import issue_codes
from saas.cli import main
from saas.config import SETTINGS
from saas.crypto import SecretBox, hash_token
from saas.db import utcnow
from saas.tenants.models import Member
from tests.conftest import MASTER_KEY
from tests.live import forget_tenants_of
from tests.waiting import run

ROOT = Path(__file__).resolve().parents[2]
OTHER_KEY = "other-master-key-abcdef0123456789-abcdef0123"
PASSWORD = "correct horse battery staple"
APP_KEYS = {
    "app_id", "name", "custom_auth_endpoint", "redirect_uris", "backchannel",
    "custom_token_enabled", "require_bound_tokens", "access_token_ttl",
    "refresh_token_ttl", "hosted_form", "restart_url", "client_type", "pkce_required",
    "post_logout_redirect_uris", "oidc_custom_claim", "created_at", "updated_at", "secrets",
}


@dataclass
class Result:
    code: int
    out: str
    err: str

    @property
    def json(self) -> dict:
        return json.loads(self.out)


def write_ini(path: Path, settings: dict, *, without: tuple[str, ...] = ()) -> str:
    lines = ["[app:main]", "use = egg:bridgekeeper"]
    lines += [f"{k} = {v}".replace("%", "%%") for k, v in settings.items() if k not in without]
    lines += ["", "[alembic]", f"script_location = {ROOT / 'alembic'}", ""]
    path.write_text("\n".join(lines))
    return str(path)


@pytest.fixture(autouse=True)
def no_environment_overrides(monkeypatch):
    """The ini file decides, whatever the developer's shell exports."""
    for setting in SETTINGS:
        if setting.env:
            monkeypatch.delenv(setting.env, raising=False)


@pytest.fixture
def ini_path(tmp_path, app_settings) -> str:
    return write_ini(tmp_path / "test.ini", app_settings)


def _run(ini: str, capsys, *args: str) -> Result:
    code = main([ini, *args])
    out, err = capsys.readouterr()
    return Result(code, out, err)


@pytest.fixture
def cli(ini_path, capsys):
    return lambda *args: _run(ini_path, capsys, *args)


@pytest.fixture
def new_email(engine):
    """Unique emails; their tenants (cascading to everything) are deleted afterwards."""
    emails: list[str] = []

    def make() -> str:
        emails.append(f"op-{uuid.uuid4().hex[:12]}@example.com")
        return emails[-1]

    yield make
    for email in emails:
        forget_tenants_of(engine, email)


@pytest.fixture
def tenant(cli, new_email) -> str:
    email = new_email()
    result = cli("create-tenant", "--email", email, "--name", "Acme", "--password", PASSWORD)
    assert result.code == 0, result.err
    return email


def one_line_error(result: Result, code: int) -> str:
    assert result.code == code
    assert result.out == ""
    assert result.err.endswith("\n") and result.err.count("\n") == 1
    return result.err


def scalar(engine, sql: str, **params):
    with engine.connect() as conn:
        return conn.scalar(text(sql), params)


def audit_types(engine, tenant_id) -> list[str]:
    with engine.connect() as conn:
        return conn.scalars(
            text("SELECT type FROM audit_events WHERE tenant_id = :t"), {"t": tenant_id}
        ).all()


def test_create_tenant_reads_the_password_from_stdin(cli, new_email, engine, monkeypatch):
    email = new_email()
    monkeypatch.setattr(sys, "stdin", io.StringIO(PASSWORD + "\n"))
    result = cli("create-tenant", "--email", email, "--name", "Acme Corp")
    assert result.code == 0, result.err
    assert set(result.json) == {"tenant_id", "email"}
    assert result.json["email"] == email
    with engine.connect() as conn:
        row = conn.execute(
            text("SELECT m.password_hash, m.role, t.id, t.name FROM members m "
                 "JOIN tenants t ON t.id = m.tenant_id WHERE m.email = :e"), {"e": email}
        ).one()
    assert row.password_hash.startswith("$argon2id$")
    assert PasswordHasher().verify(row.password_hash, PASSWORD)  # the newline is not kept
    assert (str(row.id), row.name, row.role) == (result.json["tenant_id"], "Acme Corp", "owner")
    assert audit_types(engine, row.id) == ["tenant.created"]


def test_create_tenant_takes_the_password_option(cli, new_email, engine):
    email = new_email()
    result = cli("create-tenant", "--email", email.upper(), "--name", "Acme",
                 "--password", PASSWORD)
    assert result.code == 0, result.err
    assert result.json["email"] == email  # stored lower-cased
    stored = scalar(engine, "SELECT password_hash FROM members WHERE email = :e", e=email)
    assert stored.startswith("$argon2id$") and PASSWORD not in stored


def test_a_taken_email_fails(cli, tenant, engine):
    result = cli("create-tenant", "--email", tenant, "--name", "Again", "--password", PASSWORD)
    assert "exists already" in one_line_error(result, 1)
    assert scalar(engine, "SELECT count(*) FROM members WHERE email = :e", e=tenant) == 1


@pytest.mark.parametrize(
    ("email", "password", "message"),
    [("not-an-email", PASSWORD, "email"), ("ok-{}@example.com", "short", "password")],
)
def test_create_tenant_checks_its_input(cli, engine, email, password, message):
    email = email.format(uuid.uuid4().hex)
    result = cli("create-tenant", "--email", email, "--name", "Acme", "--password", password)
    assert message in one_line_error(result, 1)
    assert scalar(engine, "SELECT count(*) FROM members WHERE email = :e", e=email) == 0


def test_create_api_key_prints_it_once_and_stores_its_hash(cli, tenant, engine):
    result = cli("create-api-key", "--tenant", tenant, "--name", "deploy bot")
    assert result.code == 0, result.err
    assert set(result.json) == {"key", "name"}
    key = result.json["key"]
    assert key.startswith("bk_") and result.json["name"] == "deploy bot"
    with engine.connect() as conn:
        row = conn.execute(
            text("SELECT k.* FROM api_keys k JOIN members m ON m.tenant_id = k.tenant_id "
                 "WHERE m.email = :e"), {"e": tenant}
        ).one()
        details = conn.scalar(
            text("SELECT details FROM audit_events WHERE type = 'api_key.created' "
                 "AND tenant_id = :t"), {"t": row.tenant_id}
        )
    assert row.key_hash == hashlib.sha256(key.encode()).hexdigest()
    assert all(key not in str(value) for value in row)
    assert details["prefix"] == row.prefix and key not in json.dumps(details)
    assert cli("create-api-key", "--tenant", tenant).json["name"] == "API key"


def test_create_app_prints_the_app_and_encrypts_its_secrets(cli, tenant, engine):
    result = cli(
        "create-app", "--tenant", tenant, "--name", "Shop",
        "--endpoint", "http://127.0.0.1:8080/auth",
        "--redirect-uri", "https://shop.example.com/cb", "--redirect-uri", "shop://cb",
    )
    assert result.code == 0, result.err
    app = result.json
    assert set(app) == APP_KEYS
    assert re.fullmatch(r"[a-z0-9]{8}", app["app_id"])
    assert app["name"] == "Shop" and app["custom_auth_endpoint"] == "http://127.0.0.1:8080/auth"
    assert app["redirect_uris"] == ["https://shop.example.com/cb", "shop://cb"]
    assert set(app["secrets"]) == {"custom_auth", "custom_token"}
    with engine.connect() as conn:
        stored = dict(conn.execute(
            text("SELECT s.kind, s.current_ciphertext FROM app_secrets s "
                 "JOIN apps a ON a.id = s.app_id WHERE a.app_id = :a"), {"a": app["app_id"]}
        ).all())
        events = conn.scalars(
            text("SELECT type FROM audit_events WHERE app_id = :a"), {"a": app["app_id"]}
        ).all()
    box = SecretBox(MASTER_KEY)
    for kind, plaintext in app["secrets"].items():
        assert plaintext not in stored[kind]
        assert box.decrypt(stored[kind]) == plaintext
    assert events == ["app.created"]


def test_create_app_as_a_confidential_client_prints_its_client_secret_once(cli, tenant,
                                                                          engine):
    result = cli("create-app", "--tenant", tenant, "--name", "Backend",
                 "--client-type", "confidential",
                 "--post-logout-redirect-uri", "https://shop.example.com/bye")
    assert result.code == 0, result.err
    app = result.json
    assert app["client_type"] == "confidential"
    assert app["post_logout_redirect_uris"] == ["https://shop.example.com/bye"]
    secret = app["secrets"]["client_secret"]
    assert secret.startswith("cs_")
    with engine.connect() as conn:
        row = conn.execute(text("SELECT c.* FROM client_secrets c JOIN apps a ON a.id = "
                                "c.app_id WHERE a.app_id = :a"), {"a": app["app_id"]}).one()
    assert row.current_hash == hash_token(secret)
    assert all(secret not in str(value) for value in row)


@pytest.mark.parametrize(("args", "words"), [
    (["--client-type", "trusted"], "invalid choice"),
    (["--post-logout-redirect-uri", "javascript:x"], "post-logout redirect URI"),
])
def test_bad_oidc_settings_fail(cli, tenant, args, words):
    result = cli("create-app", "--tenant", tenant, "--name", "Shop", *args)
    assert result.code != 0 and words in result.err


def test_an_invalid_redirect_uri_fails(cli, tenant, engine):
    result = cli("create-app", "--tenant", tenant, "--name", "Shop",
                 "--redirect-uri", "http://shop.example.com/cb")
    assert "https" in one_line_error(result, 1)
    with engine.connect() as conn:
        count = conn.scalar(
            text("SELECT count(*) FROM apps a JOIN members m ON m.tenant_id = a.tenant_id "
                 "WHERE m.email = :e"), {"e": tenant}
        )
    assert count == 0


@pytest.mark.parametrize("command", [["create-api-key"], ["create-app", "--name", "Shop"]])
def test_an_unknown_tenant_fails(cli, command):
    result = cli(*command, "--tenant", f"nobody-{uuid.uuid4().hex}@example.com")
    assert "no tenant" in one_line_error(result, 1)


def _ciphertexts(conn) -> dict[str, str]:
    rows = conn.execute(text(
        "SELECT 'current ' || id, current_ciphertext FROM app_secrets "
        "UNION ALL SELECT 'previous ' || id, previous_ciphertext FROM app_secrets "
        "WHERE previous_ciphertext IS NOT NULL "
        "UNION ALL SELECT 'signing ' || kid, private_key_ciphertext FROM signing_keys "
        "UNION ALL SELECT 'webhook ' || id, secret_ciphertext FROM webhook_endpoints "
        "UNION ALL SELECT 'totp ' || id, secret_ciphertext FROM totp_factors"
    )).all()
    return dict(rows)


def test_rotate_master_key_reencrypts_everything(cli, tenant, engine, monkeypatch):
    app = cli("create-app", "--tenant", tenant, "--name", "Shop").json
    old_box = SecretBox(MASTER_KEY)
    with engine.begin() as conn:
        conn.execute(
            text("UPDATE app_secrets SET previous_ciphertext = :c WHERE kind = 'custom_auth' "
                 "AND app_id = (SELECT id FROM apps WHERE app_id = :a)"),
            {"c": old_box.encrypt("the previous secret"), "a": app["app_id"]},
        )
        conn.execute(
            text("INSERT INTO webhook_endpoints (id, app_id, url, secret_ciphertext, events) "
                 "SELECT gen_random_uuid(), id, 'https://hooks.example.com/', :c, "
                 "'[\"user.created\"]' FROM apps WHERE app_id = :a"),
            {"c": old_box.encrypt("whsec_the-webhook-secret"), "a": app["app_id"]},
        )
        conn.execute(
            text("INSERT INTO totp_factors (id, member_id, secret_ciphertext) "
                 "SELECT gen_random_uuid(), id, :c FROM members WHERE email = :e"),
            {"c": old_box.encrypt("JBSWY3DPEHPK3PXP"), "e": tenant},
        )
        before = _ciphertexts(conn)

    monkeypatch.setenv("SAAS_MASTER_KEY", OTHER_KEY)  # without the old key: refused
    assert "cannot be decrypted" in one_line_error(cli("rotate-master-key"), 1)
    with engine.connect() as conn:
        assert _ciphertexts(conn) == before

    monkeypatch.setenv("SAAS_MASTER_KEY_PREVIOUS", MASTER_KEY)
    result = cli("rotate-master-key")
    assert result.code == 0, result.err
    assert result.json == {"reencrypted": len(before)}
    with engine.connect() as conn:
        after = _ciphertexts(conn)
    new_box = SecretBox(OTHER_KEY)
    assert after.keys() == before.keys()
    for name, ciphertext in after.items():
        assert ciphertext != before[name]
        assert new_box.decrypt(ciphertext) == old_box.decrypt(before[name])
        with pytest.raises(ValueError):
            old_box.decrypt(ciphertext)
    plaintexts = {new_box.decrypt(c) for c in after.values()}
    assert {*app["secrets"].values(), "the previous secret",
            "whsec_the-webhook-secret", "JBSWY3DPEHPK3PXP"} <= plaintexts


def test_migrate_builds_a_fresh_sqlite_database(tmp_path, app_settings, capsys):
    database = tmp_path / "var" / "nested" / "bk.sqlite"  # the directory does not exist yet
    ini = write_ini(tmp_path / "sqlite.ini",
                    {**app_settings, "sqlalchemy.url": f"sqlite:///{database}"})
    result = _run(ini, capsys, "migrate")
    assert result.code == 0, result.err
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(ROOT / "alembic"))
    assert result.json == {"migrated": True,
                           "revision": ScriptDirectory.from_config(cfg).get_current_head()}
    engine = create_engine(f"sqlite:///{database}")
    try:
        tables = set(inspect(engine).get_table_names())
    finally:
        engine.dispose()
    assert {"alembic_version", "tenants", "members", "api_keys", "apps", "app_secrets",
            "signing_keys", "audit_events"} <= tables
    assert _run(ini, capsys, "migrate").code == 0  # again: nothing to do
    created = _run(ini, capsys, "create-tenant", "--email", "dev@example.com",
                   "--name", "Dev", "--password", PASSWORD)
    assert created.code == 0, created.err
    assert _run(ini, capsys, "create-app", "--tenant", "dev@example.com", "--name", "A").code == 0


def test_a_missing_setting_is_named(tmp_path, app_settings, capsys):
    ini = write_ini(tmp_path / "nokey.ini", app_settings, without=("saas.master_key",))
    result = _run(ini, capsys, "create-tenant", "--email", "x@example.com", "--name", "X",
                  "--password", PASSWORD)
    assert "SAAS_MASTER_KEY" in one_line_error(result, 1)


def test_a_missing_config_file_fails(tmp_path, capsys):
    result = _run(str(tmp_path / "absent.ini"), capsys, "migrate")
    assert "absent.ini" in one_line_error(result, 1)


def test_an_unreachable_database_is_one_line(tmp_path, app_settings, capsys):
    url = "postgresql+psycopg://postgres@127.0.0.1:1/nowhere?connect_timeout=2"
    ini = write_ini(tmp_path / "down.ini", {**app_settings, "sqlalchemy.url": url})
    result = _run(ini, capsys, "create-api-key", "--tenant", "x@example.com")
    assert "127.0.0.1" in one_line_error(result, 1)


@pytest.mark.parametrize(
    "args", [[], ["unknown-command"], ["create-app", "--tenant", "x@example.com"]]
)
def test_bad_usage_exits_2(cli, args):
    one_line_error(cli(*args), 2)


@pytest.mark.parametrize("args", [["migrate"], ["create-app", "--tenant", "x@example.com"]])
def test_a_command_without_a_config_file_says_so(args, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no file named like the command here
    code = main(args)
    error = one_line_error(Result(code, *capsys.readouterr()), 2)
    assert "a config file is needed before the command" in error
    assert f"e.g. saas-admin development.ini {args[0]}" in error
    assert "required: COMMAND" not in error


def test_no_arguments_at_all_names_both(capsys):
    error = one_line_error(Result(main([]), *capsys.readouterr()), 2)
    assert "a config file and a command are needed" in error


def test_the_console_script_runs(ini_path, new_email, engine):
    script = Path(sys.executable).with_name("saas-admin")
    if not script.exists():
        script = Path(shutil.which("saas-admin") or "saas-admin")
    env = {k: v for k, v in os.environ.items() if k not in {s.env for s in SETTINGS}}
    email = new_email()
    completed = run([str(script), ini_path, "create-tenant", "--email", email, "--name", "Sub"],
                    input=PASSWORD + "\n", capture_output=True, text=True, env=env)
    assert completed.returncode == 0, completed.stderr
    printed = json.loads(completed.stdout)
    assert printed["email"] == email
    tenant_id = scalar(engine, "SELECT tenant_id FROM members WHERE email = :e", e=email)
    assert str(tenant_id) == printed["tenant_id"]


def test_sync_status_reports_backlog_age_and_dead_letters(tmp_path, app_settings, capsys,
                                                          redis_client):
    prefix = f"{app_settings['saas.redis_prefix']}:cli-sync:{uuid.uuid4().hex[:6]}"
    # One stream, whether the run's store is one Redis or a cluster (16 by default).
    ini = write_ini(tmp_path / "sync.ini", {**app_settings, "saas.redis_prefix": prefix,
                                            "saas.sync.stream_shards": "1"})
    empty = _run(ini, capsys, "sync-status")
    assert empty.code == 0
    assert empty.json == {"backlog": 0, "oldest_pending_age_seconds": 0.0, "in_flight": 0,
                          "dead_letters": 0, "recent_dead_letters": [],
                          "shards": [{"shard": "0", "backlog": 0, "in_flight": 0,
                                      "oldest_pending_age_seconds": 0.0, "leased": False}]}
    redis_client.xadd(f"{prefix}:events", {"event": "{}"}, id="1000-0")
    redis_client.xadd(f"{prefix}:events:dead",
                      {"entry_id": "5-0", "event": "x", "error": "event is not JSON"})
    busy = _run(ini, capsys, "sync-status").json
    assert busy["backlog"] == 1 and busy["oldest_pending_age_seconds"] > 1_000_000
    assert busy["dead_letters"] == 1
    assert busy["recent_dead_letters"][0]["error"] == "event is not JSON"


def test_sync_status_with_redis_down_is_one_line(tmp_path, app_settings, capsys):
    ini = write_ini(tmp_path / "down.ini", {**app_settings, "redis.url": "redis://127.0.0.1:1/0"})
    result = _run(ini, capsys, "sync-status")
    assert result.code == 1 and "Redis is unreachable" in result.err
    assert result.err.count("\n") == 1


def test_reset_password_prints_a_single_use_link(cli, tenant, engine, webapp):
    result = cli("reset-password", "--email", tenant.upper())
    assert result.code == 0, result.err
    assert set(result.json) == {"email", "reset_url", "expires_in"}
    assert result.json["email"] == tenant and result.json["expires_in"] == 3600
    url = result.json["reset_url"]
    assert url.startswith("http://bk.test/dashboard/reset/")
    token = url.rsplit("/", 1)[1]
    assert scalar(engine, "SELECT count(*) FROM account_links WHERE token_hash = :h "
                          "AND purpose = 'reset_password'", h=hash_token(token)) == 1
    tenant_id = scalar(engine, "SELECT tenant_id FROM members WHERE email = :e", e=tenant)
    assert "member.password_reset_requested" in audit_types(engine, tenant_id)
    details = scalar(engine, "SELECT details FROM audit_events WHERE tenant_id = :t AND "
                             "type = 'member.password_reset_requested'", t=tenant_id)
    assert details["via"] == "saas-admin" and token not in json.dumps(details)
    page = webapp.get(url.removeprefix("http://bk.test"))
    assert tenant in page.text and page.forms["reset"]
    newer = cli("reset-password", "--email", tenant).json["reset_url"]
    webapp.get(url.removeprefix("http://bk.test"), status=404)  # replaced by the newer one
    webapp.get(newer.removeprefix("http://bk.test"), status=200)


def test_reset_password_of_an_unknown_member_fails(cli):
    result = cli("reset-password", "--email", "nobody-at-all@example.com")
    assert "no member has the email" in one_line_error(result, 1)


def test_remove_second_factors_removes_them_all_and_is_audited(cli, tenant, engine):
    with Session(engine) as db, db.begin():
        member = db.scalar(select(Member).where(Member.email == tenant))
        db.add(TotpFactor(member_id=member.id, secret_ciphertext="sealed",
                          confirmed_at=utcnow()))
        db.add(Passkey(member_id=member.id, credential_id=uuid.uuid4().bytes,
                       public_key=b"key", name="Laptop"))
        issue_codes(db, member)
        tenant_id = member.tenant_id
    result = cli("remove-second-factors", "--email", tenant)
    assert result.code == 0, result.err
    assert result.json == {"email": tenant, "removed": {"totp": True, "passkeys": 1,
                                                         "recovery_codes": 10}}
    for table in ("totp_factors", "passkeys", "recovery_codes"):
        assert scalar(engine, f"SELECT count(*) FROM {table} t JOIN members m "  # noqa: S608
                              "ON m.id = t.member_id WHERE m.email = :e", e=tenant) == 0
    assert scalar(engine, "SELECT sessions_valid_after FROM members WHERE email = :e",
                  e=tenant) is not None
    details = scalar(engine, "SELECT details FROM audit_events WHERE tenant_id = :t AND "
                             "type = 'member.second_factor_removed'", t=tenant_id)
    assert details["via"] == "saas-admin" and details["passkeys"] == 1
    again = cli("remove-second-factors", "--email", tenant)
    assert again.json["removed"] == {"totp": False, "passkeys": 0, "recovery_codes": 0}


def test_remove_second_factors_of_an_unknown_member_fails(cli):
    result = cli("remove-second-factors", "--email", "nobody-at-all@example.com")
    assert "no member has the email" in one_line_error(result, 1)
