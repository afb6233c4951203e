"""What the endpoint reads and writes beside the data path, each on a thread of its own with boto3:

    PolicySource     the role's identity-based policies from the twin's IAM API, every second
    ThroughputSource every table's billing mode and throughput from the engine's DescribeTable, every second
    Publisher        PutMetricData to the twin's CloudWatch, with a bounded backlog while it is away

None of them ever blocks the data path: the endpoint reads what they last found (an attribute swapped
whole) or hands them data through a queue.
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import queue
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from ..local.engines import READY_HEADERS
from .enforce.capacity import Throughput, throughputs
from .enforce.iam import PolicyError, PolicySet, compile_policies
from .metering import NAMESPACE

logger = logging.getLogger(__name__)
# One attempt each round (the next round is the retry). A generous read timeout: a client that gives up on
# a request dynalite has not read yet crashes dynalite (its request 'error' handler throws).
CLIENT_CONFIG = Config(retries={"total_max_attempts": 1}, connect_timeout=2, read_timeout=20)
PUT_CHUNK = 500  # datums per PutMetricData call (AWS takes up to 1,000)


def client(service: str, endpoint: str, region: str):
    """Return a boto3 client of a local endpoint, with the environment's credentials or placeholder ones."""
    session = boto3.session.Session(
        aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID", "sre-workshop-local"),
        aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY", "sre-workshop-local"),
        aws_session_token=os.environ.get("AWS_SESSION_TOKEN"))
    return session.client(service, region_name=region, endpoint_url=endpoint, config=CLIENT_CONFIG)


class Poller:
    """A daemon thread that calls `poll` every `interval` seconds until stopped."""

    def __init__(self, name: str, interval: float) -> None:
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        """Start polling (the first poll happens at once)."""
        self._thread.start()

    def stop(self, wait: float = 5.0) -> None:
        """Stop after the current poll, waiting for it up to `wait` seconds."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(wait)

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                self.poll()
            except Exception:  # a poller must outlive any surprise: log it, try again next time
                logger.exception("%s failed", self._thread.name)
            self._stop.wait(max(0.0, self.interval - (time.monotonic() - started)))

    def poll(self) -> None:
        """Do one round of work."""
        raise NotImplementedError


@dataclass
class PolicyState:
    """The policies last read, when, and the last failure to read them."""

    policies: PolicySet | None = None  # None: never read (every call is refused)
    read_at: float | None = None
    error: str | None = None


class PolicySource(Poller):
    """The role's inline and attached managed policies, read from IAM every `interval` seconds.

    If IAM cannot be read, the last policies read stay in force (logged once per outage); until a first
    read, the state has no policies and the endpoint refuses every call, as AWS refuses a caller without
    usable credentials."""

    def __init__(self, iam, role: str, context: dict[str, Any], interval: float = 1.0) -> None:
        super().__init__("policy-source", interval)
        self.iam = iam
        self.role = role
        self.context = context
        self.state = PolicyState()
        self._documents: list[Any] | None = None
        self._managed: dict[tuple[str, str], Any] = {}  # (arn, version) -> document

    def poll(self) -> None:
        """Read the role's policies; keep the last ones if that fails."""
        try:
            documents = self._read()
            policies = compile_policies(documents, self.context) if documents != self._documents else None
        except (BotoCoreError, ClientError, PolicyError, ValueError) as exc:
            if self.state.error is None:
                logger.warning("cannot read the policies of role %s (keeping the last ones read): %s", self.role, exc)
            self.state = PolicyState(self.state.policies, self.state.read_at, str(exc))
            return
        if self.state.error is not None:
            logger.info("policies of role %s readable again", self.role)
        if policies is not None:
            logger.info("policies of role %s: %d documents", self.role, len(documents))
            self._documents = documents
        self.state = PolicyState(policies or self.state.policies, time.time(), None)

    def _read(self) -> list[Any]:
        """Return the documents of every inline and attached managed policy of the role."""
        documents: list[Any] = []
        for page in self.iam.get_paginator("list_role_policies").paginate(RoleName=self.role):
            for name in page["PolicyNames"]:
                documents.append(self.iam.get_role_policy(RoleName=self.role, PolicyName=name)["PolicyDocument"])
        for page in self.iam.get_paginator("list_attached_role_policies").paginate(RoleName=self.role):
            for attached in page["AttachedPolicies"]:
                documents.append(self._managed_document(attached["PolicyArn"]))
        return documents

    def _managed_document(self, arn: str) -> Any:
        """Return the default version's document of a managed policy (cached by version)."""
        version = self.iam.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"]
        if (arn, version) not in self._managed:
            found = self.iam.get_policy_version(PolicyArn=arn, VersionId=version)["PolicyVersion"]["Document"]
            self._managed[(arn, version)] = found
        return self._managed[(arn, version)]


class EngineError(Exception):
    """A DynamoDB call to the engine that failed: no answer, or an error answer (code and message)."""

    def __init__(self, code: str, message: str = "") -> None:
        super().__init__(f"{code}: {message}" if message else code)
        self.code = code


