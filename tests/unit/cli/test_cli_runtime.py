"""Pure parts of running things: the dev-secret warning, recognising who answers on the
metrics port, and stopping a command on a signal after its clean-up."""

import asyncio
import contextlib
import os
import signal

import pytest
from pydantic import SecretStr

from infra.services.process import ServiceError
from infra.settings import DEV_GATEWAY_SECRET, Settings
from workers.cli.aio import in_daemon_thread, run_async, stop_if_signalled
from workers.cli.failures import Interrupted
from workers.cli.run import uses_dev_secret
from workers.ops.processes import Answer, check_simulator, check_workers, classify


def test_the_development_secret_is_flagged_outside_the_demo() -> None:
    dev = Settings(gateway_secret=SecretStr(DEV_GATEWAY_SECRET))
    assert uses_dev_secret(dev, {})
    assert not uses_dev_secret(dev, {"PAYFLOW_DEMO": "1"})
    assert not uses_dev_secret(Settings(gateway_secret=SecretStr("s3cr3t")), {})


def test_a_payflow_worker_is_recognised_with_its_namespace() -> None:
    body = {"ok": True, "namespace": "t1", "pid": 42, "stages": [{"stage": "settlement"}]}
    assert classify(body) == Answer("payflow", "t1")
    assert classify({"ok": True, "stages": []}) == Answer("payflow", None)
    assert classify({"status": "ok", "pending_callbacks": 0}) == Answer("simulator")
    assert classify({"status": "ok"}) == Answer("other")
    assert classify("<html>") == Answer("other")


@pytest.fixture
def settings(monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("PAYFLOW_TOPIC_NAMESPACE", "ours")
    return Settings(metrics_port=19100, gateway_url="http://127.0.0.1:18080")


def test_our_namespace_is_reused_and_nothing_means_start(settings: Settings) -> None:
    assert check_workers(Answer("payflow", "ours"), settings, started=False)
    assert not check_workers(Answer("nothing"), settings, started=False)
    # Workers we just started may not report their namespace yet.
    assert check_workers(Answer("payflow", None), settings, started=True)


@pytest.mark.parametrize(
    ("answer", "who"),
    [
        (Answer("other"), "not a payflow worker"),
        (Answer("simulator"), "not a payflow worker"),
        (Answer("payflow", "theirs"), "payflow of namespace 'theirs', not 'ours'"),
        (Answer("payflow", None), "does not say its namespace"),
    ],
)
def test_someone_elses_port_is_one_line_naming_it(
    answer: Answer, who: str, settings: Settings
) -> None:
    with pytest.raises(ServiceError) as info:
        check_workers(answer, settings, started=False)
    message = str(info.value)
    assert "port 19100" in message and who in message and "PAYFLOW_METRICS_PORT" in message


def test_the_gateway_port_must_be_the_simulator(settings: Settings) -> None:
    assert check_simulator(Answer("simulator"), settings)
    assert not check_simulator(Answer("nothing"), settings)
    with pytest.raises(ServiceError, match="PAYFLOW_GATEWAY_URL"):
        check_simulator(Answer("payflow", "ours"), settings)


def test_a_signal_stops_the_command_after_its_clean_up() -> None:
    cleaned: list[str] = []

    async def command() -> None:
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            await asyncio.sleep(60)
        finally:
            cleaned.append("children stopped")

    with pytest.raises(Interrupted) as info:
        run_async(command())
    assert info.value.signum == signal.SIGTERM
    assert cleaned == ["children stopped"]


def test_a_signal_whose_cancellation_a_library_swallowed_still_stops_the_command() -> None:
    """Swallowed as aiokafka's client close does (suppress(CancelledError) around its own
    task): the next checkpoint stops the command, and it reports the signal."""
    reached: list[str] = []

    async def command() -> None:
        # SIGTERM: a test run started as a background job inherits SIGINT ignored.
        os.kill(os.getpid(), signal.SIGTERM)
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(60)
        reached.append("after the swallowed cancel")
        stop_if_signalled()
        reached.append("after the checkpoint")

    with pytest.raises(Interrupted) as info:
        run_async(command())
    assert info.value.signum == signal.SIGTERM
    assert reached == ["after the swallowed cancel"]

    async def returns() -> int:  # no checkpoint: the signal still decides the exit
        os.kill(os.getpid(), signal.SIGTERM)
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(60)
        return 0

    with pytest.raises(Interrupted) as info:
        run_async(returns())
    assert info.value.signum == signal.SIGTERM
    assert run_async(asyncio.sleep(0, result=7)) == 7  # the next command starts unsignalled


def test_blocking_work_in_a_daemon_thread_returns_or_raises() -> None:
    def fails() -> int:
        raise ValueError("broken")

    async def both() -> tuple[int, str]:
        value = await in_daemon_thread(lambda: 6 * 7)
        try:
            await in_daemon_thread(fails)
        except ValueError as exc:
            return value, str(exc)
        return value, ""

    assert asyncio.run(both()) == (42, "broken")
