"""A tenant's custom-auth endpoint for Bridgekeeper, in Python (PyJWT).

It follows the three steps of the protocol:

1. verify the incoming request token (HS256, your custom-auth secret);
2. authenticate the user — here with a sign-in form and a demo user table;
3. redirect back to ``redirect_uri`` with ``&token=…&state=…``, where the
   token is signed with the same secret and carries ``user_id``, ``custom``
   data and the ``state`` claim (which binds the token to this one login).

A refused user is sent back with ``&error=access_denied`` rather than a 401,
so the app learns of the refusal.

Run (from the repository's root, in Bridgekeeper's virtualenv, which has PyJWT):
  BRIDGEKEEPER_SECRET=... .venv/bin/python examples/python/tenant_endpoint.py --port 8765
"""

from __future__ import annotations

import argparse
import html
import os
import sys
import time
import uuid
from urllib.parse import parse_qs, urlencode
from wsgiref.simple_server import WSGIRequestHandler, make_server

import jwt

# Your own user system. Never keep plain passwords in real code.
USERS = {
    "alice": {"passphrase": "wonderland", "id": 1001, "custom": {"plan": "pro", "lang": "en"}},
    "bob": {"passphrase": "builder", "id": "bob-42", "custom": {"plan": "free"}},
}

FORM = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>Sign in</title></head>
<body><h1>Sign in to Example Co.</h1>
<form method="post">
<input type="hidden" name="redirect_uri" value="{redirect_uri}">
<input type="hidden" name="state" value="{state}">
<input type="hidden" name="token" value="{token}">
<label for="id">User</label> <input id="id" name="id" autocomplete="username">
<label for="passphrase">Passphrase</label>
<input id="passphrase" name="passphrase" type="password" autocomplete="current-password">
<button type="submit">Sign in</button>
</form></body></html>"""


def respond(start_response, status: str, body: str = "", headers=None):
    start_response(status, [("Content-Type", "text/html; charset=utf-8"), *(headers or [])])
    return [body.encode("utf-8")]


def make_app(secret: str):
    def app(environ, start_response):
        if environ["REQUEST_METHOD"] == "POST":
            size = int(environ.get("CONTENT_LENGTH") or 0)
            params = parse_qs(environ["wsgi.input"].read(min(size, 65536)).decode())
        else:
            params = parse_qs(environ.get("QUERY_STRING", ""))
        field = {key: values[0] for key, values in params.items()}
        redirect_uri, state, token = (field.get(k, "") for k in ("redirect_uri", "state", "token"))

        # Step 1: verify the incoming request token.
        try:
            incoming = jwt.decode(token, secret, algorithms=["HS256"])
        except jwt.PyJWTError:
            return respond(start_response, "401 Unauthorized", "invalid request token")
        data = incoming.get("data") or {}

        if environ["REQUEST_METHOD"] != "POST" and not data.get("id"):
            page = FORM.format(**{k: html.escape(v) for k, v in
                                  {"redirect_uri": redirect_uri, "state": state,
                                   "token": token}.items()})
            return respond(start_response, "200 OK", page)

        # Step 2: authenticate the user with your own system. Credentials come
        # from the form (or from `data` when Bridgekeeper calls server-to-server).
        user_name = field.get("id") or data.get("id", "")
        passphrase = field.get("passphrase") or data.get("passphrase", "")
        user = USERS.get(user_name)
        if user is None or user["passphrase"] != passphrase:
            # Tell the app: redirect back with an error instead of a 401.
            query = urlencode({"error": "access_denied",
                               "error_description": "Unknown user or wrong passphrase",
                               "state": state})
            return respond(start_response, "302 Found", "",
                           [("Location", f"{redirect_uri}&{query}")])

        # Step 3: sign the outgoing token and redirect back.
        now = int(time.time())
        outgoing = jwt.encode(
            {"user_id": user["id"], "custom": user["custom"], "state": state,
             "iat": now, "exp": now + 60, "jti": uuid.uuid4().hex},
            secret,
            algorithm="HS256",
        )
        query = urlencode({"token": outgoing, "state": state})
        return respond(start_response, "302 Found", "", [("Location", f"{redirect_uri}&{query}")])

    return app


class QuietHandler(WSGIRequestHandler):
    def log_message(self, format, *args):
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args()
    secret = os.environ.get("BRIDGEKEEPER_SECRET")
    if not secret:
        sys.exit("set BRIDGEKEEPER_SECRET to your app's custom-auth secret")
    server = make_server(args.host, args.port, make_app(secret), handler_class=QuietHandler)
    print(f"listening on http://{args.host}:{server.server_port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
