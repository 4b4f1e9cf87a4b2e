"""Property-based API testing of the whole public surface with schemathesis:
generated requests from /v1/openapi.json against a live server must never get
a 5xx, and every documented answer must match its schema."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from sqlalchemy import create_engine, delete
from sqlalchemy.orm import Session

from saas.audit.models import AuditEvent
from tests.factories import make_api_key
from tests.flows import CLIENT_REDIRECT
from tests.live import committed_app, live_server

pytestmark = pytest.mark.integration

SCHEMATHESIS = os.path.join(os.path.dirname(sys.executable), "schemathesis")


def test_generated_requests_find_no_server_error_and_no_schema_break(app_settings, tmp_path):
    engine = create_engine(app_settings["sqlalchemy.url"])
    settings = dict(app_settings, **{"saas.ratelimit.enabled": "false"})
    with committed_app(settings, redirect_uris=[CLIENT_REDIRECT],
                       custom_auth_endpoint="https://tenant.example.com/auth",
                       custom_token_enabled=True) as (app, _secrets), \
            live_server(settings) as base:
        with Session(engine) as session:
            _key, api_key = make_api_key(session, app.tenant_id, "schemathesis")
            session.commit()
        try:
            run = subprocess.run(
                [SCHEMATHESIS, "run", f"{base}/v1/openapi.json",
                 "-H", f"Authorization: Bearer {api_key}",
                 "-c", "not_a_server_error,response_schema_conformance",
                 "-n", "12", "--seed", "1", "--request-timeout", "10",
                 "--report-dir", str(tmp_path)],
                capture_output=True, text=True, timeout=600, check=False,
                env=dict(os.environ, SCHEMATHESIS_HOOKS=""),
            )
        finally:
            with Session(engine) as session:
                session.execute(delete(AuditEvent).where(AuditEvent.tenant_id == app.tenant_id))
                session.commit()
            engine.dispose()
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
