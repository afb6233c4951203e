"""The per-worker machinery behind sre-app: leak, metrics recorder and flusher, and their threads.

Created by create_app, started by Gunicorn's post_worker_init hook (threads do not survive a fork, so
they must start in the worker) and stopped by its worker_exit hook, which flushes the metrics.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time

from appkit.aws import dynamodb_client

from .appmetrics import MetricsFlusher, MetricsRecorder
from .config import Settings
from .leak import MIB, Leak, LeakSettings, rss_bytes
from .prom import PromMetrics

logger = logging.getLogger(__name__)

TICK_SECONDS = 1.0
MEMORY_LOG_SECONDS = 60.0  # a memory line a minute: CloudWatch turns it into the leak-size metric
memory_logger = logging.getLogger("sre_app.memory")


class Runtime:
    """Everything one worker owns besides the Flask app itself."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.pid = os.getpid()  # created in the worker (no preload), so this is the worker's pid
        control_file = os.path.join(settings.runtime_dir, "leak-control.json") if settings.runtime_dir else None
        self.leak = Leak(LeakSettings.from_settings(settings), control_file)
        self.prom = PromMetrics(settings.prometheus_dir)
        self.recorder = MetricsRecorder(f"sre-app#{socket.gethostname()}#{self.pid}",
                                        settings.metrics_buffer_max, self.gauges)
        self.flusher = MetricsFlusher(self.recorder, settings.metrics_table, self.client,
                                      settings.metrics_interval_seconds)
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None

    def client(self):
        """Return this thread's DynamoDB client."""
        return dynamodb_client(self.settings.region)

    def gauges(self) -> dict[str, float]:
        """Return the memory readings stored with each metrics interval."""
        return {"rss_mb": rss_bytes() / MIB, "memory_leak_size_mb": self.leak.size_mb, "pid": self.pid}

    def observe(self, method: str, endpoint: str, status: int, seconds: float) -> None:
        """Feed a finished request to the interval metrics and to Prometheus."""
        self.recorder.record(seconds * 1000, status)
        self.prom.observe(method, endpoint, status, seconds)

    def start(self) -> None:
        """Start the ticker and the metrics flusher in this worker."""
        self.leak.sync()
        self.flusher.start()
        if self._ticker is None:
            self._ticker = threading.Thread(target=self._tick_loop, name="leak-ticker", daemon=True)
            self._ticker.start()

    def _tick_loop(self) -> None:
        last = logged = time.monotonic()
        while not self._stop.wait(TICK_SECONDS):
            now = time.monotonic()
            self.tick(now - last)
            last = now
            if now - logged >= MEMORY_LOG_SECONDS:
                logged = now
                self.log_memory()

    def log_memory(self) -> None:
        """Log this worker's RSS and leak size as one JSON line."""
        gauges = self.gauges()
        memory_logger.info("memory", extra={"rss_mb": round(gauges["rss_mb"], 1),
                                            "memory_leak_size_mb": gauges["memory_leak_size_mb"]})

    def tick(self, seconds: float) -> None:
        """Pick up new leak settings, leak over time, and refresh the memory gauges."""
        self.leak.sync()
        self.leak.on_tick(seconds)
        self.prom.leak.set(self.leak.retained_bytes)
        self.prom.rss.set(rss_bytes())

    def stop(self) -> bool:
        """Stop the threads and flush the metrics; True if every interval was written."""
        self._stop.set()
        return self.flusher.stop(timeout=self.settings.metrics_final_flush_seconds)
