"""A total request rate shared by all users of a run (runs in the load child, under gevent)."""

from __future__ import annotations

import time
from collections.abc import Callable

import gevent.event

CATCH_UP_S = 0.25  # slots missed within this window are still served (a short burst); older ones are dropped


class Pacer:
    """Hand out send times 1/rate apart to whichever user asks next.

    Locust's constant_throughput paces each user's task runs, but a CRM flow sends one to four requests,
    so it cannot promise a total request rate; one shared pacer before every request can. When a wake-up
    comes late (a busy machine), the slots missed in the last CATCH_UP_S are made up at once, so the rate
    holds on average; a longer stall (every user waiting on a slow answer) is not made up: the rate is a
    ceiling, reached when there are enough users, and the summary reports what was achieved.
    """

    def __init__(self, rate: float, clock=time.monotonic, sleep: Callable[[float], object] | None = None) -> None:
        self.interval = 1.0 / rate
        self.clock = clock
        self.closed = gevent.event.Event()
        self.sleep = sleep or (lambda seconds: self.closed.wait(timeout=seconds))
        self.next_slot = clock()

    def wait(self) -> bool:
        """Sleep (cooperatively) until this caller's slot; return False once the pacer is closed."""
        now = self.clock()
        slot = max(self.next_slot, now - CATCH_UP_S)
        self.next_slot = slot + self.interval
        if slot > now:
            self.sleep(slot - now)
        return not self.closed.is_set()

    def close(self) -> None:
        """Wake every waiting user and hand out no more slots (the run is stopping)."""
        self.closed.set()
