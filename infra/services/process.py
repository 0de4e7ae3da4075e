"""Shared plumbing for the local services: pid files, port checks, detached start, apt."""

from __future__ import annotations

import asyncio
import concurrent.futures
import fcntl
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Coroutine, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

_apt_lock = threading.Lock()  # services come up in parallel threads; dpkg allows one at a time


class ServiceError(RuntimeError):
    """A service cannot be brought up; the message says what to do about it."""


@dataclass
class ServiceStatus:
    name: str
    up: bool
    owned: bool  # True only when this tool started the process (its pid file is ours)
    address: str
    detail: str = ""

    def line(self) -> str:
        state = "up" if self.up else "down"
        owner = ("owned" if self.owned else "foreign") if self.up else "-"
        return f"{self.name:<9} {state:<5} {owner:<8} {self.address:<22} {self.detail}".rstrip()


def split_hostport(value: str, what: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ServiceError(f"{what}: expected HOST:PORT, got {value!r} (no port given)")
    return host.strip("[]"), int(port)


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine from sync code, even when the caller already runs an event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    # Inside a loop (e.g. an async test): asyncio.run would refuse, so use a private thread.
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


@contextmanager
def state_lock(state_dir: Path) -> Iterator[None]:
    """Serialise up/down across processes (two test sessions must not start two brokers)."""
    path = state_dir / "run" / ".lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        yield


# -- pid files ------------------------------------------------------------------------------


def pid_alive(pid: int, marker: str = "") -> bool:
    """Alive, not a zombie, and (when marker is given) its command line mentions marker,
    so a pid reused by an unrelated process is not mistaken for ours."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return False
    if stat.rpartition(")")[2].split()[0] in ("Z", "X"):
        return False
    return marker in cmdline


def read_pid(path: Path, marker: str = "", unlink_stale: bool = True) -> int | None:
    """The pid recorded in path if that process still runs; a stale file is removed."""
    try:
        pid = int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    if pid_alive(pid, marker):
        return pid
    if unlink_stale:
        path.unlink(missing_ok=True)
    return None


def write_pid(path: Path, pid: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"{pid}\n")


def stop_pid(path: Path, marker: str = "", timeout: float = 30.0) -> bool:
    """SIGTERM the recorded process, SIGKILL it after timeout. False if nothing was running."""
    pid = read_pid(path, marker)
    if pid is None:
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while pid_alive(pid) and time.monotonic() < deadline:
        _reap(pid)
        time.sleep(0.2)
    if pid_alive(pid):
        os.kill(pid, signal.SIGKILL)
        time.sleep(0.5)
    _reap(pid)
    path.unlink(missing_ok=True)
    return True


def _reap(pid: int) -> None:
    # A process we spawned in this same interpreter stays a zombie until waited for.
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


# -- processes ------------------------------------------------------------------------------


def start_detached(cmd: Sequence[str], log_path: Path, cwd: Path | None = None) -> int:
    """Start cmd in its own session (so it outlives this shell/test run), output to log_path."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            list(cmd),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            start_new_session=True,
        )
    return proc.pid


def run(
    cmd: Sequence[str],
    what: str,
    timeout: float = 600.0,
    cwd: Path | None = None,
    new_session: bool = False,
) -> str:
    """Run cmd to completion; raise ServiceError with its output when it fails.
    new_session keeps a daemon it forks (pg_ctl start) out of the caller's process group."""
    try:
        res = subprocess.run(
            list(cmd),
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=cwd,
            start_new_session=new_session,
        )
    except FileNotFoundError as exc:
        raise ServiceError(f"{what}: {cmd[0]} not found") from exc
    except subprocess.TimeoutExpired as exc:
        raise ServiceError(f"{what}: timed out after {timeout:.0f}s: {' '.join(cmd)}") from exc
    if res.returncode != 0:
        out = (res.stdout + res.stderr).strip()[-3000:]
        raise ServiceError(f"{what} failed (exit {res.returncode}): {' '.join(cmd)}\n{out}")
    return res.stdout


def log_tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def is_root() -> bool:
    return os.geteuid() == 0


def apt_install(package: str, binary: str) -> None:
    """Install a Debian package (the project must install what it needs on a fresh machine)."""
    if not is_root():
        raise ServiceError(
            f"{binary} is missing and not root: run `sudo apt-get install {package}`"
        )
    if shutil.which("apt-get") is None:
        raise ServiceError(f"{binary} is missing and apt-get is not available to install {package}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "--no-install-recommends", package]
    with _apt_lock:
        if subprocess.run(install, capture_output=True, env=env).returncode != 0:
            # Usually a fresh machine without package lists: refresh once and retry.
            subprocess.run(["apt-get", "update"], capture_output=True, env=env)
            res = subprocess.run(install, capture_output=True, text=True, env=env)
            if res.returncode != 0:
                raise ServiceError(f"apt-get install {package} failed:\n{res.stderr[-2000:]}")
