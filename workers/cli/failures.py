"""Exceptions commands raise on purpose; workers/cli/errors.py turns them into one line."""

import signal


class CliError(Exception):
    """An expected failure whose message is already the whole line to print."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class Interrupted(Exception):
    """The command was stopped by a signal after cleaning up (exit 128 + signal)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum
