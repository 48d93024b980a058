"""`gateway serve`, counting the statements its PostgreSQL connections send (for
bench/backends.py): each `PgConnection.execute` / `executemany` / `execute_each` call (the
last counted under its first statement: a claim round), and each `flush` of held-back
writes, is one round trip, as the store itself counts them
(`PostgresDatabase.round_trips`); writes held back (`execute_later`) travel with the next
one and are not counted apart. pg_stat_statements cannot count them all: the server does not
track transaction control (BEGIN, COMMIT) or NOTIFY run as prepared statements.

    python bench/counted_serve.py COUNTS_FILE gateway-serve-arguments...

Whenever COUNTS_FILE + ".ask" appears, the counts so far ({sql: calls}) are written to
COUNTS_FILE (atomically) and the ".ask" file is removed.
"""

from __future__ import annotations

import collections
import json
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gateway.cli import main  # noqa: E402
from gateway.store import postgresql  # noqa: E402

ASK_POLL_S = 0.02
counts: collections.Counter[str] = collections.Counter()
_execute = postgresql.PgConnection.execute
_executemany = postgresql.PgConnection.executemany
_flush = postgresql.PgConnection.flush
_execute_each = postgresql.PgConnection.execute_each


def execute(self: Any, sql: str, params: Any = ()) -> Any:
    counts[sql] += 1  # a Counter increment: well under a microsecond (the GIL is held)
    return _execute(self, sql, params)


def executemany(self: Any, sql: str, rows: Any) -> Any:
    counts["executemany: " + sql] += 1
    return _executemany(self, sql, rows)


def execute_each(self: Any, commands: Any) -> Any:
    if commands:
        counts[commands[0][0]] += 1
    return _execute_each(self, commands)


def flush(self: Any) -> None:
    if self._later:
        counts["flush: held-back writes"] += 1
    _flush(self)


def answer(path: Path) -> None:
    ask = Path(str(path) + ".ask")
    while True:
        if ask.exists():
            tmp = Path(str(path) + ".tmp")
            tmp.write_text(json.dumps(dict(counts)))  # dict(): one C call, under the GIL
            os.replace(tmp, path)
            ask.unlink()
        time.sleep(ASK_POLL_S)


if __name__ == "__main__":
    postgresql.PgConnection.execute = execute  # type: ignore[method-assign]
    postgresql.PgConnection.executemany = executemany  # type: ignore[method-assign]
    postgresql.PgConnection.flush = flush  # type: ignore[method-assign]
    postgresql.PgConnection.execute_each = execute_each  # type: ignore[method-assign]
    threading.Thread(target=answer, args=(Path(sys.argv[1]),), daemon=True).start()
    raise SystemExit(main(sys.argv[2:]))
