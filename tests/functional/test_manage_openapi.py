"""The OpenAPI document: valid, served, true to the routes, true to real answers.

Nothing here keeps a list of endpoints by hand: the served (path, method)
pairs come from Pyramid's route mapper and view registrations.
"""

from __future__ import annotations

import re
from collections import Counter

import pytest
from jsonschema import Draft202012Validator
from openapi_spec_validator import OpenAPIV31SpecValidator

from saas.apps.models import ClientSecret
from saas.crypto import hash_token
from saas.openapi import document
from tests.flows import CLIENT_REDIRECT, Login, authorize
from tests.functional.test_manage_support import (
    ENDPOINT,
    Api,
    add_user,
    served_operations,
)
from tests.functional.test_oidc import (
    CLIENT_SECRET,
    LOGOUT_URI,
    basic,
    bearer,
    code_of,
    oidc_login,
)

METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}




def documented_operations(doc: dict) -> set[tuple[str, str]]:
    return {(path, method) for path, item in doc["paths"].items() for method in item
            if method in METHODS}


def deref(doc: dict, node: dict) -> dict:
    """Follow a local ``$ref`` (``#/components/...``) to what it names."""
    while set(node) == {"$ref"}:
        target = doc
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def test_the_document_describes_exactly_the_served_routes(pyramid_config):
    doc = document()
    served = served_operations(pyramid_config)
    documented = documented_operations(doc)
    assert not served - documented, f"served but not documented: {sorted(served - documented)}"
    assert not documented - served, f"documented but not served: {sorted(documented - served)}"
    # Sanity: the walk found the whole surface, not an empty set equal to another.
    paths = {path for path, _ in served}
    assert {"/v1/manage/apps", "/v1/apps/{app_id}/token", "/v1/openapi.json", "/healthz",
            "/readyz", "/metrics"} <= paths and len(served) >= 31


def test_the_document_is_valid_openapi_3_1():
    doc = document()
    assert doc["openapi"].startswith("3.1.")
    OpenAPIV31SpecValidator(doc).validate()
    ids = Counter(op["operationId"] for path, item in doc["paths"].items()
                  for method, op in item.items() if method in METHODS)
    assert all(count == 1 for count in ids.values())
    for path, item in doc["paths"].items():
        for method, op in ((m, o) for m, o in item.items() if m in METHODS):
            params = [deref(doc, p) for p in item.get("parameters", []) + op.get(
                "parameters", [])]
            declared = {p["name"] for p in params if p["in"] == "path"}
            assert declared == set(re.findall(r"\{(\w+)\}", path)), (path, method)
            public = not path.startswith("/v1/manage/")
            assert ("security" in op) == public, (path, method)  # manage: the global apiKey
            if not public:
                assert "401" in op["responses"], (path, method)
            statuses = set(op["responses"])
            assert statuses and all(re.fullmatch(r"[1-5][0-9][0-9]", s) for s in statuses)
            for response in op["responses"].values():
                for media in deref(doc, response).get("content", {}).values():
                    Draft202012Validator.check_schema(media["schema"])


def test_the_document_is_served_with_this_deployments_url(webapp):
    response = webapp.get("/v1/openapi.json")
    assert response.content_type == "application/json"
    served = response.json
    assert served["servers"] == [{"url": "http://bk.test"}]
    assert {k: v for k, v in served.items() if k != "servers"} == {
        k: v for k, v in document().items() if k != "servers"}


class Checker:
    """Validates real responses against the document's schema for their status."""

    def __init__(self) -> None:
        self.doc = document()
        self.checked: set[tuple[str, str, str]] = set()

    def __call__(self, template: str, method: str, response, exact_keys: bool = False):
        op = self.doc["paths"][template][method]
        status = str(response.status_int)
        assert status in op["responses"], f"{method} {template} answered undocumented {status}"
        declared = deref(self.doc, op["responses"][status])
        content = declared.get("content")
        if not content:
            assert status != "204" or response.body == b"", (template, method, status)
        else:
            media = response.content_type
            assert media in content, (template, method, status, media)
            if media == "application/json":
                schema = deref(self.doc, content[media]["schema"])
                validator = Draft202012Validator(
                    {**schema, "components": self.doc["components"]},
                    format_checker=Draft202012Validator.FORMAT_CHECKER)
                errors = [e.message for e in validator.iter_errors(response.json)]
                assert not errors, (template, method, status, errors)
                if exact_keys:
                    assert set(response.json) == set(self.properties(schema)), template
        self.checked.add((template, method, status))
        return response

    def properties(self, schema: dict) -> set[str]:
        names = set(schema.get("properties", {}))
        for part in schema.get("allOf", []):
            names |= self.properties(deref(self.doc, part))
        return names


