"""DescribeAlarmHistory for moto, which keeps each alarm's past states but (5.2) does not answer the call.

`history_items(alarm)` turns moto's `Alarm.history` (the state each `update_state` replaced) and the current
state into AWS's AlarmHistoryItems, newest first; `install()` adds the API action to moto's CloudWatch
responses (moto's own dispatch by action name), once and only where moto lacks it.
"""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime
from typing import Any

from moto.cloudwatch.responses import CloudWatchResponse
from moto.core.responses import ActionResult


def _state(value: str, reason: str, data: str) -> dict[str, Any]:
    """One side of a StateUpdate's HistoryData."""
    try:
        parsed = json.loads(data) if data else {}
    except ValueError:
        parsed = {}
    state: dict[str, Any] = {"stateValue": value, "stateReason": reason}
    if parsed:
        state["stateReasonData"] = parsed
    return state


def history_items(alarm: Any, start: datetime | None = None, end: datetime | None = None) -> list[dict]:
    """The alarm's StateUpdate history items as DescribeAlarmHistory returns them, newest first."""
    states = [(h[3], h[1], h[2], h[4]) for h in alarm.history if h[0] == "StateUpdate"]
    states.append((alarm.state_value, alarm.state_reason, alarm.state_reason_data, alarm.state_updated_timestamp))
    items = []
    for old, new in itertools.pairwise(states):
        stamp = new[3].replace(tzinfo=UTC) if new[3].tzinfo is None else new[3]
        if (start and stamp < start) or (end and stamp > end):
            continue
        data = {"version": "1.0", "oldState": _state(*old[:3]), "newState": _state(*new[:3])}
        items.append(
            {
                "AlarmName": alarm.name,
                "AlarmType": "CompositeAlarm" if alarm.rule else "MetricAlarm",
                "Timestamp": stamp,
                "HistoryItemType": "StateUpdate",
                "HistorySummary": f"Alarm updated from {old[0]} to {new[0]}",
                "HistoryData": json.dumps(data),
            }
        )
    return list(reversed(items))


def _describe_alarm_history(self: CloudWatchResponse) -> ActionResult:
    """Answer DescribeAlarmHistory from the backend's alarms (one alarm, or all)."""
    name = self._get_param("AlarmName")
    kind = self._get_param("HistoryItemType")
    start, end = self._get_param("StartDate"), self._get_param("EndDate")
    start, end = (_utc(start) if start else None), (_utc(end) if end else None)
    alarms = [a for a in self.cloudwatch_backend.alarms.values() if not name or a.name == name]
    items = [i for a in alarms for i in history_items(a, start, end) if not kind or kind == "StateUpdate"]
    items.sort(key=lambda i: i["Timestamp"], reverse=(self._get_param("ScanBy") != "TimestampAscending"))
    return ActionResult({"AlarmHistoryItems": items[: int(self._get_param("MaxRecords") or 100)]})


def _utc(value: Any) -> datetime:
    """A request's date as an aware UTC datetime."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def install() -> None:
    """Add DescribeAlarmHistory to moto's CloudWatch responses if moto does not answer it itself."""
    if not hasattr(CloudWatchResponse, "describe_alarm_history"):
        CloudWatchResponse.describe_alarm_history = _describe_alarm_history  # type: ignore[attr-defined]
