"""Python's cycle collector, set for a process that decodes thousands of messages a second.

With the default thresholds (a young collection every 700 net allocations of container
objects) each worker process spent 0.5-4.3 s in collections during a 10,000-order drain
(measured with `gc.callbacks`): a full collection walks every live object, and a batch of
decoded events, pending sends and asyncpg records keeps tens of thousands alive. Decoding
an `order.built` (some 35 pydantic models) with a few thousand events alive took about
180 us at the defaults and 38 us with the threshold below.

Most objects here die by reference count, which never triggers a collection; the few cycles
(exceptions with their tracebacks, some library objects) are still collected, in larger
groups. What the process imported and built before its work (modules, pydantic validators)
is frozen out of every collection.
"""

import gc

# Net allocations between young collections (default 700); the older generations keep
# their default ratios, so a full collection still runs when enough survives.
YOUNG_THRESHOLD = 50_000

_tuned = False


def tune_collector() -> None:
    """Call after imports, before the work begins; once per process (later calls, as from a
    second command run in the same process by tests, change nothing)."""
    global _tuned
    if _tuned:
        return
    _tuned = True
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)
