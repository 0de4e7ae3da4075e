"""`payflow recon` usage mistakes: one line on stderr, exit 2, before any service is asked."""

from pathlib import Path

import pytest

from workers.cli.main import main
from workers.recon.resolve import BadTarget, parse_target


@pytest.fixture(autouse=True)
def keep_logging(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("workers.runtime.logs.configure_logging", lambda *a, **k: None)


OK = ["--action", "explain", "--reason", "known", "--operator", "alice"]


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["recon"], "--date is required"),
        (["recon", "--date", "2026-13-01"], "does not match the format '%Y-%m-%d'"),
        (["recon", "--date", "2026-11-28", "--grace-s", "-1"], "not in the range x>=0"),
        (["recon", "resolve", "abc", *OK], "neither a case id nor DAY:REF"),
        (["recon", "resolve", "2026-11-28", *OK], "neither a case id nor DAY:REF"),
        (["recon", "resolve", "7", "--action", "nuke", "--reason", "x"], "'nuke' is not one of"),
        (["recon", "resolve", "7", "--action", "explain"], "Missing option '--reason'"),
        (["recon", "resolve", "7", *OK, "--to", "p-1"], "--to applies to --action relink"),
        (
            ["recon", "resolve", "7", "--action", "explain", "--reason", " ", "--operator", "a"],
            "--reason must not be empty",
        ),
    ],
)
def test_usage_mistakes_are_one_line_and_exit_2(
    argv: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: "), err
    assert says in err


def test_an_unreadable_statement_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nope.csv"
    assert main(["recon", "--date", "2026-11-28", "--statement", str(missing)]) == 2
    assert capsys.readouterr().err.startswith(f"error: cannot read the statement {missing}")
    bad = tmp_path / "bad.csv"
    bad.write_text("day,kind\n")
    assert main(["recon", "--date", "2026-11-28", "--statement", str(bad)]) == 2
    assert "malformed" in capsys.readouterr().err


def test_targets() -> None:
    assert parse_target("12") == (12, None, None)
    day, ref = parse_target("2026-11-28:ch_1:x")[1:]
    assert (str(day), ref) == ("2026-11-28", "ch_1:x")
    for bad in ("", "x:y", "2026-11-28:", "-3"):
        with pytest.raises(BadTarget):
            parse_target(bad)
