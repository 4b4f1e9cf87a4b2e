"""Operator CLI: ``saas-admin CONFIG_URI COMMAND [options]`` (README.md, "Operator CLI").

Every command prints one JSON object on stdout. An error is one line on stderr
with exit code 2 for bad usage and 1 for a failure (unknown tenant, email taken,
invalid URI, missing setting). The CLI commits through its own engine with a
plain ``session.begin()`` block per command; it does not use pyramid_tm.
"""

from __future__ import annotations

import argparse
import configparser
import getpass
import json
import os
import sys
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, NoReturn

import plaster
import redis
from alembic import command as alembic_command
from alembic.config import Config as AlembicConfig
from alembic.script import ScriptDirectory
from alembic.util import CommandError as AlembicError
from cryptography.fernet import InvalidToken
from pyramid.paster import get_appsettings, setup_logging
from sqlalchemy import make_url, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from saas.accounts.factors import remove_all_factors
from saas.accounts.links import LIFETIMES, issue_link, link_url
from saas.accounts.models import LinkPurpose, TotpFactor
from saas.apikeys.services import create_api_key
from saas.apps.cache import AppConfigCache
from saas.apps.models import App, AppSecret, ClientType, SigningKey
from saas.apps.services import app_as_dict, create_app
from saas.apps.validation import InvalidSetting
from saas.audit.services import record_event
from saas.audit.types import AuditType
from saas.config import ConfigurationError, load_settings
from saas.crypto import SecretBox, secret_box_from_settings
from saas.db import engine_from_settings, session_factory, utcnow
from saas.event_streams import layout_from_settings
from saas.passwords import password_problem, passwords_from_settings
from saas.redis import Keys, redis_from_url
from saas.sync.status import sync_status as shard_status
from saas.sync.stream import EventStream
from saas.tenants.models import Member
from saas.tenants.services import EmailTaken, is_valid_email, member_by_email, sign_up
from saas.webhooks.models import WebhookEndpoint

Settings = dict[str, Any]
AUDIT_DETAILS = {"via": "saas-admin"}


class CommandError(Exception):
    """A command failed; the message is one line for the operator."""


class _Parser(argparse.ArgumentParser):
    """Usage errors as one line on stderr, exit code 2."""

    commands: tuple[str, ...] = ()  # the subcommands' names, set by build_parser

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")

    def check_config_given(self, argv: list[str]) -> None:
        """``saas-admin migrate`` (no config file) would otherwise read as the
        config ``migrate`` missing its command: say what is missing instead."""
        positional = [arg for arg in argv if not arg.startswith("-")]
        if not argv:
            self.error("a config file and a command are needed, "
                       "e.g. saas-admin development.ini migrate")
        if positional and positional[0] in self.commands and not os.path.exists(positional[0]):
            self.error(f"a config file is needed before the command, e.g. saas-admin "
                       f"development.ini {positional[0]} (production.ini in production)")


def read_config(config_uri: str) -> Settings:
    """The ``[app:main]`` settings with environment overrides, typed and checked."""
    try:
        raw = get_appsettings(config_uri)
    except (OSError, LookupError, ValueError, configparser.Error) as exc:
        raise CommandError(f"cannot read {config_uri}: {exc}") from exc
    try:
        setup_logging(config_uri)  # our ini files log to stderr, never stdout
    except (OSError, LookupError, ValueError, TypeError, configparser.Error) as exc:
        raise CommandError(f"cannot set up logging from {config_uri}: {exc}") from exc
    return load_settings(raw)


@contextmanager
def transaction(settings: Settings) -> Iterator[Session]:
    """One session in one transaction on a private engine, committed on success."""
    engine = engine_from_settings(settings)
    try:
        with session_factory(engine)() as session, session.begin():
            yield session
    finally:
        engine.dispose()


def _ensure_sqlite_directory(url: str) -> None:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        os.makedirs(os.path.dirname(os.path.abspath(parsed.database)), exist_ok=True)


def migrate(args: argparse.Namespace, settings: Settings) -> dict[str, Any]:
    """Upgrade the database to the newest Alembic revision."""
    location = plaster.get_settings(args.config_uri, "alembic").get("script_location")
    if not location:
        raise CommandError(f"{args.config_uri} has no [alembic] script_location")
    cfg = AlembicConfig(stdout=sys.stderr)
    cfg.set_main_option("script_location", location.replace("%", "%%"))
    cfg.attributes["sqlalchemy.url"] = settings["sqlalchemy.url"]
    _ensure_sqlite_directory(settings["sqlalchemy.url"])
    alembic_command.upgrade(cfg, "head")
    return {"migrated": True, "revision": ScriptDirectory.from_config(cfg).get_current_head()}


