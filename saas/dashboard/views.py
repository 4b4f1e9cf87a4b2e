"""Dashboard pages: sign-up, sign-in, apps."""

from __future__ import annotations

from pyramid.httpexceptions import HTTPSeeOther
from pyramid.renderers import render_to_response
from pyramid.security import forget, remember
from pyramid.view import forbidden_view_config, view_config

from saas.apps.services import apps_of_tenant, create_app, reveal_secrets
from saas.apps.validation import InvalidSetting
from saas.audit.models import Outcome
from saas.audit.services import record_event
from saas.passwords import password_problem
from saas.security import Permission
from saas.tenants.services import (
    EmailTaken,
    authenticate,
    is_valid_email,
    member_by_email,
    sign_up,
)

SIGN_IN_FAILED = "Email or password is incorrect."


def _field(request, name: str, limit: int = 1024) -> str:
    return request.POST.get(name, "")[:limit]


@view_config(route_name="home", request_method="GET")
def home(request):
    return HTTPSeeOther(request.route_url("dashboard.home"))


@forbidden_view_config()
def forbidden(request):
    if request.member is None:
        return HTTPSeeOther(request.route_url("dashboard.signin", _query={"next": request.path}))
    request.response.status_int = 403
    return render_to_response(
        "saas:templates/error.html",
        {"status": 403, "error": "forbidden", "reason": "forbidden",
         "error_description": "Your role does not allow this.",
         "request_id": getattr(request, "request_id", None)},
        request=request,
        response=request.response,
    )


@view_config(route_name="dashboard.signup", renderer="dashboard/signup.html",
             request_method="GET")
def signup_form(request):
    return {"errors": {}, "values": {}}


@view_config(route_name="dashboard.signup", renderer="dashboard/signup.html",
             request_method="POST")
def signup(request):
    values = {
        "tenant_name": _field(request, "tenant_name", 200).strip(),
        "email": _field(request, "email", 254).strip(),
    }
    password = _field(request, "password")
    errors = {}
    if not values["tenant_name"]:
        errors["tenant_name"] = "Enter your organisation's name."
    if not is_valid_email(values["email"]):
        errors["email"] = "Enter a valid email address."
    problem = password_problem(password)
    if problem:
        errors["password"] = problem
    if not errors:
        try:
            member = sign_up(
                request.db, request.passwords,
                tenant_name=values["tenant_name"], email=values["email"], password=password,
            )
        except EmailTaken:
            errors["email"] = "An account with this email exists already; sign in instead."
        else:
            record_event(request.db, "tenant.created", tenant_id=member.tenant_id,
                         request=request, details={"member_email": member.email})
            remember(request, member.id)
            request.session.flash("Welcome to Bridgekeeper. Create your first app.")
            return HTTPSeeOther(request.route_url("dashboard.apps"))
    request.response.status_int = 400
    return {"errors": errors, "values": values}


@view_config(route_name="dashboard.signin", renderer="dashboard/signin.html",
             request_method="GET")
def signin_form(request):
    return {"error": None, "values": {}, "next": request.GET.get("next", "")}


def _safe_next(request, target: str) -> str:
    # Only local dashboard paths: never an open redirect.
    if target.startswith("/dashboard") and not target.startswith("//") and "\\" not in target:
        return request.application_url + target
    return request.route_url("dashboard.apps")


@view_config(route_name="dashboard.signin", renderer="dashboard/signin.html",
             request_method="POST")
def signin(request):
    email = _field(request, "email", 254).strip()
    member = authenticate(request.db, request.passwords, email, _field(request, "password"))
    if member is None:
        known = member_by_email(request.db, email)
        record_event(
            request.db, "member.sign_in_failed", outcome=Outcome.FAILURE,
            tenant_id=known.tenant_id if known else None, reason="credentials_invalid",
            request=request,
        )
        request.response.status_int = 401
        return {"error": SIGN_IN_FAILED, "values": {"email": email},
                "next": _field(request, "next", 512)}
    record_event(request.db, "member.signed_in", tenant_id=member.tenant_id, request=request,
                 details={"member_email": member.email})
    remember(request, member.id)
    return HTTPSeeOther(_safe_next(request, _field(request, "next", 512)))


@view_config(route_name="dashboard.signout", request_method="POST")
def signout(request):
    forget(request)
    return HTTPSeeOther(request.route_url("dashboard.signin"))


@view_config(route_name="dashboard.home", request_method="GET", permission=Permission.VIEW)
def dashboard_home(request):
    return HTTPSeeOther(request.route_url("dashboard.apps"))


@view_config(route_name="dashboard.apps", renderer="dashboard/apps.html",
             request_method="GET", permission=Permission.VIEW)
def apps_list(context, request):
    return {"apps": apps_of_tenant(request.db, context.tenant_id)}


@view_config(route_name="dashboard.apps.new", renderer="dashboard/app_new.html",
             request_method="GET", permission=Permission.MANAGE)
def app_new_form(request):
    return {"errors": {}, "values": {}}


@view_config(route_name="dashboard.apps.new", renderer="dashboard/app_new.html",
             request_method="POST", permission=Permission.MANAGE)
def app_create(context, request):
    values = {
        "name": _field(request, "name", 200),
        "custom_auth_endpoint": _field(request, "custom_auth_endpoint", 2048),
        "redirect_uris": _field(request, "redirect_uris", 100_000),
    }
    try:
        app, _secrets = create_app(
            request.db,
            request.secret_box,
            tenant_id=context.tenant_id,
            name=values["name"],
            custom_auth_endpoint=values["custom_auth_endpoint"].strip() or None,
            redirect_uris=values["redirect_uris"].splitlines(),
            allow_private=request.registry.settings["saas.backchannel.allow_private"],
        )
    except InvalidSetting as exc:
        request.response.status_int = 400
        return {"errors": {"form": str(exc)}, "values": values}
    record_event(request.db, "app.created", tenant_id=context.tenant_id, app_id=app.app_id,
                 request=request, details={"name": app.name, "by": request.member.email})
    request.session.flash(f"App “{app.name}” created. Reveal its secrets below when you need them.")
    return HTTPSeeOther(request.route_url("dashboard.app", app_id=app.app_id))


@view_config(route_name="dashboard.app", renderer="dashboard/app.html",
             request_method="GET", permission=Permission.VIEW)
def app_detail(context, request):
    return {"app": context.app, "secrets": None, "reveal_error": None}


@view_config(route_name="dashboard.app.reveal", renderer="dashboard/app.html",
             request_method="POST", permission=Permission.MANAGE)
def app_reveal_secrets(context, request):
    member = request.member
    if not request.passwords.verify(member.password_hash, _field(request, "password")):
        request.response.status_int = 401
        return {"app": context.app, "secrets": None,
                "reveal_error": "That password is not right."}
    record_event(request.db, "secret.revealed", tenant_id=context.tenant_id,
                 app_id=context.app.app_id, request=request, details={"by": member.email})
    request.response.headers["Cache-Control"] = "no-store"
    return {"app": context.app, "secrets": reveal_secrets(context.app, request.secret_box),
            "reveal_error": None}

