"""Real host environments for the tests: a PgBouncer in transaction pool mode in
front of PostgreSQL 16, and PostgreSQL 15 (the oldest version we claim) from
Debian's ``postgresql-15`` package. Both come from apt (``.ci/run`` installs them).

Both refuse to run as root, so when the tests run as root each runs as an
unprivileged account: PgBouncer as the owner of the test server's socket folder,
PostgreSQL 15 as the ``postgres`` account the Debian package creates (``nobody``
when neither exists). Each runs in the foreground under ``setpriv --pdeathsig``,
so it ends with the test session even when the session is killed, and is stopped
and its folder deleted at the end of the session.

The host-environment matrix (databases, pools, URLs, table names) lives in
``fix_host_matrix``.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
from collections.abc import AsyncIterator, Generator, Iterator, Sequence
from pathlib import Path
from typing import IO
from urllib.parse import quote

import attrs
import pytest
from psycopg.conninfo import conninfo_to_dict

from chat_persistence import PersistenceAdapter
from chat_persistence_contract import AdapterFactory, PersistenceAdapterContract
from fix_pg import PgServer

PG15_BIN = Path("/usr/lib/postgresql/15/bin")
PGBOUNCER = "pgbouncer"
START_TIMEOUT = 60.0


@attrs.frozen
class Account:
    """The unprivileged account a service runs as (when the tests run as root)."""

    name: str
    uid: int
    gid: int


def service_account(owner_of: Path | None = None) -> Account | None:
    """None when not root (the service runs as we do); else the non-root owner of
    ``owner_of``, else the ``postgres`` account, else ``nobody``."""
    if os.geteuid() != 0:
        return None
    if owner_of is not None and owner_of.exists():
        uid = owner_of.stat().st_uid
        if uid != 0:
            entry = pwd.getpwuid(uid)
            return Account(entry.pw_name, entry.pw_uid, entry.pw_gid)
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            entry = pwd.getpwnam(name)
            return Account(entry.pw_name, entry.pw_uid, entry.pw_gid)
    raise RuntimeError("running as root and no unprivileged account (postgres, nobody) exists")


def as_account(account: Account | None, argv: Sequence[str]) -> list[str]:
    """``argv`` run as ``account``, ended by SIGTERM when this process dies."""
    ids = [] if account is None else [f"--reuid={account.uid}", f"--regid={account.gid}"]
    groups = [] if account is None else ["--init-groups"]
    return ["setpriv", *ids, *groups, "--pdeathsig", "TERM", "--", *argv]


def private_folder(prefix: str, account: Account | None) -> Path:
    """A new temporary folder that ``account`` owns."""
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    if account is not None:
        os.chown(folder, account.uid, account.gid)
    return folder


def free_port() -> int:
    """A loopback TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class _LogWatch:
    """Copies a service's output to its log file and says when a line announcing
    readiness (or the end of the output) has come."""

    def __init__(self, stream: IO[str], log: Path, ready: str) -> None:
        self.ready_line = ready
        self.seen = threading.Event()
        self.log = log
        self._thread = threading.Thread(target=self._copy, args=(stream,), daemon=True)
        self._thread.start()

    def _copy(self, stream: IO[str]) -> None:
        with self.log.open("a") as out:
            for line in stream:
                out.write(line)
                out.flush()
                if self.ready_line in line:
                    self.seen.set()
        self.seen.set()  # the output ended: the caller finds the process gone

    def join(self) -> None:
        self._thread.join(timeout=10)


