"""The simulator's group commit: writes of one loop pass share a commit, a failing write
undoes only its own rows, and nothing is durable (or awaited as such) before the commit."""

import asyncio
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from workers.gateway_simulator import db, keys
from workers.gateway_simulator.writes import Writes


def _key(conn: sqlite3.Connection, key: str) -> None:
    keys.put(conn, key, "fp", 201, "{}", 0.0)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[tuple[Path, sqlite3.Connection, Writes]]:
    path = tmp_path / "sim.sqlite3"
    conn = db.connect(path)
    yield path, conn, Writes(conn)


def _committed(path: Path) -> set[str]:
    other = sqlite3.connect(path)  # another connection sees only what was committed
    try:
        return {r[0] for r in other.execute("SELECT key FROM idempotency_keys")}
    finally:
        other.close()


async def test_one_commit_for_the_writes_of_a_pass(
    store: tuple[Path, sqlite3.Connection, Writes],
) -> None:
    path, conn, writes = store
    writes.run(lambda: _key(conn, "a"))
    writes.run(lambda: _key(conn, "b"))
    # Written, not yet committed: a kill -9 now would lose both, and no answer has left.
    assert conn.in_transaction and _committed(path) == set()
    await writes.durable()
    assert not conn.in_transaction and _committed(path) == {"a", "b"}
    await writes.durable()  # nothing open: returns at once


async def test_a_failing_write_undoes_only_its_own_rows(
    store: tuple[Path, sqlite3.Connection, Writes],
) -> None:
    path, conn, writes = store
    writes.run(lambda: _key(conn, "kept"))

    def half_then_fail() -> None:
        _key(conn, "undone")
        _key(conn, "kept")  # the primary key refuses it

    with pytest.raises(sqlite3.IntegrityError):
        writes.run(half_then_fail)
    writes.run(lambda: _key(conn, "after"))
    await writes.durable()
    assert _committed(path) == {"kept", "after"}


async def test_flush_commits_at_shutdown(store: tuple[Path, sqlite3.Connection, Writes]) -> None:
    path, conn, writes = store
    writes.run(lambda: _key(conn, "last"))
    writes.flush()  # before the loop's pass ends, as the app's cleanup does
    assert _committed(path) == {"last"}
    await asyncio.sleep(0)  # the scheduled commit finds nothing left to do
    assert not conn.in_transaction


async def test_a_failed_commit_is_told_to_whoever_waits(
    store: tuple[Path, sqlite3.Connection, Writes],
) -> None:
    path, conn, writes = store
    writes.run(lambda: _key(conn, "x"))
    # A write that ends the transaction under the group (as SQLite does on a disk-full
    # error): the group is lost, and waiting for it raises instead of answering.
    with pytest.raises(sqlite3.OperationalError):
        writes.run(lambda: _lose_group(conn))
    with pytest.raises(sqlite3.OperationalError):
        await writes.durable()
    assert _committed(path) == set()
    # The same task's next request (a kept-alive connection) or tick starts afresh: it is not
    # refused for a group it did not write in.
    writes.fresh()
    await writes.durable()
    writes.run(lambda: _key(conn, "y"))  # a new group starts cleanly
    await writes.durable()
    assert _committed(path) == {"y"}


def _lose_group(conn: sqlite3.Connection) -> None:
    conn.execute("ROLLBACK")
    raise sqlite3.OperationalError("database or disk is full")
