"""How the PostgreSQL connections send statements (gateway/store/pg_pipeline.py), against a
real server: values come back as sent, whatever the text; errors come back as psycopg's own
exceptions, in order, and leave the connection usable; statements are prepared once; a
connection lost half-way is a 503 and is not used again. And what the listener hears: other
instances' announcements, not its own writer's."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.errors import StoreUnavailable
from gateway.store import pg_schema
from gateway.store.dialect import announce
from gateway.store.postgresql import PgConnection, PostgresDatabase, connect
from tests.conftest import PG_PASSWORD_ENV


@pytest.fixture(autouse=True)
def _postgresql_pass_only(backend: str) -> None:
    if backend != "postgresql":
        pytest.skip("PostgreSQL statements: this test runs in the --backend postgresql pass")


@pytest.fixture
def conn(store: dict[str, Any]) -> Iterator[PgConnection]:
    connection = connect(store["url"], os.environ[PG_PASSWORD_ENV])
    connection.execute("CREATE TABLE t (id bigserial PRIMARY KEY, s text UNIQUE, n bigint, "
                       "b boolean, f double precision)")
    yield connection
    connection.close()


def _prepared(conn: PgConnection) -> set[str]:
    return {r[0] for r in conn.execute("SELECT statement FROM pg_prepared_statements")}


# Any text PostgreSQL can store: every code point but NUL and the surrogates.
TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
               max_size=200)


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(s=TEXT, n=st.integers(-2**63, 2**63 - 1), b=st.booleans(),
       f=st.floats(allow_nan=False, allow_infinity=False))
def test_values_come_back_as_sent(conn: PgConnection, s: str, n: int, b: bool,
                                  f: float) -> None:
    conn.execute("DELETE FROM t")
    conn.execute_later("INSERT INTO t (s, n, b, f) VALUES (?, ?, ?, ?)", (s, n, b, f))
    row = conn.execute("SELECT s, n, b, f FROM t WHERE s = ?", (s,)).fetchone()
    assert row is not None
    assert (row["s"], row["n"], row["b"], row["f"]) == (s, n, b, f)
    assert tuple(row) == (s, n, b, f)


def test_null_and_rowcount(conn: PgConnection) -> None:
    conn.execute("INSERT INTO t (s, n) VALUES (?, ?)", ("a", None))
    conn.execute("INSERT INTO t (s, n) VALUES (?, ?)", ("b", 2))
    assert conn.execute("SELECT n FROM t WHERE s = ?", ("a",)).fetchone()[0] is None
    assert conn.execute("UPDATE t SET n = ? WHERE n IS NULL OR n = ?", (5, 2)).rowcount == 2
    assert conn.execute("SELECT s FROM t WHERE s = ?", ("none",)).fetchone() is None
    result = conn.execute("SELECT s FROM t ORDER BY s")
    assert result.fetchone()[0] == "a"
    assert [r[0] for r in result.fetchall()] == ["b"]  # what is left after fetchone
    assert [r["s"] for r in conn.execute("SELECT s FROM t ORDER BY s")] == ["a", "b"]


def test_a_parameter_of_another_type_is_refused_before_anything_is_sent(
        conn: PgConnection) -> None:
    conn.execute_later("INSERT INTO t (s) VALUES (?)", ("kept",))
    with pytest.raises(TypeError, match="store parameter"):
        conn.execute("INSERT INTO t (s) VALUES (?)", ({"a": 1},))
    # The connection is as it was: usable, nothing half-sent.
    assert conn.usable
    assert conn.execute("SELECT count(*) FROM t").fetchone()[0] == 0


def test_the_first_error_is_raised_and_the_rest_is_not_run(conn: PgConnection) -> None:
    conn.execute("INSERT INTO t (s) VALUES (?)", ("taken",))
    conn.execute("BEGIN")
    conn.execute_later("INSERT INTO t (s) VALUES (?)", ("before",))
    conn.execute_later("INSERT INTO t (s) VALUES (?)", ("taken",))  # a unique violation
    conn.execute_later("INSERT INTO t (s) VALUES (?)", ("after",))
    with pytest.raises(psycopg.errors.UniqueViolation):
        conn.execute("SELECT 1")
    assert conn.in_transaction  # aborted, until rolled back
    conn.execute("ROLLBACK")
    assert [r[0] for r in conn.execute("SELECT s FROM t ORDER BY s")] == ["taken"]
    # A syntax error, on a statement not prepared yet: raised, and the connection goes on.
    with pytest.raises(psycopg.errors.SyntaxError):
        conn.execute("SELEKT ?", (1,))
    assert conn.execute("SELECT count(*) FROM t").fetchone()[0] == 1


def test_a_statement_is_prepared_once_even_twice_in_one_round_trip(
        conn: PgConnection) -> None:
    insert = "INSERT INTO t (s) VALUES (?)"
    conn.execute(insert, ("one",))  # a first use runs unnamed: one-off SQL stays so
    assert not any("INSERT INTO t" in s for s in _prepared(conn))
    before = conn.round_trips
    conn.executemany(insert, [("two",), ("three",), ("four",)])
    assert conn.round_trips - before == 1
    assert sum("INSERT INTO t" in s for s in _prepared(conn)) == 1
    conn.execute(insert, ("five",))
    assert sum("INSERT INTO t" in s for s in _prepared(conn)) == 1
    assert conn.execute("SELECT count(*) FROM t").fetchone()[0] == 5


def test_several_statements_in_one_text_run_as_one_query(conn: PgConnection) -> None:
    conn.execute("INSERT INTO t (s) VALUES ('x'); INSERT INTO t (s) VALUES ('y')")
    assert conn.execute("SELECT count(*) FROM t").fetchone()[0] == 2


def test_a_connection_lost_half_way_is_unavailable_and_not_used_again(
        conn: PgConnection, store: dict[str, Any]) -> None:
    pid = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
    other = connect(store["url"], os.environ[PG_PASSWORD_ENV])
    try:
        assert other.execute("SELECT pg_terminate_backend(?)", (pid,)).fetchone()[0] is True
    finally:
        other.close()
    conn.execute_later("INSERT INTO t (s) VALUES (?)", ("lost",))
    with pytest.raises(StoreUnavailable):
        conn.execute("SELECT count(*) FROM t")
    assert not conn.usable


async def test_the_listener_hears_other_instances_not_its_own_writer(
        store: dict[str, Any]) -> None:
    database = PostgresDatabase(store["url"], os.environ[PG_PASSWORD_ENV], 3)
    database.open(pg_schema.migrate)
    heard: list[str] = []
    database.listen("gateway_test", lambda: heard.append("woken"))
    await database.start()
    try:
        for _ in range(100):  # the first call comes once it listens (whatever was missed)
            if heard:
                break
            await asyncio.sleep(0.05)
        assert heard == ["woken"]
        await database.write(lambda conn: announce(conn, "gateway_test"))
        await asyncio.sleep(1.5)  # three of the listener's waits
        assert heard == ["woken"]  # its own writer's NOTIFY: the caller already knows
        other = connect(store["url"], os.environ[PG_PASSWORD_ENV])
        try:
            other.execute("NOTIFY gateway_test")
        finally:
            other.close()
        for _ in range(100):
            if len(heard) > 1:
                break
            await asyncio.sleep(0.05)
        assert heard == ["woken", "woken"]
    finally:
        await database.close()