def test_real_management_answers_match_their_schemas(webapp, db, tenant, api):
    check = Checker()
    apps, app = "/v1/manage/apps", "/v1/manage/apps/{app_id}"
    add_user(db, tenant.app, "user-2")
    db.commit()
    a = tenant.app_path

    created = check(apps, "post", api.post("apps", {"name": "Checked", "redirect_uris": [
        "https://x.example.com/cb"], "custom_auth_endpoint": ENDPOINT}, status=201),
        exact_keys=True)
    check(apps, "post", api.post("apps", {"name": "x", "nope": 1}, status=422))
    check(apps, "post", webapp.post("/v1/manage/apps", b"[]", headers={
        **api.headers, "Content-Type": "application/json"}, status=400))
    check(apps, "post", Api(webapp, None).post("apps", {"name": "x"}, status=401))
    check(apps, "get", api.get("apps"))
    check(app, "get", api.get(a), exact_keys=True)
    check(app, "get", api.get("apps/zzzzzzzz", status=404))
    check(app, "patch", api.patch(a, {"backchannel": True, "hosted_form": None}))
    # Becoming a confidential client answers its client secret too.
    check(app, "patch", api.patch(a, {"client_type": "confidential"}), exact_keys=True)
    check(app, "patch", api.patch(a, {"access_token_ttl": 1}, status=422))
    check(app + "/secrets", "get", api.get(a + "/secrets"), exact_keys=True)
    rotate = app + "/secrets/{kind}/rotate"
    check(rotate, "post", api.post(a + "/secrets/custom_auth/rotate"), exact_keys=True)
    check(rotate, "post", api.post(a + "/secrets/client_secret/rotate"), exact_keys=True)
    check(rotate, "post", api.post(a + "/secrets/custom_auth/rotate", {"grace_seconds": -1},
                                   status=422))
    check(rotate, "post", api.post(a + "/secrets/other/rotate", status=404))
    check(app + "/secrets/{kind}/revoke-previous", "post",
          api.post(a + "/secrets/custom_auth/revoke-previous", status=204))
    check(app + "/secrets/{kind}/revoke-previous", "post",
          api.post(a + "/secrets/client_secret/revoke-previous", status=204))
    check(app, "patch", api.patch(a, {"client_type": "public"}))
    check(rotate, "post", api.post(a + "/secrets/client_secret/rotate", status=404))

    users, user = app + "/users", app + "/users/{user_id}"
    page = check(users, "get", api.get(a + "/users", limit=1), exact_keys=True).json
    check(users, "get", api.get(a + "/users", cursor=page["next_cursor"]))
    check(users, "get", api.get(a + "/users", limit=0, status=400))
    check(user, "get", api.get(tenant.user_path), exact_keys=True)
    for action in ("disable", "enable", "revoke-sessions"):
        check(f"{user}/{action}", "post", api.post(f"{tenant.user_path}/{action}", status=204))

    events = check(app + "/audit", "get", api.get(a + "/audit"), exact_keys=True).json
    assert events["events"] and set(events["events"][0]) == check.properties(deref(
        check.doc, check.doc["components"]["schemas"]["AuditEvent"]))
    check(app + "/audit", "get", api.get(a + "/audit", since="then", status=400))
    check(app + "/audit.csv", "get", api.get(a + "/audit.csv"))
    stats = check(app + "/stats", "get", api.get(a + "/stats", bucket="day"),
                  exact_keys=True).json
    assert set(stats["buckets"][0]) == {"start", "logins", "failures"}
    check(user, "delete", api.delete(tenant.user_path, status=204))
    check(app, "delete", api.delete(f"apps/{created.json['app_id']}", status=204))


