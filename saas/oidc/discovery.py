"""``GET {issuer}/.well-known/openid-configuration`` (OpenID Connect Discovery 1.0, RFC 8414).

Everything advertised here works; nothing that does not is advertised.
Public, cacheable and open to every origin: it holds no secret.
"""

from __future__ import annotations

from typing import Any

from pyramid.view import view_config

from saas.apps.lookup import load_app
from saas.tokens.scopes import EMAIL_CLAIMS, PROFILE_CLAIMS, SUPPORTED_SCOPES

ID_TOKEN_CLAIMS = ("sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "sid", "amr",
                   "azp", "at_hash")


def provider_metadata(issuer: str) -> dict[str, Any]:
    return {
        "issuer": issuer,
        "authorization_endpoint": issuer + "/authorize",
        "token_endpoint": issuer + "/token",
        "userinfo_endpoint": issuer + "/userinfo",
        "jwks_uri": issuer + "/.well-known/jwks.json",
        "revocation_endpoint": issuer + "/revoke",
        "introspection_endpoint": issuer + "/introspect",
        "end_session_endpoint": issuer + "/end-session",
        "scopes_supported": list(SUPPORTED_SCOPES),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query", "form_post"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["ES256"],
        "token_endpoint_auth_methods_supported": ["none", "client_secret_basic",
                                                  "client_secret_post"],
        "revocation_endpoint_auth_methods_supported": ["none", "client_secret_basic",
                                                       "client_secret_post"],
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic",
                                                          "client_secret_post"],
        "code_challenge_methods_supported": ["S256"],
        "claims_supported": [*ID_TOKEN_CLAIMS, *PROFILE_CLAIMS, *EMAIL_CLAIMS],
        "prompt_values_supported": ["none", "login", "consent", "select_account"],
        "claims_parameter_supported": False,
        "request_parameter_supported": False,
        "request_uri_parameter_supported": False,
        "authorization_response_iss_parameter_supported": True,
        "frontchannel_logout_supported": False,
        "backchannel_logout_supported": False,
    }


@view_config(route_name="oidc.discovery", request_method="GET", renderer="json")
def discovery(request) -> dict[str, Any]:
    app = load_app(request)
    headers = request.response.headers
    headers["Cache-Control"] = "public, max-age=300"
    headers["Access-Control-Allow-Origin"] = "*"
    return provider_metadata(request.access_tokens.issuer(app.app_id))