def _read_password(given: str | None) -> str:
    if given is not None:
        return given
    if sys.stdin.isatty():
        return getpass.getpass("Password: ")
    return sys.stdin.readline().removesuffix("\n").removesuffix("\r")


def create_tenant(args: argparse.Namespace, settings: Settings) -> dict[str, Any]:
    """Sign up a tenant and its owner; the password comes from --password or stdin."""
    name, email = args.name.strip(), args.email.strip()
    if not 1 <= len(name) <= 200:
        raise CommandError("the tenant name must have 1 to 200 characters")
    if not is_valid_email(email):
        raise CommandError(f"not a valid email address: {email!r}")
    password = _read_password(args.password)
    problem = password_problem(password, email=email)
    if problem:
        raise CommandError(f"password refused: {problem}")
    with transaction(settings) as db:
        try:
            member = sign_up(db, passwords_from_settings(settings),
                             tenant_name=name, email=email, password=password)
        except EmailTaken as exc:
            raise CommandError(f"a member with email {email!r} exists already") from exc
        record_event(db, AuditType.TENANT_CREATED, tenant_id=member.tenant_id,
                     details={"member_email": member.email, **AUDIT_DETAILS})
        return {"tenant_id": str(member.tenant_id), "email": member.email}


def _member(db: Session, email: str) -> Member:
    member = member_by_email(db, email)
    if member is None:
        raise CommandError(f"no tenant has a member with email {email!r}")
    return member


def _tenant_id(db: Session, email: str) -> uuid.UUID:
    return _member(db, email).tenant_id


def create_key(args: argparse.Namespace, settings: Settings) -> dict[str, Any]:
    """Issue a management API key; the plaintext is printed once, never stored."""
    with transaction(settings) as db:
        # The key belongs to the member named by --tenant (it acts with their role).
        creator = _member(db, args.tenant)
        tenant_id = creator.tenant_id
        key, plaintext = create_api_key(db, tenant_id, args.name, created_by_id=creator.id)
        record_event(db, AuditType.API_KEY_CREATED, tenant_id=tenant_id,
                     details={"name": key.name, "prefix": key.prefix, **AUDIT_DETAILS})
        return {"key": plaintext, "name": key.name}


def create_tenant_app(args: argparse.Namespace, settings: Settings) -> dict[str, Any]:
    """Create an app; prints the app object with its plaintext secrets (and the
    client secret of a confidential client, which only this output ever shows)."""
    with transaction(settings) as db:
        tenant_id = _tenant_id(db, args.tenant)
        app, secrets = create_app(
            db, secret_box_from_settings(settings), tenant_id=tenant_id, name=args.name,
            custom_auth_endpoint=args.endpoint, redirect_uris=args.redirect_uris,
            client_type=args.client_type,
            post_logout_redirect_uris=args.post_logout_redirect_uris,
            allow_private=settings["saas.backchannel.allow_private"],
        )
        record_event(db, AuditType.APP_CREATED, tenant_id=tenant_id, app_id=app.app_id,
                     details={"name": app.name, **AUDIT_DETAILS})
        return {**app_as_dict(app), "secrets": secrets}


def reset_password(args: argparse.Namespace, settings: Settings) -> dict[str, Any]:
    """Print a single-use password reset link for a member (operator recovery:
    the member lost access to their mail, or asked support). Audited; the link
    replaces any pending one and works for an hour."""
    purpose = LinkPurpose.RESET_PASSWORD
    with transaction(settings) as db:
        member = member_by_email(db, args.email.strip())
        if member is None:
            raise CommandError(f"no member has the email {args.email.strip()!r}")
        token = issue_link(db, member, purpose)
        record_event(db, AuditType.MEMBER_PASSWORD_RESET_REQUESTED, tenant_id=member.tenant_id,
                     details={"member_email": member.email, **AUDIT_DETAILS})
        expires = int(LIFETIMES[purpose].total_seconds())
        return {"email": member.email, "reset_url": link_url(settings, purpose, token),
                "expires_in": expires}


