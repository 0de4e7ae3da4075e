"""The collector settings of a long-running process, checked in a fresh interpreter (setting
them here would change the test process for every test after this one)."""

import subprocess
import sys

SCRIPT = """
import gc
from workers.runtime.gc_tuning import YOUNG_THRESHOLD, tune_collector
default = gc.get_threshold()
tune_collector()
frozen = gc.get_freeze_count()
tune_collector()  # a second call changes nothing
assert gc.get_threshold() == (YOUNG_THRESHOLD, default[1], default[2]), gc.get_threshold()
assert frozen > 0 and gc.get_freeze_count() == frozen, (frozen, gc.get_freeze_count())
assert gc.isenabled()
print("ok")
"""


def test_the_young_threshold_is_raised_once_and_startup_objects_are_frozen() -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
