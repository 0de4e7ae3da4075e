"""Per-connection temp tables for work parked until the end of a batch (stock, wallet and
credit changes applied once per row just before the commit).

Each is created once per pooled connection when the pool opens it, outside any transaction,
so no rollback can drop it and the hot path never asks for it again. A connection that did
not come from the workers' pool (a tool, a test) gets it on first use (and again if the
savepoint that created it rolled back). ON COMMIT DELETE ROWS empties it at every commit
(temp tables are never vacuumed), and a deferred constraint trigger makes a commit that
left rows in it fail: parked work is applied by its flush or not committed at all.
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

    async def exists(self, conn: asyncpg.Connection) -> bool:
        """Whether this session has the table (then its flush has something to look at);
        asks the server only on a connection the pool did not prepare."""
        if self.name in getattr(conn, _MARK, ()):
            return True
        return await conn.fetchval("SELECT to_regclass($1)", f"pg_temp.{self.name}") is not None


_DDL = """
DO $$
BEGIN
    IF to_regclass('pg_temp.{name}') IS NULL THEN
        CREATE TEMP TABLE {name} ({columns}) ON COMMIT DELETE ROWS;
        CREATE OR REPLACE FUNCTION pg_temp.refuse_unflushed_{name}() RETURNS trigger
        LANGUAGE plpgsql AS $f$
        BEGIN
            IF EXISTS (SELECT FROM pg_temp.{name}) THEN
                RAISE EXCEPTION '{name}: parked changes were not flushed before commit'
                    USING HINT = 'call {flush} in the same transaction';
            END IF;
            RETURN NULL;
        END $f$;
        CREATE CONSTRAINT TRIGGER {name}_flushed AFTER INSERT ON {name}
            DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
            EXECUTE FUNCTION pg_temp.refuse_unflushed_{name}();
    END IF;
END $$"""


def register(name: str, columns: str, flush: str) -> TempTable:
    """Declare (at import) a temp table of `columns` that `flush` (named in the error a
    forgotten flush raises) empties; pools opened later create it on every connection."""
    table = TempTable(name, _DDL.format(name=name, columns=columns, flush=flush))
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
