"""``saas-web``'s own duties (saas/serve.py)."""

from __future__ import annotations

import pytest

from saas.serve import _bind, forget_settings_environment


def test_the_settings_variables_leave_the_worker_environment():
    environ = {"SAAS_MASTER_KEY": "k", "SAAS_MASTER_KEY_PREVIOUS": "p",
               "DATABASE_URL": "postgresql://u:pw@db/x", "REDIS_URL": "redis://r",
               "SMTP_URL": "smtp://u:pw@mail", "PATH": "/usr/bin", "HOME": "/root"}
    dropped = forget_settings_environment(environ)
    assert set(dropped) == {"SAAS_MASTER_KEY", "SAAS_MASTER_KEY_PREVIOUS", "DATABASE_URL",
                            "REDIS_URL", "SMTP_URL"}
    assert environ == {"PATH": "/usr/bin", "HOME": "/root"}


@pytest.mark.parametrize(("value", "bound"), [
    ("10.1.2.3:6543", ("10.1.2.3", 6543)), ("[::1]:8000", ("::1", 8000)),
])
def test_bind_addresses(value, bound):
    assert _bind(value) == bound


@pytest.mark.parametrize("value", ["6543", "host:", ":80", "host:port"])
def test_bad_bind_addresses_are_refused(value):
    with pytest.raises(Exception, match="HOST:PORT"):
        _bind(value)
