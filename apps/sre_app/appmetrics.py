"""Per-worker application metrics, aggregated in process and written to DynamoDB in batches.

The request path only adds to an in-memory interval (a lock and a few additions). A background flusher
closes the interval every METRICS_INTERVAL_SECONDS into one item and writes buffered items with
BatchWriteItem. While DynamoDB fails, items stay in a bounded buffer and writes are retried with
exponential backoff; on graceful worker shutdown the partial interval is closed and flushed, so a
restart loses nothing.

One item per worker per interval (metric_id S, timestamp N):
    {"metric_id": "sre-app#ip-10-0-10-5#4242", "timestamp": 1764272990, "interval_seconds": 10,
     "request_count": 120, "error_count": 0, "p50_ms": 2.1, "p90_ms": 3.4, "p99_ms": 9.8,
     "max_ms": 12.0, "rss_mb": 61.3, "memory_leak_size_mb": 1.88, "host": "...", "pid": 4242}
"""

from __future__ import annotations

import logging
import random
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

logger = logging.getLogger(__name__)

BATCH_SIZE = 25  # BatchWriteItem's limit
MAX_SAMPLES = 10_000  # latency samples kept per interval (reservoir beyond that)
BACKOFF_MAX_SECONDS = 30.0
FINAL_FLUSH_TRIES = 3


class Interval:
    """Counts and latency samples of one worker over one interval."""

    def __init__(self, started: float) -> None:
        self.started = started
        self.requests = 0
        self.errors = 0
        self.samples: list[float] = []

    def add(self, duration_ms: float, is_error: bool) -> None:
        """Count one request; keep its latency (reservoir-sampled past MAX_SAMPLES)."""
        self.requests += 1
        self.errors += is_error
        if len(self.samples) < MAX_SAMPLES:
            self.samples.append(duration_ms)
        else:
            slot = random.randrange(self.requests)  # noqa: S311 - sampling, not security
            if slot < MAX_SAMPLES:
                self.samples[slot] = duration_ms

    def to_item(self, metric_id: str, ended: float, gauges: dict[str, float]) -> dict[str, Any]:
        """Return this interval as a DynamoDB item (low-level attribute values)."""
        values = {
            "interval_seconds": round(ended - self.started, 3),
            "request_count": self.requests,
            "error_count": self.errors,
            **percentiles(self.samples),
            **gauges,
        }
        item: dict[str, Any] = {
            "metric_id": {"S": metric_id},
            "timestamp": {"N": str(int(self.started))},
            "service": {"S": "sre-app"},
            "host": {"S": socket.gethostname()},
        }
        item.update({k: {"N": str(v) if isinstance(v, int) else repr(round(v, 3))} for k, v in values.items()})
        return item


