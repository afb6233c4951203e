"""A total request rate shared by all users of a run (runs in the load child, under gevent)."""

from __future__ import annotations

import time

import gevent


class Pacer:
    """Hand out send times 1/rate apart to whichever user asks next.

    Locust's constant_throughput paces each user's task runs, but a CRM flow sends one to four requests,
    so it cannot promise a total request rate; one shared pacer before every request can. A slot that
    passed with nobody waiting is not made up later (no bursts after a stall): the rate is a ceiling,
    reached when there are enough users, and the summary reports what was achieved.
    """

    def __init__(self, rate: float) -> None:
        self.interval = 1.0 / rate
        self.next_slot = time.monotonic()

    def wait(self) -> None:
        """Sleep (cooperatively) until this caller's slot."""
        now = time.monotonic()
        slot = max(self.next_slot, now)
        self.next_slot = slot + self.interval
        if slot > now:
            gevent.sleep(slot - now)
