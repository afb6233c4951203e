"""The apps' one way to reach DynamoDB.

boto3 reads AWS_ENDPOINT_URL itself, so the same code talks to AWS, to the local emulator or to the
fault-injection endpoint in front of it. Timeouts are short and retries few: a request must fail fast
with a clear error rather than hang a Gunicorn worker while DynamoDB is away.
"""

from __future__ import annotations

import threading

import boto3
from botocore.config import Config

CLIENT_CONFIG = Config(
    connect_timeout=2,
    read_timeout=5,
    retries={"max_attempts": 3, "mode": "standard"},
)

_local = threading.local()


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


def dynamodb_client(region: str):
    """Return this thread's DynamoDB client, created on first use.

    boto3 sessions are not thread-safe, so each thread (flusher, request thread) gets its own.
    """
    client = getattr(_local, "client", None)
    if client is None or client.meta.region_name != region:
        client = boto3.session.Session().client("dynamodb", region_name=region, config=CLIENT_CONFIG)
        client.meta.events.register("after-call.dynamodb", call_stats.count)
        _local.client = client
    return client
