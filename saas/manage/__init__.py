"""The management API (``/v1/manage/…``): JSON, authenticated by tenant API keys."""


def includeme(config) -> None:
    pass
