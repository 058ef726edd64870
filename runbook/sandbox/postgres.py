"""A real PostgreSQL server on loopback for the sandbox, the tests and the bench.

Debian's PostgreSQL refuses to run as root, so when we are root ``initdb`` and ``pg_ctl`` run as the
``postgres`` user (``runuser``). Each server has its own data directory (under ``.sandbox/pg`` of the repo,
or a temporary one), listens on 127.0.0.1 on a free port, has no Unix socket (so it never collides with a
system cluster), trusts loopback logins and preloads ``pg_stat_statements`` as the runbooks expect.
"""

from __future__ import annotations

import atexit
import glob
import os
import re
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

SUPERUSER = "postgres"
PREFERRED_MAJOR = "15"
SEED_FILE = Path(__file__).with_name("seed.sql")
REPO_ROOT = Path(__file__).resolve().parents[2]
_DB_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


class PostgresNotInstalled(RuntimeError):
    """The PostgreSQL server binaries are missing."""


def find_bindir() -> Path:
    """The directory of ``initdb``/``pg_ctl``: ``$PG_BINDIR``, else Debian's PostgreSQL 15, else any major."""
    candidates = [os.environ.get("PG_BINDIR", "")]
    candidates.append(f"/usr/lib/postgresql/{PREFERRED_MAJOR}/bin")
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    for candidate in candidates:
        if candidate and (Path(candidate) / "initdb").exists() and (Path(candidate) / "pg_ctl").exists():
            return Path(candidate)
    raise PostgresNotInstalled(
        "PostgreSQL server binaries (initdb, pg_ctl) not found in /usr/lib/postgresql/*/bin: "
        "run `make install` (it installs the postgresql and postgresql-contrib packages) or set PG_BINDIR"
    )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _as_server_user() -> list[str]:
    """The command prefix that runs a PostgreSQL binary as a non-root user."""
    if os.geteuid() != 0:
        return []
    runuser = shutil.which("runuser")
    if runuser:
        return [runuser, "-u", SUPERUSER, "--"]
    raise PostgresNotInstalled(
        "running as root and `runuser` is missing: cannot start PostgreSQL as postgres"
    )


def _data_parent() -> str | None:
    """``.sandbox/pg`` in the repo, or the system temp dir when the server user cannot reach the repo."""
    parent = REPO_ROOT / ".sandbox" / "pg"
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    probe = [*_as_server_user(), "test", "-x", str(parent)]
    reachable = subprocess.run(probe, check=False).returncode == 0  # noqa: S603 - our own argv
    return str(parent) if reachable else None


