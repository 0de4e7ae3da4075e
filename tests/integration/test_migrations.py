"""`payflow migrate` is idempotent and refuses a migration edited after it was applied."""

from pathlib import Path

import pytest

from infra.migrate import MIGRATIONS_DIR, MigrationError, migrate
from infra.settings import Settings

pytestmark = pytest.mark.integration


async def test_second_run_applies_nothing(services: Settings) -> None:
    assert await migrate(services.dsn) == []


def _copy_with_first_edited(target: Path) -> Path:
    for f in MIGRATIONS_DIR.glob("*.sql"):
        (target / f.name).write_text(f.read_text())
    first = sorted(target.glob("*.sql"))[0]
    first.write_text(first.read_text() + "\n-- edited\n")
    return target


async def test_an_edited_migration_is_refused(services: Settings, tmp_path: Path) -> None:
    edited = _copy_with_first_edited(tmp_path)
    with pytest.raises(MigrationError, match="edited after it was applied"):
        await migrate(services.dsn, edited)
