"""A throwaway PostgreSQL cluster with TechEmpower's ``hello_world`` database.

Uses Debian's PostgreSQL binaries (``apt-get install -y postgresql``), an initdb in a
temporary directory, owned and run by a non-root user (``postgres`` when the harness
runs as root), listening on 127.0.0.1:<free port> only. ``stop()`` (or leaving the
``with`` block) shuts it down and deletes the directory.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

from blazeasgi.benchprocess import free_port
from blazeasgi.wrk import BenchError

DB_NAME = "hello_world"
DB_USER = "benchmarkdbuser"
DB_PASSWORD = "benchmarkdbpass"
WORLD_ROWS = 10_000

#: The 12 fortunes of the TechEmpower toolset's database setup, verbatim.
FORTUNES: list[tuple[int, str]] = [
    (1, "fortune: No such file or directory"),
    (2, "A computer scientist is someone who fixes things that aren't broken."),
    (3, "After enough decimal places, nobody gives a damn."),
    (4, "A bad random number generator: 1, 1, 1, 1, 1, 4.33e+67, 1, 1, 1"),
    (5, "A computer program does what you tell it to do, not what you want it to do."),
    (6, "Emacs is a nice operating system, but I prefer UNIX. \u2014 Tom Christaensen"),
    (7, "Any program that runs right is obsolete."),
    (8, "A list is only as strong as its weakest link. \u2014 Donald Knuth"),
    (9, "Feature: A bug with seniority."),
    (10, "Computers make very fast, very accurate mistakes."),
    (11, '<script>alert("This should not be displayed in a browser alert box.");</script>'),
    (12, "\u30d5\u30ec\u30fc\u30e0\u30ef\u30fc\u30af\u306e\u30d9\u30f3\u30c1\u30de\u30fc\u30af"),
]

PG_MISSING = "PostgreSQL is not installed: apt-get update && apt-get install -y postgresql"


def _sql_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def setup_sql() -> str:
    """The schema and data, as the toolset's create-postgres.sql lays them out."""
    fortunes = ",\n".join(f"  ({i}, {_sql_literal(m)})" for i, m in FORTUNES)
    return f"""
CREATE TABLE World (
  id integer NOT NULL,
  randomNumber integer NOT NULL default 0,
  PRIMARY KEY (id)
);
INSERT INTO World (id, randomnumber)
SELECT x.id, least(floor(random() * 10000 + 1), 10000) FROM generate_series(1, {WORLD_ROWS}) AS x(id);
CREATE TABLE Fortune (
  id integer NOT NULL,
  message varchar(2048) NOT NULL,
  PRIMARY KEY (id)
);
INSERT INTO Fortune (id, message) VALUES
{fortunes};
ALTER TABLE World OWNER TO {DB_USER};
ALTER TABLE Fortune OWNER TO {DB_USER};
VACUUM ANALYZE;
"""


def find_bin_dir() -> Path:
    """The newest /usr/lib/postgresql/<version>/bin, else wherever initdb is on PATH."""
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0,
    )
    if candidates:
        return Path(candidates[-1]).parent
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).parent
    raise BenchError(PG_MISSING)


