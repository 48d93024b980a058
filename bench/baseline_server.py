"""The benchmark's baseline: a bare aiohttp handler that parses the same JSON and inserts one
row in SQLite (WAL, the same `synchronous`), committing each request on the event loop."""

from __future__ import annotations

import json
import sqlite3
import sys

from aiohttp import web


def main() -> None:
    path, synchronous, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute(f"PRAGMA synchronous = {synchronous.upper()}")
    conn.execute("CREATE TABLE IF NOT EXISTS rows (id INTEGER PRIMARY KEY, resource TEXT, "
                 "body TEXT)")

    async def insert(request: web.Request) -> web.Response:
        body = json.loads(await request.read())
        cur = conn.execute("INSERT INTO rows (resource, body) VALUES (?, ?)",
                           (body["resource"], json.dumps(body)))
        return web.json_response({"id": str(cur.lastrowid)}, status=201)

    async def health(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    app = web.Application()
    app.router.add_post("/insert", insert)
    app.router.add_get("/healthz", health)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


if __name__ == "__main__":
    main()
