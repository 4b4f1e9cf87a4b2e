"""JSON Web Tokens: every rule the service applies to a token, written once.

* ``codec``   — unpadded base64url and strict JSON objects (also for cursors and digests).

Pure functions: no Redis, no database, no Pyramid; ``now`` is always passed in.
"""
