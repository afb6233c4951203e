"""Ship the instances' log files to CloudWatch Logs, as the agent's `logs.logs_collected.files` section says.

Each `collect_list` entry names a file on the instance; the plan maps it, per instance, to a local file.
Every line goes to `log_group_name`, in the stream `log_stream_name` with {instance_id}, {hostname} and
{ip_address} filled in. Streams are created when missing, and so are log groups, as the real agent does (its
role's CloudWatchAgentServerPolicy allows CreateLogGroup and PutRetentionPolicy): a group deleted is made again
at the next line shipped to it, with the entry's `retention_in_days`. With `create_groups` off (a role without
those actions) a missing group is logged and retried later, the lines waiting in the file. A batch the service
refuses for good (InvalidParameterException) is dropped, counted and logged; any other failure leaves the
offset where it was, and the lines are sent again later.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

from botocore.exceptions import BotoCoreError, ClientError

from .agent_plan import Plan
from .agent_tail import Event, Source, batches, log_events

logger = logging.getLogger(__name__)

OFFSETS_FILE = "offsets.json"
RETRY_S = (1, 2, 5)  # waits after consecutive failures of one source
GROUP_RETRY_S = 5.0  # wait before trying a missing log group again
PER_POLL_BYTES = 4 * 1024 * 1024  # at most this much of one file per poll, so one big backlog starves no other


@dataclass(frozen=True)
class Collected:
    """One file of one instance to ship: where it is locally and where its lines go."""

    instance_id: str
    aws_path: str
    local_path: Path
    group: str
    stream: str
    retention_days: int = 0  # the entry's retention_in_days, set on a group the agent creates (0: never expire)

    @property
    def key(self) -> str:
        """Its name in the offsets and status files."""
        return f"{self.instance_id}:{self.aws_path}"


def stream_name(template: str, plan: Plan, instance_id: str) -> str:
    """Fill in a log_stream_name's placeholders for one instance."""
    instance = plan.instances.get(instance_id)
    ip = instance.private_ip if instance else ""
    hostname = instance.hostname if instance else instance_id
    return (template.replace("{instance_id}", instance_id).replace("{hostname}", hostname)
            .replace("{ip_address}", ip or hostname))


def collected(config: dict, plan: Plan) -> list[Collected]:
    """Return every (instance, file) the config's collect_list and the plan's file map name together."""
    entries = config.get("logs", {}).get("logs_collected", {}).get("files", {}).get("collect_list", [])
    default_stream = config.get("logs", {}).get("log_stream_name", "{instance_id}")
    found = []
    for entry in entries:
        for instance_id, files in plan.files.items():
            if (local := files.get(entry["file_path"])) is not None:
                stream = stream_name(entry.get("log_stream_name", default_stream), plan, instance_id)
                found.append(Collected(instance_id, entry["file_path"], local, entry["log_group_name"], stream,
                                       max(int(entry.get("retention_in_days", 0)), 0)))
    return found


def load_offsets(spool_dir: Path) -> dict[str, dict]:
    """Read the saved offsets (none on a first run or if the file is unreadable)."""
    try:
        return json.loads((spool_dir / OFFSETS_FILE).read_text())
    except (OSError, ValueError):
        return {}


def save_json(path: Path, data: dict) -> None:
    """Write a JSON file atomically (a crash leaves the old or the new one, never half of one)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, path)


def error_code(exc: Exception) -> str:
    """Return the AWS error code of a failure, or its class name for a transport error."""
    if isinstance(exc, ClientError):
        return exc.response.get("Error", {}).get("Code", "ClientError")
    return type(exc).__name__


def rejected(info: dict, count: int) -> int:
    """Return how many events of a batch of `count` PutLogEvents' rejectedLogEventsInfo says were refused."""
    too_new = count - info["tooNewLogEventStartIndex"] if "tooNewLogEventStartIndex" in info else 0
    too_old = info.get("tooOldLogEventEndIndex", -1) + 1
    expired = info.get("expiredLogEventEndIndex", -1) + 1
    return min(too_new + max(too_old, expired), count)


