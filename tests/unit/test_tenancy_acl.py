"""The one ACL of both doors: who may view, manage, and manage members."""

from __future__ import annotations

import uuid
from types import SimpleNamespace

import pytest
from pyramid.authorization import ACLHelper, Authenticated, Everyone

from saas.security import Permission
from saas.tenancy.contexts import TenantContext

TENANT = uuid.uuid4()


def scope(tenant_id) -> TenantContext:
    """The root context for a caller of ``tenant_id`` (None: no member, no key)."""
    identity = SimpleNamespace(tenant_id=tenant_id) if tenant_id else None
    return TenantContext(SimpleNamespace(identity=identity))


def principals(tenant_id, role: str | None) -> list[str]:
    if role is None:
        return [Everyone]
    return [Everyone, Authenticated, f"tenant:{tenant_id}", f"tenant:{tenant_id}:{role}"]


@pytest.mark.parametrize(("role", "allowed"), [
    ("owner", {Permission.VIEW, Permission.MANAGE, Permission.MANAGE_MEMBERS}),
    ("admin", {Permission.VIEW, Permission.MANAGE}),
    ("viewer", {Permission.VIEW}),
    (None, set()),
])
def test_each_role_gets_its_permissions_in_its_own_tenant_only(role, allowed):
    acl = ACLHelper()
    for permission in Permission:
        mine = acl.permits(scope(TENANT), principals(TENANT, role), permission)
        assert bool(mine) == (permission in allowed), (role, permission)
        foreign = acl.permits(scope(uuid.uuid4()), principals(TENANT, role), permission)
        assert not foreign


def test_nobody_is_let_in_without_a_tenant():
    for role in ("owner", "admin", "viewer"):
        for permission in Permission:
            assert not ACLHelper().permits(scope(None), principals(TENANT, role), permission)
