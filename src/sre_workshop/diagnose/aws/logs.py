"""The four log groups over the window, read with FilterLogEvents and summarised by the very parsers the
local stack's logs go through (local/readers.py): the lines are the same, shipped by the CloudWatch agent.

Events are chosen by their CloudWatch timestamps (startTime/endTime), so the lines' own times are not
compared with this machine's clock (nginx's error log is in the instance's time zone). No filter pattern
and no Logs Insights: every event of the window is read, up to MAX_EVENTS per group.
"""

from __future__ import annotations

from botocore.exceptions import BotoCoreError, ClientError

from ...aws.control import AwsControl
from ...errors import WorkshopError
from ..local.readers import json_lines, nginx_error_lines
from ..model import LogSummary
from . import template

# doctor's log source -> the template's log group (logical id)
GROUPS = {"nginx-access": "NginxAccessLogGroup", "nginx-error": "NginxErrorLogGroup",
          "sre-app": "ApplicationLogGroup", "crm-app": "CRMApplicationLogGroup"}
MAX_EVENTS = 20000  # a minute of a busy stack; beyond that the summary is of the first MAX_EVENTS
MAX_PAGES = 50  # FilterLogEvents may answer empty pages while it scans: bound the walk


def events(client, group: str, start: float, end: float) -> list[str]:
    """Return the messages of a log group's events between two epoch times, oldest first."""
    kwargs = {"logGroupName": group, "startTime": int(start * 1000), "endTime": int(end * 1000)}
    messages: list[str] = []
    for _ in range(MAX_PAGES):
        page = client.filter_log_events(**kwargs)
        messages += [e["message"] for e in page.get("events", [])]
        if "nextToken" not in page or len(messages) >= MAX_EVENTS:
            break
        kwargs["nextToken"] = page["nextToken"]
    return messages[:MAX_EVENTS]


def summarise(source: str, messages: list[str]) -> LogSummary:
    """Summarise one group's messages as the local readers do."""
    if source == "nginx-error":
        return nginx_error_lines(messages, None)
    return json_lines(source, messages, None)


def read(ctl: AwsControl, start: float, end: float,
         unknown: dict[str, str]) -> tuple[dict[str, LogSummary], dict[str, tuple[str, int | None]]]:
    """Return each log group's summary, and the groups that do not exist (source -> (group, the template's
    RetentionInDays)): a deleted group is a finding; any group that cannot be read is also noted in `unknown`,
    and not summarised."""
    client = ctl.client("logs")
    found, gone = {}, {}
    for source, logical in GROUPS.items():
        try:
            group = ctl.physical(logical)
            found[source] = summarise(source, events(client, group, start, end))
        except ClientError as exc:
            code = exc.response["Error"].get("Code")
            unknown[f"{source} log"] = f"{code}: {exc.response['Error'].get('Message')}"
            if code == "ResourceNotFoundException":
                gone[source] = (group, logical)
        except (BotoCoreError, WorkshopError) as exc:
            unknown[f"{source} log"] = str(exc)
    days = (retention_days(ctl) or {}) if gone else {}  # the template read once, only when a group is gone
    return found, {source: (group, days.get(logical)) for source, (group, logical) in gone.items()}


def retention_days(ctl: AwsControl) -> dict[str, int] | None:
    """The RetentionInDays the deployed template gives each log group, by logical id (0: it sets none); None
    when the template cannot be read."""
    try:
        resources = template.resources(ctl)
    except (BotoCoreError, ClientError, WorkshopError):
        return None
    return {logical: int(resources.get(logical, {}).get("Properties", {}).get("RetentionInDays", 0))
            for logical in GROUPS.values()}
