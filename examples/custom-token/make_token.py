"""Make a Bridgekeeper custom token, in Python (PyJWT).

Your server runs this (or the same few lines) for a user it has already
authenticated, and hands the token to your app, which posts it to
``POST /v1/apps/{app_id}/login/custom-token`` as ``{"token": "..."}``.
The claims are Skygear's, byte for byte: ``sub``, ``iat``, ``exp`` (at most
one hour after ``iat``) and ``skyprofile``, signed HS256 with the app's
custom-token secret. See docs/custom-tokens.md.

Run (from the repository's root, in Bridgekeeper's virtualenv, which has PyJWT):
  BRIDGEKEEPER_CUSTOM_TOKEN_SECRET=... .venv/bin/python examples/custom-token/make_token.py
  USER_ID [EMAIL [USERNAME]]
(or give the user in BRIDGEKEEPER_USER_ID, BRIDGEKEEPER_USER_EMAIL,
BRIDGEKEEPER_USER_USERNAME). Prints the token on stdout.
"""

import os
import sys
import time
import uuid

import jwt  # pip install PyJWT


def arg(index, env, default=None):
    return sys.argv[index] if len(sys.argv) > index else os.environ.get(env, default)


now_seconds = int(time.time())  # an integer: Bridgekeeper refuses float times
user_id = arg(1, "BRIDGEKEEPER_USER_ID")  # User id of your server, 1-36 characters
custom_token_secret = os.environ.get("BRIDGEKEEPER_CUSTOM_TOKEN_SECRET")
if not user_id or not custom_token_secret:
    sys.exit("usage: BRIDGEKEEPER_CUSTOM_TOKEN_SECRET=... make_token.py USER_ID [EMAIL [USERNAME]]")

token = jwt.encode({
    'sub': user_id,
    'iat': now_seconds,
    'exp': now_seconds + (60 * 60),  # expire within 1 hour
    # Not in Skygear's example; we recommend it. A token is accepted once, and two
    # tokens made for one user in the same second are otherwise identical, so the
    # second would be refused as token_replayed. A unique jti tells them apart.
    'jti': str(uuid.uuid4()),
    'skyprofile': {
        'email': arg(2, "BRIDGEKEEPER_USER_EMAIL", ""),
        'username': arg(3, "BRIDGEKEEPER_USER_USERNAME", "user"),
    },
}, custom_token_secret, algorithm='HS256')

print(token)