def test_real_login_and_probe_answers_match_their_schemas(webapp, tenant):
    check = Checker()
    base = "/v1/apps/{app_id}"
    app_id, secret = tenant.app.app_id, tenant.secrets["custom_auth"]
    check(base + "/authorize", "get", authorize(webapp, app_id))
    check(base + "/authorize", "get", authorize(webapp, app_id, redirect_uri="https://x.test/",
                                                status=400))
    check(base + "/login", "get", webapp.get(  # the hosted form is off: an error redirect
        f"/v1/apps/{app_id}/login", params={"redirect_uri": CLIENT_REDIRECT}, status=302))
    login = Login(webapp, app_id, secret)
    done = login.finish(user_id="user-1")
    check(base + "/callback", "get", done)
    code = dict(p.split("=", 1) for p in done.location.split("?", 1)[1].split("&"))["code"]
    tokens = check(base + "/token", "post", login.exchange(code)).json
    # No scope was asked for: exactly the required keys (no scope, no id_token).
    assert set(tokens) == set(check.doc["components"]["schemas"]["TokenResponse"]["required"])
    bearer = {"Authorization": "Bearer " + tokens["access_token"]}
    check(base + "/me", "get", webapp.get(f"/v1/apps/{app_id}/me", headers=bearer),
          exact_keys=True)
    check(base + "/.well-known/jwks.json", "get",
          webapp.get(f"/v1/apps/{app_id}/.well-known/jwks.json"))
    check(base + "/login/custom-token", "post", webapp.post_json(
        f"/v1/apps/{app_id}/login/custom-token", {"token": "x"}, status=403))
    check(base + "/login/custom", "post", webapp.post_json(
        f"/v1/apps/{app_id}/login/custom", {"data": {}}, status=403))
    check(base + "/logout", "post", webapp.post(f"/v1/apps/{app_id}/logout", headers=bearer,
                                                status=204))
    check(base + "/me", "get", webapp.get(f"/v1/apps/{app_id}/me", headers=bearer, status=401))
    check(base + "/token", "post", login.exchange(code, status=400))
    check(base + "/.well-known/jwks.json", "get",
          webapp.get("/v1/apps/zzzzzzzz/.well-known/jwks.json", status=404))
    check("/healthz", "get", webapp.get("/healthz"))
    check("/readyz", "get", webapp.get("/readyz"))
    check("/metrics", "get", webapp.get("/metrics"))
    check("/v1/openapi.json", "get", webapp.get("/v1/openapi.json"))


@pytest.fixture
def confidential_client(login_app, db, registry):
    """An app that is a confidential client whose secret is ``CLIENT_SECRET``."""
    login_app.client_type = "confidential"
    login_app.client_secret = ClientSecret(current_hash=hash_token(CLIENT_SECRET))
    login_app.post_logout_redirect_uris = [LOGOUT_URI]
    db.commit()
    registry["saas.app_cache"].store(login_app)
    return login_app


def test_real_openid_connect_answers_match_their_schemas(webapp, confidential_client):
    check = Checker()
    base, app = "/v1/apps/{app_id}", confidential_client
    url = f"/v1/apps/{app.app_id}"
    auth = basic(app.app_id, CLIENT_SECRET)
    check(base + "/.well-known/openid-configuration", "get",
          webapp.get(url + "/.well-known/openid-configuration"))
    check(base + "/.well-known/openid-configuration", "get",
          webapp.get("/v1/apps/zzzzzzzz/.well-known/openid-configuration", status=404))

    login = oidc_login(webapp, app)
    code = code_of(login)
    check(base + "/token", "post", login.exchange(code, status=401))  # no client secret
    tokens = check(base + "/token", "post", webapp.post(url + "/token", {
        "grant_type": "authorization_code", "code": code, "redirect_uri": login.redirect_uri,
        "code_verifier": login.verifier}, headers=auth), exact_keys=True).json
    access = bearer(tokens["access_token"])
    check(base + "/userinfo", "get", webapp.get(url + "/userinfo", headers=access))
    check(base + "/userinfo", "post", webapp.post(url + "/userinfo",
                                                  {"access_token": tokens["access_token"]}))
    check(base + "/userinfo", "get", webapp.get(url + "/userinfo", status=401))
    plain = oidc_login(webapp, app, scope="profile", nonce=None)  # no openid: 403 there
    plain_tokens = webapp.post(url + "/token", {
        "grant_type": "authorization_code", "code": code_of(plain),
        "redirect_uri": plain.redirect_uri, "code_verifier": plain.verifier}, headers=auth).json
    check(base + "/userinfo", "get", webapp.get(url + "/userinfo", status=403,
                                                headers=bearer(plain_tokens["access_token"])))
    check(base + "/introspect", "post", webapp.post(url + "/introspect", {
        "token": tokens["access_token"]}, headers=auth))
    check(base + "/introspect", "post", webapp.post(url + "/introspect", {
        "token": tokens["access_token"]}, status=401))
    check(base + "/revoke", "post", webapp.post(url + "/revoke", {
        "token": tokens["refresh_token"]}, status=401))
    check(base + "/revoke", "post", webapp.post(url + "/revoke", {
        "token": tokens["refresh_token"]}, headers=auth))
    check(base + "/introspect", "post", webapp.post(url + "/introspect", {
        "token": tokens["refresh_token"]}, headers=auth))
    end = base + "/end-session"
    check(end, "get", webapp.get(url + "/end-session", {
        "id_token_hint": tokens["id_token"], "post_logout_redirect_uri": LOGOUT_URI,
        "state": "bye"}, status=302))
    check(end, "get", webapp.get(url + "/end-session"))
    check(end, "get", webapp.get(url + "/end-session", {"id_token_hint": "x.y.z"},
                                 headers={"Accept": "text/html"}, status=400))
    check(end, "post", webapp.post(url + "/end-session", {"state": "bye"}))
