"""What a first-time reader follows: the development defaults agree with the
guides and the examples."""

from __future__ import annotations

import configparser
import json
import re
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[2]


def guides() -> list[Path]:
    """The Markdown a reader follows: README, docs/ and the examples' READMEs."""
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")),
            *sorted((ROOT / "examples").glob("*/README.md"))]


def development_settings() -> configparser.RawConfigParser:
    parser = configparser.RawConfigParser()
    parser.read(ROOT / "development.ini", encoding="utf-8")
    return parser


def test_the_development_server_is_reached_by_one_url_everywhere():
    """`make run` + the by-hand demo once ended every login with "started in
    another browser": the page used 127.0.0.1 while public_base_url said
    localhost, and a browser keeps the binding cookie per host."""
    settings = development_settings()
    base_url = settings.get("app:main", "saas.public_base_url")
    listen = settings.get("server:main", "listen")
    assert listen == urlsplit(base_url).netloc

    page = (ROOT / "examples" / "demo" / "index.html").read_text(encoding="utf-8")
    block = re.search(r'id="bridgekeeper-config">\s*(.*?)\s*</script>', page, flags=re.S)
    assert json.loads(block.group(1))["baseUrl"] == base_url

    port = urlsplit(base_url).port
    mentions = {}
    for path in [ROOT / "Makefile", ROOT / "scripts" / "demo", *guides()]:
        text = path.read_text(encoding="utf-8")
        for url in re.findall(rf"https?://[^\s/'\"<>`)]+:{port}\b", text):
            mentions.setdefault(url, []).append(path.relative_to(ROOT).as_posix())
    assert mentions, f"no guide names the development URL {base_url}"
    assert set(mentions) == {base_url}, mentions


def shell_lines(path: Path) -> list[str]:
    text = path.read_text(encoding="utf-8")
    blocks = re.findall(r"^```(?:sh|bash|shell)\n(.*?)^```", text, flags=re.S | re.M)
    return [line for block in blocks for line in block.splitlines()]


def test_guides_run_python_from_the_virtualenv():
    """A bare `python` has none of the dependencies (PyJWT, Bridgekeeper):
    the guides say `.venv/bin/python`. The standard library's web server is
    the one exception."""
    bare = re.compile(r"(?:^|[\s(;&|])python3?\s+(?!-m http\.server\b)")
    lines = {path.relative_to(ROOT).as_posix(): shell_lines(path) for path in guides()}
    assert any(".venv/bin/python examples/python/tenant_endpoint.py" in line
               for line in lines["examples/python/README.md"])
    found = [(name, line) for name, text in lines.items() for line in text if bare.search(line)]
    assert found == []
