"""Alembic environment: the schema's only maker (tests run ``upgrade head`` too).

The database URL comes from the caller (``saas-admin CONFIG migrate`` and the
tests pass it in ``config.attributes``), else ``DATABASE_URL``, else the
``[app:main]`` section of the ini file Alembic was started with.
"""

from __future__ import annotations

import os

import plaster
from alembic import context
from sqlalchemy import create_engine, pool

from saas.audit.partitions import is_partition_name
from saas.config import database_url
from saas.models import Base

config = context.config


def _url() -> str:
    if config.attributes.get("sqlalchemy.url"):
        return config.attributes["sqlalchemy.url"]
    if os.environ.get("DATABASE_URL"):
        return database_url(os.environ["DATABASE_URL"])
    settings = plaster.get_settings(config.config_file_name, "app:main")
    return database_url(settings["sqlalchemy.url"])


def include_name(name, type_, parent_names) -> bool:
    """Autogenerate compares the partitioned parent; its partitions are no model's."""
    return not (type_ == "table" and name and is_partition_name(name))


def _configure(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        compare_type=True,
        include_name=include_name,
        render_as_batch=connection.dialect.name == "sqlite",
    )


def run_migrations_offline() -> None:
    context.configure(url=_url(), target_metadata=Base.metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_engine(_url(), poolclass=pool.NullPool)
    with engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            # Never queue behind a long lock or run forever on a live database.
            connection.exec_driver_sql("SET lock_timeout = '4s'")
            connection.exec_driver_sql("SET statement_timeout = '5min'")
            connection.commit()  # end the autobegun transaction; the SETs stay
        _configure(connection)
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
