"""The PostgreSQL harness itself: a real server starts, authenticates, restarts and goes away.

If these fail, every PostgreSQL test would fail for a reason that has nothing to do with the
gateway, so they pin the harness's promises one by one.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.support.postgres import Cluster, ClusterStartError, require_postgres


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    with Cluster.start(bin_dir=require_postgres()) as started:
        yield started


def _select_one(url: str, password: str) -> int:
    with psycopg.connect(url, password=password, connect_timeout=10) as conn:
        row = conn.execute("select 1").fetchone()
    assert row is not None
    return int(row[0])


def _refuses_connections(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    except OSError:
        return True
    return False


def test_databases_are_reachable_with_the_password(cluster: Cluster) -> None:
    first = cluster.create_database("harness_one")
    second = cluster.create_database("harness_two")
    assert first == f"postgresql://gateway@127.0.0.1:{cluster.port}/harness_one"
    assert cluster.password not in first
    assert _select_one(first, cluster.password) == 1
    with psycopg.connect(cluster.url("harness_two", with_password=True)) as conn:
        assert conn.execute("select 1").fetchone() == (1,)
    with psycopg.connect(second, password=cluster.password) as conn:
        row = conn.execute("select current_database(), current_user").fetchone()
    assert row == ("harness_two", "gateway")


def test_a_wrong_password_is_refused(cluster: Cluster) -> None:
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(cluster.url(), password="not-" + cluster.password, connect_timeout=10)


def test_drop_database_disconnects_its_clients(cluster: Cluster) -> None:
    url = cluster.create_database("harness_dropped")
    conn = psycopg.connect(url, password=cluster.password)
    try:
        cluster.drop_database("harness_dropped")
        with pytest.raises(psycopg.OperationalError):
            conn.execute("select 1")
    finally:
        conn.close()
    assert "harness_dropped" not in cluster.psql("select datname from pg_database")


def test_database_names_are_validated(cluster: Cluster) -> None:
    for bad in ("Upper", "semi;colon", "", "a" * 64, "x y"):
        with pytest.raises(ValueError):
            cluster.create_database(bad)


def test_restart_keeps_port_and_data_then_stop_removes_everything() -> None:
    cluster = Cluster.start(bin_dir=require_postgres())
    try:
        url = cluster.create_database("harness_restart")
        with psycopg.connect(url, password=cluster.password, autocommit=True) as conn:
            conn.execute("create table t (x int); insert into t values (42)")
        port = cluster.port

        cluster.restart()
        assert cluster.port == port
        with psycopg.connect(url, password=cluster.password) as conn:
            assert conn.execute("select x from t").fetchone() == (42,)

        cluster.kill()  # a crash: recovery runs on the next start, committed rows survive
        assert _refuses_connections(port)
        cluster.restart()
        assert _select_one(url, cluster.password) == 1
        with psycopg.connect(url, password=cluster.password) as conn:
            assert conn.execute("select x from t").fetchone() == (42,)
    finally:
        base_dir = cluster.base_dir
        cluster.stop_and_remove()
    assert _refuses_connections(port)
    assert not base_dir.exists()
    cluster.stop_and_remove()  # twice is harmless


def test_a_failed_start_cleans_up_and_quotes_the_log() -> None:
    bin_dir = require_postgres()
    with pytest.raises(ClusterStartError) as failed:
        Cluster.start(bin_dir=bin_dir, settings={"max_connections": "not-a-number"})
    assert "max_connections" in str(failed.value)  # from the server log
    assert not failed.value.base_dir.exists()


def test_require_postgres_fails_instead_of_skipping_when_ci_demands_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("GATEWAY_PG_BIN", os.fspath(tmp_path))  # no initdb in there
    monkeypatch.delenv("GATEWAY_REQUIRE_POSTGRES", raising=False)
    with pytest.raises(pytest.skip.Exception, match="PostgreSQL tests did not run"):
        require_postgres()
    monkeypatch.setenv("GATEWAY_REQUIRE_POSTGRES", "1")
    with pytest.raises(pytest.fail.Exception, match="PostgreSQL tests did not run"):
        require_postgres()
