"""Tokens and sessions of end users: the token endpoint, JWKS, /me, /logout."""
