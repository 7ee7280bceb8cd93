"""A throwaway PostgreSQL + PostGIS server for tests, benchmarks and trying the PostGIS
store on a laptop: ``initdb`` into a temporary directory, ``pg_ctl start`` on a free
loopback port, ``CREATE EXTENSION postgis``; :meth:`TempPostgres.stop` removes it all.

Uses Debian's ``postgresql`` and ``postgis`` packages (``/usr/lib/postgresql/<v>/bin``).
PostgreSQL refuses to run as root, so under root the server runs as the ``postgres``
user (created by the Debian package) through ``runuser``.

Example
-------
>>> with TempPostgres() as pg:           # doctest: +SKIP
...     store = open_store(pg.url)
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path


class PostgresUnavailable(RuntimeError):
    """PostgreSQL/PostGIS binaries are not installed, or the server would not start."""


def find_bindir() -> Path:
    """The newest ``/usr/lib/postgresql/<version>/bin`` holding ``initdb`` (or $PG_BINDIR)."""
    env = os.environ.get("PG_BINDIR")
    if env and (Path(env) / "initdb").exists():
        return Path(env)
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0,
    )
    if not found:
        on_path = shutil.which("initdb")
        if on_path:
            return Path(on_path).parent
        raise PostgresUnavailable(
            "PostgreSQL is not installed (apt-get install postgresql "
            "postgis, or scripts/install.sh)"
        )
    return Path(found[-1]).parent


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class TempPostgres:
    """A PostgreSQL cluster in a temporary directory, listening on 127.0.0.1 only.

    Parameters
    ----------
    database
        Name of the database to create (with the PostGIS extension).
    settings
        Extra ``postgres -c`` settings; defaults favour speed over durability
        (``fsync=off``), which is right for throwaway data only.
    """

    def __init__(self, database: str = "gridgis", settings: dict[str, str] | None = None) -> None:
        self.bindir = find_bindir()
        self.database = database
        self.user = "gridgis"
        self.port = free_port()
        self.settings = {
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "max_connections": "200",
            "shared_buffers": "128MB",
        } | (settings or {})
        self.root: Path | None = None
        self._run_as: list[str] = []
        self.started = False

    @property
    def url(self) -> str:
        """``postgresql://`` URL of the database (trust authentication on loopback)."""
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{self.database}"

    def _cmd(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        proc = subprocess.run([*self._run_as, *args], capture_output=True, text=True, timeout=120)
        if check and proc.returncode != 0:
            raise PostgresUnavailable(
                f"{' '.join(args[:2])} failed ({proc.returncode}): "
                f"{proc.stderr.strip() or proc.stdout.strip()}"
            )
        return proc

    def start(self) -> TempPostgres:
        """initdb, start the server and create the database with PostGIS."""
        self.root = Path(tempfile.mkdtemp(prefix="gridgis-pg-"))
        data = self.root / "data"
        if os.geteuid() == 0:
            try:
                pw = pwd.getpwnam("postgres")
            except KeyError as exc:
                raise PostgresUnavailable(
                    "running as root needs the 'postgres' user "
                    "(created by Debian's postgresql package)"
                ) from exc
            os.chown(self.root, pw.pw_uid, pw.pw_gid)
            self._run_as = ["runuser", "-u", "postgres", "--"]
        self._cmd(
            str(self.bindir / "initdb"),
            "-D",
            str(data),
            "-U",
            self.user,
            "--auth=trust",
            "-E",
            "UTF8",
            "--locale=C.UTF-8",
            "--no-sync",
        )
        self._pg_ctl_start()
        import psycopg

        admin = f"postgresql://{self.user}@127.0.0.1:{self.port}/postgres"
        with psycopg.connect(admin, autocommit=True) as con:
            con.execute(f'CREATE DATABASE "{self.database}"')
        with psycopg.connect(self.url, autocommit=True) as con:
            try:
                con.execute("CREATE EXTENSION IF NOT EXISTS postgis")
            except psycopg.Error as exc:
                self.stop()
                raise PostgresUnavailable(f"PostGIS is not installed: {exc}") from exc
        return self

    def _pg_ctl_start(self) -> None:
        assert self.root is not None
        opts = " ".join(
            [f"-p {self.port}", "-c listen_addresses=127.0.0.1", f"-k {self.root}"]
            + [f"-c {k}={v}" for k, v in self.settings.items()]
        )
        self._cmd(
            str(self.bindir / "pg_ctl"),
            "-D",
            str(self.root / "data"),
            "-o",
            opts,
            "-w",
            "-t",
            "60",
            "-l",
            str(self.root / "server.log"),
            "start",
        )
        self.started = True

    def restart(self) -> None:
        """Restart the server as an administrator would (``pg_ctl stop -m fast``: every
        client connection dropped, committed data kept — an immediate stop could lose
        it with this throwaway server's ``fsync=off``), on the same port and data."""
        assert self.root is not None and self.started
        self._cmd(
            str(self.bindir / "pg_ctl"),
            "-D",
            str(self.root / "data"),
            "-m",
            "fast",
            "-w",
            "stop",
        )
        self.started = False
        self._pg_ctl_start()

    def stop(self) -> None:
        """Stop the server (immediately) and delete its directory."""
        if self.root is None:
            return
        if self.started:
            self._cmd(
                str(self.bindir / "pg_ctl"),
                "-D",
                str(self.root / "data"),
                "-m",
                "immediate",
                "-w",
                "stop",
                check=False,
            )
            self.started = False
        shutil.rmtree(self.root, ignore_errors=True)
        self.root = None

    def __enter__(self) -> TempPostgres:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


_SHARED: TempPostgres | None = None


def shared_server() -> TempPostgres:
    """One throwaway server per process (started on first use, stopped at exit): lets
    several test modules share a cluster without a conftest."""
    global _SHARED
    if _SHARED is None:
        import atexit

        server = TempPostgres().start()
        atexit.register(server.stop)
        _SHARED = server
    return _SHARED


def fresh_workspace_url() -> str:
    """URL of a new, empty workspace schema on ``GRIDGIS_TEST_DATABASE_URL`` or on the
    process's :func:`shared_server`. Raises :class:`PostgresUnavailable`."""
    import uuid

    base = os.environ.get("GRIDGIS_TEST_DATABASE_URL")
    if not base:
        find_bindir()
        base = shared_server().url
    sep = "&" if "?" in base else "?"
    return f"{base}{sep}schema=t_{uuid.uuid4().hex[:12]}"