def percentiles(samples: list[float]) -> dict[str, float]:
    """Return p50, p90, p99 and max of `samples` in ms (zeros when there are none)."""
    if not samples:
        return {"p50_ms": 0.0, "p90_ms": 0.0, "p99_ms": 0.0, "max_ms": 0.0}
    ordered = sorted(samples)

    def rank(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    return {"p50_ms": rank(0.50), "p90_ms": rank(0.90), "p99_ms": rank(0.99), "max_ms": ordered[-1]}


class MetricsRecorder:
    """The worker's current interval plus the buffer of closed ones awaiting DynamoDB."""

    def __init__(self, metric_id: str, buffer_max: int, gauges: Callable[[], dict[str, float]]) -> None:
        self.metric_id = metric_id
        self.gauges = gauges
        self.buffer: deque[dict[str, Any]] = deque()
        self.buffer_max = buffer_max
        self.dropped = 0
        self._current = Interval(time.time())
        self._lock = threading.Lock()

    def record(self, duration_ms: float, status: int) -> None:
        """Count one finished request."""
        with self._lock:
            self._current.add(duration_ms, status >= 500)

    def close_interval(self) -> None:
        """End the current interval and queue it as an item."""
        now = time.time()
        with self._lock:
            closed, self._current = self._current, Interval(now)
            item = closed.to_item(self.metric_id, now, self.gauges())
            if len(self.buffer) >= self.buffer_max:
                self.buffer.popleft()
                self.dropped += 1
                logger.warning("metrics buffer full: dropped the oldest interval (%d so far)", self.dropped)
            self.buffer.append(item)

    def take_batch(self) -> list[dict[str, Any]]:
        """Remove and return up to BATCH_SIZE of the oldest buffered items."""
        with self._lock:
            return [self.buffer.popleft() for _ in range(min(BATCH_SIZE, len(self.buffer)))]

    def give_back(self, items: list[dict[str, Any]]) -> None:
        """Put unwritten items back at the front, oldest first."""
        with self._lock:
            self.buffer.extendleft(reversed(items))


class MetricsFlusher:
    """The background thread that closes intervals and writes them with BatchWriteItem."""

    def __init__(self, recorder: MetricsRecorder, table: str, client_factory: Callable[[], Any],
                 interval: float) -> None:
        self.recorder = recorder
        self.table = table
        self.client_factory = client_factory
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._backoff = 0.0
        self._next_try = 0.0

    def start(self) -> None:
        """Start the flusher thread (once)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="metrics-flusher", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        next_close = time.monotonic() + self.interval
        while not self._stop.wait(timeout=min(1.0, max(0.0, next_close - time.monotonic()))):
            if time.monotonic() >= next_close:
                self.recorder.close_interval()
                next_close += self.interval
            if self.recorder.buffer and time.monotonic() >= self._next_try:
                self.flush()

    def flush(self, deadline: float | None = None) -> bool:
        """Write buffered items until empty; False if DynamoDB failed (items kept for a retry)."""
        while self.recorder.buffer:
            if deadline is not None and time.monotonic() > deadline:
                return False
            batch = self.recorder.take_batch()
            try:
                response = self.client_factory().batch_write_item(
                    RequestItems={self.table: [{"PutRequest": {"Item": item}} for item in batch]})
            except (BotoCoreError, ClientError) as exc:
                self.recorder.give_back(batch)
                self._fail(exc)
                return False
            unprocessed = response.get("UnprocessedItems", {}).get(self.table, [])
            if unprocessed:
                self.recorder.give_back([r["PutRequest"]["Item"] for r in unprocessed])
                self._fail(None)
                return False
            self._backoff = 0.0
        return True

    def _fail(self, exc: Exception | None) -> None:
        """Schedule the next try with exponential backoff and jitter."""
        self._backoff = min(BACKOFF_MAX_SECONDS, max(1.0, self._backoff * 2))
        self._next_try = time.monotonic() + self._backoff * random.uniform(0.5, 1.0)  # noqa: S311
        code = exc.response["Error"]["Code"] if isinstance(exc, ClientError) else type(exc).__name__
        logger.warning("metrics write failed (%s); %d intervals buffered, retrying in %.1fs",
                       code if exc else "UnprocessedItems", len(self.recorder.buffer), self._backoff,
                       extra={"error_code": code if exc else "UnprocessedItems"})

    def stop(self, timeout: float = 3.0) -> bool:
        """Stop the thread, close the partial interval and flush it; True if nothing is left unwritten.

        A few tries within `timeout` at most: a worker that stops while DynamoDB is away must not hold up
        its shutdown (and the tests' teardowns) for long.
        """
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
        self.recorder.close_interval()
        deadline = time.monotonic() + timeout
        for _ in range(FINAL_FLUSH_TRIES):
            if self.flush(deadline=deadline) or time.monotonic() >= deadline:
                break
            time.sleep(max(0.0, min(0.5, self._backoff, deadline - time.monotonic())))
        left = len(self.recorder.buffer)
        if left:
            logger.error("shutting down with %d metric intervals unwritten", left)
        return left == 0
