"""docs/getting-started.md, command by command, and `make demo` (scripts/demo):
the guide's saas-admin commands on a copy of development.ini, then the demo's
three processes on free ports, an in-app login through them, and Ctrl-C."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import threading
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from bridgekeeper_verifier import AccessTokenVerifier
from tests.flows import pkce_pair
from tests.waiting import (
    REQUEST_SECONDS,
    STALL_SECONDS,
    combined,
    processes,
    run,
    wait_until,
)

pytestmark = pytest.mark.integration

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
GUIDE = os.path.join(ROOT, "docs", "getting-started.md")
DEMO = os.path.join(ROOT, "scripts", "demo")


def guide_commands() -> list[str]:
    """Every line of the guide's ```sh blocks."""
    text = Path(GUIDE).read_text(encoding="utf-8")
    blocks = re.findall(r"^```sh\n(.*?)^```", text, flags=re.S | re.M)
    return [line for block in blocks for line in block.splitlines() if line.strip()]


def tmp_config(tmp_path) -> str:
    """development.ini with the database in tmp_path (and alembic found from there)."""
    text = Path(ROOT, "development.ini").read_text(encoding="utf-8")
    text, urls = re.subn(r"(?m)^sqlalchemy\.url = .*$",
                         f"sqlalchemy.url = sqlite:///{tmp_path}/bk.sqlite", text)
    text, scripts = re.subn(r"(?m)^script_location = .*$",
                            f"script_location = {ROOT}/alembic", text)
    assert urls == scripts == 1
    path = tmp_path / "development.ini"
    path.write_text(text)
    return str(path)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("DATABASE_URL", "REDIS_URL", "SAAS_PUBLIC_BASE_URL")}
    return {**env, **extra}


def redirect_login(client: httpx.Client, base: str, app_id: str, page: str) -> dict:
    """authorize → the tenant's form (alice) → callback → code → the token
    answer. ``client`` keeps cookies like a browser."""
    verifier, challenge = pkce_pair()
    started = client.get(f"{base}/v1/apps/{app_id}/authorize", params={
        "redirect_uri": page, "state": "demo", "code_challenge": challenge})
    assert started.status_code == 302, started.text
    form = parse_qs(urlsplit(started.headers["location"]).query)
    signed_in = client.post(str(started.headers["location"]).split("?")[0], data={
        **{name: form[name][0] for name in ("redirect_uri", "state", "token")},
        "id": "alice", "passphrase": "wonderland"})
    assert signed_in.status_code == 302, signed_in.text
    back = client.get(signed_in.headers["location"])
    assert back.status_code == 302, back.text
    landed = parse_qs(urlsplit(back.headers["location"]).query)
    assert back.headers["location"].startswith(page) and "code" in landed, landed
    tokens = client.post(f"{base}/v1/apps/{app_id}/token", data={
        "grant_type": "authorization_code", "code": landed["code"][0], "redirect_uri": page,
        "code_verifier": verifier})
    assert tokens.status_code == 200, tokens.text
    return tokens.json()


