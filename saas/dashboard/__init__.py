"""The tenant dashboard: server-rendered pages, sessions, CSRF on every form."""


def includeme(config) -> None:
    pass
