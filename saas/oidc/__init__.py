"""OpenID Connect's own endpoints (docs/oidc.md): discovery, UserInfo,
revocation, introspection and RP-initiated logout. The authorization and
token endpoints are the login protocol's own (``saas.flows``, ``saas.tokens``)."""
