"""dynamodb-endpoint: an HTTP/1.1 reverse proxy for the DynamoDB JSON protocol that enforces what the twin says.

    python -m sre_workshop.twin.endpoint --listen 127.0.0.1:PORT --engine http://HOST:PORT
        [--iam-endpoint URL --role-name NAME] [--cloudwatch-endpoint URL] [--metrics-period 60]
        [--region us-east-1] [--account 123456789012] [--instance-id i-...] [--stats-file PATH]

Every POST is one DynamoDB call: the gate (gate.py) refuses it as DynamoDB would (AccessDeniedException from
the role's policies, throttling from the tables' throughput), or it goes to the engine on a kept-alive
connection, and the answer is metered on its way back. Other requests (GET / health checks) pass untouched.
Without --iam-endpoint nothing is authorized against IAM; on PAY_PER_REQUEST tables without a maximum
nothing is throttled: the endpoint then behaves as the plain HAProxy it replaces (same port, same answers).
This module is the process (command line, sources, stats file); proxy.py speaks HTTP; what decides is in
gate.py, calls.py and enforce/.

Decisions (bench/README.md, "dynamodb-endpoint", has the measurements):
- Every caller is the instance's role (arn:aws:sts::ACCOUNT:assumed-role/ROLE/INSTANCE): SigV4 signatures
  are not checked (the engines check their shape only), and the request body may be changed (below).
- Consumed capacity is the engine's: the endpoint adds ReturnConsumedCapacity=INDEXES to the forwarded call
  when the client did not ask, reads ConsumedCapacity from the answer's tail (both engines put it last; no
  full parse) and strips it (with a new x-amz-crc32) before answering. dynalite computes it from item sizes
  as DynamoDB does, but reports no GSI part for writes: each GSI of the table is then charged the table's
  units. moto reports fixed units (0.5 or 1 per call, nothing for transactions): enforcement on moto is
  only as good as that. Computing sizes here would cost a full parse of every answer.
- The twin unreachable: the last policies read stay in force (logged once per outage). Policies never read
  (the twin was down at start): every call is refused with AccessDeniedException, as AWS refuses a caller
  whose credentials it cannot tie to a readable role. The first read is tried before the port opens.
- The engine unreachable or failing: DynamoDB's own 500 InternalServerError (botocore retries it).
- On-demand tables with OnDemandThroughput maximums: ThrottlingException, "Throughput exceeds the maximum
  OnDemandThroughput configured on table or index", with a ...MaxOnDemandThroughputExceeded reason.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlsplit

from botocore.exceptions import BotoCoreError, ClientError

from .enforce.capacity import BURST_SECONDS, CapacityBook
from .enforce.iam import principal_context
from .gate import Gate
from .metering import Meter
from .proxy import MAX_HEAD, Endpoint
from .sources import PolicySource, Publisher, ThroughputSource, client, engine

logger = logging.getLogger(__name__)


def address(text: str) -> tuple[str, int]:
    """Parse HOST:PORT or http://HOST:PORT."""
    parts = urlsplit(text if "//" in text else f"//{text}")
    if not parts.hostname or not parts.port:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT or http://HOST:PORT, not {text!r}")
    return parts.hostname, parts.port


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Read the command line."""
    parser = argparse.ArgumentParser(prog="python -m sre_workshop.twin.endpoint", description=__doc__.split("\n")[0])
    parser.add_argument("--listen", type=address, required=True, help="HOST:PORT to serve DynamoDB on")
    parser.add_argument("--engine", required=True, help="the DynamoDB engine's URL (dynalite, moto, external)")
    parser.add_argument("--iam-endpoint", help="the twin's IAM URL; without it no IAM enforcement")
    parser.add_argument("--role-name", help="the instance's role (needed with --iam-endpoint, or --stack-name)")
    parser.add_argument("--stack-name", help="find the role (EC2InstanceRole) and the instance id (CRMAppInstance) "
                        "in this CloudFormation stack of the twin, waiting for the twin to answer")
    parser.add_argument("--cloudwatch-endpoint", help="the twin's CloudWatch URL; without it metrics are not sent")
    parser.add_argument("--metrics-period", type=float, default=60.0, help="seconds between PutMetricData (60)")
    parser.add_argument("--region", default="us-east-1")
    parser.add_argument("--account", default="123456789012")
    parser.add_argument("--instance-id", default="i-0123456789abcdef0", help="the role session's name")
    parser.add_argument("--stats-file", type=Path, help="JSON file of totals and sources' state, rewritten each second")
    parser.add_argument("--refresh-interval", type=float, default=1.0, help="seconds between policy/table reads (1)")
    parser.add_argument("--burst-seconds", type=float, default=BURST_SECONDS, help="unused capacity kept (300)")
    parser.add_argument("--event-loop", choices=("auto", "uvloop", "asyncio"), default="auto",
                        help="uvloop if installed (auto, the default: about twice as fast), or asyncio's own")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    if args.iam_endpoint and not (args.role_name or args.stack_name):
        parser.error("--iam-endpoint needs --role-name or --stack-name")
    address(args.engine)
    return args


class Process:
    """The endpoint's process: the server, its sources, the meter's drain and the stats file."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.meter = Meter()
        self.policy_source = None
        if args.iam_endpoint:
            context = principal_context(args.account, args.role_name, args.instance_id, args.region)
            self.policy_source = PolicySource(client("iam", args.iam_endpoint, args.region), args.role_name,
                                              context, args.refresh_interval)
        policies = (lambda: self.policy_source.state.policies) if self.policy_source else None
        self.gate = Gate(args.region, args.account, args.role_name or "-", args.instance_id, policies,
                         CapacityBook(burst_seconds=args.burst_seconds), self.meter)
        self.publisher = (Publisher(client("cloudwatch", args.cloudwatch_endpoint, args.region), args.metrics_period)
                          if args.cloudwatch_endpoint else None)
        self.throughput: ThroughputSource | None = None
        self.started = time.time()

    async def run(self) -> int:
        """Serve until SIGTERM or SIGINT."""
        loop = asyncio.get_running_loop()
        self.throughput = ThroughputSource(engine(self.args.engine, self.args.region),
                                           lambda found: loop.call_soon_threadsafe(self.gate.configure, found),
                                           self.args.refresh_interval)
        if self.policy_source:
            await asyncio.to_thread(self.policy_source.poll)  # the first read before the first call
        for source in (self.policy_source, self.throughput, self.publisher):
            if source is not None:
                source.start()
        endpoint = Endpoint(self.gate, address(self.args.engine), self.args.region, self.args.account)
        server = await asyncio.start_server(endpoint.client, *self.args.listen, limit=MAX_HEAD, backlog=1024)
        stop = asyncio.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        logger.info("dynamodb-endpoint on %s:%s -> %s", *self.args.listen, self.args.engine)
        async with server:
            while not stop.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 1.0)
                self.tick(int(time.time()))
        for source in (self.policy_source, self.throughput, self.publisher):
            if source is not None:
                await asyncio.to_thread(source.stop)
        self.tick(int(time.time()) + 1)
        if self.publisher is not None:
            await asyncio.to_thread(self.publisher.flush)
        return 0

    def tick(self, now: int) -> None:
        """Hand the completed seconds' metrics to the publisher; rewrite the stats file."""
        data = self.meter.drain(before=now)
        if self.publisher is not None and data:
            self.publisher.inbox.put(data)
        if self.args.stats_file:
            self.write_stats()

    def write_stats(self) -> None:
        """Write the stats file whole (a reader never sees half of it)."""
        state = self.policy_source.state if self.policy_source else None
        stats = {
            "pid": os.getpid(), "started": self.started, "listen": "{}:{}".format(*self.args.listen),
            "engine": self.args.engine,
            "iam": None if state is None else {"role": self.args.role_name, "read": state.policies is not None,
                                               "read_at": state.read_at, "error": state.error},
            "throughput_error": self.throughput.error if self.throughput else None,
            "metrics": None if self.publisher is None else {"sent": self.publisher.sent, "error": self.publisher.error,
                                                             "backlog": len(self.publisher.pending)},
            "totals": self.meter.totals_json(),
        }
        path: Path = self.args.stats_file
        temporary = path.with_name(path.name + ".tmp")
        temporary.write_text(json.dumps(stats, indent=1))
        temporary.replace(path)


