"""Probe each hop of both paths directly, so a failure is placed at the first hop that fails."""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import TypeVar

from ...settings import TABLE_NAMES, Settings
from ..model import Probe

TIMEOUT = 2.0
T = TypeVar("T")


def hops(settings: Settings) -> list[tuple[str, str, str]]:
    """Return (component, name, url) of every HTTP hop, from the public entry points down."""
    url = settings.url
    return [
        ("public-alb", "public-alb :80 /", url("public-alb") + "/"),
        ("nginx", "nginx /health", url("nginx") + "/health"),
        ("nginx", "nginx /", url("nginx") + "/"),
        ("private-alb", "private-alb /", url("private-alb") + "/"),
        ("sre-app", "sre-app /health", url("sre-app") + "/health"),
        ("sre-app", "sre-app /", url("sre-app") + "/"),
        ("sre-app", "sre-app /health?deep=1", url("sre-app") + "/health?deep=1"),
        ("public-alb", "public-alb :8080 /api/customers", url("public-alb-crm") + "/api/customers?limit=1"),
        ("crm-app", "crm-app /health", url("crm-app") + "/health"),
        ("crm-app", "crm-app /api/customers", url("crm-app") + "/api/customers?limit=1"),
        # GetItem, not ListTables: the endpoint enforces the instance role, which allows item calls only.
        ("dynamodb-endpoint", "dynamodb-endpoint GetItem", url("dynamodb-endpoint") + "/"),
    ]


def engine_targets(settings: Settings, engine_url: str) -> list[tuple[str, str, str]]:
    """Return (component, name, url) of the DynamoDB engine's and its endpoint's own checks."""
    return [("dynamodb", "dynamodb ListTables", engine_url + "/"),
            *(hop for hop in hops(settings) if hop[0] == "dynamodb-endpoint")]


def probe_each(targets: list[tuple[str, str, str]]) -> dict[str, Probe]:
    """Probe each (component, name, url) at once (each bounded by TIMEOUT); return the probes by name."""
    return {p.name: p for p in side_by_side(lambda t: probe(*t), targets)}


def side_by_side(call: Callable[[T], Probe], items: list[T]) -> list[Probe]:
    """Return call(item) for every item, each in a daemon thread: a request still waiting when doctor is done
    (its run has a deadline) never keeps the program from exiting, as a thread pool's workers would."""
    answers: list[Probe | None] = [None] * len(items)

    def run(i: int) -> None:
        answers[i] = call(items[i])

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(len(items))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return [a for a in answers if a is not None]


def samples(settings: Settings, engine_url: str, count: int = 4, every_s: float = 0.2) -> dict[str, list[Probe]]:
    """Ask the engine and the endpoint `count` times each, `every_s` apart, side by side (one slow answer
    is a pause of the host; a dependency slow in most of them is slow)."""
    targets = engine_targets(settings, engine_url)

    def later(n: int, target: tuple[str, str, str]) -> Probe:
        time.sleep(n * every_s)
        return probe(*target)

    jobs = [(n, t) for t in targets for n in range(count)]
    found: dict[str, list[Probe]] = {}
    for answer in side_by_side(lambda job: later(*job), jobs):
        found.setdefault(answer.name, []).append(answer)
    return found


def probe(component: str, name: str, url: str) -> Probe:
    """Make one request; DynamoDB hops get a ListTables call."""
    started = time.monotonic()
    headers, data = {}, None
    if name.endswith(("ListTables", "GetItem")):
        operation = name.rsplit(" ", 1)[1]
        headers = {"X-Amz-Target": f"DynamoDB_20120810.{operation}", "Content-Type": "application/x-amz-json-1.0",
                   "Authorization": "AWS4-HMAC-SHA256 Credential=sre-workshop-local/20260101/us-east-1/dynamodb/"
                                    "aws4_request, SignedHeaders=host, Signature=0"}
        data = b"{}" if operation == "ListTables" else json.dumps(
            {"TableName": TABLE_NAMES["METRICS_TABLE"],
             "Key": {"metric_id": {"S": "doctor-probe"}, "timestamp": {"N": "0"}}}).encode()
    request = urllib.request.Request(url, data=data, headers=headers, method="POST" if data else "GET")  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:  # noqa: S310 - loopback URLs we built
            body = response.read(4096)
            status = response.status
    except urllib.error.HTTPError as exc:
        body, status = exc.read(4096), exc.code
    except TimeoutError:
        return Probe(name, component, url, 0, time.monotonic() - started, "timeout")
    except (urllib.error.URLError, OSError) as exc:
        return Probe(name, component, url, 0, time.monotonic() - started, failure(getattr(exc, "reason", exc)))
    return Probe(name, component, url, status, time.monotonic() - started, error_code(body) if status != 200 else "")


def failure(reason: object) -> str:
    """Name why nothing answered: a refused connection (nothing listens), one reset or closed before the
    answer (a process that died mid-request), a timeout, a name that does not resolve, or else unreachable."""
    if isinstance(reason, TimeoutError | socket.timeout):
        return "timeout"
    if isinstance(reason, socket.gaierror):
        return "dns"
    if isinstance(reason, ConnectionRefusedError):
        return "refused"
    if isinstance(reason, ConnectionResetError):  # http.client.RemoteDisconnected is one
        return "reset"
    return "unreachable"


def error_code(body: bytes) -> str:
    """Return the error code an answer names (DynamoDB's __type, the apps' code or error), if any."""
    try:
        data = json.loads(body)
    except ValueError:
        return ""
    if not isinstance(data, dict):
        return ""
    nested = [c.get("code") for c in (data.get("checks") or {}).values() if isinstance(c, dict)]
    code = next((c for c in nested if c), None) or data.get("__type") or data.get("code") or data.get("error") or ""
    return str(code).rsplit("#", 1)[-1]
