"""A built wheel is a working Bridgekeeper: ``pip wheel`` of a copy of the
repository, installed into a fresh virtualenv outside it, migrates a database
and serves the sign-up page, the hosted sign-in form, its stylesheet and the
SDK — from the installed package, with the repository nowhere on its path.

The fresh virtualenv takes the dependencies from the test virtualenv's
site-packages through a path line in a ``.pth`` file: that puts the folder on
``sys.path`` behind the new site-packages without running the ``.pth`` files
inside it, so the editable install's import hook (which maps ``saas`` to the
repository) is not installed, and ``saas`` is the wheel's copy.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import sysconfig
import time
import zipfile
from pathlib import Path

import httpx
import pytest

from tests.live import free_port

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 300
# Not part of a source tree (or rebuilt by it).
NOT_SOURCE = shutil.ignore_patterns(".git", ".venv", "node_modules", "var", "build", "dist",
                                    "*.egg-info", "__pycache__", ".pytest_cache",
                                    ".ruff_cache", "test-artifacts", ".schemathesis")


def run(argv: list, cwd: Path, **kwargs) -> subprocess.CompletedProcess:
    done = subprocess.run([str(a) for a in argv], cwd=cwd, capture_output=True, text=True,
                          timeout=TIMEOUT, check=False, **kwargs)
    assert done.returncode == 0, f"{argv}\n{done.stdout}\n{done.stderr}"
    return done


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """``pip wheel --no-deps`` of a copy of the repository (the build leaves
    ``build/`` and ``*.egg-info`` where it runs)."""
    work = tmp_path_factory.mktemp("wheel")
    source = work / "source"
    shutil.copytree(ROOT, source, symlinks=True, ignore=NOT_SOURCE)
    done = run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--wheel-dir", work / "dist",
                source], cwd=work)
    assert "absent from the `packages` configuration" not in done.stdout + done.stderr
    (built,) = (work / "dist").glob("bridgekeeper-*.whl")
    return built


def package_data() -> set[str]:
    """The files MANIFEST.in ships beside the code: templates, static files, the
    OpenAPI document (links followed, as the build does)."""
    files = {"saas/openapi.json"}
    for folder, pattern in (("saas/templates", "*.html"), ("saas/templates", "*.txt"),
                            ("saas/static", "*")):
        files |= {path.relative_to(ROOT).as_posix()
                  for path in (ROOT / folder).rglob(pattern) if path.is_file()}
    return files


def test_the_wheel_carries_every_template_and_static_file(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = package_data()
    assert "saas/templates/dashboard/signup.html" in expected
    assert "saas/templates/mail/verify_email.txt" in expected
    assert "saas/static/sdk/bridgekeeper.js" in expected
    assert expected - names == set()
    assert not any(name.startswith("tests/") for name in names)


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory) -> Path:
    """A fresh virtualenv with the wheel installed; returns its folder."""
    venv = tmp_path_factory.mktemp("installed") / "venv"
    run([getattr(sys, "_base_executable", sys.executable), "-m", "venv", "--without-pip", venv],
        cwd=venv.parent)
    python = venv / "bin" / "python"
    run([sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index",
         wheel], cwd=venv.parent)
    site = run([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
               cwd=venv.parent).stdout.strip()
    Path(site, "bridgekeeper-test-dependencies.pth").write_text(
        sysconfig.get_path("purelib") + "\n", encoding="utf-8")
    return venv


def config(folder: Path, port: int) -> Path:
    """An ini like development.ini (SQLite, in-process Redis), in ``folder``; only
    the migrations come from the repository (they are not package data)."""
    path = folder / "installed.ini"
    path.write_text(f"""\
[app:main]
use = egg:bridgekeeper
sqlalchemy.url = sqlite:///%(here)s/bk.sqlite
redis.url = memory://
celery.broker_url = memory://
celery.always_eager = true
saas.master_key = installed-wheel-test-master-key-not-a-secret
saas.public_base_url = http://127.0.0.1:{port}
saas.secure_cookies = false
saas.backchannel.allow_private = true
saas.sync.embedded = true

[server:main]
use = egg:waitress#main
listen = 127.0.0.1:{port}

[alembic]
script_location = {ROOT}/alembic
""", encoding="utf-8")
    return path


def wait_for(base: str, server: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + TIMEOUT
    while True:
        assert server.poll() is None, f"pserve exited:\n{log.read_text()}"
        try:
            if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, f"pserve did not answer:\n{log.read_text()}"
        time.sleep(0.2)


def test_the_installed_package_serves_the_sign_up_page_and_the_hosted_form(
        installed, tmp_path):
    bin_ = installed / "bin"
    where = run([bin_ / "python", "-c", "import saas; print(saas.__file__)"], cwd=tmp_path)
    assert Path(where.stdout.strip()).is_relative_to(installed), where.stdout
    port = free_port()
    ini = config(tmp_path, port)

    def admin(*argv: str) -> dict:
        return json.loads(run([bin_ / "saas-admin", ini, *argv], cwd=tmp_path).stdout)

    assert admin("migrate")["migrated"] is True
    admin("create-tenant", "--email", "owner@example.com", "--name", "Wheel Co",
          "--password", "correct-horse-battery")
    app = admin("create-app", "--tenant", "owner@example.com", "--name", "Wheel app",
                "--endpoint", "http://127.0.0.1:9/auth", "--redirect-uri", "http://127.0.0.1/")
    key = admin("create-api-key", "--tenant", "owner@example.com")["key"]

    log = tmp_path / "pserve.log"
    with log.open("w") as output:
        # pserve's script lives in the test virtualenv; its module is importable here.
        server = subprocess.Popen([bin_ / "python", "-m", "pyramid.scripts.pserve", ini],
                                  cwd=tmp_path, stdout=output, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(base, server, log)
        with httpx.Client(base_url=base, timeout=10) as client:
            signup = client.get("/dashboard/signup")
            assert signup.status_code == 200, signup.text
            assert "<form" in signup.text and 'name="csrf_token"' in signup.text
            assert client.get("/static/app.css").status_code == 200

            on = client.patch(f"/v1/manage/apps/{app['app_id']}", json={"backchannel": True},
                              headers={"Authorization": f"Bearer {key}"})
            assert on.status_code == 200, on.text
            form = client.get(f"/v1/apps/{app['app_id']}/login", params={
                "redirect_uri": "http://127.0.0.1/", "code_challenge": "A" * 43})
            assert form.status_code == 200, form.text
            assert "<h1>Sign in to Wheel app</h1>" in form.text
            assert 'name="passphrase"' in form.text
            assert client.get("/static/hosted.css").status_code == 200
            sdk = client.get("/v1/sdk.js")
            assert sdk.status_code == 200 and "export function Bridgekeeper" in sdk.text
    finally:
        server.terminate()
        server.wait(timeout=30)