class PostgresCluster:
    def __init__(self, cpu_prefix: Sequence[str] = (), port: int | None = None) -> None:
        self.bin = find_bin_dir()
        self.port = port or free_port()
        self.cpu_prefix = list(cpu_prefix)
        self.root: Path | None = None
        self.user: str | None = None
        self.has_stat_statements = False
        self._started = False

    # -- running commands as the cluster's owner -------------------------------------------
    def _owner(self) -> tuple[str | None, int | None, int | None]:
        if os.geteuid() != 0:
            return None, None, None
        try:
            entry = pwd.getpwnam("postgres")
        except KeyError:
            raise BenchError(
                "running as root and there is no 'postgres' user to own the cluster "
                "(it comes with Debian's postgresql package; or run the harness as a non-root user)"
            ) from None
        return entry.pw_name, entry.pw_uid, entry.pw_gid

    def _run(self, argv: Sequence[str], timeout: float = 120, check: bool = True) -> str:
        _, uid, gid = self._owner()
        kwargs = {}
        if uid is not None:
            kwargs = {"user": uid, "group": gid, "extra_groups": []}
        try:
            proc = subprocess.run(
                list(argv),
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=timeout,
                cwd=str(self.root) if self.root else None,
                check=False,
                env={**os.environ, "PGHOST": str(self.root), "PGPORT": str(self.port), "LC_ALL": "C.UTF-8"},
                **kwargs,  # type: ignore[arg-type]
            )
        except subprocess.TimeoutExpired as exc:
            raise BenchError(f"{Path(argv[0]).name} did not finish within {timeout:.0f} s") from exc
        if check and proc.returncode != 0:
            err = (proc.stderr or proc.stdout).strip().splitlines()
            raise BenchError(f"{Path(argv[0]).name} failed: {err[-1] if err else proc.returncode}")
        return proc.stdout

    def psql(self, sql: str, database: str = DB_NAME, timeout: float = 120) -> str:
        """Run SQL as the cluster's superuser over the Unix socket; tuples-only output."""
        return self._run(
            [str(self.bin / "psql"), "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-U", "postgres",
             "-d", database, "-c", sql],
            timeout=timeout,
        )  # fmt: skip

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> PostgresCluster:
        name, uid, gid = self._owner()
        self.root = Path(tempfile.mkdtemp(prefix="blazeasgi-pg-"))
        if uid is not None and gid is not None:
            os.chown(self.root, uid, gid)
        self.user = name or pwd.getpwuid(os.geteuid()).pw_name
        data = self.root / "data"
        self._run(
            [str(self.bin / "initdb"), "-D", str(data), "-U", "postgres", "-E", "UTF8", "--no-locale",
             "--auth-local=trust", "--auth-host=scram-sha-256"],
        )  # fmt: skip
        self.has_stat_statements = bool(
            glob.glob(f"/usr/share/postgresql/{self.bin.parent.name}/extension/pg_stat_statements.control")
        )
        conf = [
            "listen_addresses = '127.0.0.1'",
            f"port = {self.port}",
            f"unix_socket_directories = '{self.root}'",
            "max_connections = 200",
            "shared_buffers = 256MB",
            "synchronous_commit = off",
            "logging_collector = off",
            "log_min_messages = warning",
        ]
        if self.has_stat_statements:
            conf += ["shared_preload_libraries = 'pg_stat_statements'", "pg_stat_statements.track = all"]
        with open(data / "postgresql.conf", "a") as f:
            f.write("\n# blazeasgi benchmarks\n" + "\n".join(conf) + "\n")
        self._run(
            [*self.cpu_prefix, str(self.bin / "pg_ctl"), "-D", str(data), "-l", str(self.root / "server.log"),
             "-w", "-t", "60", "start"],
        )  # fmt: skip
        self._started = True
        self.psql(f"CREATE USER {DB_USER} WITH PASSWORD '{DB_PASSWORD}'", database="postgres")
        self.psql(
            f"CREATE DATABASE {DB_NAME} OWNER {DB_USER} ENCODING 'UTF8' TEMPLATE template0",
            database="postgres",
        )
        sql_file = self.root / "setup.sql"
        sql_file.write_text(setup_sql(), encoding="utf-8")
        os.chmod(sql_file, 0o644)
        self._run(
            [str(self.bin / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-U", "postgres", "-d", DB_NAME,
             "-f", str(sql_file)],
        )  # fmt: skip
        if self.has_stat_statements:
            self.psql("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        return self

    def stop(self) -> None:
        if self.root is None:
            return
        try:
            if self._started:
                self._run(
                    [str(self.bin / "pg_ctl"), "-D", str(self.root / "data"), "-m", "fast", "-w", "-t", "30",
                     "stop"],
                    check=False, timeout=60,
                )  # fmt: skip
        finally:
            self._started = False
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None

    def __enter__(self) -> PostgresCluster:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- what the apps and the verifier need -------------------------------------------------
    def app_env(self) -> dict[str, str]:
        return {"TFB_DB_HOST": "127.0.0.1", "TFB_DB_PORT": str(self.port)}

    def read_worlds(self) -> dict[int, int]:
        """Every World row as {id: randomNumber}."""
        out = self.psql("SELECT id, randomnumber FROM world")
        return {int(a): int(b) for a, b in (line.split("|") for line in out.splitlines() if line)}

    def reset_stats(self) -> None:
        if self.has_stat_statements:
            self.psql("SELECT pg_stat_statements_reset()")

    def statement_stats(self) -> dict[str, tuple[int, int]] | None:
        """{'select': (calls, rows), 'update': (calls, rows)} on World since the last reset."""
        if not self.has_stat_statements:
            return None
        out = self.psql(
            "SELECT lower(split_part(ltrim(query), ' ', 1)), sum(calls), sum(rows) FROM pg_stat_statements "
            "WHERE query ILIKE '%world%' AND query NOT ILIKE '%pg_stat_statements%' GROUP BY 1"
        )
        stats = {"select": (0, 0), "update": (0, 0)}
        for line in out.splitlines():
            verb, calls, rows = line.split("|")
            if verb in stats:
                stats[verb] = (int(calls), int(rows))
        return stats
