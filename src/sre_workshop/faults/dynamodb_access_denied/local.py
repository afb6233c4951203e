"""dynamodb-access-denied on the local stack: the DynamoDB endpoint denies every request on the five tables.

HAProxy answers them itself with AccessDeniedException and the message AWS gives for an explicit Deny,
filled in per request: the action from the X-Amz-Target header, the table from the JSON body (its
TableName, or a RequestItems key of a batch call). Requests that name no table (ListTables) pass, as
the Deny names only the tables.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ...errors import ComponentFailed
from ...local.control import ENDPOINT, dynamodb_error_rules
from ...settings import TABLE_NAMES
from ..contract import LocalCtl
from ..model import NotYet

OWNER = "dynamodb-access-denied"
ERROR = "AccessDeniedException"
ACCOUNT = "123456789012"  # the emulator's account
# The instance role's session, as STS names it on the instance (the local instance id is made up).
PRINCIPAL = f"arn:aws:sts::{ACCOUNT}:assumed-role/EC2InstanceRole/i-0local"


def rules(region: str) -> list[str]:
    """Return the endpoint's rules: name the table a request concerns, then deny it."""
    found = [f'http-request set-var(txn.denied_table) str({table}) if {{ req.body -m sub "\\"{table}\\"" }}'
             for table in TABLE_NAMES.values()]
    message = (f"User: {PRINCIPAL} is not authorized to perform: dynamodb:%[req.hdr(x-amz-target),field(2,.)] "
               f"on resource: arn:aws:dynamodb:{region}:{ACCOUNT}:table/%[var(txn.denied_table)] "
               "with an explicit deny in an identity-based policy")
    body = {"__type": f"com.amazon.coral.service#{ERROR}", "Message": message}
    return [*found, *dynamodb_error_rules("dynamodb_access_denied", body, "{ var(txn.denied_table) -m found }")]


def snapshot(ctl: LocalCtl, params: dict[str, Any]) -> dict[str, Any]:
    """Refuse if the endpoint is down; save that it lets every request through (clear drops the rules)."""
    if not ctl.running(ENDPOINT):
        raise ComponentFailed(f"{ENDPOINT} is not running")
    return {ENDPOINT: "no access rules"}


def inject(ctl: LocalCtl, params: dict[str, Any]) -> None:
    """Add the deny rules to the endpoint, before any other fault's (AWS checks permissions before
    capacity), and restart it."""
    ctl.set_endpoint_rules(OWNER, rules(ctl.settings.region), first=True)


def verify(ctl: LocalCtl, params: dict[str, Any]) -> str:
    """Evidence: a read of the metrics table through the endpoint is denied with AWS's message."""
    table = TABLE_NAMES["METRICS_TABLE"]
    try:
        ctl.endpoint_client().get_item(TableName=table, Key={"metric_id": {"S": "fault-probe"},
                                                             "timestamp": {"N": "0"}})
    except ClientError as exc:
        error = exc.response["Error"]
        if error["Code"] == ERROR:
            return f"GetItem on {table} through {ENDPOINT}: {error['Code']}: {error['Message']}"
        raise NotYet(f"GetItem failed with {error['Code']}") from None
    except BotoCoreError as exc:
        raise NotYet(f"{ENDPOINT} does not answer: {exc}") from None
    raise NotYet(f"GetItem on {table} was allowed")


def active(ctl: LocalCtl, params: dict[str, Any]) -> bool:
    """True while the endpoint's config carries the deny rules."""
    return ctl.endpoint_rules_active(OWNER)


def clear(ctl: LocalCtl, params: dict[str, Any], saved: dict[str, Any]) -> None:
    """Drop the rules; restart the endpoint if it runs."""
    ctl.clear_endpoint_rules(OWNER)
