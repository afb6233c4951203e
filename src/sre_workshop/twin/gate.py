"""The endpoint's decisions on one DynamoDB call, in the order AWS takes them, and their metering:

    answer = gate.admit(call)            # AccessDeniedException, then throttling; None: forward it
    body = gate.forwarded_body(call, raw)  # asks the engine for ConsumedCapacity by index
    body = gate.settle(call, status, answer, started)  # charge capacity, meter; strip what was not asked

No HTTP here (endpoint.py), no I/O: the policies come from a callable (PolicySource's state), the
throughput from configure(), and time from the clocks given.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from .calls import BadCall, Call, consumption, error_body, split_capacity, with_capacity_request
from .enforce.capacity import READ, CapacityBook, Refusal, Throughput
from .enforce.iam import Decision, PolicySet, Verdict, assumed_role_arn, denial_message
from .metering import Meter, operation_dims, table_dims

logger = logging.getLogger(__name__)
NEVER_READ = Verdict(Decision.IMPLICIT_DENY)


@dataclass(frozen=True)
class Answer:
    """An answer the endpoint gives itself, without the engine."""

    status: int
    body: bytes


class Gate:
    """IAM, capacity and metering for the calls of one principal (the instance's role)."""

    def __init__(self, region: str, account: str, role: str, instance: str,
                 policies: Callable[[], PolicySet | None] | None, book: CapacityBook, meter: Meter,
                 wall: Callable[[], float] = time.time, timer: Callable[[], float] = time.perf_counter) -> None:
        self.region, self.account = region, account
        self.caller = assumed_role_arn(account, role, instance)
        self.policies = policies  # None: no IAM enforcement
        self.book, self.meter = book, meter
        self.wall, self.timer = wall, timer
        self.gsis: dict[str, set[str]] = {}
        self._verdicts: dict[tuple[tuple[str, str], ...], Verdict] = {}
        self._verdicts_of: PolicySet | None = None

    def configure(self, found: dict[str, dict[str | None, Throughput]]) -> None:
        """Take every table's throughput (ThroughputSource); forget tables that are gone."""
        for table in set(self.book.tables) - set(found):
            self.book.forget(table)
        for table, spec in found.items():
            self.book.configure(table, spec)
            self.gsis[table] = {name for name in spec if name is not None}

    def refuse_bad(self, exc: BadCall) -> Answer:
        """Answer a malformed call (a UserError)."""
        self.meter.add(int(self.wall()), "UserErrors", (), 1)
        return Answer(400, error_body(exc.code, str(exc)))

    def admit(self, call: Call) -> Answer | None:
        """Return the refusal of a call (IAM first, then capacity), or None to forward it."""
        verdict = self.authorize(call)
        if not verdict.allowed:
            return self._denied(call, verdict)
        if call.kind is None:
            return None
        for table in call.tables:
            refusal = self.book.admit(table, call.kind, call.index)
            if refusal is not None:
                return self._throttled(call, refusal)
        return None

    def authorize(self, call: Call) -> Verdict:
        """Return the IAM verdict on a call (cached until the policies change)."""
        if self.policies is None:
            return Verdict(Decision.ALLOW)
        policies = self.policies()
        if policies is None:
            return Verdict(Decision.IMPLICIT_DENY, *(call.authorizations[0] if call.authorizations else ("", "")))
        if policies is not self._verdicts_of:
            self._verdicts, self._verdicts_of = {}, policies
        key = tuple(call.authorizations)
        verdict = self._verdicts.get(key)
        if verdict is None:
            verdict = self._verdicts[key] = policies.authorize(key)
        return verdict

    def _denied(self, call: Call, verdict: Verdict) -> Answer:
        """Answer AccessDeniedException as DynamoDB words it (a UserError)."""
        second = int(self.wall())
        self.meter.add(second, "UserErrors", (), 1)
        for table in call.tables or ["-"]:
            self.meter.count(table, call.operation, "access_denied")
        return Answer(400, error_body("AccessDeniedException", denial_message(self.caller, verdict)))

    def _throttled(self, call: Call, refusal: Refusal) -> Answer:
        """Answer a throttling error and meter it: ThrottledRequests and the throttle events."""
        second = int(self.wall())
        events = "ReadThrottleEvents" if call.kind == READ else "WriteThrottleEvents"
        for table in call.tables:
            self.meter.add(second, "ThrottledRequests", operation_dims(table, call.operation), 1)
            self.meter.count(table, call.operation, "throttled")
        self.meter.add(second, events, table_dims(refusal.table), 1)
        if refusal.index is not None:
            self.meter.add(second, events, table_dims(refusal.table, refusal.index), 1)
        arn = f"arn:aws:dynamodb:{self.region}:{self.account}:table/{refusal.table}"
        resource = f"{arn}/index/{refusal.index}" if refusal.index else arn
        return Answer(400, error_body(refusal.code, refusal.message,
                                      ThrottlingReasons=[{"reason": refusal.reason, "resource": resource}]))

    def forwarded_body(self, call: Call, raw: bytes) -> bytes:
        """Return the body to send the engine."""
        return with_capacity_request(call, raw)

    def settle(self, call: Call, status: int, answer: bytes, started: float) -> bytes:
        """Meter an engine's answer and charge what it consumed; return the body for the client."""
        second = int(self.wall())
        tables = call.tables
        if status >= 500:
            for table in tables:
                self.meter.add(second, "SystemErrors", operation_dims(table, call.operation), 1)
                self.meter.count(table, call.operation, "system_error")
            return answer
        if status >= 400:
            self._user_error(call, second, answer)
            return answer
        latency = (self.timer() - started) * 1000.0
        for table in tables:
            self.meter.add(second, "SuccessfulRequestLatency", operation_dims(table, call.operation), latency)
            self.meter.count(table, call.operation, "ok")
        if call.kind is None:
            return answer
        body, value = split_capacity(answer, strip=not call.wants_capacity)
        if value is not None:
            self._charge(call, second, consumption(value, self.gsis))
        return body

    def _user_error(self, call: Call, second: int, answer: bytes) -> None:
        """Meter a 400 from the engine: a failed condition, or a UserError."""
        if b"ConditionalCheckFailed" in answer[:200]:
            for table in call.tables:
                self.meter.add(second, "ConditionalCheckFailedRequests", table_dims(table), 1)
                self.meter.count(table, call.operation, "conditional_check_failed")
            return
        self.meter.add(second, "UserErrors", (), 1)
        for table in call.tables:
            self.meter.count(table, call.operation, "user_error")

    def _charge(self, call: Call, second: int, consumed: dict[str, dict[str | None, float]]) -> None:
        """Charge the buckets and meter Consumed*CapacityUnits. An engine that reports a write without its
        GSIs (dynalite) has each GSI of the table charged what the table was (every index is written)."""
        name = "ConsumedReadCapacityUnits" if call.kind == READ else "ConsumedWriteCapacityUnits"
        for table, units in consumed.items():
            if call.kind != READ and len(units) == 1:
                units = {**units, **{index: units[None] for index in self.gsis.get(table, ()) if None in units}}
            self.book.charge(table, call.kind or READ, units)
            for index, value in units.items():
                self.meter.add(second, name, table_dims(table, index), value)
