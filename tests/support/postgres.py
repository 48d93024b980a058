"""A throwaway PostgreSQL server for the tests, started from the installed binaries.

The PostgreSQL tests must talk to a real server, not a mock, and must not depend on a server
someone left running: the harness runs ``initdb`` into a fresh temporary directory, starts
the server on a free loopback port and removes everything when it is done. Importing this
module has no side effects; nothing starts until :meth:`Cluster.start` is called.

Usage, e.g. as a session fixture in ``conftest.py``::

    from tests.support.postgres import Cluster, require_postgres

    @pytest.fixture(scope="session")
    def session_cluster() -> Iterator[Cluster]:
        bin_dir = require_postgres()          # skip, or fail when GATEWAY_REQUIRE_POSTGRES=1
        with Cluster.start(bin_dir=bin_dir) as cluster:
            yield cluster                     # stopped and removed even if the session fails

    def test_something(session_cluster: Cluster) -> None:
        url = session_cluster.create_database("test_something")
        with psycopg.connect(url, password=session_cluster.password) as conn:
            ...

The server refuses to run as root, so when the tests run as root every server-side command
(``initdb``, ``pg_ctl``) runs as the ``postgres`` system user, which then owns the temporary
directory. Clients (``psql``, psycopg) connect over TCP with a password and may run as anyone.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import pwd
import re
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Self
from urllib.parse import quote

__all__ = [
    "Cluster",
    "ClusterStartError",
    "find_bin_dir",
    "require_postgres",
]

SERVER_USER = "postgres"
"""The system user the server runs as when the tests run as root."""
SUPERUSER = "gateway"
"""The database superuser ``initdb`` creates; its password is random, per cluster."""
HOST = "127.0.0.1"
NOT_INSTALLED = (
    "PostgreSQL not installed (no /usr/lib/postgresql/*/bin/initdb): "
    "the PostgreSQL tests did not run"
)
_DB_NAME = re.compile(r"[a-z0-9_]{1,63}")
_START_TIMEOUT = 60  # seconds pg_ctl waits; generous so a loaded CI machine does not flake
_COMMAND_TIMEOUT = 120  # seconds before a hung initdb, pg_ctl or psql is abandoned
_LOG_TAIL = 40  # lines of the server log quoted when something fails


def _version_key(path: Path) -> tuple[int, ...]:
    """Order ``/usr/lib/postgresql/<N>`` by version number, so that 15 sorts after 9.6."""
    try:
        return tuple(int(part) for part in path.parent.name.split("."))
    except ValueError:
        return (-1,)


def _usable(bin_dir: Path) -> bool:
    return all(os.access(bin_dir / name, os.X_OK) for name in ("initdb", "pg_ctl"))


def find_bin_dir() -> Path | None:
    """The directory of the PostgreSQL binaries to use, or None when there are none.

    ``GATEWAY_PG_BIN`` wins when set, so that a machine with an unusual layout can still run
    the tests; otherwise the newest ``/usr/lib/postgresql/*/bin`` (the Debian/Ubuntu layout).
    """
    explicit = os.environ.get("GATEWAY_PG_BIN")
    if explicit:
        path = Path(explicit)
        return path if _usable(path) else None
    candidates = [p for p in Path("/usr/lib/postgresql").glob("*/bin") if _usable(p)]
    return max(candidates, key=_version_key) if candidates else None


def require_postgres() -> Path:
    """The bin directory, or skip the test; fail instead when CI demands PostgreSQL.

    CI sets ``GATEWAY_REQUIRE_POSTGRES=1`` so that a machine without PostgreSQL cannot make
    the PostgreSQL tests pass by skipping them all.
    """
    import pytest  # here, not at the top: the harness itself does not need pytest

    bin_dir = find_bin_dir()
    if bin_dir is None:
        if os.environ.get("GATEWAY_REQUIRE_POSTGRES") == "1":
            pytest.fail(NOT_INSTALLED, pytrace=False)
        pytest.skip(NOT_INSTALLED)
    return bin_dir


