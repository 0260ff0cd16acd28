"""Interpreter settings for the long-lived dispatch and scheduler processes.

The garbage collector: CPython collects its youngest generation every 700 net
container allocations and, now and then, walks every object the process holds. A
dispatch batch allocates hundreds of thousands of short-lived objects, and the process
holds about as many long-lived ones (the ORM's mappings, the compiled statements, the
templates, the compliance profiles): the collections cost about 75 µs of CPU per
reminder, a tenth of a reminder's cost, almost all of it walking objects that never
die. Freezing what exists once the process has started moves those into a generation
the collector skips, and a larger first threshold makes the young collections rarer.
Reference cycles are still collected, only in larger and fewer sweeps, so memory stays
flat.

The GIL's switch interval: a dispatcher judges the next batch in a thread while its
event loop sends the current one. Every 5 ms (CPython's default) the judging thread is
made to hand the GIL to the loop and take it back, and each handover costs wake-ups and
cold caches: about 140 µs of CPU per reminder in the channels benchmark, which a 50 ms
interval saves. The loop still runs whenever the judging thread waits on the database,
and no send depends on a few milliseconds of latency (the fastest sender limit is
100 a second).
"""

from __future__ import annotations

import gc
import sys

#: (young, middle, old) thresholds; CPython's defaults are (700, 10, 10).
THRESHOLDS = (20_000, 20, 20)
SWITCH_INTERVAL = 0.05  # seconds; CPython's default is 0.005


def tune_for_dispatch() -> None:
    """Call once the process has built what it keeps for its lifetime (the runtime)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)
    sys.setswitchinterval(SWITCH_INTERVAL)