def remove_second_factors(args: argparse.Namespace, settings: Settings) -> dict[str, Any]:
    """Remove every second factor of a member (authenticator app, passkeys,
    recovery codes) who lost them all; their sessions end. Audited."""
    with transaction(settings) as db:
        member = member_by_email(db, args.email.strip())
        if member is None:
            raise CommandError(f"no member has the email {args.email.strip()!r}")
        removed = remove_all_factors(db, member)
        member.sessions_valid_after = utcnow()
        record_event(db, AuditType.MEMBER_SECOND_FACTOR_REMOVED, tenant_id=member.tenant_id,
                     details={"member_email": member.email, **removed.as_dict(),
                              **AUDIT_DETAILS})
        return {"email": member.email, "removed": removed.as_dict()}


ROTATION_BATCH = 100


def _reencrypt(box: SecretBox, ciphertext: str, what: str) -> str:
    try:
        return box.reencrypt(ciphertext)
    except InvalidToken as exc:
        raise CommandError(
            f"{what} cannot be decrypted with SAAS_MASTER_KEY or SAAS_MASTER_KEY_PREVIOUS; "
            "nothing more was changed (batches before it are done: re-run once fixed)"
        ) from exc


def _is_current(current: SecretBox, ciphertext: str) -> bool:
    """Already under the current master key: a resumed rotation skips it."""
    try:
        current.decrypt(ciphertext)
    except ValueError:
        return False
    return True


# (model, its key column, the ciphertext columns) — every secret at rest.
_ENCRYPTED = (
    (AppSecret, AppSecret.id, ("current_ciphertext", "previous_ciphertext")),
    (SigningKey, SigningKey.kid, ("private_key_ciphertext",)),
    (WebhookEndpoint, WebhookEndpoint.id, ("secret_ciphertext", "previous_secret_ciphertext")),
    (TotpFactor, TotpFactor.id, ("secret_ciphertext",)),
)


def _rotate_batch(db: Session, model, key_column, columns: tuple[str, ...], after,
                  size: int, box: SecretBox, current: SecretBox) -> tuple[list, int, set]:
    """Lock and re-encrypt the next ``size`` rows after ``after``; returns the
    rows' keys, how many values changed, and the apps touched."""
    query = select(model).order_by(key_column).limit(size).with_for_update()
    if after is not None:
        query = query.where(key_column > after)
    rows = db.scalars(query).all()
    changed, apps = 0, set()
    for row in rows:
        what = f"{model.__tablename__} {getattr(row, key_column.key)}"
        for column in columns:
            ciphertext = getattr(row, column)
            if ciphertext is not None and not _is_current(current, ciphertext):
                setattr(row, column, _reencrypt(box, ciphertext, what))
                changed += 1
                if getattr(row, "app_id", None) is not None:  # a TOTP seed has no app
                    apps.add(row.app_id)
    return [getattr(row, key_column.key) for row in rows], changed, apps


def _forget_cached(db: Session, cache: AppConfigCache, app_uuids) -> None:
    for app_id in db.scalars(select(App.app_id).where(App.id.in_(list(app_uuids)))):
        cache.forget(app_id)


def rotate_master_key(args: argparse.Namespace, settings: Settings) -> dict[str, Any]:
    """Re-encrypt every stored secret under the current master key.

    Online: one short transaction per batch of rows, each locked only while it
    is rewritten (a secret rotated meanwhile is never overwritten with its old
    value), so the service and the dashboard go on. Resumable: values already
    under the current key are skipped, so an interrupted run is simply run
    again. The login path's cache of each touched app is dropped after its
    batch commits (it holds ciphertexts) and refilled from PostgreSQL.
    """
    box = secret_box_from_settings(settings)
    current = SecretBox(settings["saas.master_key"])
    cache = AppConfigCache(redis_from_url(settings["redis.url"]),
                           Keys(settings["saas.redis_prefix"]))
    engine = engine_from_settings(settings)
    count = 0
    try:
        make_session = session_factory(engine)
        for model, key_column, columns in _ENCRYPTED:
            after = None
            while True:
                with make_session() as db, db.begin():
                    keys, changed, apps = _rotate_batch(db, model, key_column, columns, after,
                                                        args.batch_size, box, current)
                count += changed
                if apps:
                    with make_session() as db:
                        _forget_cached(db, cache, apps)
                if len(keys) < args.batch_size:
                    break
                after = keys[-1]
    except redis.RedisError as exc:
        raise CommandError(f"secrets re-encrypted, but the login cache could not be "
                           f"refreshed ({exc.__class__.__name__}); re-run") from exc
    finally:
        engine.dispose()
    return {"reencrypted": count}


