"""Redis 7 on loopback, no persistence (it only holds caches and rate-limit counters)."""

from __future__ import annotations

import shutil
import socket
import time
from pathlib import Path
from urllib.parse import urlsplit

from infra.services import process as p
from infra.settings import Settings

NAME = "redis"
START_TIMEOUT_S = 20.0


def host_port(s: Settings) -> tuple[str, int]:
    url = urlsplit(s.redis_url)
    if url.port is None:
        raise p.ServiceError(f"redis_url has no port: {s.redis_url!r}")
    return url.hostname or "127.0.0.1", url.port


def pid_file(s: Settings) -> Path:
    return s.state_dir / "run" / f"{NAME}.pid"


def server_args(s: Settings) -> list[str]:
    host, port = host_port(s)
    return [
        "--bind", host,
        "--port", str(port),
        "--daemonize", "no",  # we detach it ourselves and track the real pid
        "--save", "",
        "--appendonly", "no",
        "--dir", str(s.state_dir / "redis"),
        "--logfile", "",  # stdout, which goes to the log file
    ]  # fmt: skip


def pings(host: str, port: int) -> bool:
    """True when a Redis server answers PING (a password-protected one says NOAUTH)."""
    try:
        with socket.create_connection((host, port), timeout=2.0) as sock:
            sock.sendall(b"PING\r\n")
            reply = sock.recv(64)
    except OSError:
        return False
    return reply.startswith(b"+PONG") or reply.startswith(b"-NOAUTH")


def binary() -> str:
    found = shutil.which("redis-server")
    if found is None:
        p.apt_install("redis-server", "redis-server")
        found = shutil.which("redis-server")
    if found is None:
        raise p.ServiceError("redis-server installed but not on PATH")
    return found


def status(s: Settings) -> p.ServiceStatus:
    host, port = host_port(s)
    pid = p.read_pid(pid_file(s), "redis-server")
    up = pings(host, port)
    return p.ServiceStatus(NAME, up, up and pid is not None, f"{host}:{port}",
                           f"pid {pid}" if pid and up else "")  # fmt: skip


def up(s: Settings) -> p.ServiceStatus:
    host, port = host_port(s)
    pid = p.read_pid(pid_file(s), "redis-server")
    if pid is None and p.port_open(host, port):
        if not pings(host, port):
            raise p.ServiceError(f"port {port} is taken by something that is not Redis")
        return status(s)
    if pid is None:
        (s.state_dir / "redis").mkdir(parents=True, exist_ok=True)
        log = s.state_dir / "redis" / "redis.log"
        pid = p.start_detached([binary(), *server_args(s)], log)
        p.write_pid(pid_file(s), pid)
    log = s.state_dir / "redis" / "redis.log"
    deadline = time.monotonic() + START_TIMEOUT_S
    while not pings(host, port):
        if not p.pid_alive(pid) or time.monotonic() > deadline:
            p.stop_pid(pid_file(s), "redis-server", timeout=5.0)
            pid_file(s).unlink(missing_ok=True)
            raise p.ServiceError(f"Redis did not start; {log}:\n{p.log_tail(log)}")
        time.sleep(0.2)
    return status(s)


def down(s: Settings) -> str:
    if p.stop_pid(pid_file(s), "redis-server"):
        return "redis: stopped"
    if p.port_open(*host_port(s)):
        return "redis: running but not started by payflow; left alone"
    return "redis: not running"
