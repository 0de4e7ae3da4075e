"""Crash points for the crash tests: PAYFLOW_CRASH_AT=<point>:<stage>[:<key>] makes the
process die at that point as abruptly as `kill -9` (no cleanup, no commit, no flush).

Points: `after_commit` (the batch's database transaction committed, nothing published),
`after_publish` (outputs published, Kafka offsets not committed). With a key (an order id),
only a batch holding a message whose key names it dies (a payment's callbacks are keyed by
the payment id, which holds the order id): messages other tests left on the topic do not
set it off first. Unset in production.
"""

import os
from collections.abc import Iterable

EXIT_CODE = 137  # what a SIGKILLed process reports


def crash_point(point: str, stage: str, keys: Iterable[bytes | None] = ()) -> None:
    wanted = os.environ.get("PAYFLOW_CRASH_AT")
    if not wanted:
        return
    here = f"{point}:{stage}"
    key = wanted[len(here) + 1 :].encode() if wanted.startswith(here + ":") else None
    if wanted == here or (key is not None and any(k and key in k for k in keys)):
        os._exit(EXIT_CODE)
