"""No secret is stored in plain text: the secret columns read back raw."""

from __future__ import annotations

from sqlalchemy import text

from saas.apikeys.services import create_api_key
from saas.crypto import hash_token
from tests.factories import DEFAULT_PASSWORD, make_app, make_member


def test_secret_columns_hold_no_plaintext(db, passwords, secret_box):
    member = make_member(db, passwords)
    app, plaintext = make_app(db, secret_box, member.tenant_id)
    _key, api_key = create_api_key(db, member.tenant_id, "ci", created_by_id=member.id)
    db.flush()

    rows = db.execute(
        text("SELECT kind, current_ciphertext FROM app_secrets WHERE app_id = :id"),
        {"id": app.id},
    ).all()
    assert {kind for kind, _ in rows} == {"custom_auth", "custom_token"}
    for kind, ciphertext in rows:
        assert plaintext[kind] not in ciphertext
        assert secret_box.decrypt(ciphertext) == plaintext[kind]

    private = db.execute(
        text("SELECT private_key_ciphertext, public_jwk FROM signing_keys WHERE app_id = :id"),
        {"id": app.id},
    ).one()
    assert "PRIVATE KEY" not in private.private_key_ciphertext
    assert "BEGIN PRIVATE KEY" in secret_box.decrypt(private.private_key_ciphertext)
    assert "d" not in private.public_jwk  # the private scalar never leaves the ciphertext

    password_hash = db.execute(
        text("SELECT password_hash FROM members WHERE id = :id"), {"id": member.id}
    ).scalar_one()
    assert password_hash.startswith("$argon2id$") and DEFAULT_PASSWORD not in password_hash
    assert "$m=19456,t=2,p=1$" in password_hash  # argon2id at m=19 MiB, t=2, p=1

    stored = db.execute(
        text("SELECT key_hash, prefix FROM api_keys WHERE tenant_id = :t"), {"t": member.tenant_id}
    ).one()
    assert stored.key_hash == hash_token(api_key)
    assert api_key not in stored.key_hash and len(stored.prefix) < len(api_key)
