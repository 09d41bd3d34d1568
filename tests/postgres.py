"""A throwaway PostgreSQL server for the store tests, one per test session, and a fresh database per test.

The server is Debian's ``postgresql`` package (``/usr/lib/postgresql/<version>/bin``), started with
``initdb``/``pg_ctl`` in a new temporary directory on a free loopback port, never as root: when the tests run as
root it runs as the unprivileged system user ``fedbus-test`` (created with ``useradd`` if missing) through
``runuser``, and the directory belongs to that user. It listens on 127.0.0.1 only, asks for a password over TCP
(so wrong credentials can be tested), and trades durability for speed (no fsync: the data is thrown away). Each
test gets its own database (``CREATE DATABASE``, with ICU's en-US collation, dropped afterwards), so tests never see each other's rows and
parallel sessions never share a port or a directory. The server is stopped and its directory removed at the end
of the session, whatever happened.

Without PostgreSQL the tests that need it are skipped, saying why; with ``CI`` set they fail instead, because CI
installs ``postgresql`` (the Makefile's ``sysdeps``) and must run them.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import psycopg
import pytest

TEST_USER = "fedbus-test"
"""The unprivileged system user the server runs as when the tests run as root."""
SUPERUSER = "fedbus"
"""The database superuser initdb creates; the tests connect as it over TCP with a password."""
_START_ATTEMPTS = 4


def postgres_bin_dir() -> Path | None:
    """The newest Debian PostgreSQL ``bin`` folder with ``initdb`` and ``pg_ctl``, else one on PATH, else None."""
    for candidate in sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=_version, reverse=True):
        if (candidate / "initdb").is_file() and (candidate / "pg_ctl").is_file():
            return candidate
    initdb = shutil.which("initdb")
    if initdb and shutil.which("pg_ctl"):
        return Path(initdb).parent
    return None


def _version(path: Path) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in path.parent.name.split("."))
    except ValueError:
        return (0,)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _unprivileged_user() -> pwd.struct_passwd | None:
    """None when the tests do not run as root; else ``fedbus-test``, created if missing."""
    if os.geteuid() != 0:
        return None
    with contextlib.suppress(KeyError):
        return pwd.getpwnam(TEST_USER)
    subprocess.run(
        ["useradd", "--system", "--no-create-home", "--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin",
         TEST_USER],
        check=False, capture_output=True,
    )  # a parallel session may have created it meanwhile: look again either way
    try:
        return pwd.getpwnam(TEST_USER)
    except KeyError:
        raise RuntimeError(f"could not create the unprivileged user {TEST_USER} to run PostgreSQL as") from None


@dataclass
class PostgresServer:
    """One running throwaway server; :meth:`stop` ends it and removes its directory."""

    bin_dir: Path
    root: Path
    port: int
    password: str
    user: pwd.struct_passwd | None
    _stopped: bool = field(default=False, repr=False)

    @property
    def data(self) -> Path:
        """The cluster's data directory."""
        return self.root / "data"

    def url(self, database: str = "postgres", *, password: str | None = None) -> str:
        """A URL to ``database`` on this server as the superuser (with the right password unless told)."""
        secret = self.password if password is None else password
        return f"postgresql://{SUPERUSER}:{secret}@127.0.0.1:{self.port}/{database}"

    def admin(self) -> psycopg.Connection[tuple[object, ...]]:
        """An autocommit connection to the ``postgres`` database, for creating and dropping test databases."""
        return psycopg.connect(self.url(), autocommit=True)

    @contextlib.contextmanager
    def database(self) -> Iterator[str]:
        """A new empty database for one test (its URL), dropped afterwards even if a connection is left open."""
        name = f"t_{secrets.token_hex(6)}"
        with self.admin() as admin:
            # A linguistic collation, as an operator's database usually has (the cluster itself is C.UTF-8):
            # the stores must list in byte order all the same.
            icu = " LOCALE_PROVIDER icu ICU_LOCALE 'en-US'" if admin.info.server_version >= 150000 else ""
            admin.execute(f'CREATE DATABASE "{name}" TEMPLATE template0{icu}')
        try:
            yield self.url(name)
        finally:
            with self.admin() as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def run(self, *command: str) -> subprocess.CompletedProcess[str]:
        """Run a PostgreSQL program as the server's user."""
        prefix = ["runuser", "-u", self.user.pw_name, "--"] if self.user is not None else []
        return subprocess.run([*prefix, *command], check=False, capture_output=True, text=True, timeout=120)

    def stop(self) -> None:
        """Stop the server at once and remove its directory; safe to call twice."""
        if self._stopped:
            return
        self._stopped = True
        try:
            if (self.data / "postmaster.pid").exists():
                self.run(str(self.bin_dir / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


def start_postgres(bin_dir: Path) -> PostgresServer:
    """initdb a new cluster in a temporary directory and start it on a free loopback port."""
    user = _unprivileged_user()
    root = Path(tempfile.mkdtemp(prefix="fedbus-pg-"))
    server = PostgresServer(bin_dir, root, 0, secrets.token_urlsafe(16), user)
    try:
        if user is not None:
            os.chown(root, user.pw_uid, user.pw_gid)
        pwfile = root / "pw"
        pwfile.write_text(server.password + "\n")
        pwfile.chmod(0o600)
        if user is not None:
            os.chown(pwfile, user.pw_uid, user.pw_gid)
        made = server.run(
            str(bin_dir / "initdb"), "-D", str(server.data), "-U", SUPERUSER, f"--pwfile={pwfile}",
            "--auth-local=trust", "--auth-host=scram-sha-256", "--encoding=UTF8", "--locale=C.UTF-8", "--no-sync",
        )
        if made.returncode != 0:
            raise RuntimeError(f"initdb failed: {made.stderr or made.stdout}")
        pwfile.unlink()
        for _ in range(_START_ATTEMPTS):  # another session may take the port between choosing and binding it
            server.port = _free_port()
            options = (
                f"-p {server.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={root}"
                " -F -c full_page_writes=off -c synchronous_commit=off -c shared_buffers=16MB -c max_connections=100"
            )
            started = server.run(
                str(bin_dir / "pg_ctl"), "-D", str(server.data), "-l", str(root / "server.log"), "-o", options,
                "-w", "-t", "60", "start",
            )
            if started.returncode == 0:
                return server
        log = (root / "server.log").read_text(errors="replace") if (root / "server.log").exists() else ""
        raise RuntimeError(f"pg_ctl start failed: {started.stderr or started.stdout}\n{log[-2000:]}")
    except BaseException:
        server.stop()
        raise


_REQUIRED = "CI is set, so the PostgreSQL tests must run: install the Debian package postgresql (make sysdeps)"


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """The session's throwaway PostgreSQL server (skipped without PostgreSQL unless CI is set)."""
    bin_dir = postgres_bin_dir()
    if bin_dir is None:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL (initdb, pg_ctl) not found; {_REQUIRED}")
        pytest.skip("PostgreSQL is not installed (no initdb/pg_ctl under /usr/lib/postgresql/*/bin): "
                    "install the Debian package postgresql to run the PostgreSQL store tests")
    server = start_postgres(bin_dir)
    atexit.register(server.stop)  # also if the session is interrupted before the fixture's teardown
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """The URL of a new, empty database for this test on the session's server."""
    with postgres_server.database() as url:
        yield url
