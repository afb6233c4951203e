"""The cloudwatch-agent's metrics: sample the instances every few seconds, publish every period, queue on disk.

What is published is described in agent.py's docstring; the arithmetic lives in agent_host.py (CPU, memory)
and agent_alb.py (HAProxy counters). Datapoints that cannot be put wait in the spool directory
(metrics-queue.json, at most MAX_QUEUED: beyond it the oldest are dropped, counted and logged) and are put
again, with their own timestamps, once the twin answers.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from botocore.exceptions import BotoCoreError, ClientError

from .agent_alb import NAMESPACE as ALB_NAMESPACE
from .agent_alb import AlbMeter
from .agent_host import InstanceMeter, boot_ticks, read_procs
from .agent_logs import error_code, save_json
from .agent_plan import Plan

logger = logging.getLogger(__name__)

QUEUE_FILE = "metrics-queue.json"
MAX_QUEUED = 20_000
PUT_CHUNK = 500  # datapoints per PutMetricData call (the API takes up to 1,000 and 1 MB)
MAX_AGE_S = 14 * 24 * 3600  # CloudWatch refuses datapoints older than two weeks
RETRY_S = (1, 2, 5, 10)


def measurements(config: dict, plugin: str) -> dict[str, str]:
    """Return the config's measurements of one plugin (cpu, mem) as {full name: published name}."""
    found = {}
    for item in config.get("metrics", {}).get("metrics_collected", {}).get(plugin, {}).get("measurement", []):
        name = item if isinstance(item, str) else item.get("name", "")
        full = name if name.startswith(plugin + "_") else f"{plugin}_{name}"
        found[full] = full if isinstance(item, str) else item.get("rename", full)
    return found


def stats(values: list[float]) -> dict[str, float]:
    """Return the StatisticValues of several samples."""
    return {"SampleCount": float(len(values)), "Sum": sum(values), "Minimum": min(values), "Maximum": max(values)}


class MetricSink:
    """Puts datapoints to CloudWatch; keeps those that could not be put in the spool directory."""

    def __init__(self, client, spool_dir: Path, high_resolution: bool) -> None:
        self.client, self.path, self.high_resolution = client, spool_dir / QUEUE_FILE, high_resolution
        self.pending: list[dict] = self._load()
        self.dropped = self.sent = self._failures = 0
        self.last_error = ""
        self._next_try = 0.0

    def add(self, namespace: str, datums: list[dict], timestamp: float) -> None:
        """Queue datapoints (without timestamps) of one namespace, stamped with `timestamp` (epoch s)."""
        self.pending += [{"Namespace": namespace, **d, "Timestamp": timestamp} for d in datums]
        if len(self.pending) > MAX_QUEUED:
            extra = len(self.pending) - MAX_QUEUED
            self.dropped += extra
            del self.pending[:extra]
            logger.error("metrics: more than %d datapoints wait; dropped the %d oldest", MAX_QUEUED, extra)

    def flush(self, force: bool = False) -> None:
        """Put what waits (unless a recent failure says to wait), then save what is still waiting."""
        if self.pending and (force or time.monotonic() >= self._next_try):
            self._expire()
            while self.pending and self._put(self.pending[:PUT_CHUNK]):
                del self.pending[:PUT_CHUNK]
        self.save()

    def save(self) -> None:
        """Keep the waiting datapoints on disk (and no file when none wait)."""
        if self.pending:
            save_json(self.path, {"datums": self.pending})
        else:
            self.path.unlink(missing_ok=True)

    def _load(self) -> list[dict]:
        try:
            return json.loads(self.path.read_text())["datums"]
        except (OSError, ValueError, KeyError, TypeError):
            return []

    def _expire(self) -> None:
        oldest = time.time() - MAX_AGE_S + 3600
        kept = [d for d in self.pending if d["Timestamp"] >= oldest]
        if len(kept) < len(self.pending):
            self.dropped += len(self.pending) - len(kept)
            logger.error("metrics: dropped %d datapoints too old for CloudWatch", len(self.pending) - len(kept))
            self.pending = kept

    def _put(self, chunk: list[dict]) -> bool:
        """Put one chunk, one call per namespace; True if it is done with (put, or refused for good)."""
        by_namespace: dict[str, list[dict]] = {}
        for item in chunk:
            datum = {k: v for k, v in item.items() if k != "Namespace"}
            datum["Timestamp"] = datetime.fromtimestamp(item["Timestamp"], UTC)
            if self.high_resolution:
                datum["StorageResolution"] = 1
            by_namespace.setdefault(item["Namespace"], []).append(datum)
        try:
            for namespace, data in by_namespace.items():
                self.client.put_metric_data(Namespace=namespace, MetricData=data)
        except (ClientError, BotoCoreError) as exc:
            return self._failed(chunk, exc)
        if self._failures:
            logger.info("metrics: putting again (%d datapoints waited)", len(self.pending))
        self._failures, self.last_error = 0, ""
        self.sent += len(chunk)
        return True

    def _failed(self, chunk: list[dict], exc: Exception) -> bool:
        code = error_code(exc)
        self._failures += 1
        self.last_error = f"{code}: {exc}"[:300]
        if code in ("InvalidParameterValue", "InvalidParameterCombination", "MissingParameter"):
            self.dropped += len(chunk)
            logger.error("metrics: %d datapoints refused and dropped: %s", len(chunk), exc)
            return True
        self._next_try = time.monotonic() + RETRY_S[min(self._failures, len(RETRY_S)) - 1]
        if self._failures == 1 or self._failures % 60 == 0:
            logger.warning("metrics: put failed (%s), %d datapoints wait: %s", code, len(self.pending),
                           str(exc).splitlines()[0][:200])
        return False


