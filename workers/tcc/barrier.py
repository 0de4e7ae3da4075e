"""The TCC barrier (DTM's sub-transaction barrier, Seata's fence).

`enter` must run in the same Postgres transaction as the branch's business change; the
caller applies its change only when the result says `apply`. Insert-then-act, never
check-then-act: the primary key (gid, branch, phase) serialises racing phases.

- duplicate phase            -> DUPLICATE, no second effect
- Cancel with no Try         -> EMPTY_CANCEL; it writes the Try row itself, so...
- Try after its Cancel       -> REFUSED (anti-hanging: the frozen money would never return)
- Confirm after Cancel, Cancel after Confirm, Confirm without Try -> REFUSED, reported

A branch's Confirm and Cancel exclude each other by a unique index (migration 0021), which
sees rows of transactions still in flight where a snapshot would not: the usual Confirm or
Cancel is one statement for a whole batch (`confirm_many`, `cancel_many`); anything else
takes the slow path, which locks the Try row and looks again.
"""

from dataclasses import dataclass
from enum import StrEnum

import asyncpg


class Phase(StrEnum):
    TRY = "try"
    CONFIRM = "confirm"
    CANCEL = "cancel"


class Verdict(StrEnum):
    APPLY = "apply"
    DUPLICATE = "duplicate"
    EMPTY_CANCEL = "empty_cancel"
    REFUSED = "refused"


@dataclass(frozen=True)
class Entry:
    verdict: Verdict
    reason: str = ""

    @property
    def apply(self) -> bool:
        return self.verdict is Verdict.APPLY


async def _insert(
    conn: asyncpg.Connection, gid: str, branch: str, phase: Phase, origin: str
) -> bool:
    status = await conn.execute(
        """INSERT INTO tcc_barrier (gid, branch, phase, origin) VALUES ($1, $2, $3, $4)
           ON CONFLICT DO NOTHING""",
        gid,
        branch,
        phase.value,
        origin,
    )
    return bool(status.endswith(" 1"))


async def _insert_unless(
    conn: asyncpg.Connection, gid: str, branch: str, phase: Phase, opposite: Phase
) -> bool:
    status = await conn.execute(
        """INSERT INTO tcc_barrier (gid, branch, phase, origin)
           SELECT $1, $2, $3, 'applied'
            WHERE NOT EXISTS (SELECT 1 FROM tcc_barrier
                               WHERE gid = $1 AND branch = $2 AND phase = $4)
           ON CONFLICT DO NOTHING""",
        gid,
        branch,
        phase.value,
        opposite.value,
    )
    return bool(status.endswith(" 1"))


async def _lock_try(conn: asyncpg.Connection, gid: str, branch: str) -> str | None:
    # Confirm and Cancel both lock the Try row first, so they run one after the other and
    # the second one sees the first's row.
    origin: str | None = await conn.fetchval(
        "SELECT origin FROM tcc_barrier WHERE gid = $1 AND branch = $2 AND phase = 'try' FOR NO KEY UPDATE",
        gid,
        branch,
    )
    return origin


async def _has(conn: asyncpg.Connection, gid: str, branch: str, phase: Phase) -> bool:
    return bool(
        await conn.fetchval(
            "SELECT 1 FROM tcc_barrier WHERE gid = $1 AND branch = $2 AND phase = $3",
            gid,
            branch,
            phase.value,
        )
    )


# The usual Cancel of many global transactions in one statement, in gid order. `fresh` are
# the Try rows a Cancel writes where it finds none (empty cancels); an outcome goes in only
# after a Try that applied, or with such an empty cancel, and the unique index turns it into
# nothing when the Confirm is there (or in flight).
_CANCEL_MANY = """
WITH g AS (SELECT DISTINCT unnest($1::text[]) AS gid),
fresh AS (
    INSERT INTO tcc_barrier (gid, branch, phase, origin)
    SELECT gid, $2, 'try', 'empty_cancel' FROM g ORDER BY gid
    ON CONFLICT DO NOTHING RETURNING gid),
outcome AS (
    INSERT INTO tcc_barrier (gid, branch, phase, origin)
    SELECT g.gid, $2, 'cancel', CASE WHEN f.gid IS NULL THEN 'applied' ELSE 'empty_cancel' END
      FROM g LEFT JOIN fresh f ON f.gid = g.gid
      -- A lookup by key per gid: as a set, the planner hashed every Try of the branch.
      LEFT JOIN LATERAL (SELECT true AS applied FROM tcc_barrier t
                          WHERE t.gid = g.gid AND t.branch = $2 AND t.phase = 'try'
                            AND t.origin = 'applied' LIMIT 1) tried ON true
     WHERE f.gid IS NOT NULL OR tried.applied
     ORDER BY g.gid
    ON CONFLICT DO NOTHING RETURNING gid)
SELECT g.gid, f.gid IS NOT NULL AS empty, o.gid IS NOT NULL AS written
  FROM g LEFT JOIN fresh f ON f.gid = g.gid LEFT JOIN outcome o ON o.gid = g.gid"""


