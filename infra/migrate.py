"""Versioned SQL migrations: each file applied once, in order, inside its own transaction."""

import hashlib
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

import asyncpg

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
# Any fixed number: two `payflow migrate` running at once take turns instead of racing.
_LOCK_ID = 7_311_402


class MigrationError(RuntimeError):
    pass


@dataclass(frozen=True)
class Migration:
    version: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def load_migrations(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    return [Migration(p.stem, p.read_text()) for p in sorted(directory.glob("*.sql"))]


def _maintenance_dsn(dsn: str, database: str) -> str:
    return dsn_for(dsn, database)


def dsn_for(dsn: str, database: str) -> str:
    """The same server and credentials as `dsn`, another database."""
    url = urlsplit(dsn)
    return urlunsplit((url.scheme, url.netloc, "/" + database, url.query, url.fragment))


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def pg_target(dsn: str) -> str:
    """host:port/database of a DSN, without user or password (safe to print)."""
    url = urlsplit(dsn)
    return f"{url.hostname or 'localhost'}:{url.port or 5432}/{database_name(dsn)}"


def database_name(dsn: str) -> str:
    url = urlsplit(dsn)
    return unquote(url.path.lstrip("/")) or unquote(url.username or "") or "postgres"


async def ensure_database(dsn: str, *, timeout_s: float = 10.0) -> bool:
    """Create the DSN's database when it is missing (connecting to the server's `postgres`
    maintenance database); return True when it was created now."""
    try:
        conn = await asyncpg.connect(dsn, timeout=timeout_s)
    except asyncpg.InvalidCatalogNameError:
        pass
    else:
        await conn.close()
        return False
    name = database_name(dsn)
    try:
        admin = await asyncpg.connect(_maintenance_dsn(dsn, "postgres"), timeout=timeout_s)
    except asyncpg.InvalidCatalogNameError:  # no `postgres` database: template1 always exists
        admin = await asyncpg.connect(_maintenance_dsn(dsn, "template1"), timeout=timeout_s)
    try:
        await admin.execute(f"CREATE DATABASE {_quote_ident(name)}")
    except asyncpg.DuplicateDatabaseError:
        return False  # another `payflow migrate` created it a moment ago
    except asyncpg.InsufficientPrivilegeError as exc:
        raise MigrationError(
            f"database {name} does not exist and this user may not create it ({exc}); "
            "ask an administrator to create it, then run `payflow migrate` again"
        ) from exc
    finally:
        await admin.close()
    return True


async def migrate(
    dsn: str, directory: Path = MIGRATIONS_DIR, *, timeout_s: float = 60.0
) -> list[str]:
    """Apply what is missing; return the versions applied now. Idempotent."""
    conn = await asyncpg.connect(dsn, timeout=timeout_s)
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", _LOCK_ID)
        await conn.execute(
            """CREATE TABLE IF NOT EXISTS schema_migrations (
                   version text PRIMARY KEY, checksum text NOT NULL,
                   applied_at timestamptz NOT NULL DEFAULT now())"""
        )
        done = {
            r["version"]: r["checksum"]
            for r in await conn.fetch("SELECT version, checksum FROM schema_migrations")
        }
        applied: list[str] = []
        for m in load_migrations(directory):
            if m.version in done:
                if done[m.version] != m.checksum:
                    raise MigrationError(
                        f"migration {m.version} was edited after it was applied; "
                        "add a new migration instead"
                    )
                continue
            async with conn.transaction():
                await conn.execute(m.sql)
                await conn.execute(
                    "INSERT INTO schema_migrations (version, checksum) VALUES ($1, $2)",
                    m.version,
                    m.checksum,
                )
            applied.append(m.version)
        return applied
    finally:
        await conn.close()
