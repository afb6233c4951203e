"""Wire the twin's plug-ins into its dispatcher: which operations each one answers or rewrites."""

from __future__ import annotations

import http.client
import json
import logging
import re
import threading
import zlib
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from ..settings import TABLE_NAMES
from . import calls, logs, protocol, ssm, targets, trail
from .protocol import Call

logger = logging.getLogger(__name__)

ACCOUNT = "123456789012"
# The control-plane answers that carry the tables' ARNs, which the engine makes with its own account (dynalite's
# is 000000000000): the twin's account is the one the role's policy and the endpoint's IAM checks name.
ARN_OPERATIONS = {"DescribeTable", "CreateTable", "UpdateTable", "DeleteTable"}
ENGINE_ARN = re.compile(rb'"arn:aws:dynamodb:([a-z0-9-]+):\d{12}:')
# The incident ledger holds the examiner's ground truth (which fault a lab or a scenario injected): through the
# twin, a learner's `aws` CLI may describe the table but not read or write its items (the tool's own ledger
# calls go straight to the engine).
LEDGER = TABLE_NAMES["INCIDENTS_TABLE"]
LEDGER_OPEN = {"DescribeTable", "DescribeTimeToLive", "DescribeContinuousBackups", "ListTagsOfResource"}


def install(app: Any, twin: Any) -> None:
    """Register every plug-in on the twin's dispatcher."""
    queries = logs.Queries()
    app.handlers.update({
        ("logs", "FilterLogEvents"): logs.filter_log_events,
        ("logs", "StartQuery"): queries.start,
        ("logs", "GetQueryResults"): queries.results,
        ("logs", "StopQuery"): queries.stop,
        ("logs", "DescribeQueries"): queries.describe,
        # The AWS Labs CloudWatch MCP server lists these beside log groups and before analysing one.
        ("logs", "DescribeQueryDefinitions"): logs.none_defined("queryDefinitions"),
        ("logs", "ListLogAnomalyDetectors"): logs.none_defined("anomalyDetectors"),
        ("logs", "ListAnomalies"): logs.none_defined("anomalies"),
        ("cloudtrail", "LookupEvents"): lambda call, environ: lookup_events(call, twin),
    })
    app.after[("logs", "PutLogEvents")] = lambda call, answer: logs.apply_metric_filters(call, answer, put_metric)
    logical = {physical: name for name, physical in twin.physical.items()}
    sockets = [twin.settings.run_dir / f"{alb}.sock" for alb in ("public-alb", "private-alb")]
    app.after[("elasticloadbalancing", "DescribeTargetHealth")] = (
        lambda call, answer: targets.rewrite(call, answer, sockets, logical.get))
    for operation in ("RegisterTargets", "DeregisterTargets"):  # the ALBs follow the API's registrations
        app.after[("elasticloadbalancing", operation)] = (
            lambda call, answer: targets.follow(call, answer, sockets, logical.get))
    app.services["dynamodb"] = Engine(twin.engine_url)
    app.handlers.update(ssm.RunCommand(twin.settings, twin.physical).handlers())  # Run Command on the instances


def lookup_events(call: Call, twin: Any) -> protocol.Answer:
    """Answer CloudTrail's LookupEvents from the trail."""
    try:
        return protocol.json_answer(trail.lookup(twin.paths["trail"], call.params))
    except trail.TrailError as exc:
        return protocol.error(call, exc.code, str(exc))


def put_metric(region: str, transformation: dict, value: float, timestamp_ms: int | None) -> None:
    """Store one datapoint a metric filter made (in-process, as the service would)."""
    from moto.cloudwatch.models import cloudwatch_backends

    when = datetime.fromtimestamp(timestamp_ms / 1000, UTC) if timestamp_ms else datetime.now(UTC)
    datum = {"MetricName": transformation["metricName"], "Value": value, "Timestamp": when}
    if transformation.get("unit"):
        datum["Unit"] = transformation["unit"]
    cloudwatch_backends[ACCOUNT][region or "us-east-1"].put_metric_data(transformation["metricNamespace"], [datum])


def evaluate_alarms(twin: Any) -> None:
    """Evaluate the alarms on the metrics they watch (moto stores alarms but never evaluates them)."""
    from moto.cloudwatch.models import cloudwatch_backends

    from . import alarms

    with twin.app.write_lock:
        changed = alarms.evaluate_all(cloudwatch_backends[ACCOUNT][twin.settings.region], datetime.now(UTC))
    if changed:
        twin.dirty_control = True
        logger.info("alarm state changed: %s", ", ".join(changed))


