"""tune_for_dispatch, in a process of its own (it changes the interpreter for good)."""

from __future__ import annotations

import subprocess
import sys

CHECK = """
import gc
import sys
from bot.process_tuning import SWITCH_INTERVAL, THRESHOLDS, tune_for_dispatch
kept = [object() for _ in range(10)]
tune_for_dispatch()
assert abs(sys.getswitchinterval() - SWITCH_INTERVAL) < 1e-6, sys.getswitchinterval()
assert gc.get_threshold() == THRESHOLDS, gc.get_threshold()
assert gc.get_freeze_count() > 1000, gc.get_freeze_count()
cycle = []
cycle.append(cycle)  # a cycle made after the freeze is still collected
del cycle
assert gc.collect() >= 1
print("ok")
"""


def test_startup_objects_are_frozen_later_cycles_collected_and_the_gil_switch_slower() -> None:
    out = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
