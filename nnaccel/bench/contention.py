"""How much of the CPUs other programs used while a benchmark ran, so a table taken on a busy
machine says so. Timings of multithreaded code suffer most: a parallel region waits for its
slowest thread, and a thread that another program displaced costs a scheduler time slice.

Linux: the busy time of all CPUs from ``/proc/stat`` (user, nice, system, irq, softirq and steal,
the time a hypervisor gave to other machines) minus this run's own CPU time (this process and its
finished workers), as a share of wall time x CPUs. Elsewhere: None.
"""

from __future__ import annotations

import os
import resource
import time


class CpuShare:
    """``start()`` before the run, ``others()`` after it: the share of the CPUs others used."""

    def start(self) -> None:
        self.before = _snapshot()

    def others(self) -> float | None:
        after = _snapshot()
        if self.before is None or after is None:
            return None
        busy, own, wall = (end - begin for begin, end in zip(self.before, after))
        capacity = wall * (os.cpu_count() or 1)
        return min(1.0, max(0.0, (busy - own) / capacity)) if capacity > 0 else None


def _snapshot() -> tuple[float, float, float] | None:
    """(busy CPU seconds of the whole system, this run's CPU seconds, wall-clock seconds)."""
    try:
        with open("/proc/stat") as handle:
            values = [int(value) for value in handle.readline().split()[1:9]]
        ticks = os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, AttributeError):
        return None
    user, nice, system, idle, iowait, irq, softirq, steal = values
    busy = (user + nice + system + irq + softirq + steal) / ticks
    own = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        own += usage.ru_utime + usage.ru_stime
    return busy, own, time.monotonic()