def sync_status(args: argparse.Namespace, settings: Settings) -> dict[str, Any]:
    """Backlog of the login event streams (in total and per shard), the oldest
    entry's age, dead letters."""
    client = redis_from_url(settings["redis.url"])
    layout = layout_from_settings(settings)
    stream = EventStream(client, layout.keys, consumer="saas-admin")  # for the dead letters
    try:
        status = shard_status(client, layout)
        status["recent_dead_letters"] = stream.dead_letters(args.dead_letters)
    except redis.RedisError as exc:
        raise CommandError(f"Redis is unreachable: {exc.__class__.__name__}") from exc
    return status


Command = Callable[[argparse.Namespace, Settings], dict[str, Any]]


def _positive(value: str) -> int:
    number = int(value)
    if number <= 0:
        raise argparse.ArgumentTypeError("must be a positive integer")
    return number


def build_parser() -> _Parser:
    """The argument parser: CONFIG_URI, then one subcommand."""
    parser = _Parser(prog="saas-admin", description="Bridgekeeper operator commands.")
    parser.add_argument("config_uri", metavar="CONFIG_URI", help="e.g. production.ini")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def add(name: str, func: Command, help_: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_, description=help_)
        sub.set_defaults(func=func)
        return sub

    add("migrate", migrate, "Upgrade the database schema (alembic upgrade head).")
    sub = add("create-tenant", create_tenant, "Create a tenant and its owner.")
    sub.add_argument("--email", required=True)
    sub.add_argument("--name", required=True, help="the tenant's name")
    sub.add_argument("--password", help="default: one line read from stdin")
    sub = add("create-api-key", create_key, "Create a management API key.")
    sub.add_argument("--tenant", required=True, metavar="EMAIL", help="a member's email")
    sub.add_argument("--name", default="", help="a label for the key")
    sub = add("create-app", create_tenant_app, "Create an app and print its secrets.")
    sub.add_argument("--tenant", required=True, metavar="EMAIL", help="a member's email")
    sub.add_argument("--name", required=True)
    sub.add_argument("--endpoint", metavar="URL", help="the custom-auth endpoint")
    sub.add_argument("--redirect-uri", dest="redirect_uris", action="append", default=[],
                     metavar="URI", help="an allowed redirect URI (repeatable)")
    sub.add_argument("--client-type", choices=[t.value for t in ClientType],
                     default=ClientType.PUBLIC.value,
                     help="OpenID Connect client type (confidential: prints a client secret)")
    sub.add_argument("--post-logout-redirect-uri", dest="post_logout_redirect_uris",
                     action="append", default=[], metavar="URI",
                     help="an allowed post-logout redirect URI (repeatable)")
    sub = add("reset-password", reset_password,
              "Print a single-use password reset link for a member (valid one hour).")
    sub.add_argument("--email", required=True, help="the member's email")
    sub = add("remove-second-factors", remove_second_factors,
              "Remove a member's authenticator app, passkeys and recovery codes.")
    sub.add_argument("--email", required=True, help="the member's email")
    sub = add("rotate-master-key", rotate_master_key,
              "Re-encrypt all secrets under SAAS_MASTER_KEY (old keys: "
              "SAAS_MASTER_KEY_PREVIOUS); online and resumable.")
    sub.add_argument("--batch-size", type=_positive, default=ROTATION_BATCH, metavar="N",
                     help=f"rows per transaction (default {ROTATION_BATCH})")
    sub = add("sync-status", sync_status,
              "Show the event sync backlog, its oldest entry's age and dead letters.")
    sub.add_argument("--dead-letters", type=int, default=10, metavar="N",
                     help="how many recent dead letters to list (default 10)")
    parser.commands = tuple(commands.choices)
    return parser


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, SQLAlchemyError) and getattr(exc, "orig", None) is not None:
        exc = exc.orig
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


def main(argv: list[str] | None = None) -> int:
    """Run one command; returns the process exit code (0, 1 failure, 2 usage)."""
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser()
    try:
        parser.check_config_given(argv)
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: --help (0) or a usage error (2)
        return exc.code if isinstance(exc.code, int) else 2
    try:
        result = args.func(args, read_config(args.config_uri))
    except (CommandError, ConfigurationError, InvalidSetting, AlembicError,
            SQLAlchemyError, OSError) as exc:
        print(f"saas-admin: {_one_line(exc)}", file=sys.stderr)
        return 1
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
