"""The development database (SQLite) with two writers at once: the web
request and the embedded sync thread. A transaction that reads and then
writes must wait for the other writer, not fail with "database is locked"
(which the service answers with a 503)."""

from __future__ import annotations

import threading

from sqlalchemy import text

from saas.db import engine_from_settings


def test_a_reader_turned_writer_waits_for_the_other_writer(tmp_path):
    engine = engine_from_settings({"sqlalchemy.url": f"sqlite:///{tmp_path / 'dev.sqlite'}"})
    with engine.begin() as setup:
        setup.exec_driver_sql("CREATE TABLE counter (n INTEGER)")
        setup.exec_driver_sql("INSERT INTO counter VALUES (0)")
    errors: list[BaseException] = []
    first_reads = threading.Event()

    def other_writer() -> None:
        first_reads.wait()
        try:
            with engine.begin() as connection:
                connection.execute(text("UPDATE counter SET n = n + 1"))
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    thread = threading.Thread(target=other_writer)
    thread.start()
    with engine.begin() as connection:
        connection.execute(text("SELECT n FROM counter")).scalar_one()
        first_reads.set()
        thread.join(0.5)  # the other writer tries meanwhile
        connection.execute(text("UPDATE counter SET n = n + 10"))
    thread.join()
    assert errors == []
    with engine.connect() as connection:
        assert connection.execute(text("SELECT n FROM counter")).scalar_one() == 11
    engine.dispose()