def loop_factory(choice: str):
    """Return the event loop factory: uvloop's when chosen or, for auto, when it is installed."""
    if choice == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        if choice == "uvloop":
            raise SystemExit("--event-loop uvloop: uvloop is not installed") from None
        return None
    return uvloop.new_event_loop


def stack_identity(endpoint: str, region: str, stack: str, timeout: float = 120.0) -> tuple[str, str]:
    """Return the stack's instance role and the CRM instance's id (whose calls the endpoint's principal
    stands for), waiting for the twin to have made them: the port opens only once they are known."""
    cfn = client("cloudformation", endpoint, region)
    deadline = time.monotonic() + timeout
    while True:
        try:
            found = {r["LogicalResourceId"]: r.get("PhysicalResourceId") for r in
                     cfn.list_stack_resources(StackName=stack)["StackResourceSummaries"]}
            return found["EC2InstanceRole"], found["CRMAppInstance"]
        except (BotoCoreError, ClientError, KeyError) as exc:
            if time.monotonic() > deadline:
                raise TimeoutError(f"the twin at {endpoint} did not give stack {stack}'s role: {exc}") from exc
            time.sleep(0.5)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the endpoint until SIGTERM or SIGINT; return the exit status."""
    args = parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.stack_name and args.iam_endpoint and not args.role_name:
        try:
            args.role_name, args.instance_id = stack_identity(args.iam_endpoint, args.region, args.stack_name)
        except TimeoutError as exc:
            logger.error("%s", exc)
            return 1
    try:
        with asyncio.Runner(loop_factory=loop_factory(args.event_loop)) as runner:
            return runner.run(Process(args).run())
    except OSError as exc:  # the port is taken, most likely
        logger.error("cannot serve on %s:%s: %s", *args.listen, exc)
        return 1


if __name__ == "__main__":
    sys.exit(main())
