"""Per-connection temp tables for work parked until the end of a batch (stock, wallet and
credit changes applied once per row just before the commit).

Each is created once per pooled connection when the pool opens it, outside any transaction,
so no rollback can drop it and the hot path never asks for it again. A connection that did
not come from the workers' pool (a tool, a test) gets it on first use.
"""

from dataclasses import dataclass

import asyncpg

_ALL: list["TempTable"] = []
# Attribute of a pooled connection: the names of the temp tables it already has.
_MARK = "payflow_temp_tables"


@dataclass(frozen=True)
class TempTable:
    name: str
    ddl: str  # idempotent: creates the table (and its triggers) when missing

    async def ensure(self, conn: asyncpg.Connection) -> None:
        if self.name not in getattr(conn, _MARK, ()):
            await conn.execute(self.ddl)


def register(name: str, ddl: str) -> TempTable:
    """Declare a temp table (at import); pools opened later create it on every connection."""
    table = TempTable(name, ddl)
    _ALL.append(table)
    return table


async def create_all(conn: asyncpg.Connection) -> None:
    """The pool's `init`: every registered temp table, once, on a new connection."""
    for table in _ALL:
        await conn.execute(table.ddl)
    try:
        setattr(conn, _MARK, frozenset(t.name for t in _ALL))
    except AttributeError:  # a connection class without a __dict__: ensure on use instead
        pass