class LogShipper:
    """Tails every collected file and puts its new lines, with persisted offsets."""

    def __init__(self, client, plan: Plan, files: list[Collected], create_groups: bool = True) -> None:
        saved = load_offsets(plan.spool_dir)
        self.client, self.spool_dir, self.create_groups = client, plan.spool_dir, create_groups
        self.retention = {f.group: f.retention_days for f in files}
        self.sources = [Source(f.key, f.local_path, f.group, f.stream, saved.get(f.key)) for f in files]
        self._streams: set[tuple[str, str]] = set()
        self._wait_until: dict[str, float] = {}  # source key or "group:NAME" -> monotonic time
        self._failures: dict[str, int] = {}
        self._last_error: dict[str, str] = {}
        self._dirty = False

    def poll(self) -> None:
        """Ship what each file has gained since the last poll, then save the offsets that moved."""
        for source in self.sources:
            if time.monotonic() >= max(self._wait_until.get(source.key, 0), self._wait_until.get(source.group, 0)):
                self._ship(source)
        self.save()

    def save(self) -> None:
        """Persist the offsets if any moved."""
        if self._dirty:
            save_json(self.spool_dir / OFFSETS_FILE, {s.key: s.state() for s in self.sources})
            self._dirty = False

    def close(self) -> None:
        """Save the offsets and close every file."""
        self.save()
        for source in self.sources:
            source.close()

    def status(self) -> dict[str, dict]:
        """Per file: its backlog, what was dropped, and the last error."""
        return {s.key: {"path": str(s.path), "log_group": s.group, "log_stream": s.stream, "offset": s.offset,
                        "backlog_bytes": s.backlog, "dropped_events": s.dropped_events,
                        "dropped_bytes": s.dropped_bytes, "last_error": self._last_error.get(s.key, "")}
                for s in self.sources}

    def _ship(self, source: Source) -> None:
        """Read and put batches of one file until it is caught up, a put fails, or the poll's share is used."""
        shipped = 0
        while shipped < PER_POLL_BYTES:
            events = source.read()
            if not events:
                return
            for batch in batches(events):
                if not self._put(source, batch):
                    return
                source.commit(batch[-1].end)
                self._dirty = True
            shipped += sum(e.size for e in events)

    def _put(self, source: Source, batch: list[Event]) -> bool:
        """Put one batch; True if it was accepted or dropped for good (the offset may then move past it)."""
        try:
            answer = self._put_events(source, log_events(batch))
        except (ClientError, BotoCoreError) as exc:
            return self._failed(source, batch, exc)
        if refused := rejected(answer.get("rejectedLogEventsInfo") or {}, len(batch)):
            source.dropped_events += refused
            logger.warning("%s: %d events refused by PutLogEvents (too old or too new): %s", source.key, refused,
                           answer["rejectedLogEventsInfo"])
        if self._failures.pop(source.key, 0):
            logger.info("%s: shipping again to %s", source.key, source.group)
        self._last_error.pop(source.key, None)
        return True

    def _put_events(self, source: Source, events: list[dict]) -> dict:
        """Put events, creating the stream first if it is not known to exist, or if the put says it is missing."""
        self._ensure_stream(source)
        try:
            return self.client.put_log_events(logGroupName=source.group, logStreamName=source.stream,
                                              logEvents=events)
        except ClientError as exc:
            if error_code(exc) != "ResourceNotFoundException":
                raise
        self._streams.discard((source.group, source.stream))  # deleted, or the twin restarted empty
        self._ensure_stream(source)
        return self.client.put_log_events(logGroupName=source.group, logStreamName=source.stream, logEvents=events)

    def _ensure_stream(self, source: Source) -> None:
        """Create the source's log stream unless it is known to exist (and the group too, if allowed)."""
        if (source.group, source.stream) in self._streams:
            return
        try:
            self.client.create_log_stream(logGroupName=source.group, logStreamName=source.stream)
        except ClientError as exc:
            code = error_code(exc)
            if code == "ResourceNotFoundException" and self.create_groups:
                self._create_group(source.group)
                self.client.create_log_stream(logGroupName=source.group, logStreamName=source.stream)
            elif code != "ResourceAlreadyExistsException":
                raise
        self._streams.add((source.group, source.stream))

    def _create_group(self, group: str) -> None:
        """Create a log group with its entry's retention (another agent or an operator may have just made it)."""
        try:
            self.client.create_log_group(logGroupName=group)
        except ClientError as exc:
            if error_code(exc) != "ResourceAlreadyExistsException":
                raise
            return
        logger.warning("log group %s did not exist: created it", group)
        if days := self.retention.get(group):
            self.client.put_retention_policy(logGroupName=group, retentionInDays=days)

    def _failed(self, source: Source, batch: list[Event], exc: Exception) -> bool:
        """Log a failed put in one line and decide when to try again; True if the batch is dropped for good."""
        code, count = error_code(exc), self._failures.get(source.key, 0) + 1
        self._failures[source.key] = count
        self._last_error[source.key] = f"{code}: {exc}"[:300]
        if code == "InvalidParameterException":
            source.dropped_events += len(batch)
            logger.error("%s: %d events refused by PutLogEvents and dropped: %s", source.key, len(batch), exc)
            return True
        if code == "ResourceNotFoundException":
            self._streams.discard((source.group, source.stream))
            self._wait_until[source.group] = time.monotonic() + GROUP_RETRY_S
            if count == 1:
                logger.error("%s: log group %s does not exist; trying again every %.0f s", source.key,
                             source.group, GROUP_RETRY_S)
            return False
        self._wait_until[source.key] = time.monotonic() + RETRY_S[min(count, len(RETRY_S)) - 1]
        if count == 1 or count % 60 == 0:
            logger.warning("%s: put to %s failed (%s), %d bytes wait in the file: %s", source.key, source.group,
                           code, source.backlog, str(exc).splitlines()[0][:200])
        return False
