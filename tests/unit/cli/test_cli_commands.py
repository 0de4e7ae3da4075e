"""The command line itself: help and defaults everywhere, and every usage mistake is one
line on stderr with exit 2, before any service is contacted."""

import logging
from collections.abc import Iterator

import click
import pytest
from click.testing import CliRunner

from infra.settings import get_settings
from workers.cli.main import cli, main


@pytest.fixture(autouse=True)
def keep_logging(monkeypatch: pytest.MonkeyPatch) -> None:
    # The CLI configures logging for its process; inside pytest it must not reconfigure ours.
    monkeypatch.setattr("workers.runtime.logs.configure_logging", lambda *a, **k: None)
    aiokafka = logging.getLogger("aiokafka")
    monkeypatch.setattr(aiokafka, "level", aiokafka.level)


def _commands(group: click.Group, path: str = "payflow") -> Iterator[tuple[str, click.Command]]:
    for name, command in group.commands.items():
        yield f"{path} {name}", command
        if isinstance(command, click.Group):
            yield from _commands(command, f"{path} {name}")


def test_every_option_has_help_and_shows_its_default() -> None:
    for path, command in [("payflow", cli), *_commands(cli)]:
        assert command.context_settings.get("show_default") is True, path
        for param in command.params:
            if isinstance(param, click.Option):
                assert param.help, f"{path} {param.opts} has no help text"


def test_help_shows_defaults_and_ranges() -> None:
    out = CliRunner().invoke(cli, ["demo", "--help"]).output
    assert "[default: 300; x>=1]" in out
    assert "[default: 300.0; x>0]" in out


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["demo", "--orders", "-5"], "'--orders': -5 is not in the range x>=1"),
        (["demo", "--orders", "0"], "'--orders': 0 is not in the range x>=1"),
        (["demo", "--timeout", "0"], "'--timeout': 0.0 is not in the range x>0"),
        (["dlq", "list", "--stage", "order-built"], "'order-built' is not one of: order-build"),
        (["dlq", "replay", "--all", "--stage", "nope"], "'nope' is not one of: order-build"),
        (["dlq", "list", "--reason", "Forged-Callback"], "lowercase snake case"),
        (["dlq", "replay"], "name dead letter ids, or give --all"),
        (["dlq", "replay", "3", "--all"], "name dead letter ids, or give --all"),
        (["dlq", "replay", "3", "--stage", "settlement"], "--stage and --reason filter --all"),
        (["dlq", "show", "zero"], "'zero' is not a valid integer"),
        (["account", "statement", "x", "--since", "yesterday"], "ISO 8601 time with a time zone"),
        (["account", "statement", "x", "--until", "2026-11-25T00:00"], "give a time zone"),
        (["run", "order-built"], "'order-built' is not one of"),
        (["services", "restart"], "No such command 'restart'"),
        (["--nope"], "No such option: --nope"),
    ],
)
def test_usage_mistakes_are_one_line_and_exit_2(
    argv: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert err.startswith("error: ")
    assert says in err
    assert "--help" in err


def test_invalid_configuration_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PAYFLOW_METRICS_PORT", "not-a-port")
    get_settings.cache_clear()
    try:
        assert main(["audit"]) == 1
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()
    err = capsys.readouterr().err
    assert err.startswith("error: invalid configuration: PAYFLOW_METRICS_PORT: ")
    assert err.count("\n") == 1


def test_help_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["dlq", "replay", "--help"]) == 0
    assert "Usage: payflow dlq replay" in capsys.readouterr().out


def test_an_unknown_log_level_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PAYFLOW_LOG_LEVEL", "chatty")
    get_settings.cache_clear()
    try:
        assert main(["audit"]) == 1
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()
    assert capsys.readouterr().err == (
        "error: invalid configuration: PAYFLOW_LOG_LEVEL: unknown level 'CHATTY'; "
        "use DEBUG, INFO, WARNING or ERROR\n"
    )
