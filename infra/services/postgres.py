"""PostgreSQL 15 in the state dir, run as an unprivileged OS user (postgres refuses root)."""

from __future__ import annotations

import asyncio
import os
import pwd
import shutil
import socket
import stat
import struct
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg

from infra.services import process as p
from infra.settings import Settings

NAME = "postgres"
DEBIAN_BIN = Path("/usr/lib/postgresql/15/bin")  # not on PATH after `apt-get install postgresql-15`
SSL_REQUEST = struct.pack("!ii", 8, 80877103)


def base(s: Settings) -> Path:
    return s.state_dir / "pg"


def data_dir(s: Settings) -> Path:
    return base(s) / "data"


def pid_file(s: Settings) -> Path:
    return s.state_dir / "run" / f"{NAME}.pid"


def address(s: Settings) -> str:
    return f"{s.pg_host}:{s.pg_port}"


def pg_conf(s: Settings) -> str:
    conf = {
        "listen_addresses": f"'{s.pg_host}'",
        "port": str(s.pg_port),
        "unix_socket_directories": f"'{base(s) / 'run'}'",  # /var/run/postgresql may not exist
        "max_connections": "200",
        "shared_buffers": "256MB",
        "fsync": "on",  # payments: durability matters even on a dev server
        "synchronous_commit": "on",
        "full_page_writes": "on",
        "max_worker_processes": "4",  # 2 cores
        "max_parallel_workers_per_gather": "1",
        "log_min_messages": "warning",
    }
    return "".join(f"{k} = {v}\n" for k, v in conf.items())


def hba_conf() -> str:
    # Loopback-only dev/test server, so trust is acceptable; nothing else is allowed in.
    return "local all all trust\nhost  all all 127.0.0.1/32 trust\nhost  all all ::1/128 trust\n"


def bin_dir() -> Path:
    if (DEBIAN_BIN / "pg_ctl").exists():
        return DEBIAN_BIN
    found = shutil.which("pg_ctl")
    if (
        found
        and " 15." in subprocess.run([found, "--version"], capture_output=True, text=True).stdout
    ):
        return Path(found).resolve().parent
    p.apt_install("postgresql-15", "pg_ctl (PostgreSQL 15)")
    if not (DEBIAN_BIN / "pg_ctl").exists():
        raise p.ServiceError(f"postgresql-15 installed but {DEBIAN_BIN}/pg_ctl is missing")
    return DEBIAN_BIN


def os_user(s: Settings) -> str | None:
    """The unprivileged user postgres runs as when we are root; None when not root."""
    if not p.is_root():
        return None
    if data_dir(s).exists() and data_dir(s).stat().st_uid != 0:
        return pwd.getpwuid(data_dir(s).stat().st_uid).pw_name  # keep whoever initdb'd it
    for name in ("postgres", "payflow"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            pass
    p.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", "payflow"],
          "creating OS user payflow")  # fmt: skip
    return "payflow"


def as_user(cmd: list[str], user: str | None) -> list[str]:
    return ["runuser", "-u", user, "--", *cmd] if user else cmd


def give(path: Path, user: str | None) -> None:
    if user:
        shutil.chown(path, user, pwd.getpwnam(user).pw_gid)


def check_traversable(path: Path) -> None:
    # The postgres user must be able to walk down to its data dir from /.
    for parent in path.parents:
        if not os.stat(parent).st_mode & stat.S_IXOTH:
            raise p.ServiceError(f"{parent} is not searchable by others; postgres cannot reach "
                                 f"{path} (chmod o+x {parent} or set PAYFLOW_STATE_DIR)")  # fmt: skip


def speaks_postgres(host: str, port: int) -> bool:
    """A PostgreSQL server answers an SSLRequest with exactly one byte, S or N."""
    try:
        with socket.create_connection((host, port), timeout=2.0) as sock:
            sock.sendall(SSL_REQUEST)
            return sock.recv(1) in (b"S", b"N")
    except OSError:
        return False


async def dsn_answers(dsn: str) -> bool:
    try:
        conn = await asyncpg.connect(dsn, timeout=5)
    except Exception:
        return False
    await conn.close()
    return True


def owned_pid(s: Settings) -> int | None:
    marker = str(data_dir(s))
    pid = p.read_pid(pid_file(s), marker)
    if pid is None:
        # Started from our data dir by an earlier run whose run/ file was lost: still ours.
        # postmaster.pid belongs to the server: never delete it, even when stale.
        pid = p.read_pid(data_dir(s) / "postmaster.pid", marker, unlink_stale=False)
        if pid is not None:
            p.write_pid(pid_file(s), pid)
    return pid


