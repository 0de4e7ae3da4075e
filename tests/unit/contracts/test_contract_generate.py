"""The checked-in schemas and AsyncAPI document are exactly what `contracts.generate` writes."""

import shutil
from pathlib import Path

import pytest

from contracts import generate

REGENERATE = "run `python -m contracts.generate` and review the diff"


def test_checked_in_documents_match_the_models() -> None:
    stale = generate.stale_files(generate.HERE, generate.render())
    assert not stale, f"stale contract documents {stale}: {REGENERATE}"


def test_output_is_deterministic() -> None:
    assert generate.render() == generate.render()


def test_files_are_diff_friendly() -> None:
    for rel, text in generate.render().items():
        assert text.endswith("\n") and not text.endswith("\n\n"), rel
        assert text.isascii(), rel
        assert all(line == line.rstrip() for line in text.splitlines()), rel


@pytest.fixture
def copy_of_contracts(tmp_path: Path) -> Path:
    root = tmp_path / "contracts"
    (root / generate.SCHEMA_DIR).mkdir(parents=True)
    for rel in generate.render():
        shutil.copyfile(generate.HERE / rel, root / rel)
    return root


def test_check_passes_on_current_files(
    copy_of_contracts: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert generate.main(["--check"], root=copy_of_contracts) == 0
    assert "up to date" in capsys.readouterr().out


def test_check_lists_stale_missing_and_obsolete_files(
    copy_of_contracts: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    schemas = copy_of_contracts / generate.SCHEMA_DIR
    (schemas / "order.submitted.json").write_text("{}\n")
    (schemas / "order.settled.json").unlink()
    (schemas / "order.retired.json").write_text("{}\n")

    assert generate.main(["--check"], root=copy_of_contracts) == 1
    err = capsys.readouterr().err
    assert "python -m contracts.generate" in err
    for name in ("order.submitted.json", "order.settled.json", "order.retired.json"):
        assert f"contracts/schemas/{name}" in err
    assert "asyncapi.yaml" not in err

    assert generate.main([], root=copy_of_contracts) == 0
    assert not (schemas / "order.retired.json").exists()
    assert generate.main(["--check"], root=copy_of_contracts) == 0
