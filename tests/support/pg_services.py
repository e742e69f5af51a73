"""Throwaway PostgreSQL services for tests and CI: a PgBouncer, a primary with a replica.

The PgBouncer runs in transaction mode; the replica streams from the primary. Everything runs
on loopback, on free ports, from temporary directories, as the ``postgres`` OS user when
started as root (PostgreSQL and PgBouncer refuse to run as root), and is removed
when its ``with`` block ends.

    python tests/support/pg_services.py pgbouncer [--server URL] -- COMMAND...

runs COMMAND with ``TEST_POOLER_URL`` set to a PgBouncer in front of URL's server (default
``TEST_DATABASE_URL``, else the local PostgreSQL) and ``DATABASE_NULLPOOL=1``: what
``make test-pgbouncer`` does.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

PG_BIN = Path("/usr/lib/postgresql")
LOCAL_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _as_postgres() -> list[str]:
    return ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []


def _owned_tempdir(prefix: str) -> Path:
    root = Path(tempfile.mkdtemp(prefix=prefix))
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    return root


def _wait_for_port(port: int, process: subprocess.Popen | None = None,
                   timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"exited with status {process.returncode} before listening")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout:.0f} s")


def server_bin() -> Path:
    """The newest PostgreSQL server's ``bin`` directory (Debian layout)."""
    versions = sorted((p.name for p in PG_BIN.iterdir() if (p / "bin" / "initdb").exists()),
                      key=lambda v: int(v) if v.isdigit() else 0) if PG_BIN.is_dir() else []
    if not versions:
        raise RuntimeError("no PostgreSQL server binaries under /usr/lib/postgresql")
    return PG_BIN / versions[-1] / "bin"


# ---------------------------------------------------------------- PgBouncer


PGBOUNCER_INI = """\
[databases]
; Every database name the client asks for, on the one server.
* = host={host} port={port}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {listen_port}
unix_socket_dir =
auth_type = trust
auth_file = {root}/userlist.txt
pool_mode = transaction
default_pool_size = 20
max_client_conn = 500
; Reconnect to a restarted server at once (the default waits 15 s after a failed login).
server_login_retry = 1
query_wait_timeout = 30
ignore_startup_parameters = extra_float_digits
admin_users = postgres
"""


class PgBouncer:
    """A PgBouncer (Debian package ``pgbouncer``) in transaction mode in front of ``server``."""

    def __init__(self, server_url: str = LOCAL_SERVER):
        parts = urlsplit(server_url)
        self.server_host = parts.hostname or "127.0.0.1"
        self.server_port = parts.port or 5432
        self.user = parts.username or "postgres"
        self.port = free_port()
        self.root: Path | None = None
        self.process: subprocess.Popen | None = None

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{database}"

    def start(self) -> "PgBouncer":
        binary = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
        if not os.path.exists(binary):
            raise RuntimeError("pgbouncer is not installed (apt-get install -y pgbouncer)")
        self.root = _owned_tempdir("bankapp-pgbouncer-")
        (self.root / "userlist.txt").write_text(f'"{self.user}" ""\n')
        ini = self.root / "pgbouncer.ini"
        ini.write_text(PGBOUNCER_INI.format(host=self.server_host, port=self.server_port,
                                            listen_port=self.port, root=self.root))
        log = open(self.root / "pgbouncer.log", "w")
        # Not a daemon: it is this process's child and dies with the block.
        self.process = subprocess.Popen(_as_postgres() + [binary, str(ini)],
                                        stdin=subprocess.DEVNULL, stdout=log,
                                        stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        try:
            _wait_for_port(self.port, self.process)
        except RuntimeError as error:
            output = self.log_text()
            self.stop()
            raise RuntimeError(f"pgbouncer did not start: {error}\n{output}") from None
        return self

    def log_text(self) -> str:
        try:
            return (self.root / "pgbouncer.log").read_text()[-2000:] if self.root else ""
        except OSError:
            return ""

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> "PgBouncer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


# ---------------------------------------------------------------- primary and replica


class Cluster:
    """A PostgreSQL data directory run by ``pg_ctl`` on ``127.0.0.1:<port>``."""

    def __init__(self, root: Path, name: str):
        self.bin = server_bin()
        self.root = root
        self.data = root / name
        self.log = root / f"{name}.log"
        self.port = free_port()

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def sqlalchemy_url(self, database: str) -> str:
        return f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}/{database}"

    def run(self, *command: str) -> None:
        # Output to a file, not a pipe: the postmaster pg_ctl starts would inherit a pipe and
        # keep it open.
        with open(self.root / "commands.log", "a") as output:
            result = subprocess.run(_as_postgres() + list(command), stdin=subprocess.DEVNULL,
                                    stdout=output, stderr=subprocess.STDOUT)
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed:\n"
                               f"{(self.root / 'commands.log').read_text()[-1500:]}")

    def start(self, extra_options: str = "") -> None:
        options = (f"-p {self.port} -c listen_addresses=127.0.0.1 "
                   f"-c unix_socket_directories={self.root} -c max_connections=80 "
                   f"-c shared_buffers=16MB -c fsync=off {extra_options}").strip()
        self.run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.log),
                 "-o", options, "-w", "-t", "60", "start")

    def stop(self, mode: str = "fast") -> None:
        self.run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    def initdb(self) -> None:
        self.run(str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres", "-A",
                 "trust", "--no-sync", "-E", "UTF8")

    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists()