def status(s: Settings) -> p.ServiceStatus:
    if s.pg_dsn and p.run_sync(dsn_answers(s.pg_dsn)):
        url = urlsplit(s.pg_dsn)  # no password in the output
        where = f"{url.hostname}:{url.port or 5432}"
        return p.ServiceStatus(NAME, True, False, where, "external server (PAYFLOW_PG_DSN)")
    pid = owned_pid(s)
    up = speaks_postgres(s.pg_host, s.pg_port)
    detail = f"pid {pid}, {data_dir(s)}" if pid and up else ""
    return p.ServiceStatus(NAME, up, up and pid is not None, address(s), detail)


def up(s: Settings) -> p.ServiceStatus:
    if s.pg_dsn:
        if p.run_sync(dsn_answers(s.pg_dsn)):
            return status(s)
        print(f"postgres: PAYFLOW_PG_DSN does not answer; starting a local server at {address(s)}")
    if owned_pid(s) is None:
        if p.port_open(s.pg_host, s.pg_port):
            if not speaks_postgres(s.pg_host, s.pg_port):
                raise p.ServiceError(
                    f"port {s.pg_port} is taken by something that is not PostgreSQL"
                )
        else:
            start(s)
    p.run_sync(ensure_role_and_db(s))
    return status(s)


def start(s: Settings) -> None:
    bins, user = bin_dir(), os_user(s)
    pg, data = base(s), data_dir(s)
    (pg / "run").mkdir(parents=True, exist_ok=True)
    for path in (pg, pg / "run"):
        give(path, user)
    if user:
        check_traversable(pg)
    if not (data / "PG_VERSION").exists():
        p.run(as_user([str(bins / "initdb"), "-D", str(data), "-U", s.pg_user, "--auth=trust",
                       "-E", "UTF8", "--no-locale"], user), "initdb", cwd=pg)  # fmt: skip
        with open(data / "postgresql.conf", "a") as f:
            f.write("\ninclude = 'payflow.conf'\n")
        (pg / "superuser").write_text(s.pg_user)  # lets a later pg_user change still log in
    # Rewritten on every start so edits to the settings take effect.
    for name, text in (("payflow.conf", pg_conf(s)), ("pg_hba.conf", hba_conf())):
        (data / name).write_text(text)
        give(data / name, user)
    log = pg / "postgres.log"
    p.run(as_user([str(bins / "pg_ctl"), "-D", str(data), "-l", str(log), "-w", "-t", "60",
                   "start"], user), f"pg_ctl start (log {log})", cwd=pg, new_session=True)  # fmt: skip
    p.write_pid(pid_file(s), int((data / "postmaster.pid").read_text().split()[0]))


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


async def ensure_role_and_db(s: Settings) -> None:
    """Create settings.pg_user (superuser) and settings.pg_database when missing."""
    kw = {"host": s.pg_host, "port": s.pg_port, "database": "postgres", "timeout": 10}
    try:
        conn = await asyncpg.connect(user=s.pg_user, **kw)
    except asyncpg.InvalidAuthorizationSpecificationError:
        # Role missing (pg_user changed, or a foreign server): create it as a superuser we know.
        saved = base(s) / "superuser"
        admin = saved.read_text().strip() if saved.exists() else "postgres"
        conn = await asyncpg.connect(user=admin, **kw)
        await conn.execute(f"CREATE ROLE {quote_ident(s.pg_user)} LOGIN SUPERUSER")
    try:
        if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", s.pg_database):
            owner = quote_ident(s.pg_user)
            await conn.execute(f"CREATE DATABASE {quote_ident(s.pg_database)} OWNER {owner}")
    finally:
        await asyncio.wait_for(conn.close(), 10)


def down(s: Settings) -> str:
    if owned_pid(s) is not None:
        user = os_user(s)
        p.run(as_user([str(bin_dir() / "pg_ctl"), "-D", str(data_dir(s)), "stop", "-m", "fast",
                       "-w", "-t", "60"], user), "pg_ctl stop", cwd=base(s))  # fmt: skip
        pid_file(s).unlink(missing_ok=True)
        return "postgres: stopped"
    if s.pg_dsn and p.run_sync(dsn_answers(s.pg_dsn)):
        return "postgres: external server (PAYFLOW_PG_DSN); left alone"
    if p.port_open(s.pg_host, s.pg_port):
        return "postgres: running but not started by payflow; left alone"
    return "postgres: not running"
