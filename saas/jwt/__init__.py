"""JSON Web Tokens: every rule the service applies to a token, written once.

* ``codec``   — unpadded base64url and strict JSON objects (also for cursors and digests);
* ``rules``   — named checks, run fail-fast by the login path or all at once by the debugger;
* ``claims``  — the checks of claims every kind of token shares (times, ids, objects);
* ``hs256``   — what every HS256 login token must pass, and the request token we sign;
* ``tenant_tokens``, ``custom_tokens`` — the two kinds of login token (docs/protocol.md §4.2, §5.1);
* ``es256``   — access tokens (docs/protocol.md §6), signed and checked with ``cryptography``.

Pure functions: no Redis, no database, no Pyramid; ``now`` is always passed in.
"""