@contextlib.contextmanager
def foreground_service(
    argv: Sequence[str],
    *,
    account: Account | None,
    ready: str,
    log: Path,
    stop_signal: int = signal.SIGTERM,
) -> Generator[subprocess.Popen[str]]:
    """Run ``argv`` as ``account`` until the block ends; returns once its output shows
    ``ready``. A service that exits first, or is not ready in time, fails the test
    with its log."""
    process = subprocess.Popen(
        as_account(account, argv),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    watch = _LogWatch(process.stdout, log, ready)
    try:
        if not watch.seen.wait(START_TIMEOUT) or process.poll() is not None:
            pytest.fail(f"{argv[0]} did not start:\n{log.read_text()}")
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(stop_signal)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        watch.join()
        process.stdout.close()


def run_checked(argv: Sequence[str], account: Account | None) -> None:
    """Run a setup command as ``account``; its output becomes the failure message."""
    done = subprocess.run(as_account(account, argv), capture_output=True, text=True, check=False)
    if done.returncode != 0:
        pytest.fail(f"{' '.join(argv)} failed ({done.returncode}):\n{done.stdout}{done.stderr}")


@attrs.frozen
class PgBouncer:
    """A PgBouncer in transaction pool mode in front of one server."""

    target: PgServer
    """The server behind it, directly."""
    dbname: str
    server: PgServer
    """The same database, through PgBouncer."""
    admin: PgServer
    """PgBouncer's admin console (``SHOW POOLS``, ``SHOW STATS``)."""
    config: Path


@attrs.frozen
class Upstream:
    """Where and as whom PgBouncer reaches the server (from the server's DSN)."""

    host: str
    port: str
    user: str
    password: str
    dbname: str

    @classmethod
    def of(cls, server: PgServer) -> Upstream:
        """The parts of ``server``'s DSN, with libpq's defaults filled in."""
        given = {k: str(v) for k, v in conninfo_to_dict(server.dsn).items() if v is not None}
        user = given.get("user") or "postgres"
        return cls(
            host=given.get("host") or "/tmp",
            port=given.get("port") or "5432",
            user=user,
            password=given.get("password", ""),
            dbname=given.get("dbname") or user,
        )

    def url(self, port: int, dbname: str) -> str:
        """A URL to ``dbname`` on a PgBouncer listening on loopback ``port``."""
        auth = quote(self.user, safe="")
        if self.password:
            auth += ":" + quote(self.password, safe="")
        return f"postgresql://{auth}@127.0.0.1:{port}/{quote(dbname, safe='')}"


def _write_pgbouncer_config(upstream: Upstream, port: int, folder: Path) -> Path:
    """``pgbouncer.ini`` and its user list: every database, in transaction mode; the
    user list holds the one user (and the password PgBouncer logs in with)."""
    users = folder / "userlist.txt"
    password = upstream.password.replace('"', '""')
    users.write_text(f'"{upstream.user}" "{password}"\n')
    config = folder / "pgbouncer.ini"
    lines = [
        "[databases]",
        f"* = host={upstream.host} port={upstream.port}",
        "[pgbouncer]",
        "listen_addr = 127.0.0.1",
        f"listen_port = {port}",
        "unix_socket_dir =",
        "auth_type = trust",
        f"auth_file = {users}",
        f"admin_users = {upstream.user}",
        "pool_mode = transaction",
        "max_client_conn = 400",
        "default_pool_size = 20",
    ]
    config.write_text("\n".join(lines) + "\n")
    return config


@pytest.fixture(scope="session")
def pgbouncer(pg16: PgServer) -> Iterator[PgBouncer]:
    """Debian's PgBouncer, ``pool_mode = transaction``, on a free loopback port in
    front of PostgreSQL 16."""
    binary = shutil.which(PGBOUNCER) or shutil.which("/usr/sbin/pgbouncer")
    if binary is None:
        pytest.fail("pgbouncer is not installed: apt-get install -y pgbouncer (.ci/run does)")
    upstream = Upstream.of(pg16)
    socket_folder = Path(upstream.host) if upstream.host.startswith("/") else None
    account = service_account(socket_folder)
    folder = private_folder("chat-persistence-pgbouncer-", account)
    port = free_port()
    try:
        config = _write_pgbouncer_config(upstream, port, folder)
        if account is not None:
            for path in folder.iterdir():
                os.chown(path, account.uid, account.gid)
        with foreground_service(
            [binary, str(config)], account=account, ready="process up", log=folder / "log"
        ):
            yield PgBouncer(
                target=pg16,
                dbname=upstream.dbname,
                server=PgServer(dsn=upstream.url(port, upstream.dbname), source="pgbouncer"),
                admin=PgServer(dsn=upstream.url(port, "pgbouncer"), source="pgbouncer-admin"),
                config=config,
            )
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@attrs.frozen
class LocalCluster:
    """A cluster these tests initdb'd: TCP on loopback and a socket folder."""

    server: PgServer
    socket_dir: Path
    port: int
    version: int


def _initdb_cluster(bin_dir: Path, version: int) -> Iterator[LocalCluster]:
    for name in ("initdb", "postgres"):
        if not (bin_dir / name).exists():
            pytest.fail(
                f"{bin_dir / name} is missing: apt-get install -y postgresql-{version} "
                "(.ci/run does)"
            )
    account = service_account()
    folder = private_folder(f"chat-persistence-pg{version}-", account)
    data, sockets = folder / "data", folder / "sockets"
    port = free_port()
    try:
        initdb = [str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust"]
        run_checked([*initdb, "-E", "UTF8", "--locale=C", "--no-sync"], account)
        sockets.mkdir()
        if account is not None:
            os.chown(sockets, account.uid, account.gid)
        settings = {
            "listen_addresses": "127.0.0.1",
            "port": str(port),
            "unix_socket_directories": str(sockets),
            "fsync": "off",
            "max_connections": "200",
            "timezone": "UTC",
        }
        argv = [str(bin_dir / "postgres"), "-D", str(data)]
        for key, value in settings.items():
            argv += ["-c", f"{key}={value}"]
        with foreground_service(
            argv,
            account=account,
            ready="database system is ready to accept connections",
            log=folder / "log",
            stop_signal=signal.SIGINT,  # fast shutdown: a leaked client cannot hold it up
        ):
            dsn = f"postgresql://postgres@127.0.0.1:{port}/postgres"
            server = PgServer(dsn=dsn, source=f"postgresql-{version}")
            yield LocalCluster(server, sockets, port, version)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def pg15_cluster() -> Iterator[LocalCluster]:
    """PostgreSQL 15 from Debian's ``postgresql-15``, initdb'd in a temporary folder."""
    yield from _initdb_cluster(PG15_BIN, 15)


@pytest.fixture(scope="session")
def pg15(pg15_cluster: LocalCluster) -> PgServer:
    """PostgreSQL 15, the oldest version the docs claim."""
    return pg15_cluster.server


class FactoryContract(PersistenceAdapterContract):
    """The contract suite on adapters built by the subclass's ``contract_factory``
    fixture (a zero-argument callable returning an unopened adapter)."""

    @pytest.fixture
    def reopen_adapter(self, contract_factory: AdapterFactory) -> AdapterFactory:
        return contract_factory

    @pytest.fixture
    async def adapter(self, contract_factory: AdapterFactory) -> AsyncIterator[PersistenceAdapter]:
        async with contract_factory() as adapter:
            yield adapter
