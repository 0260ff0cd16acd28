"""freeze_startup_objects, in a process of its own (it changes the collector for good)."""

from __future__ import annotations

import subprocess
import sys

CHECK = """
import gc
from bot.gc_tuning import THRESHOLDS, freeze_startup_objects
kept = [object() for _ in range(10)]
freeze_startup_objects()
assert gc.get_threshold() == THRESHOLDS, gc.get_threshold()
assert gc.get_freeze_count() > 1000, gc.get_freeze_count()
cycle = []
cycle.append(cycle)  # a cycle made after the freeze is still collected
del cycle
assert gc.collect() >= 1
print("ok")
"""


def test_startup_objects_are_frozen_and_later_cycles_collected() -> None:
    out = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
