"""How the store's PostgreSQL connections send their statements: through libpq's pipeline
mode (`psycopg.pq`), each statement prepared once per connection, several statements in one
round trip.

Why not psycopg's cursors: under load a cursor cost the writer thread ~0.15 ms of CPU per
statement, held under the GIL — more than the round trip it waited for, and the writer's
CPU was what capped a gateway instance (docs/performance.md). This path costs about a
third of that. Values are still converted by psycopg's own loaders, so the operations read
the same Python values as from a cursor; parameters are sent as text and their types left
to the server, which reads them as the column or operator they meet asks (the operations
pass str, int, bool, float or None).
"""

from __future__ import annotations

import functools
import select
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import psycopg
import psycopg.errors
from psycopg import pq
from psycopg.adapt import Transformer

# Named statements per connection; statements beyond (listing filters vary) run unnamed.
MAX_PREPARED = 512
_OK = (pq.ExecStatus.COMMAND_OK, pq.ExecStatus.TUPLES_OK, pq.ExecStatus.EMPTY_QUERY)


class Result:
    """What the operations read of a statement, as of a sqlite3 cursor: its rows
    (`fetchone`, `fetchall`, iteration) and `rowcount`."""

    __slots__ = ("_at", "_rows", "rowcount")

    def __init__(self, rows: list[Any], rowcount: int) -> None:
        self._rows = rows
        self._at = 0
        self.rowcount = rowcount

    def fetchone(self) -> Any:
        if self._at >= len(self._rows):
            return None
        self._at += 1
        return self._rows[self._at - 1]

    def fetchall(self) -> list[Any]:
        rows = self._rows[self._at:]
        self._at = len(self._rows)
        return rows

    def __iter__(self) -> Iterator[Any]:
        return iter(self.fetchall())


class _Statement:
    __slots__ = ("make_row", "name", "prepared", "query", "seen")

    def __init__(self, query: bytes) -> None:
        self.query = query
        self.name: bytes | None = None  # given on the second use (one-offs stay unnamed)
        self.prepared = False
        self.seen = 0
        self.make_row: Callable[[list[Any]], Any] | None = None  # from the first result


@functools.lru_cache(maxsize=4096)
def numbered(sql: str) -> bytes:
    """`?` placeholders as libpq's `$1, $2, ...` (our SQL has no `?` of its own)."""
    first, *rest = sql.split("?")
    return (first + "".join(f"${n}{part}" for n, part in enumerate(rest, 1))).encode()


def _text(value: Any) -> bytes | None:
    kind = type(value)
    if value is None:
        return None
    if kind is str:
        return value.encode()
    if kind is bool:
        return b"t" if value else b"f"
    if kind is int or kind is float:
        return repr(value).encode()
    raise TypeError(f"a store parameter must be str, int, bool, float or None, "
                    f"not {kind.__name__}")


class Pipeline:
    """The statements of one connection (one thread uses it at a time)."""

    def __init__(self, raw: psycopg.Connection[Any],
                 row: Callable[[list[Any], dict[str, int]], Any]) -> None:
        self._raw = raw
        self._pg = raw.pgconn
        self._tx = Transformer(raw)
        self._row = row
        self._statements: dict[str, _Statement] = {}
        self._named = 0
        self._poll = select.poll()
        self._poll.register(self._pg.socket, select.POLLIN)

    def run(self, commands: Sequence[tuple[str, Sequence[Any]]]) -> list[Result]:
        """Send `commands` in one round trip, in order; return their results. The first
        error among them is raised once every result is in (the later commands did not
        run: PostgreSQL skips the rest of a pipeline after an error)."""
        pg = self._pg
        # Parameters a program error made unsendable fail here, before anything is sent.
        encoded = [(self._statement(sql), [_text(v) for v in params] if params else None)
                   for sql, params in commands]
        sent: list[tuple[bool, _Statement]] = []  # (a preparation?, its statement)
        pg.enter_pipeline_mode()
        try:
            for statement, values in encoded:
                if statement.name is None:
                    pg.send_query_params(statement.query, values)
                else:
                    if not statement.prepared:
                        pg.send_prepare(statement.name, statement.query)
                        statement.prepared = True  # until its result says otherwise
                        sent.append((True, statement))
                    pg.send_query_prepared(statement.name, values)
                sent.append((False, statement))
            pg.pipeline_sync()
            self._flush()
            result = self._collect(sent)
        except BaseException:
            self._abandon()
            raise
        pg.exit_pipeline_mode()
        if isinstance(result, Exception):
            raise result
        return result

    def _statement(self, sql: str) -> _Statement:
        statement = self._statements.get(sql)
        if statement is None:
            if len(self._statements) >= 4 * MAX_PREPARED:
                self._statements = {k: s for k, s in self._statements.items() if s.name}
            statement = self._statements[sql] = _Statement(numbered(sql))
        statement.seen += 1
        if statement.name is None and statement.seen > 1 and self._named < MAX_PREPARED:
            self._named += 1
            statement.name = b"gw_%d" % self._named
        return statement

    def _collect(self, sent: list[tuple[bool, _Statement]]) -> list[Result] | Exception:
        """Every result up to the pipeline's sync: the commands', or the first error."""
        error: Exception | None = None
        results: list[Result] = []
        for preparing, statement in sent:
            res = self._next()
            if res is None or res.status == pq.ExecStatus.PIPELINE_SYNC:
                raise psycopg.OperationalError("the pipeline lost its place")
            while self._next() is not None:  # a command's results end with a None
                pass
            if res.status not in _OK:
                if preparing:
                    statement.prepared = False  # skipped or refused: prepared next time
                if res.status != pq.ExecStatus.PIPELINE_ABORTED and error is None:
                    error = psycopg.errors.error_from_result(res, encoding="utf-8")
                continue
            if preparing:
                continue
            results.append(self._result(res, statement))
        sync = self._next()
        if sync is None or sync.status != pq.ExecStatus.PIPELINE_SYNC:
            raise psycopg.OperationalError("the pipeline lost its place")
        return error if error is not None else results

    def _result(self, res: Any, statement: _Statement) -> Result:
        if res.status != pq.ExecStatus.TUPLES_OK:
            count = res.command_tuples
            return Result([], -1 if count is None else count)
        if statement.make_row is None:
            index = {res.fname(i).decode(): i for i in range(res.nfields)}  # type: ignore[union-attr]
            statement.make_row = functools.partial(self._row, index=index)
        if not res.ntuples:
            return Result([], 0)
        tx = self._tx
        tx.set_pgresult(res)
        rows = tx.load_rows(0, res.ntuples, statement.make_row)
        tx.set_pgresult(None)
        return Result(rows, len(rows))

    def _next(self) -> Any | None:
        pg = self._pg
        while pg.is_busy():
            self._poll.poll()
            pg.consume_input()
        return pg.get_result()

    def _flush(self) -> None:
        pg = self._pg
        while pg.flush():  # 1 while data is left to send
            self._poll.modify(pg.socket, select.POLLIN | select.POLLOUT)
            try:
                events = self._poll.poll()
            finally:
                self._poll.modify(pg.socket, select.POLLIN)
            if any(e & select.POLLIN for _, e in events):
                pg.consume_input()  # the server may wait for us to read before it reads

    def _abandon(self) -> None:
        """After a failure half-way (a lost connection, most often): a connection with
        results still unread cannot be used again, so it is closed; the store connects
        again (store.postgresql)."""
        try:
            self._pg.exit_pipeline_mode()
        except Exception:
            self._raw.close()
