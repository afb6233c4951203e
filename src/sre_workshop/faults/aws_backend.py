"""The AWS backend of the faults: an AWS stack made by `sre-workshop deploy`, driven from any machine.

Nothing is kept on the machine that injected a fault. What clear must restore travels with the incident:
the ledger's `opened` event (in the stack's own IncidentHistoryTable) carries the parameters and `saved`,
and is written before anything changes. So the faults in effect are the stack's incidents of source
"aws:<stack>" still injecting or active, and `clear` works from another machine, after a crash of the CLI,
or a week later.

One inject or clear at a time per stack: a lock item in the same table, taken with a conditional put and
given an expiry, so that a CLI that dies holding it blocks the others for LOCK_SECONDS at most.
"""

from __future__ import annotations

import contextlib
import secrets
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from ..aws.control import AwsControl
from ..aws.session import session as aws_session
from ..errors import AwsError, StackBusy
from ..incidents import Ledger
from .runner import who

# Statuses of an incident whose fault may still be in effect (see incidents.STATUS_OF).
OPEN = ("injecting", "active")
LOCK_ID = "lock:faults"
# Longer than the slowest locked work (a `clear --all`: ~13 faults, a few SSM runs each, a table update).
LOCK_SECONDS = 15 * 60
# Every incident of the stack is read to find the open ones (the table holds one stack's incidents).
LEDGER_SCAN = 1_000_000
# The public entry points of steady state, as LocalBackend probes them.
PROBES = (("app", "/"), ("crm", "/health"), ("crm", "/api/customers?limit=1"))
# The runner asks for problems every 0.25 s while it waits for steady state: on AWS, a look every few
# seconds is plenty (health checks run every 30 s) and keeps DescribeTargetHealth far from its rate limit.
PROBLEMS_INTERVAL = 3.0


class AwsBackend:
    """An AWS stack: its faults' records and the ledger in its IncidentHistoryTable."""

    name = "aws"
    # Steady state on AWS takes longer than locally: health checks every 30 s, 2 to turn healthy.
    steady_timeout = 240.0

    def __init__(self, ctl: AwsControl, owner: str | None = None) -> None:
        self.ctl = ctl
        self.stack_name = ctl.stack_name
        self.table = ctl.outputs().get("IncidentsTableName")
        if not self.table:
            raise AwsError(f"stack {ctl.stack_name} has no IncidentsTableName output: deploy it again with this "
                           "version of sre-workshop")
        self.ledger = Ledger(ctl.client("dynamodb"), source=f"aws:{ctl.stack_name}", table=self.table)
        self.owner = owner or f"{who()}#{secrets.token_hex(4)}"
        self._looked_at = -PROBLEMS_INTERVAL

    @classmethod
    def connect(cls, stack_name: str, region: str | None) -> AwsBackend:
        """Return the backend of stack `stack_name` in `region` (credentials and the stack checked)."""
        return cls(AwsControl(aws_session(region), stack_name))

    def recorded(self) -> dict[str, dict[str, Any]]:
        """Return the faults injected on this stack and not cleared, from any machine, by fault name."""
        found: dict[str, dict[str, Any]] = {}
        for incident in sorted(self.ledger.incidents(LEDGER_SCAN), key=lambda i: i["opened_at"]):
            if incident["status"] in OPEN:  # the newest open incident of a fault wins
                found[incident["fault"]] = record_of(incident)
        return found

    def remember(self, name: str, record: dict[str, Any]) -> None:
        """Nothing to add: the incident's `opened` event, written just before, holds the record."""

    def forget(self, name: str) -> None:
        """Nothing to drop: the `cleared`, `remediated` or `failed` event the runner writes next closes it."""

    @contextlib.contextmanager
    def locked(self, wait: float = 120.0) -> Iterator[None]:
        """Hold the stack's faults lock: one inject or clear at a time on this stack, from any machine."""
        deadline = time.monotonic() + wait
        while not self._take_lock():
            if time.monotonic() > deadline:
                holder = self._lock_holder()
                raise StackBusy(f"another sre-workshop command holds the faults lock of stack {self.stack_name}"
                                f" ({holder}); try again later")
            time.sleep(2.0)
        try:
            yield
        finally:
            self._release_lock()

    def _lock_key(self) -> dict[str, Any]:
        return {"incident_id": {"S": LOCK_ID}, "occurred_at": {"N": "0"}}

    def _take_lock(self) -> bool:
        now = int(time.time())
        item = {**self._lock_key(), "event": {"S": "lock"}, "source": {"S": f"lock:{self.ledger.source}"},
                "owner": {"S": self.owner}, "expires_at": {"N": str(now + LOCK_SECONDS)}}
        try:
            self.ctl.client("dynamodb").put_item(
                TableName=self.table, Item=item, ExpressionAttributeValues={":now": {"N": str(now)}},
                ConditionExpression="attribute_not_exists(incident_id) OR expires_at < :now")
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            message = exc.response["Error"].get("Message", exc)
            raise AwsError(f"cannot take the faults lock in {self.table}: {message}") from exc
        return True

    def _lock_holder(self) -> str:
        item = self.ctl.client("dynamodb").get_item(TableName=self.table, Key=self._lock_key(),
                                                    ConsistentRead=True).get("Item")
        if not item:
            return "released just now"
        until = datetime.fromtimestamp(int(item["expires_at"]["N"]), UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        return f"{item['owner']['S']}, until {until} at the latest"

    def _release_lock(self) -> None:
        with contextlib.suppress(ClientError):  # expired and taken by another: it is theirs now
            self.ctl.client("dynamodb").delete_item(
                TableName=self.table, Key=self._lock_key(), ConditionExpression="#owner = :me",
                ExpressionAttributeNames={"#owner": "owner"}, ExpressionAttributeValues={":me": {"S": self.owner}})

    def check_up(self) -> None:
        """An AWS stack that exists is up (AwsControl fails with one line when it does not)."""
        self.ctl.outputs()

    def stopped(self) -> list[str]:
        """Nothing, cheaply: a stopped unit shows as an unhealthy target, and asking each instance through
        SSM would take longer than the wait for steady state it could cut short."""
        return []

    def problems(self) -> list[str]:
        """Return what keeps the stack from steady state: unhealthy targets, then public entry points not
        answering 200 in time."""
        time.sleep(max(0.0, self._looked_at + PROBLEMS_INTERVAL - time.monotonic()))
        self._looked_at = time.monotonic()
        problems = []
        for group, targets in self.ctl.target_health().items():
            if not targets:
                problems.append(f"{group} has no registered target")
            problems += [f"{group}: target {t['id']} is {t['state']}" + (f" ({t['reason']})" if t["reason"] else "")
                         for t in targets if t["state"] != "healthy"]
        if problems:
            return problems
        for entry, path in PROBES:
            status, _ = self.ctl.probe(entry, path)
            if status != 200:
                problems.append(f"{self.ctl.url(entry, path)} answered {status or 'nothing'}")
        return problems


def record_of(incident: dict[str, Any]) -> dict[str, Any]:
    """Return the runner's record of a fault from its incident (as `Ledger.incidents` summarises it)."""
    detail = incident["detail"]
    return {"incident_id": incident["incident_id"], "params": detail.get("params", {}),
            "saved": detail.get("saved", {}), "injected_by": detail.get("injected_by"),
            "injected_at": datetime.fromisoformat(incident["opened_at"]).timestamp()}