def _free_port() -> int:
    """A TCP port on loopback that nobody listens on right now (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def _tail(path: Path, lines: int = _LOG_TAIL) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no server log)"
    return "\n".join(text.splitlines()[-lines:]) or "(server log is empty)"


def _alive(pid: int) -> bool:
    """Whether a process exists and is not a zombie (a container's pid 1 may never reap it)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def _server_env() -> dict[str, str]:
    """The environment for server-side commands: no PG* variables, C locale.

    A stray ``PGDATA``, ``PGPORT`` or ``PGHOST`` from the developer's shell must not redirect
    ``pg_ctl`` to another cluster.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.update(LC_ALL="C", LANG="C")
    return env


class ClusterStartError(RuntimeError):
    """The cluster could not be created or started; the message quotes the server's log.

    ``base_dir`` is the temporary directory that was used; it has been removed already.
    """

    def __init__(self, message: str, base_dir: Path) -> None:
        super().__init__(message)
        self.base_dir = base_dir


_live: set[Cluster] = set()
_atexit_registered = False


def _stop_all_live() -> None:
    """Last resort at interpreter exit for clusters a test forgot to stop."""
    for cluster in list(_live):
        cluster.stop_and_remove()


class Cluster:
    """One throwaway PostgreSQL cluster: its own data directory, port and superuser.

    Create it with :meth:`start`; always end it with :meth:`stop_and_remove` (or use it as a
    context manager). :meth:`stop`, :meth:`kill` and :meth:`restart` keep the data directory,
    so tests can check that clients survive the database going away and coming back.
    """

    def __init__(
        self,
        bin_dir: Path,
        base_dir: Path,
        password: str,
        port: int,
        settings: Mapping[str, str],
    ) -> None:
        """Use :meth:`start`; this only records where things are."""
        self.bin_dir = bin_dir
        self.base_dir = base_dir
        self.data_dir = base_dir / "data"
        self.socket_dir = base_dir / "sock"
        self.log_file = base_dir / "server.log"
        self._password = password
        self._port = port
        self._settings = dict(settings)
        self._running = False
        self._removed = False
        self._as_postgres = os.geteuid() == 0

    # -- creation ---------------------------------------------------------------------------

    @classmethod
    def start(
        cls,
        fsync: bool = False,
        *,
        bin_dir: Path | None = None,
        settings: Mapping[str, str] | None = None,
    ) -> Cluster:
        """Create a fresh cluster and start its server; clean everything up if that fails.

        ``fsync=False`` (the default) trades crash safety of the *test* cluster for speed;
        ``synchronous_commit`` stays on either way, so a commit is still a commit for the
        clients. ``settings`` are extra ``-c name=value`` server settings.
        """
        bin_dir = bin_dir or find_bin_dir()
        if bin_dir is None:
            raise RuntimeError(NOT_INSTALLED)
        as_postgres = os.geteuid() == 0
        if as_postgres:
            try:
                owner = pwd.getpwnam(SERVER_USER)
            except KeyError:
                raise RuntimeError(
                    f"running as root, and the server refuses root, but there is no "
                    f"{SERVER_USER!r} system user to run it as"
                ) from None
        # Under /tmp when root: $TMPDIR may sit below a directory that the postgres user
        # cannot traverse, and the socket path must stay short (about 100 bytes at most).
        base_dir = Path(tempfile.mkdtemp(prefix="gateway-pg-", dir="/tmp" if as_postgres else None))
        server_settings = {
            "fsync": "on" if fsync else "off",
            "synchronous_commit": "on",
            "max_connections": "200",
        }
        if not fsync:
            server_settings["full_page_writes"] = "off"
        server_settings.update(settings or {})
        cluster = cls(bin_dir, base_dir, secrets.token_urlsafe(24), 0, server_settings)
        try:
            for path in (cluster.data_dir, cluster.socket_dir):
                path.mkdir(mode=0o700)
            pwfile = base_dir / "pwfile"
            pwfile.write_text(cluster._password + "\n")
            if as_postgres:
                for path in (base_dir, cluster.data_dir, cluster.socket_dir, pwfile):
                    os.chown(path, owner.pw_uid, owner.pw_gid)
            cluster._initdb(pwfile, fsync=fsync)
            pwfile.unlink()
            cluster._register()
            cluster._start_on_free_port()
        except BaseException as exc:
            log = _tail(cluster.log_file)
            cluster.stop_and_remove()
            if isinstance(exc, ClusterStartError | KeyboardInterrupt | SystemExit):
                raise
            raise ClusterStartError(
                f"PostgreSQL cluster in {base_dir} did not start: {exc}\n--- server log ---\n{log}",
                base_dir,
            ) from exc
        return cluster

    def _initdb(self, pwfile: Path, *, fsync: bool) -> None:
        args = [
            str(self.bin_dir / "initdb"),
            f"--pgdata={self.data_dir}",
            "--auth=scram-sha-256",
            f"--username={SUPERUSER}",
            f"--pwfile={pwfile}",
            "--encoding=UTF8",
            "--locale=C",
        ]
        if not fsync:
            args.append("--no-sync")  # initdb's own fsync of every file costs seconds
        self._server_command(args, what="initdb")

    def _start_on_free_port(self) -> None:
        """Start on a kernel-picked port; pick again if someone took it in the meantime."""
        for attempt in range(3):
            self._port = _free_port()
            try:
                self._launch()
                return
            except ClusterStartError:
                if attempt == 2 or "already in use" not in _tail(self.log_file, 5):
                    raise

    def _launch(self) -> None:
        options = [
            f"-c port={self._port}",
            f"-c listen_addresses={HOST}",
            f"-c unix_socket_directories={shlex.quote(str(self.socket_dir))}",
        ]
        options += [f"-c {name}={shlex.quote(value)}" for name, value in self._settings.items()]
        args = [
            str(self.bin_dir / "pg_ctl"),
            "start",
            "-w",
            f"-t{_START_TIMEOUT}",
            f"--pgdata={self.data_dir}",
            f"--log={self.log_file}",
            f"-o{' '.join(options)}",
        ]
        try:
            self._server_command(args, what="pg_ctl start")
        except ClusterStartError:
            self._kill_postmaster()  # pg_ctl may have given up on a server still starting
            raise
        self._running = True

    # -- running commands -------------------------------------------------------------------

    def _server_command(self, args: Sequence[str], *, what: str, check: bool = True) -> None:
        """Run a server-side command, as the postgres user when we are root."""
        if self._as_postgres:
            if shutil.which("runuser"):
                args = ["runuser", "-u", SERVER_USER, "--", *args]
            else:
                args = ["su", SERVER_USER, "-s", "/bin/sh", "-c", shlex.join(args)]
        try:
            done = subprocess.run(
                args,
                cwd=self.base_dir,  # postgres cannot necessarily enter our working directory
                env=_server_env(),
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=_COMMAND_TIMEOUT,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise ClusterStartError(
                f"{what} did not finish in {_COMMAND_TIMEOUT} s\n--- server log ---\n"
                f"{_tail(self.log_file)}",
                self.base_dir,
            ) from exc
        if check and done.returncode != 0:
            output = (done.stdout + done.stderr).strip()
            raise ClusterStartError(
                f"{what} failed (exit {done.returncode}): {output}\n--- server log ---\n"
                f"{_tail(self.log_file)}",
                self.base_dir,
            )

    def psql(self, sql: str, dbname: str = "postgres") -> str:
        """Run SQL through the ``psql`` binary over TCP and return its output.

        ``psql`` comes with the server, so no Python driver is needed to set up databases.
        """
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env.update(PGPASSWORD=self._password, PGCONNECT_TIMEOUT="10", LC_ALL="C")
        args = [
            str(self.bin_dir / "psql"),
            "-X",  # no ~/.psqlrc
            "-w",  # never prompt for a password
            "-q",
            "-A",
            "-t",
            "-v",
            "ON_ERROR_STOP=1",
            f"--host={HOST}",
            f"--port={self._port}",
            f"--username={SUPERUSER}",
            f"--dbname={dbname}",
            "-c",
            sql,
        ]
        done = subprocess.run(
            args,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=_COMMAND_TIMEOUT,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"psql failed on {sql!r}: {done.stderr.strip()}")
        return done.stdout

    # -- what clients need ------------------------------------------------------------------

    @property
    def host(self) -> str:
        return HOST

    @property
    def port(self) -> int:
        return self._port

    @property
    def user(self) -> str:
        return SUPERUSER

    @property
    def password(self) -> str:
        return self._password

    @property
    def running(self) -> bool:
        """Whether the harness started the server and has not stopped it since."""
        return self._running

    def url(self, dbname: str = "postgres", with_password: bool = False) -> str:
        """``postgresql://gateway@127.0.0.1:PORT/dbname``; the password only when asked.

        Without the password by default so that URLs can appear in logs and assertion
        messages; pass ``password=cluster.password`` to the driver instead.
        """
        auth = SUPERUSER
        if with_password:
            auth += ":" + quote(self._password, safe="")
        return f"postgresql://{auth}@{HOST}:{self._port}/{quote(dbname, safe='')}"

    def create_database(self, name: str) -> str:
        """Create an empty database and return its URL (without the password)."""
        self._check_name(name)
        self.psql(f"CREATE DATABASE {name}")
        return self.url(name)

    def drop_database(self, name: str) -> None:
        """Drop a database even while clients are still connected to it."""
        self._check_name(name)
        self.psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    @staticmethod
    def _check_name(name: str) -> None:
        """Names are interpolated into SQL, so only plain lower-case identifiers pass."""
        if not _DB_NAME.fullmatch(name):
            raise ValueError(f"database name must match [a-z0-9_]{{1,63}}: {name!r}")

    # -- stopping ---------------------------------------------------------------------------

    def stop(self, mode: str = "fast") -> None:
        """Stop the server and keep the data; ``mode`` is pg_ctl's: smart, fast or immediate.

        ``fast`` disconnects clients and shuts down cleanly; ``immediate`` is a crash as far
        as the clients and the data directory are concerned (recovery runs on next start).
        """
        if mode not in ("smart", "fast", "immediate"):
            raise ValueError(f"unknown stop mode: {mode!r}")
        if not self._running:
            return
        self._server_command(
            [
                str(self.bin_dir / "pg_ctl"),
                "stop",
                "-w",
                f"-t{_START_TIMEOUT}",
                f"--pgdata={self.data_dir}",
                f"--mode={mode}",
            ],
            what=f"pg_ctl stop -m {mode}",
        )
        self._running = False

    def kill(self) -> None:
        """Take the server away abruptly, the way a crash would (``pg_ctl stop -m immediate``)."""
        self.stop(mode="immediate")

    def restart(self) -> None:
        """Stop (if running) and start again on the same port and data directory.

        The port stays the same so that clients configured with :meth:`url` can reconnect.
        """
        self.stop()
        self._launch()

    def start_again(self) -> None:
        """Start a stopped server again, on the same port and data directory."""
        if not self._running:
            self._launch()

    def stop_and_remove(self) -> None:
        """Stop the server, whatever state it is in, and delete the temporary directory.

        Safe to call twice, and after a failed start; it never raises, because it runs in
        teardown, where an exception would hide the test's own failure.
        """
        if self._removed:
            return
        if self._running:
            try:
                self.stop(mode="fast")
            except Exception:
                with contextlib.suppress(Exception):
                    self.stop(mode="immediate")
        self._kill_postmaster()
        self._running = False
        shutil.rmtree(self.base_dir, ignore_errors=True)
        self._removed = True
        _live.discard(self)

    def _kill_postmaster(self) -> None:
        """SIGKILL a postmaster that pg_ctl could not stop (or that pg_ctl gave up starting).

        The pid comes from ``postmaster.pid`` and is only killed if that process's command
        line names our data directory, so a recycled pid is never hit.
        """
        try:
            pid = int((self.data_dir / "postmaster.pid").read_text().split("\n", 1)[0])
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (OSError, ValueError):
            return
        if str(self.data_dir).encode() not in cmdline:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)

    def _register(self) -> None:
        """Remember the cluster for the interpreter-exit safety net (registered lazily)."""
        global _atexit_registered
        _live.add(self)
        if not _atexit_registered:
            atexit.register(_stop_all_live)
            _atexit_registered = True

    # -- context manager --------------------------------------------------------------------

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop_and_remove()

    def __repr__(self) -> str:
        state = "running" if self._running else "stopped"
        return f"<Cluster {HOST}:{self._port} {state} in {self.base_dir}>"
