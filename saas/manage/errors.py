"""The management API's error answers (docs/protocol.md §7 shape, docs/management-api.md).

Besides the contract's reasons (``not_found``, ``payload_too_large``) the API
uses its own, listed in :class:`saas.errors.ManageReason`.
"""

from __future__ import annotations

from saas.errors import ApiError, ManageReason, Reason

WWW_AUTHENTICATE = 'Bearer realm="bridgekeeper"'


def not_found(what: str) -> ApiError:
    return ApiError(404, "not_found", Reason.NOT_FOUND, f"no such {what}")


def unauthorized(presented: bool) -> ApiError:
    """401 for a missing (``presented`` False) or unknown/revoked key (RFC 6750 §3.1)."""
    header = WWW_AUTHENTICATE + (', error="invalid_token"' if presented else "")
    description = ("the API key is unknown or revoked" if presented
                   else "send a tenant API key as 'Authorization: Bearer bk_…'")
    return ApiError(401, "invalid_token", ManageReason.INVALID_API_KEY, description,
                    headers={"WWW-Authenticate": header})


def invalid_value(description: str) -> ApiError:
    return ApiError(422, "invalid_request", ManageReason.INVALID_VALUE, description)


def unknown_fields(names: list[str]) -> ApiError:
    return ApiError(422, "invalid_request", ManageReason.UNKNOWN_FIELDS,
                    "unknown fields: " + ", ".join(names))


def invalid_parameter(name: str, rule: str) -> ApiError:
    return ApiError(400, "invalid_request", ManageReason.INVALID_PARAMETER, f"{name} {rule}")


def invalid_cursor() -> ApiError:
    return ApiError(400, "invalid_request", ManageReason.INVALID_CURSOR,
                    "the cursor is malformed; start again without it")
