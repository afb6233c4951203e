"""What changed, and when: CloudTrail management events for the twin's control-plane calls and the stack's
own service actions, answered by LookupEvents (which moto lacks).

Events are lines of a JSON file in the twin's data directory (appended by the twin for API calls and by the
local tool for service starts, stops and restarts, each as one write of one line). Like CloudTrail, an event
says what was done and by whom, never why.
"""

from __future__ import annotations

import base64
import json
import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ACCOUNT = "123456789012"
# The attributes LookupEvents may filter on, and the event field each reads.
LOOKUP_KEYS = {"EventId": "EventId", "EventName": "EventName", "ReadOnly": "ReadOnly", "Username": "Username",
               "EventSource": "EventSource", "AccessKeyId": "AccessKeyId"}
MAX_RESULTS = 50


class TrailError(ValueError):
    """A LookupEvents request AWS would refuse; carries the AWS error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def event(name: str, source: str, username: str, access_key: str, region: str, resources: list[dict],
          parameters: dict | None = None, read_only: bool = False, when: datetime | None = None) -> dict:
    """Return one management event as LookupEvents shows it (CloudTrailEvent is the full record's JSON)."""
    when = when or datetime.now(UTC)
    event_id = str(uuid.uuid4())
    record = {"eventVersion": "1.09", "userIdentity": {"type": "IAMUser", "accountId": ACCOUNT,
                                                       "userName": username, "accessKeyId": access_key,
                                                       "arn": f"arn:aws:iam::{ACCOUNT}:user/{username}"},
              "eventTime": when.strftime("%Y-%m-%dT%H:%M:%SZ"), "eventSource": source, "eventName": name,
              "awsRegion": region, "sourceIPAddress": "127.0.0.1", "userAgent": "sre-workshop-twin",
              "requestParameters": parameters or None, "eventID": event_id, "readOnly": read_only,
              "eventType": "AwsApiCall", "managementEvent": True, "recipientAccountId": ACCOUNT}
    return {"EventId": event_id, "EventName": name, "ReadOnly": str(read_only).lower(), "AccessKeyId": access_key,
            "EventTime": when.timestamp(), "EventSource": source, "Username": username, "Resources": resources,
            "CloudTrailEvent": json.dumps(record)}


def append(path: Path, entry: dict) -> None:
    """Add one event to the trail (one write of one line: concurrent writers never interleave)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    line = (json.dumps(entry, separators=(",", ":")) + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


def read(path: Path) -> Iterator[dict]:
    """Yield the trail's events, newest first (a torn last line from a crash is skipped)."""
    try:
        lines = path.read_bytes().splitlines()
    except FileNotFoundError:
        return
    for line in reversed(lines):
        try:
            yield json.loads(line)
        except ValueError:
            continue


def lookup(path: Path, params: dict[str, Any]) -> dict[str, Any]:
    """Answer LookupEvents: filter by one attribute and a time range, newest first, paginated."""
    attributes = params.get("LookupAttributes") or []
    if len(attributes) > 1:
        raise TrailError("InvalidLookupAttributesException", "You cannot specify more than one lookup attribute.")
    wanted = _attribute(attributes[0]) if attributes else None
    start, end = _time(params.get("StartTime")), _time(params.get("EndTime"))
    if start is not None and end is not None and start > end:
        raise TrailError("InvalidTimeRangeException", "Start time must be before end time.")
    limit = params.get("MaxResults", MAX_RESULTS)
    if not isinstance(limit, int) or not 1 <= limit <= MAX_RESULTS:
        raise TrailError("InvalidMaxResultsException", "MaxResults must be between 1 and 50.")
    skip = _token(params.get("NextToken"))
    matches = [e for e in read(path) if _matches(e, wanted, start, end)]
    page = matches[skip:skip + limit]
    answer: dict[str, Any] = {"Events": page}
    if skip + limit < len(matches):
        answer["NextToken"] = base64.b64encode(str(skip + limit).encode()).decode()
    return answer


def _attribute(attribute: Any) -> tuple[str, str]:
    if not isinstance(attribute, dict) or attribute.get("AttributeKey") not in (*LOOKUP_KEYS, "ResourceName",
                                                                                "ResourceType"):
        raise TrailError("InvalidLookupAttributesException", "The attribute key must be one of EventId, "
                         "EventName, ReadOnly, Username, ResourceType, ResourceName, EventSource, AccessKeyId.")
    return attribute["AttributeKey"], str(attribute.get("AttributeValue", ""))


def _time(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, int | float):
        return float(value)
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise TrailError("InvalidTimeRangeException", f"Invalid time: {value}") from None


def _token(value: Any) -> int:
    if value is None:
        return 0
    try:
        return int(base64.b64decode(str(value), validate=True).decode())
    except ValueError:
        raise TrailError("InvalidNextTokenException", "Invalid NextToken.") from None


def _matches(entry: dict, wanted: tuple[str, str] | None, start: float | None, end: float | None) -> bool:
    when = entry.get("EventTime", 0)
    if (start is not None and when < start) or (end is not None and when > end):
        return False
    if wanted is None:
        return True
    key, value = wanted
    if key in LOOKUP_KEYS:
        return str(entry.get(LOOKUP_KEYS[key])) == value
    field = "ResourceName" if key == "ResourceName" else "ResourceType"
    return any(r.get(field) == value for r in entry.get("Resources", []))


# Request parameters that name a resource, and the CloudTrail resource type each stands for.
RESOURCE_PARAMETERS = {
    "RoleName": "AWS::IAM::Role", "PolicyArn": "AWS::IAM::Policy", "GroupId": "AWS::EC2::SecurityGroup",
    "InstanceId": "AWS::EC2::Instance", "TableName": "AWS::DynamoDB::Table",
    "TargetGroupArn": "AWS::ElasticLoadBalancingV2::TargetGroup",
    "LoadBalancerArn": "AWS::ElasticLoadBalancingV2::LoadBalancer",
    "ListenerArn": "AWS::ElasticLoadBalancingV2::Listener", "logGroupName": "AWS::Logs::LogGroup",
    "AlarmName": "AWS::CloudWatch::Alarm", "Name": "AWS::SSM::Parameter", "StackName": "AWS::CloudFormation::Stack",
}


def resources_of(params: dict[str, Any]) -> list[dict[str, str]]:
    """Return the resources a call's parameters name (flat query parameters like InstanceId.1 included)."""
    found = []
    for key, value in params.items():
        base = key.split(".", 1)[0]
        base = {"InstanceIds": "InstanceId", "AlarmNames": "AlarmName"}.get(
            base, base)
        kind = RESOURCE_PARAMETERS.get(base)
        values = value if isinstance(value, list) else [value]
        for item in values:
            if kind and isinstance(item, str) and item:
                found.append({"ResourceType": kind, "ResourceName": item})
    return found


def record_service_action(data_dir: Path, region: str, action: str, component: str, instance_logical: str,
                          username: str) -> None:
    """Record a service action on an instance's component as the Run Command an operator would send for it
    (`systemctl ACTION UNIT` through AWS-RunShellScript), if the twin has made the instance."""
    try:
        physical = json.loads((data_dir / "aws-api" / "resources.json").read_text())
    except (OSError, ValueError):
        return  # no twin yet: nothing to record it against
    instance_id = physical.get(instance_logical)
    if not instance_id:
        return
    command = f"systemctl {action} {component}"
    parameters = {"documentName": "AWS-RunShellScript", "instanceIds": [instance_id],
                  "parameters": {"commands": [command]}}
    append(data_dir / "aws-api" / "trail.jsonl",
           event("SendCommand", "ssm.amazonaws.com", username, username, region,
                 [{"ResourceType": "AWS::EC2::Instance", "ResourceName": instance_id},
                  {"ResourceType": "AWS::SSM::Document", "ResourceName": "AWS-RunShellScript"}], parameters))
