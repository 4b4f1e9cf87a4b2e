"""App settings as tenants type them: endpoints (the SSRF guard) and redirect URIs."""

from __future__ import annotations

import pytest

from saas.apps.validation import (
    InvalidSetting,
    validate_endpoint,
    validate_redirect_uris,
    validate_restart_url,
)


@pytest.mark.parametrize("url", [
    "http://example.com/auth",  # plain http in production
    "https://127.0.0.1/auth", "https://2130706433/auth", "https://[::1]/auth",
    "https://10.1.2.3/auth", "https://169.254.169.254/latest", "ftp://example.com/",
    "https://user:pw@example.com/", "https://no-such-host.invalid/auth",
])
def test_production_refuses_unsafe_endpoints(url):
    with pytest.raises(InvalidSetting):
        validate_endpoint(url, allow_private=False)


def test_development_allows_loopback_http_without_dns():
    assert validate_endpoint(" http://127.0.0.1:8765/auth ", allow_private=True) == (
        "http://127.0.0.1:8765/auth")
    assert validate_endpoint("https://not-deployed-yet.example/auth", allow_private=True)
    with pytest.raises(InvalidSetting):
        validate_endpoint("gopher://127.0.0.1/", allow_private=True)


BAD_URIS = ["javascript:alert(1)", "http://example.com/cb", "https://app.example.com/cb#frag",
            "https://user@app.example.com/cb", "https://app.example.com/c b", "https:///cb",
            "https://app.example.com\\@evil.com/", "no-scheme",
            "https://app.example.com/" + "x" * 2048]


@pytest.mark.parametrize("uri", BAD_URIS)
def test_bad_redirect_uris_are_refused(uri):
    with pytest.raises(InvalidSetting, match="redirect URI"):
        validate_redirect_uris([uri])


@pytest.mark.parametrize("url", BAD_URIS)
def test_a_bad_restart_url_is_named_as_such(url):
    with pytest.raises(InvalidSetting, match="restart URL") as refused:
        validate_restart_url(url)
    assert "redirect" not in str(refused.value)


def test_good_redirect_uris_are_kept_once_in_order():
    uris = ["https://app.example.com/cb", "myapp://auth", "http://127.0.0.1/cb",
            "https://app.example.com/cb", ""]
    assert validate_redirect_uris(uris) == uris[:3]
