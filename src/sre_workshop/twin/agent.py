"""cloudwatch-agent: a local stand-in for the Amazon CloudWatch agent, shipping the stack's logs and metrics to
the AWS API twin through the ordinary APIs (PutLogEvents, PutMetricData), driven by the same config file as on
AWS (infra/cloudwatch/amazon-cloudwatch-agent.json) and a plan (agent_plan.py) saying which local processes
and files stand for which instance.

    python -m sre_workshop.twin.agent --plan PLAN.json [--no-create-groups] [--verbose]

Logs (agent_logs.py, agent_tail.py): each collect_list file of each instance, line by line, within about a
second of being written; offsets in the spool directory, so a restart neither loses nor repeats lines.

Metrics, every `period_s` of the plan (the config's metrics_collection_interval is the AWS value; the plan's
period wins locally), stamped with the period's start; samples are taken every min(5, period/4) s (at least
0.5 s) and each period's samples are published as StatisticValues (SampleCount = samples):

- AWS/EC2 CPUUtilization {InstanceId}: the CPU time of the instance's process groups over each sample interval,
  divided by the interval and the instance's vCPUs, in percent (agent_host.py says how processes that come and
  go are counted).
- CWAgent cpu_usage_active {InstanceId, cpu=cpu-total}: the same reading (the real agent, with totalcpu and
  append_dimensions InstanceId, sends these two dimensions and no host); the instance's processes are all its
  CPU use. cpu_usage_iowait is not measured per process group and is not sent.
- CWAgent mem_used_percent {InstanceId}: the RSS of its process groups over its memory_mib (the memory its
  instance type has: 1024 MiB for a t3.micro), in percent; it can pass 100 where a real instance would be out
  of memory. mem_available {InstanceId}: memory_mib minus that RSS, in bytes (0 at least).
- disk, diskio and net are not sent: the processes share the host's disks and loopback.
- AWS/ApplicationELB from each HAProxy's counters (agent_alb.py has the definitions).

A source that cannot be read gives no datapoint: nothing is made up. A component that is not running counts as
processes using no CPU and no memory on an instance that still runs (as a stopped nginx on its EC2 instance).

Every few seconds, spool_dir/status.json says what is behind: per file the bytes not yet shipped and the lines
dropped, and the metrics waiting. Failures are logged one line each; SIGTERM ships what was read, saves the
offsets and the waiting metrics, and exits 0.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path

import botocore.session
from botocore.config import Config

from ..errors import ExitStatus, UsageError, WorkshopError
from .agent_logs import LogShipper, collected, save_json
from .agent_metrics import MetricsCollector, MetricSink
from .agent_plan import Plan, load_plan

logger = logging.getLogger(__name__)

STATUS_FILE = "status.json"
POLL_S = 0.5  # between two looks at the log files
STATUS_EVERY_S = 2.0
# One attempt per call and short timeouts: the agent retries by itself, and a twin that is away must not hold
# a loop for long.
CLIENT_CONFIG = Config(retries={"max_attempts": 1, "mode": "standard"}, connect_timeout=2, read_timeout=10)


def client(plan: Plan, service: str):
    """Return a client of the twin's `service` (botocore's own: boto3 would add its S3 transfer machinery to a
    process that stays up beside the stack)."""
    return botocore.session.get_session().create_client(service, region_name=plan.region, endpoint_url=plan.endpoint,
                                                        config=CLIENT_CONFIG, **plan.credentials)


def read_config(path: Path) -> dict:
    """Read the CloudWatch agent's JSON config."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot read the agent config {path}: {exc}") from exc


def read_status(spool_dir: Path) -> dict | None:
    """Return the agent's last status (None if it never wrote one), for `status` to show."""
    try:
        return json.loads((spool_dir / STATUS_FILE).read_text())
    except (OSError, ValueError):
        return None


class Agent:
    """The log shipper on the main thread, the metrics collector on a thread of its own."""

    def __init__(self, plan: Plan, config: dict, create_groups: bool = True) -> None:
        plan.spool_dir.mkdir(parents=True, exist_ok=True)
        self.plan, self.stop = plan, threading.Event()
        self.logs = LogShipper(client(plan, "logs"), plan, collected(config, plan), create_groups)
        sink = MetricSink(client(plan, "cloudwatch"), plan.spool_dir, high_resolution=plan.period_s < 60)
        self.metrics = MetricsCollector(plan, config, sink)
        self._thread = threading.Thread(target=self._metrics_loop, name="metrics", daemon=True)

    def run(self) -> int:
        """Ship until stopped; then flush what was read and save where everything is."""
        self._thread.start()
        logger.info("cloudwatch-agent: %d files, %d instances, %d load balancers -> %s", len(self.logs.sources),
                    len(self.plan.instances), len(self.plan.load_balancers), self.plan.endpoint)
        next_status = 0.0
        while not self.stop.is_set():
            self.logs.poll()
            if time.monotonic() >= next_status:
                self.write_status()
                next_status = time.monotonic() + STATUS_EVERY_S
            self.stop.wait(POLL_S)
        self.logs.poll()
        self.logs.close()
        self._thread.join(timeout=15)
        self.metrics.sink.save()
        self.write_status()
        logger.info("cloudwatch-agent: stopped, offsets saved")
        return ExitStatus.OK

    def write_status(self) -> None:
        """Rewrite the status file."""
        save_json(self.plan.spool_dir / STATUS_FILE, {
            "pid": os.getpid(), "updated": time.time(), "endpoint": self.plan.endpoint,
            "files": self.logs.status(), "metrics": self.metrics.status()})

    def _metrics_loop(self) -> None:
        try:
            self.metrics.run(self.stop)
        except Exception:  # one line and stop the agent: a dead metrics thread must not go unnoticed
            logger.exception("cloudwatch-agent: the metrics loop failed")
            self.stop.set()


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Read the command line."""
    parser = argparse.ArgumentParser(prog="python -m sre_workshop.twin.agent", description=__doc__.splitlines()[0])
    parser.add_argument("--plan", type=Path, required=True, help="the plan file (JSON) the twin wrote")
    parser.add_argument("--no-create-groups", dest="create_groups", action="store_false",
                        help="wait for a missing log group instead of creating it (a role without CreateLogGroup)")
    parser.add_argument("--verbose", action="store_true", help="log each step, not only changes and failures")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the agent until SIGTERM or SIGINT."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("botocore").setLevel(logging.WARNING)
    try:
        plan = load_plan(args.plan)
        agent = Agent(plan, read_config(plan.config), args.create_groups)
    except WorkshopError as exc:
        logger.error("cloudwatch-agent: %s", exc)
        return exc.exit_status
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: agent.stop.set())
    return agent.run()


if __name__ == "__main__":
    sys.exit(main())
