"""Bridgekeeper: the Pyramid application."""

from saas.config import configure


def main(global_config, **settings):
    """Paste entry point: ``gunicorn --paste production.ini`` and friends."""
    return configure(settings).make_wsgi_app()
