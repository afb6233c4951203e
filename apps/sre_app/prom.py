"""Prometheus metrics for sre-app, correct under several Gunicorn workers.

With a multiprocess directory (gunicorn.conf.py makes it and sets PROMETHEUS_MULTIPROC_DIR, which
prometheus_client reads, before any worker starts), every worker writes its values to files in that
directory and /metrics adds them up. Without one (a test client in one process), the metrics live in a
registry of this app alone. Metrics are created per app, never at import.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, multiprocess

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class PromMetrics:
    """The app's Prometheus instruments and the way to expose them."""

    def __init__(self, multiprocess_dir: str | None = None) -> None:
        self.multiprocess_dir = multiprocess_dir
        self.multiprocess = bool(multiprocess_dir)
        # In multiprocess mode the instruments are not registered: collection reads the files.
        self.registry = None if self.multiprocess else CollectorRegistry()
        self.requests = Counter("sre_app_http_requests_total", "HTTP requests by endpoint and status",
                                ["method", "endpoint", "status"], registry=self.registry)
        self.latency = Histogram("sre_app_http_request_duration_seconds", "HTTP request latency",
                                 ["endpoint"], buckets=BUCKETS, registry=self.registry)
        self.leak = Gauge("sre_app_memory_leak_bytes", "Memory retained by the deliberate leak",
                          multiprocess_mode="livesum", registry=self.registry)
        self.rss = Gauge("sre_app_worker_rss_bytes", "Resident memory of the Gunicorn workers",
                         multiprocess_mode="livesum", registry=self.registry)

        # Labelled children, looked up once per label set: labels() takes a lock on every call.
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def observe(self, method: str, endpoint: str, status: int, seconds: float) -> None:
        """Count a finished request."""
        key = (method, endpoint, status)
        children = self._children.get(key)
        if children is None:
            children = self._children[key] = (self.requests.labels(method, endpoint, str(status)),
                                              self.latency.labels(endpoint))
        children[0].inc()
        children[1].observe(seconds)

    def exposition(self) -> bytes:
        """Return the text exposition of every worker's metrics."""
        if self.multiprocess:
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry, path=self.multiprocess_dir)
            return generate_latest(registry)
        return generate_latest(self.registry)
