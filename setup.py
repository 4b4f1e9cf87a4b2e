"""Bridgekeeper: multi-tenant custom authentication as a service."""

from setuptools import find_namespace_packages, find_packages, setup

requires = [
    "pyramid==2.1",
    "pyramid_tm==2.6",
    "pyramid_retry==2.1.1",
    "pyramid_jinja2==2.10.1",
    "zope.sqlalchemy==4.1",
    "transaction==5.1",
    "SQLAlchemy==2.1.9",
    "alembic==1.20.1",
    "psycopg[binary]==3.3.9",
    "PyJWT[crypto]==2.15.1",
    "cryptography==50.0.2",
    "redis[hiredis]==8.1.0",
    "hiredis==3.5.0",
    "orjson==3.13.0",
    "celery[redis]==5.7.0",
    # Celery's RabbitMQ transport (CELERY_BROKER_URL=amqp://…, docs/operations.md "Broker").
    "kombu==5.7.0",
    "amqp==5.4.2",
    "argon2-cffi==25.1.0",
    "gunicorn==27.0.1",
    "granian==2.8.7",
    "waitress==3.0.2",
    # The embedded development store: an in-process Redis with Lua scripting.
    "fakeredis[lua]==2.40.0",
    "plaster_pastedeploy==1.0.1",
    # Second factors of dashboard accounts (docs/accounts.md): TOTP, its QR code, passkeys.
    "pyotp==2.12.0",
    "segno==1.6.6",
    "webauthn==3.0.1",
]

tests_require = [
    "pytest==9.2.0",
    "pytest-xdist==3.8.0",
    "WebTest==3.0.7",
    "factory_boy==3.3.3",
    "hypothesis==6.170.15",
    "ruff==0.17.6",
    "httpx==0.28.1",
    # Drives Debian's chromium (scripts/install-system-deps); never downloads browsers.
    "playwright==1.65.2",
    "jsonschema==4.26.0",
    "openapi-spec-validator==0.9.0",
    "schemathesis==4.32.5",
    # The import-graph rules (tests/unit/test_import_graph.py).
    "grimp==3.19",
    # The benchmark's load generator (bench/loadgen.py; make bench-smoke runs in the suite).
    "uvloop==0.23.0",
    # A real OpenID Connect relying party (tests/integration/test_oidc_relying_parties.py):
    # Authlib's requests client; joserfc is what Authlib itself verifies ID tokens with.
    "authlib==1.9.6",
    "joserfc==1.8.0",
    "requests==2.34.2",
    # A real SMTP server in the test process (tests/mailbox.py).
    "aiosmtpd==1.4.6",
]

bench_require = [
    # Sampling profiler for the web workers under load (python -m bench.run --profile DIR).
    "py-spy==0.4.3",
]

# The Python packages, and saas's data folders (templates, static files) as the
# packages they are to Python, so setuptools ships their files (MANIFEST.in
# names them) instead of warning that they are absent from `packages`.
packages = find_packages(exclude=["tests", "tests.*"]) + find_namespace_packages(
    include=["saas.templates", "saas.templates.*", "saas.static", "saas.static.*"])

setup(
    name="bridgekeeper",
    version="0.1.0",
    description="Multi-tenant custom authentication for apps with their own user system",
    python_requires=">=3.11",
    packages=packages,
    include_package_data=True,
    zip_safe=False,
    install_requires=requires,
    extras_require={"test": tests_require, "bench": bench_require},
    entry_points={
        "paste.app_factory": ["main = saas:main"],
        "console_scripts": ["saas-admin = saas.cli:main", "saas-web = saas.serve:main"],
    },
)
