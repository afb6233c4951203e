"""The apps' one way to reach DynamoDB: a shared client, short timeouts and a retry budget.

boto3 reads AWS_ENDPOINT_URL itself, so the same code talks to AWS, to the local emulator or to the
fault-injection endpoint in front of it.

A request must fail fast with a clear error rather than hold a worker while DynamoDB is away, so:
- connect and read timeouts are short (DynamoDB answers in milliseconds; the emulator at 10,000 items in
  about 100 ms), and botocore itself never retries;
- `call` retries at most once, only errors worth retrying (throttling, 5xx, a refused or dropped
  connection), only when the retry still fits in the call's deadline (CALL_DEADLINE_SECONDS), and only
  while the process's retry budget has tokens: every call earns a tenth of a retry, so during an outage
  retries add at most 10 % to the load on DynamoDB instead of multiplying it.
"""

from __future__ import annotations

import os
import random
import threading
import time
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotoConnectionError

CONNECT_TIMEOUT_SECONDS = 0.5
READ_TIMEOUT_SECONDS = 1.0
CALL_DEADLINE_SECONDS = 2.0
# For request paths: fail fast. botocore does not retry; `call` does, within the budget.
REQUEST_CONFIG = Config(connect_timeout=CONNECT_TIMEOUT_SECONDS, read_timeout=READ_TIMEOUT_SECONDS,
                        retries={"total_max_attempts": 1, "mode": "standard"}, max_pool_connections=32)
# For batch jobs (seeding), where waiting is better than failing: botocore's own retries and timeouts.
BATCH_CONFIG = Config(connect_timeout=2, read_timeout=30, retries={"max_attempts": 5, "mode": "standard"})

RETRYABLE_CODES = frozenset({
    "ThrottlingException", "ProvisionedThroughputExceededException", "RequestLimitExceeded",
    "InternalServerError", "ServiceUnavailable",
})


class CallStats(threading.local):
    """DynamoDB calls made by this thread since the last reset: the request log reports them per request,
    so anyone can see that a page costs three calls whatever the table size."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Start counting afresh (at the start of each request)."""
        self.calls = 0
        self.scanned = 0

    def count(self, parsed=None, **kwargs) -> None:
        """botocore after-call hook: count the call and the items it read."""
        self.calls += 1
        if isinstance(parsed, dict):
            self.scanned += parsed.get("ScannedCount", 0)


call_stats = CallStats()


class RetryBudget:
    """A token bucket of retries: each call earns `ratio` of a retry, up to `cap` saved retries."""

    def __init__(self, ratio: float = 0.1, cap: float = 10.0) -> None:
        self.ratio = ratio
        self.cap = cap
        self.tokens = cap
        self._lock = threading.Lock()

    def earn(self) -> None:
        """Credit one call."""
        with self._lock:
            self.tokens = min(self.cap, self.tokens + self.ratio)

    def spend(self) -> bool:
        """Take one retry from the budget; False when it is empty."""
        with self._lock:
            if self.tokens < 1:
                return False
            self.tokens -= 1
            return True


class _Clients:
    """One client per process and config: boto3 clients are thread-safe, sessions are not.

    A process forked after a client was made gets its own (the pid is checked), so a connection pool is
    never shared across processes.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._made: dict[tuple[int, str, int], Any] = {}

    def get(self, region: str, config: Config):
        key = (os.getpid(), region, id(config))
        client = self._made.get(key)
        if client is None:
            with self._lock:
                client = self._made.get(key)
                if client is None:
                    client = boto3.session.Session().client("dynamodb", region_name=region, config=config)
                    client.meta.events.register("after-call.dynamodb", call_stats.count)
                    self._made[key] = client
        return client


    def forget(self) -> None:
        """Drop every client, so the next call makes one from the environment as it is now."""
        with self._lock:
            self._made = {}


_clients = _Clients()
budget = RetryBudget()


def forget_clients() -> None:
    """Drop the process's clients (for in-process tests that change credentials or endpoint)."""
    _clients.forget()


def dynamodb_client(region: str, config: Config = REQUEST_CONFIG):
    """Return the process's DynamoDB client for `region` and `config`, created on first use."""
    return _clients.get(region, config)


def retryable(exc: Exception) -> bool:
    """True for failures a second attempt may get past: throttling, 5xx, connection trouble, timeouts."""
    if isinstance(exc, ClientError):
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        return exc.response.get("Error", {}).get("Code") in RETRYABLE_CODES or status >= 500 or status == 429
    return isinstance(exc, BotoConnectionError | HTTPClientError)


def call(client, operation: str, deadline: float = CALL_DEADLINE_SECONDS, **kwargs: Any) -> dict[str, Any]:
    """Call `operation`, retrying once if the error is retryable, time is left and the budget allows."""
    started = time.monotonic()
    budget.earn()
    try:
        return getattr(client, operation)(**kwargs)
    except (ClientError, BotoCoreError) as exc:
        pause = random.uniform(0.025, 0.1)  # noqa: S311 - jitter, not security
        # A second attempt may take a connect and a read timeout: retry only if that still fits.
        fits = time.monotonic() - started + pause + CONNECT_TIMEOUT_SECONDS + READ_TIMEOUT_SECONDS <= deadline
        if not (retryable(exc) and fits and budget.spend()):
            raise
    time.sleep(pause)
    return getattr(client, operation)(**kwargs)