class PrimaryWithReplica:
    """A fresh primary (``initdb``) and a streaming replica of it (``pg_basebackup -R``).

    A private primary rather than the machine's cluster: the base backup copies a whole
    cluster, and the machine's may be busy with other runs and lack a replication line in
    ``pg_hba.conf``; initdb's own default allows replication from loopback.
    """

    def __init__(self):
        self.root = _owned_tempdir("bankapp-replica-")
        self.primary = Cluster(self.root, "primary")
        self.replica = Cluster(self.root, "replica")

    def start(self) -> "PrimaryWithReplica":
        bin_dir = self.primary.bin
        self.primary.initdb()
        self.primary.start()
        self.primary.run(str(bin_dir / "pg_basebackup"), "-h", "127.0.0.1",
                         "-p", str(self.primary.port), "-U", "postgres",
                         "-D", str(self.replica.data), "-R", "-X", "stream", "--no-sync")
        self.replica.start()
        return self

    def stop(self) -> None:
        for cluster in (self.replica, self.primary):
            if cluster.running():
                try:
                    cluster.stop("immediate")
                except RuntimeError:
                    pass
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> "PrimaryWithReplica":
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc) -> None:
        self.stop()


class FreshServer:
    """One new cluster (``initdb``) on a free port, removed when the block ends: the restore,
    point-in-time and upgrade drills (bench/drills.py) each start their own.

    ``extra_options`` are more ``-c name=value`` server settings (WAL archiving, say);
    ``root`` is the temporary directory, owned by the server's user, for anything else the
    server must write (a WAL archive).
    """

    def __init__(self, name: str = "server", extra_options: str = ""):
        self.root = _owned_tempdir(f"bankapp-{name}-")
        self.cluster = Cluster(self.root, name)
        self.extra_options = extra_options

    def url(self, database: str = "postgres") -> str:
        return self.cluster.url(database)

    def directory(self, name: str) -> Path:
        """A directory under ``root`` the server's user may write to."""
        path = self.root / name
        path.mkdir()
        if os.geteuid() == 0:
            shutil.chown(path, "postgres", "postgres")
        return path

    def start(self) -> "FreshServer":
        self.cluster.initdb()
        self.cluster.start(self.extra_options)
        return self

    def stop(self) -> None:
        if self.cluster.running():
            try:
                self.cluster.stop("immediate")
            except RuntimeError:
                pass
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> "FreshServer":
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc) -> None:
        self.stop()


# ---------------------------------------------------------------- command line


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="service", required=True)
    bouncer = sub.add_parser("pgbouncer", help="run a command with a PgBouncer in front")
    bouncer.add_argument("--server", default=os.environ.get("TEST_DATABASE_URL") or LOCAL_SERVER)
    bouncer.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give the command to run after --")
    with PgBouncer(args.server) as pooler:
        print(f"pg_services: PgBouncer (transaction mode) on {pooler.url()} in front of "
              f"{pooler.server_host}:{pooler.server_port}", flush=True)
        env = dict(os.environ, TEST_DATABASE_URL=args.server, TEST_POOLER_URL=pooler.url(),
                   DATABASE_NULLPOOL="1")
        with contextlib.suppress(KeyboardInterrupt):
            return subprocess.run(command, env=env).returncode
    return 130


if __name__ == "__main__":
    sys.exit(main())