async def cancel_many(
    conn: asyncpg.Connection, gids: list[str], branch: str
) -> dict[str, Entry | None]:
    """The usual Cancel of one branch for many global transactions in one statement: each
    gid's verdict (it applies, or it is an empty cancel), or None when `enter` must decide it
    (a duplicate, a refusal, a Try still in flight): for those nothing was written."""
    rows = await conn.fetch(_CANCEL_MANY, sorted(set(gids)), branch)
    found: dict[str, Entry | None] = {}
    for r in rows:
        if r["empty"]:
            found[r["gid"]] = Entry(Verdict.EMPTY_CANCEL, "cancel without try")
        else:
            found[r["gid"]] = Entry(Verdict.APPLY) if r["written"] else None
    return found


async def enter(conn: asyncpg.Connection, gid: str, branch: str, phase: Phase) -> Entry:
    if phase is Phase.TRY:
        if await _insert(conn, gid, branch, Phase.TRY, "applied"):
            return Entry(Verdict.APPLY)
        origin = await _lock_try(conn, gid, branch)
        if origin == "empty_cancel":
            return Entry(Verdict.REFUSED, "try after cancel")
        return Entry(Verdict.DUPLICATE)
    if phase is Phase.CONFIRM and gid in await confirm_many(conn, [gid], branch):
        return Entry(Verdict.APPLY)
    if phase is Phase.CANCEL:
        entry = (await cancel_many(conn, [gid], branch))[gid]
        if entry is not None:
            return entry
    return await _slow(conn, gid, branch, phase)


# The usual Confirm of many global transactions: written after a Try that applied, in gid
# order; the unique index turns it into nothing when the Cancel is there (or in flight).
_CONFIRM_MANY = """
INSERT INTO tcc_barrier (gid, branch, phase, origin)
SELECT gid, branch, 'confirm', 'applied' FROM tcc_barrier
 WHERE gid = ANY($1::text[]) AND branch = $2 AND phase = 'try' AND origin = 'applied'
 ORDER BY gid
ON CONFLICT DO NOTHING RETURNING gid"""


async def confirm_many(conn: asyncpg.Connection, gids: list[str], branch: str) -> set[str]:
    """Confirm of one branch for many global transactions in one statement: the gids whose
    Confirm applies. Any other gid wrote nothing; `enter` decides it (a duplicate, a refusal,
    a Try still in flight)."""
    rows = await conn.fetch(_CONFIRM_MANY, sorted(set(gids)), branch)
    return {r["gid"] for r in rows}


async def try_many(conn: asyncpg.Connection, gids: list[str], branch: str) -> dict[str, Entry]:
    """Try of one branch for many global transactions in one statement (in gid order, so
    two batches never wait on each other crosswise). A gid whose Try row was already there
    is decided one by one: a duplicate, or refused after its Cancel."""
    rows = await conn.fetch(
        """INSERT INTO tcc_barrier (gid, branch, phase, origin)
           SELECT g, $2, 'try', 'applied' FROM unnest($1::text[]) AS g ORDER BY g
           ON CONFLICT DO NOTHING RETURNING gid""",
        sorted(set(gids)),
        branch,
    )
    inserted = {r["gid"] for r in rows}
    return {
        gid: Entry(Verdict.APPLY) if gid in inserted else await enter(conn, gid, branch, Phase.TRY)
        for gid in dict.fromkeys(gids)
    }


async def forget_tries(conn: asyncpg.Connection, gids: list[str], branch: str) -> None:
    """Undo Try rows this transaction wrote (with `try_many`) for orders it then turned
    down, as a savepoint's rollback would have."""
    if gids:
        await conn.execute(
            """DELETE FROM tcc_barrier WHERE gid = ANY($1::text[]) AND branch = $2
                 AND phase = 'try' AND origin = 'applied'""",
            gids,
            branch,
        )


async def _slow(conn: asyncpg.Connection, gid: str, branch: str, phase: Phase) -> Entry:
    """A duplicate, a refusal, or a race with a Try still in flight: decided under the lock
    of the Try row, each look in a statement of its own (so it sees what committed before)."""
    if phase is Phase.CANCEL and await _insert(conn, gid, branch, Phase.TRY, "empty_cancel"):
        await _insert(conn, gid, branch, Phase.CANCEL, "empty_cancel")
        return Entry(Verdict.EMPTY_CANCEL, "cancel without try")
    origin = await _lock_try(conn, gid, branch)
    if origin is None:
        return Entry(Verdict.REFUSED, "confirm without try")
    opposite = Phase.CANCEL if phase is Phase.CONFIRM else Phase.CONFIRM
    if origin != "empty_cancel" and await _insert_unless(conn, gid, branch, phase, opposite):
        return Entry(Verdict.APPLY)
    if origin == "empty_cancel" or await _has(conn, gid, branch, opposite):
        if await _has(conn, gid, branch, phase):
            return Entry(Verdict.DUPLICATE)
        return Entry(Verdict.REFUSED, f"{phase.value} after {opposite.value}")
    return Entry(Verdict.DUPLICATE)
