"""Crash points for the crash tests: PAYFLOW_CRASH_AT=<point>:<stage> makes the process die
at that point as abruptly as `kill -9` (no cleanup, no commit, no flush).

Points: `after_commit` (the batch's database transaction committed, nothing published),
`after_publish` (outputs published, Kafka offsets not committed). Unset in production.
"""

import os

EXIT_CODE = 137  # what a SIGKILLed process reports


def crash_point(point: str, stage: str) -> None:
    if os.environ.get("PAYFLOW_CRASH_AT") == f"{point}:{stage}":
        os._exit(EXIT_CODE)