class PostgresServer:
    """One PostgreSQL server: ``start()``, ``stop()``, ``dsn(dbname)``, ``ensure_database(name)``."""

    def __init__(
        self,
        data_dir: str | Path | None = None,
        *,
        port: int | None = None,
        durable: bool = False,
        settings: dict[str, str] | None = None,
    ) -> None:
        """``durable=False`` (tests, sandbox) turns off fsync: a throwaway server needs no crash safety.
        The bench passes ``durable=True`` so its latencies are those of a normal server."""
        self.host = "127.0.0.1"
        self.port = port or 0
        self.user = SUPERUSER
        self._data_dir = Path(data_dir) if data_dir else None
        self._own_data_dir = data_dir is None
        self._durable = durable
        self._settings = settings or {}
        self._started = False
        self.bindir: Path | None = None

    @property
    def data_dir(self) -> Path:
        if self._data_dir is None:
            raise RuntimeError("the server has not been started")
        return self._data_dir

    @property
    def log_file(self) -> Path:
        return self.data_dir / "server.log"

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        assert self.bindir is not None
        command = [*_as_server_user(), str(self.bindir / args[0]), *args[1:]]
        # our own argv: a PostgreSQL binary and arguments built here, no shell
        result = subprocess.run(command, capture_output=True, text=True, check=False, timeout=120)  # noqa: S603
        if result.returncode != 0:
            raise RuntimeError(f"{args[0]} failed ({result.returncode}): {result.stderr.strip()[-2000:]}")
        return result

    def _make_data_dir(self) -> None:
        if self._data_dir is None:
            self._data_dir = Path(tempfile.mkdtemp(prefix="data-", dir=_data_parent()))
        self.data_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.data_dir, 0o700)
        if os.geteuid() == 0:
            shutil.chown(self.data_dir, user=SUPERUSER, group=SUPERUSER)

    def _configure(self) -> None:
        settings = {
            "listen_addresses": "'127.0.0.1'",
            "port": str(self.port),
            "unix_socket_directories": "''",
            "shared_preload_libraries": "'pg_stat_statements'",
            "pg_stat_statements.track": "'all'",
            "max_connections": "100",
            "logging_collector": "off",
            "log_min_messages": "warning",
            "track_io_timing": "on",
        }
        if not self._durable:
            settings.update({"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"})
        settings.update(self._settings)
        lines = [f"{key} = {value}" for key, value in settings.items()]
        conf = self.data_dir / "postgresql.auto.conf"
        # postgresql.auto.conf is ours to write before the first start; it is read after postgresql.conf
        existing = conf.read_text() if conf.exists() else ""
        self._write_as_server(conf, existing + "\n".join(lines) + "\n")
        hba = "local all all trust\nhost all all 127.0.0.1/32 trust\n"
        self._write_as_server(self.data_dir / "pg_hba.conf", hba)

    def _write_as_server(self, path: Path, text: str) -> None:
        path.write_text(text)
        if os.geteuid() == 0:
            shutil.chown(path, user=SUPERUSER, group=SUPERUSER)

    def start(self) -> None:
        """initdb (if the data directory is new) and start the server; returns once it accepts connections."""
        if self._started:
            return
        self.bindir = find_bindir()
        self._make_data_dir()
        if not (self.data_dir / "PG_VERSION").exists():
            self._run(
                "initdb",
                "-D",
                str(self.data_dir),
                "-U",
                SUPERUSER,
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-instructions",
            )
        fixed_port = bool(self.port)
        for attempt in range(5):
            if not fixed_port:
                self.port = _free_port()
            self._configure()
            try:
                self._run(
                    "pg_ctl",
                    "-D",
                    str(self.data_dir),
                    "-l",
                    str(self.log_file),
                    "-w",
                    "-t",
                    "30",
                    "-o",
                    f"-p {self.port}",
                    "start",
                )
                break
            except RuntimeError:
                if fixed_port or attempt == 4:
                    raise RuntimeError(
                        f"PostgreSQL did not start; see {self.log_file}:\n{self._log_tail()}"
                    ) from None
                time.sleep(0.2)  # lost a race for the port: try another
        self._started = True

    def _log_tail(self) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-20:])
        except OSError:
            return "(no log)"

    def stop(self, *, remove: bool | None = None) -> None:
        """Stop the server (fast shutdown); remove the data directory if we created it."""
        if self._started:
            try:
                self._run("pg_ctl", "-D", str(self.data_dir), "-m", "fast", "-w", "-t", "30", "stop")
            except RuntimeError:
                self._run("pg_ctl", "-D", str(self.data_dir), "-m", "immediate", "-w", "stop")
            self._started = False
        if (self._own_data_dir if remove is None else remove) and self._data_dir is not None:
            shutil.rmtree(self._data_dir, ignore_errors=True)

    @property
    def running(self) -> bool:
        return self._started

    def dsn(self, dbname: str = "postgres") -> str:
        return f"host={self.host} port={self.port} dbname={dbname} user={self.user} connect_timeout=5"

    def env(self) -> dict[str, str]:
        """The libpq environment the adapters read when no secret is configured (``PGUSER``)."""
        return {"PGHOST": self.host, "PGPORT": str(self.port), "PGUSER": self.user}

    def ensure_database(self, name: str) -> None:
        """Create database ``name`` unless it exists."""
        import psycopg
        from psycopg import sql

        if not _DB_NAME.fullmatch(name):
            raise ValueError(f"{name!r} is not a plain database name")
        with psycopg.connect(self.dsn("postgres"), autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
            if not exists:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))

    def drop_database(self, name: str) -> None:
        """Drop database ``name`` (terminating its sessions)."""
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.dsn("postgres"), autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def seed(server: PostgresServer, dbname: str, *, rows: int = 50_000) -> None:
    """Create ``dbname`` if needed and apply ``seed.sql``: the runbook book's tables with ``rows`` sales and
    the untidiness a weekly maintenance is for (dead tuples, an unused index, a bloated ``idx_sales_date``)."""
    import psycopg

    server.ensure_database(dbname)
    script = SEED_FILE.read_text(encoding="utf-8")
    with psycopg.connect(server.dsn(dbname), autocommit=True) as conn:
        conn.execute("SELECT set_config('autopilot.seed_rows', %s, false)", (str(int(rows)),))
        conn.execute(script)  # no parameters: psycopg sends the whole script as one simple query


_shared: PostgresServer | None = None
_shared_lock = threading.Lock()


def shared_server() -> PostgresServer:
    """The process's one server, started on first use and stopped at exit."""
    global _shared  # noqa: PLW0603 - one server per process is the point
    with _shared_lock:
        if _shared is None or not _shared.running:
            server = PostgresServer()
            server.start()
            atexit.register(server.stop)
            _shared = server
        return _shared