def test_guide_commands_and_demo(tmp_path):
    config = tmp_config(tmp_path)
    commands = guide_commands()
    assert commands[:2] == ["make run", "make demo"]  # run below as scripts/demo

    # Step 2 of the guide, as written, on the copied config.
    printed = []
    for line in commands[2:]:
        argv = shlex.split(line)
        assert argv[:2] == [".venv/bin/saas-admin", "development.ini"], line
        argv[1] = config
        done = run(argv, line, cwd=ROOT, env=clean_env(), capture_output=True, text=True)
        assert done.returncode == 0, f"{line}\n{done.stderr}"
        printed.append(json.loads(done.stdout))
    assert [out.get("migrated") for out in printed[:1]] == [True]
    assert printed[1]["email"] == "you@example.com"
    assert printed[2]["redirect_uris"] == ["http://127.0.0.1/"]
    assert set(printed[2]["secrets"]) == {"custom_auth", "custom_token"}

    # `make demo`, on free ports and the same database.
    ports = {name: free_port() for name in ("BK_PORT", "TENANT_PORT", "DEMO_PORT")}
    state = tmp_path / "demo"
    env = clean_env(BK_CONFIG=config, DEMO_VAR=str(state),
                    **{name: str(port) for name, port in ports.items()})
    demo = subprocess.Popen([DEMO], cwd=ROOT, env=env, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output: list[str] = []
    running = threading.Event()

    def read() -> None:
        for line in demo.stdout:
            output.append(line)
            if "demo is running" in line:
                running.set()

    threading.Thread(target=read, daemon=True).start()
    base = f"http://127.0.0.1:{ports['BK_PORT']}"
    try:
        # While its three processes start (slowly, on a busy machine).
        wait_until(running.is_set, "scripts/demo running", progress=combined(
            processes(demo), lambda: len(output)), describe=lambda: "".join(output))
        urls = {
            "demo": f"http://127.0.0.1:{ports['DEMO_PORT']}/demo/",
            "dashboard": f"{base}/dashboard/signin",
            "tenant": f"http://127.0.0.1:{ports['TENANT_PORT']}/auth",
        }
        # The rest of the banner, printed right after.
        wait_until(lambda: all(url in "".join(output) for url in urls.values())
                   and "alice / wonderland" in "".join(output), "the demo's banner",
                   progress=lambda: len(output), describe=lambda: "".join(output))
        banner = "".join(output)
        for url in urls.values():
            assert url in banner
        assert "alice / wonderland" in banner

        app = json.loads((state / "demo-app.json").read_text())
        with httpx.Client(timeout=REQUEST_SECONDS) as client:
            page = client.get(urls["demo"])
            assert page.status_code == 200
            assert json.dumps({"baseUrl": base, "appId": app["app_id"]}) in page.text
            assert client.get(urls["dashboard"]).status_code == 200
            assert client.get(urls["tenant"]).status_code == 401  # no request token

            login = client.post(f"{base}/v1/apps/{app['app_id']}/login/custom",
                                json={"data": {"id": "alice", "passphrase": "wonderland"}})
            assert login.status_code == 200, login.text
            token = login.json()["access_token"]

            # The redirect login, as the demo page's first button does it: the
            # binding cookie set at authorize must come back with the callback.
            tokens = redirect_login(client, base, app["app_id"], urls["demo"])
            assert tokens["user"]["external_id"] == "1001"

        # Step 5 of the guide.
        claims = AccessTokenVerifier(base, app["app_id"]).verify(token)
        assert claims["ext"] == "1001"

        # Ctrl-C stops all three.
        os.killpg(demo.pid, signal.SIGINT)
        wait_until(lambda: demo.poll() is not None, "scripts/demo stopping after Ctrl-C",
                   progress=processes(demo))

        def closed(port: int) -> bool:
            with socket.socket() as sock:
                return sock.connect_ex(("127.0.0.1", port)) != 0

        for port in ports.values():  # the demo has exited: nothing should answer by now
            wait_until(lambda port=port: closed(port), f"port {port} closed after Ctrl-C",
                       cap=STALL_SECONDS)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(demo.pid, signal.SIGKILL)
        demo.wait(timeout=10)


@pytest.mark.parametrize("busy", ["BK_PORT", "TENANT_PORT", "DEMO_PORT"])
def test_demo_refuses_a_busy_port_before_printing_anything(tmp_path, busy):
    """`make demo` beside `make run` (both on 6543) once printed its banner
    while another server answered on its port."""
    ports = {name: free_port() for name in ("BK_PORT", "TENANT_PORT", "DEMO_PORT")}
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", ports[busy]))
        taken.listen()
        env = clean_env(BK_CONFIG=tmp_config(tmp_path), DEMO_VAR=str(tmp_path / "demo"),
                        **{name: str(port) for name, port in ports.items()})
        done = subprocess.run([DEMO], cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=STALL_SECONDS, check=False)
    assert done.returncode == 1
    assert f"port {ports[busy]} ({busy}) is in use" in done.stderr
    assert f"{busy}={ports[busy] + 1} make demo" in done.stderr
    assert "demo is running" not in done.stdout + done.stderr