def enforce_registrations(twin: Any) -> None:
    """Keep each ALB's servers in line with the targets moto registers (targets.enforce)."""
    from moto.elbv2.models import elbv2_backends

    logical = {physical: name for name, physical in twin.physical.items()}
    with twin.app.write_lock:
        groups = elbv2_backends[ACCOUNT][twin.settings.region].target_groups
        registered = {logical[arn]: {logical.get(t, t) for t in group.targets}
                      for arn, group in groups.items() if arn in logical}
    targets.enforce([twin.settings.run_dir / f"{alb}.sock" for alb in ("public-alb", "private-alb")], registered)


class Engine:
    """DynamoDB through the twin: every call goes to the stack's real engine, so DescribeTable and
    ListTables show its real tables, item counts and capacity."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.local = threading.local()

    def __call__(self, call: Call, environ: dict) -> protocol.Answer:
        headers = {k: environ[f"HTTP_{k.upper().replace('-', '_')}"] for k in
                   ("X-Amz-Target", "Authorization", "X-Amz-Date", "X-Amz-Security-Token")
                   if f"HTTP_{k.upper().replace('-', '_')}" in environ}
        headers["Content-Type"] = environ.get("CONTENT_TYPE", "application/x-amz-json-1.0")
        if self._ledger_items(call):
            action = f"dynamodb:{call.operation}"
            return protocol.error(call, "AccessDeniedException", (
                f"User: arn:aws:iam::{ACCOUNT}:user/{call.access_key or 'anonymous'} is not authorized to perform: "
                f"{action} on resource: {calls.table_arn(call.region or 'us-east-1', ACCOUNT, LEDGER)} with an "
                f"explicit deny in an identity-based policy"))
        answer = self.forward(call, call.body, headers)
        if call.operation not in ARN_OPERATIONS or answer[0] != 200:
            return answer
        status, kept, body = answer
        if call.operation == "DescribeTable":
            body = self._counted(call, body, headers)
        body = ENGINE_ARN.sub(rb'"arn:aws:dynamodb:\1:' + ACCOUNT.encode() + b":", body)
        # The body changed: its checksum, which botocore verifies, is made again.
        kept = [(k, v) for k, v in kept if k.lower() != "x-amz-crc32"] + [("x-amz-crc32", str(zlib.crc32(body)))]
        return status, kept, body

    @staticmethod
    def _ledger_items(call: Call) -> bool:
        """True for a call that would read or write the incident ledger's items (PartiQL and batches included)."""
        if call.operation in LEDGER_OPEN:
            return False
        try:
            described = calls.describe(call.operation, calls.parse_body(call.body), call.region, ACCOUNT)
        except calls.BadCall:
            return False
        return LEDGER in described.tables

    def _counted(self, call: Call, body: bytes, headers: dict[str, str]) -> bytes:
        """Put live item counts in a DescribeTable answer: the engines leave ItemCount at 0 or stale (DynamoDB
        itself refreshes it about every six hours); the twin counts, the local tables being small."""
        table = json.loads(body)["Table"]
        table["ItemCount"] = self._count(call, headers, table["TableName"])
        for index in table.get("GlobalSecondaryIndexes", []):
            index["ItemCount"] = self._count(call, headers, table["TableName"], index["IndexName"])
        return json.dumps({"Table": table}).encode()

    def _count(self, call: Call, headers: dict[str, str], table: str, index: str | None = None) -> int:
        """Count a table's (or an index's) items with Scan Select=COUNT, page by page."""
        total, start = 0, None
        scan_headers = {**headers, "X-Amz-Target": "DynamoDB_20120810.Scan"}
        while True:
            request = {"TableName": table, "Select": "COUNT", **({"IndexName": index} if index else {}),
                       **({"ExclusiveStartKey": start} if start else {})}
            status, _, body = self.forward(call, json.dumps(request).encode(), scan_headers)
            page = json.loads(body) if status == 200 else {}
            total += page.get("Count", 0)
            start = page.get("LastEvaluatedKey")
            if not start:
                return total

    def forward(self, call: Call, body: bytes, headers: dict[str, str]) -> protocol.Answer:
        """Send one request to the engine and return its answer (a connection it closed is tried again)."""
        for attempt in range(2):  # a kept-alive connection the engine closed is retried once
            connection = self._connection(fresh=attempt > 0)
            try:
                connection.request("POST", "/", body=body, headers=headers)
                response = connection.getresponse()
                body = response.read()
            except (OSError, http.client.HTTPException):
                connection.close()
                continue
            kept = [(k, v) for k, v in response.getheaders() if k.lower() in ("content-type", "x-amzn-requestid",
                                                                              "x-amz-crc32")]
            return response.status, kept, body
        return protocol.error(call, "InternalServerError", "Internal server error (the DynamoDB engine does not "
                              "answer)", 500)

    def _connection(self, fresh: bool) -> http.client.HTTPConnection:
        connection = getattr(self.local, "connection", None)
        if connection is None or fresh:
            connection = http.client.HTTPConnection(self.host, self.port, timeout=10)
            self.local.connection = connection
        return connection
