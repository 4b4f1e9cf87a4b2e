"""The verification recipes of docs/webhooks.md, run as written (Python and Node)
against signatures made the way the service makes them."""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from saas.webhooks import verify
from saas.webhooks.signing import new_secret, signature_header

DOC = Path(__file__).resolve().parents[2] / "docs" / "webhooks.md"
BODY = json.dumps({"id": "01a2", "type": "user.created", "data": {"é": "ünïcode"}},
                  ensure_ascii=False, separators=(",", ":")).encode()


def _first_block(section: str, language: str) -> str:
    text = DOC.read_text()
    start = text.index(f"### {section}\n")
    match = re.compile(rf"```{language}\n(.*?)```", re.S).search(text, start)
    return match.group(1)


def _cases() -> list[tuple[str, bytes, str, str, bool]]:
    secret, now = new_secret(), int(time.time())
    good = signature_header(secret, now, BODY)
    return [
        ("fresh", BODY, good, secret, True),
        ("several v1", BODY, f"t={now},v1={'0' * 64}," + good.split(",")[1], secret, True),
        ("tampered", BODY.replace(b"01a2", b"01a3"), good, secret, False),
        ("other secret", BODY, good, new_secret(), False),
        ("replayed", BODY, signature_header(secret, now - 301, BODY), secret, False),
        ("malformed", BODY, "v1=abc", secret, False),
    ]


def test_the_python_recipe_and_the_shipped_helper_agree_with_the_signer():
    namespace: dict = {}
    exec(_first_block("Python", "python"), namespace)  # noqa: S102 (our own documentation)
    for name, body, header, secret, valid in _cases():
        for check, error in ((namespace["verify_webhook"], namespace["InvalidSignature"]),
                             (verify.verify_webhook, verify.InvalidSignature)):
            if valid:
                assert check(body, header, secret)["id"] == "01a2", name
            else:
                with pytest.raises(error):
                    check(body, header, secret)


def test_the_node_recipe_agrees_with_the_signer(tmp_path):
    node = shutil.which("node") or pytest.fail("Node.js is required: `node` is not on PATH",
                                               pytrace=False)
    cases = _cases()
    script = tmp_path / "verify.js"
    script.write_text(_first_block("Node", "js") + """
const cases = JSON.parse(require("fs").readFileSync(0, "utf8"));
console.log(JSON.stringify(cases.map(([body, header, secret]) => {
  try { return verifyWebhook(Buffer.from(body, "base64"), header, secret).id; }
  catch (err) { return null; }
})));
""")
    payload = json.dumps([[base64.b64encode(body).decode(), header, secret]
                          for _name, body, header, secret, _valid in cases])
    run = subprocess.run([node, str(script)], input=payload, capture_output=True, text=True,
                         timeout=30, check=False)
    assert run.returncode == 0, run.stderr
    answers = json.loads(run.stdout)
    assert answers == [("01a2" if valid else None) for *_rest, valid in cases]