class LocalEngine:
    """DynamoDB calls to a local engine (http://) as the plain JSON requests boto3 would send, with a
    syntactically complete fake signature (the engines check its shape only): a poll costs a tenth of
    boto3's CPU, which counts on a machine the endpoint shares with the apps."""

    def __init__(self, url: str, timeout: float = 20.0) -> None:
        parts = urlsplit(url)
        self.host, self.port, self.timeout = parts.hostname or "127.0.0.1", parts.port or 80, timeout
        self.connection: http.client.HTTPConnection | None = None

    def call(self, operation: str, body: dict[str, Any]) -> dict[str, Any]:
        """Send one call; return its answer, or raise EngineError."""
        headers = {**READY_HEADERS, "X-Amz-Target": f"DynamoDB_20120810.{operation}"}
        try:
            if self.connection is None:
                self.connection = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            self.connection.request("POST", "/", json.dumps(body), headers)
            answer = self.connection.getresponse()
            status, payload = answer.status, json.loads(answer.read() or b"{}")
        except (OSError, http.client.HTTPException, ValueError) as exc:
            self.close()
            raise EngineError("Unreachable", repr(exc)) from exc
        if status != 200:
            raise EngineError(str(payload.get("__type", status)).rpartition("#")[2], str(payload.get("message", "")))
        return payload

    def close(self) -> None:
        """Drop the kept-alive connection."""
        if self.connection is not None:
            self.connection.close()
        self.connection = None


class Boto3Engine:
    """DynamoDB calls to an engine over https (a real endpoint needs real signatures): boto3."""

    def __init__(self, url: str, region: str) -> None:
        self.client = client("dynamodb", url, region)

    def call(self, operation: str, body: dict[str, Any]) -> dict[str, Any]:
        """Send one call; return its answer, or raise EngineError."""
        method = getattr(self.client, re.sub(r"(?<!^)(?=[A-Z])", "_", operation).lower())
        try:
            return method(**body)
        except ClientError as exc:
            raise EngineError(exc.response["Error"]["Code"], exc.response["Error"].get("Message", "")) from exc
        except BotoCoreError as exc:
            raise EngineError("Unreachable", str(exc)) from exc


def engine(url: str, region: str) -> LocalEngine | Boto3Engine:
    """Return the caller of the engine at `url`."""
    return LocalEngine(url) if url.startswith("http://") else Boto3Engine(url, region)


class ThroughputSource(Poller):
    """Every table's throughput, from the engine: `deliver({table: {None or GSI: Throughput}})` each round."""

    def __init__(self, dynamodb: LocalEngine | Boto3Engine,
                 deliver: Callable[[dict[str, dict[str | None, Throughput]]], None], interval: float = 1.0) -> None:
        super().__init__("throughput-source", interval)
        self.dynamodb = dynamodb
        self.deliver = deliver
        self.error: str | None = None

    def poll(self) -> None:
        """Describe every table and deliver what was found."""
        found: dict[str, dict[str | None, Throughput]] = {}
        try:
            for name in self._tables():
                found[name] = self._describe(name)
        except EngineError as exc:
            if self.error is None:
                logger.warning("cannot read the tables' throughput from the engine: %s", exc)
            self.error = str(exc)
            return
        self.error = None
        self.deliver({name: spec for name, spec in found.items() if spec})

    def _tables(self) -> list[str]:
        """Return every table's name (ListTables, page by page)."""
        names: list[str] = []
        body: dict[str, Any] = {}
        while True:
            page = self.dynamodb.call("ListTables", body)
            names += page.get("TableNames", [])
            if not page.get("LastEvaluatedTableName"):
                return names
            body = {"ExclusiveStartTableName": page["LastEvaluatedTableName"]}

    def _describe(self, name: str) -> dict[str | None, Throughput]:
        """Return one table's throughputs ({} if it vanished meanwhile)."""
        try:
            return throughputs(self.dynamodb.call("DescribeTable", {"TableName": name})["Table"])
        except EngineError as exc:
            if exc.code == "ResourceNotFoundException":
                return {}
            raise


class Publisher(Poller):
    """Sends the MetricData put on `inbox` every `interval` seconds; keeps up to `backlog` datums it could
    not send (oldest dropped first) and sends them again next time."""

    def __init__(self, cloudwatch, interval: float, backlog: int = 200_000) -> None:
        super().__init__("metrics-publisher", interval)
        self.cloudwatch = cloudwatch
        self.inbox: queue.SimpleQueue[list[dict[str, Any]]] = queue.SimpleQueue()
        self.pending: deque[dict[str, Any]] = deque(maxlen=backlog)
        self.sent = 0
        self.error: str | None = None

    def poll(self) -> None:
        """Send what is pending, in chunks; stop at the first failure (the rest waits)."""
        while not self.inbox.empty():
            self.pending.extend(self.inbox.get_nowait())
        while self.pending:
            chunk = [self.pending[i] for i in range(min(PUT_CHUNK, len(self.pending)))]
            try:
                self.cloudwatch.put_metric_data(Namespace=NAMESPACE, MetricData=chunk)
            except (BotoCoreError, ClientError) as exc:
                if self.error is None:
                    logger.warning("cannot publish metrics (%d waiting): %s", len(self.pending), exc)
                self.error = str(exc)
                return
            for _ in chunk:
                self.pending.popleft()
            self.sent += len(chunk)
            self.error = None

    def flush(self) -> None:
        """Send what is pending now (at shutdown)."""
        self.poll()
