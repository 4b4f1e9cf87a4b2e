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


# -- the protocol reference is in the repository, and every link resolves --------------

SHIPPED = ("saas", "docs", "examples", "sdk/js/src")
TEXT_SUFFIXES = {".py", ".md", ".html", ".json", ".js", ".ts", ".css", ".rb", ".txt", ".ini"}


def shipped_files() -> list[Path]:
    """What users get: the package, the docs, the examples, the SDK and the README."""
    files = [ROOT / "README.md", ROOT / "sdk" / "js" / "README.md"]
    for folder in SHIPPED:
        files += [path for path in sorted((ROOT / folder).rglob("*"))
                  if path.is_file() and path.suffix in TEXT_SUFFIXES
                  and "node_modules" not in path.parts and "__pycache__" not in path.parts]
    return files


def test_no_shipped_file_cites_the_private_design_document():
    """The design lives outside the repository; users get docs/protocol.md."""
    design = re.compile(r"shared/DESIGN\.md|DESIGN (?:§|\\u00a7)")
    files = shipped_files()
    assert ROOT / "docs" / "protocol.md" in files and len(files) > 100
    found = [f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
             for path in files
             for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
             if design.search(line)]
    assert found == []


def markdown_files() -> list[Path]:
    return [*guides(), ROOT / "sdk" / "js" / "README.md"]


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to dashes."""
    text = re.sub(r"[`*]|\[([^\]]*)\]\([^)]*\)", lambda m: m.group(1) or "", heading)
    text = re.sub(r"[^\w\- ]", "", text.strip().lower())
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    found = set()
    for heading in re.findall(r"^#{1,6} (.+)$", without_code(path), flags=re.M):
        base = slug(heading)
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def without_code(path: Path) -> str:
    """The Markdown without its fenced blocks (a `#` comment there is no heading)."""
    return re.sub(r"^```.*?^```", "", path.read_text(encoding="utf-8"), flags=re.S | re.M)


def relative_links(path: Path) -> list[str]:
    text = re.sub(r"`[^`\n]*`", "", without_code(path))  # inline code holds no links
    targets = re.findall(r"\]\(([^)\s]+)\)", text)
    return [t for t in targets if not re.match(r"[a-z][a-z0-9+.-]*:", t)]


def test_every_relative_link_in_the_guides_resolves():
    broken = []
    checked = 0
    for path in markdown_files():
        for target in relative_links(path):
            checked += 1
            file_part, _, anchor = target.partition("#")
            resolved = (path.parent / file_part).resolve() if file_part else path
            if not resolved.exists():
                broken.append(f"{path.relative_to(ROOT)}: {target} (no such file)")
            elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
                broken.append(f"{path.relative_to(ROOT)}: {target} (no such heading)")
    assert checked > 50
    assert broken == []


def test_the_protocol_reference_lists_every_reason_code():
    """docs/protocol.md §7 names every reason the service gives, with its status."""
    from saas.errors import Reason

    reference = (ROOT / "docs" / "protocol.md").read_text(encoding="utf-8")
    table = reference.split("## 7. Errors and reason codes", 1)[1].split("\n## ", 1)[0]
    missing = [reason.value for reason in Reason if f"`{reason.value}`" not in table]
    assert missing == []


def test_the_management_guide_lists_every_audit_type():
    """Every type the service writes is named where tenants filter the audit log."""
    from saas.audit.types import AuditType

    guide = (ROOT / "docs" / "management-api.md").read_text(encoding="utf-8")
    section = guide.split("### Audit log and statistics", 1)[1].split("\n### ", 1)[0]
    missing = [kind.value for kind in AuditType if f"`{kind.value}`" not in section]
    assert missing == []