class MetricsCollector:
    """Samples every instance's process groups and publishes each period's datapoints through a sink."""

    def __init__(self, plan: Plan, config: dict, sink: MetricSink) -> None:
        self.plan, self.sink = plan, sink
        self.period = plan.period_s
        self.sample_every = min(5.0, max(0.5, self.period / 4))
        self.namespace = config.get("metrics", {}).get("namespace", "CWAgent")
        self.cpu_names, self.mem_names = measurements(config, "cpu"), measurements(config, "mem")
        self.total_cpu = config.get("metrics", {}).get("metrics_collected", {}).get("cpu", {}).get("totalcpu", True)
        self.meters = {iid: InstanceMeter(i.pid_records, i.vcpus) for iid, i in plan.instances.items()}
        self.albs = [AlbMeter(lb) for lb in plan.load_balancers]
        self._cpu: dict[str, list[float]] = {iid: [] for iid in self.meters}
        self._rss: dict[str, list[int]] = {iid: [] for iid in self.meters}

    def run(self, stop: threading.Event) -> None:
        """Sample and publish until `stop` is set; the period in progress is then dropped (it is incomplete)."""
        self.sample()
        for alb in self.albs:
            alb.collect()  # the first reading is the baseline
        period_start = math.floor(time.time() / self.period) * self.period
        while not stop.wait(self.sample_every - (time.time() % self.sample_every)):
            self.sample()
            now = time.time()
            if now >= period_start + self.period:
                self.publish(period_start)
                period_start = math.floor(now / self.period) * self.period
            self.sink.flush()

    def sample(self) -> None:
        """Read /proc once and add one sample of CPU and memory to every instance's period."""
        try:
            procs, now = read_procs(), boot_ticks()
        except OSError as exc:
            logger.warning("metrics: cannot read /proc: %s", exc)
            return
        for iid, meter in self.meters.items():
            cpu, rss = meter.sample(procs, now)
            if cpu is not None:
                self._cpu[iid].append(cpu)
            self._rss[iid].append(rss)

    def publish(self, period_start: float) -> None:
        """Queue the datapoints of the period that began at `period_start` and start the next one."""
        for iid, instance in self.plan.instances.items():
            cpu, rss = self._cpu[iid], self._rss[iid]
            self._cpu[iid], self._rss[iid] = [], []
            dims = [{"Name": "InstanceId", "Value": iid}]
            if cpu:
                self.sink.add("AWS/EC2", [{"MetricName": "CPUUtilization", "Dimensions": dims,
                                           "StatisticValues": stats(cpu), "Unit": "Percent"}], period_start)
            self.sink.add(self.namespace, self._agent_datums(dims, cpu, rss, instance.memory_mib), period_start)
        for alb in self.albs:
            self.sink.add(ALB_NAMESPACE, alb.collect(), period_start)

    def _agent_datums(self, dims: list[dict], cpu: list[float], rss: list[int], memory_mib: float) -> list[dict]:
        """Return the CWAgent datapoints the config asks for that can be measured."""
        found = []
        if cpu and self.total_cpu and "cpu_usage_active" in self.cpu_names:
            found.append({"MetricName": self.cpu_names["cpu_usage_active"], "Unit": "Percent",
                          "Dimensions": [*dims, {"Name": "cpu", "Value": "cpu-total"}], "StatisticValues": stats(cpu)})
        memory = memory_mib * 1024 * 1024
        if rss and "mem_used_percent" in self.mem_names:
            found.append({"MetricName": self.mem_names["mem_used_percent"], "Dimensions": dims, "Unit": "Percent",
                          "StatisticValues": stats([100.0 * r / memory for r in rss])})
        if rss and "mem_available" in self.mem_names:
            found.append({"MetricName": self.mem_names["mem_available"], "Dimensions": dims, "Unit": "Bytes",
                          "StatisticValues": stats([max(memory - r, 0.0) for r in rss])})
        return found

    def status(self) -> dict:
        """What waits, what was sent and dropped."""
        return {"queued": len(self.sink.pending), "sent": self.sink.sent, "dropped": self.sink.dropped,
                "last_error": self.sink.last_error}
