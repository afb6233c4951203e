"""The incident ledger: IncidentHistoryTable (incident_id, occurred_at), one incident per injection.

Each event of an incident is one item of the same incident_id, ordered by occurred_at (epoch
milliseconds): `opened` (fault, target, parameters, ground truth, who, and what inject saved so that clear
can restore it from any machine), then `injected` or `failed`, then `cleared`, `remediated` or `expired`, and later
`detected` or `scored` events written by scenarios. An item:

    {"incident_id": "inc-20261126T181500-nginx-timeout-3f2a", "occurred_at": 1795713300123,
     "event": "opened", "fault": "nginx-timeout", "source": "local",
     "detail": "{...JSON: params, ground_truth, saved, injected_by...}"}

doctor never reads this table: it holds the ground truth.
"""

from __future__ import annotations

import json
import secrets
import time
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from .settings import TABLE_NAMES

# An incident's status, from its latest status-changing event.
STATUS_OF = {"opened": "injecting", "injected": "active", "failed": "failed", "cleared": "cleared",
             "remediated": "remediated", "expired": "expired", "scored": "scored"}


class Ledger:
    """Write and read incidents in one IncidentHistoryTable."""

    def __init__(self, client, source: str, table: str = TABLE_NAMES["INCIDENTS_TABLE"]) -> None:
        self.client = client
        self.source = source  # "local" or "aws:<stack>"
        self.table = table
        self._last_ms = 0

    def open(self, fault: str, detail: dict[str, Any]) -> str:
        """Start an incident for `fault` with its detail; return its id."""
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        incident_id = f"inc-{stamp}-{fault}-{secrets.token_hex(2)}"
        self.event(incident_id, "opened", fault=fault, **detail)
        return incident_id

    def event(self, incident_id: str, event: str, fault: str = "", at_ms: int | None = None, **detail: Any) -> int:
        """Append one event to an incident (at `at_ms`, default now); return its occurred_at (epoch ms, unique
        within the incident)."""
        while True:
            occurred_at = max(at_ms or int(time.time() * 1000), self._last_ms + 1)
            self._last_ms = occurred_at
            item = {"incident_id": {"S": incident_id}, "occurred_at": {"N": str(occurred_at)},
                    "event": {"S": event}, "source": {"S": self.source},
                    "detail": {"S": json.dumps(detail, default=str, sort_keys=True)}}
            if fault:
                item["fault"] = {"S": fault}
            try:
                self.client.put_item(TableName=self.table, Item=item,
                                     ConditionExpression="attribute_not_exists(incident_id)")
                return occurred_at
            except ClientError as exc:
                if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                    raise

    def events(self, incident_id: str) -> list[dict[str, Any]]:
        """Return the events of one incident, oldest first."""
        response = self.client.query(TableName=self.table, KeyConditionExpression="incident_id = :id",
                                     ExpressionAttributeValues={":id": {"S": incident_id}}, ConsistentRead=True)
        return [_plain(item) for item in response.get("Items", [])]

    def incidents(self, limit: int = 50) -> list[dict[str, Any]]:
        """Return the newest incidents of this source, each with its events and current status."""
        by_id: dict[str, list[dict[str, Any]]] = {}
        kwargs: dict[str, Any] = {"TableName": self.table, "ConsistentRead": True}
        while True:
            response = self.client.scan(**kwargs)
            for item in map(_plain, response.get("Items", [])):
                if item["source"] == self.source:
                    by_id.setdefault(item["incident_id"], []).append(item)
            if "LastEvaluatedKey" not in response:
                break
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]
        incidents = [summarise(sorted(events, key=lambda e: e["occurred_at"])) for events in by_id.values()]
        return sorted(incidents, key=lambda i: i["opened_at"], reverse=True)[:limit]


def summarise(events: list[dict[str, Any]]) -> dict[str, Any]:
    """Return one incident from its events: what was injected, by whom, its status and timeline."""
    opened = events[0]
    status = "injecting"
    for event in events:
        # A scored run without a fault (the control) ends when it is scored; a fault's incident when cleared.
        if event["event"] != "scored" or status == "injecting":
            status = STATUS_OF.get(event["event"], status)
    return {"incident_id": opened["incident_id"], "fault": opened.get("fault", ""), "status": status,
            "opened_at": _iso(opened["occurred_at"]), "detail": opened["detail"],
            "events": [{"event": e["event"], "at": _iso(e["occurred_at"]), **e["detail"]} for e in events[1:]]}


def _plain(item: dict[str, Any]) -> dict[str, Any]:
    return {"incident_id": item["incident_id"]["S"], "occurred_at": int(item["occurred_at"]["N"]),
            "event": item["event"]["S"], "source": item.get("source", {}).get("S", ""),
            "fault": item.get("fault", {}).get("S", ""), "detail": json.loads(item.get("detail", {}).get("S", "{}"))}


def _iso(epoch_ms: int) -> str:
    return datetime.fromtimestamp(epoch_ms / 1000, UTC).isoformat(timespec="milliseconds")
