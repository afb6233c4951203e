"""dynamodb-throttling on the local stack: the DynamoDB endpoint throttles a share of the CRM's requests.

HAProxy answers them itself with DynamoDB's ProvisionedThroughputExceededException; the rest reach the
emulator. A request concerns the CRM when its JSON body names one of the CRM tables (TableName, or a
RequestItems key of a batch call).
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ...errors import ComponentFailed
from ...local.control import ENDPOINT, dynamodb_error_rules
from ...settings import TABLE_NAMES
from ..contract import LocalCtl
from ..model import NotYet

OWNER = "dynamodb-throttling"
ERROR = "ProvisionedThroughputExceededException"
BODY = {"__type": f"com.amazonaws.dynamodb.v20120810#{ERROR}",
        "message": "The level of configured provisioned throughput for the table was exceeded. "
                   "Consider increasing your provisioning level with the UpdateTable API."}
CRM_TABLES = [TABLE_NAMES[k] for k in ("CUSTOMERS_TABLE", "DEALS_TABLE", "ACTIVITIES_TABLE")]
# How many reads verify tries per call before it reports "not yet" (the runner calls it again).
PROBES = 20


def rules(fraction: float) -> list[str]:
    """Return the endpoint's rules: a CRM request, drawn with probability `fraction`, is throttled."""
    names = " ".join(f'"\\"{table}\\""' for table in CRM_TABLES)  # the quoted name, as JSON has it
    per_mille = max(1, round(fraction * 1000))
    return dynamodb_error_rules("dynamodb_throttling", BODY,
                                f"{{ req.body -m sub {names} }} {{ rand(1000) lt {per_mille} }}")


def snapshot(ctl: LocalCtl, params: dict[str, Any]) -> dict[str, Any]:
    """Refuse if the endpoint is down; save that it answers without throttling (clear drops the rules)."""
    if not ctl.running(ENDPOINT):
        raise ComponentFailed(f"{ENDPOINT} is not running")
    return {ENDPOINT: "no throttling rules"}


def inject(ctl: LocalCtl, params: dict[str, Any]) -> None:
    """Add the throttling rules to the endpoint and restart it."""
    ctl.set_endpoint_rules(OWNER, rules(params["fraction"]))


def verify(ctl: LocalCtl, params: dict[str, Any]) -> str:
    """Evidence: a read of a CRM table through the endpoint is refused with the throttling error."""
    client = ctl.endpoint_client()
    for attempt in range(1, PROBES + 1):
        try:
            client.get_item(TableName=CRM_TABLES[0], Key={"customer_id": {"S": "fault-probe"}})
        except ClientError as exc:
            error = exc.response["Error"]
            if error["Code"] == ERROR:
                status = exc.response["ResponseMetadata"]["HTTPStatusCode"]
                return f"GetItem on {CRM_TABLES[0]} through {ENDPOINT}: {error['Code']} (HTTP {status}) " \
                       f"at attempt {attempt}"
            raise NotYet(f"GetItem failed with {error['Code']}") from None
        except BotoCoreError as exc:
            raise NotYet(f"{ENDPOINT} does not answer: {exc}") from None
    raise NotYet(f"{PROBES} reads of {CRM_TABLES[0]} were not throttled")


def active(ctl: LocalCtl, params: dict[str, Any]) -> bool:
    """True while the endpoint's config carries the throttling rules."""
    return ctl.endpoint_rules_active(OWNER)


def clear(ctl: LocalCtl, params: dict[str, Any], saved: dict[str, Any]) -> None:
    """Drop the rules; restart the endpoint if it runs."""
    ctl.clear_endpoint_rules(OWNER)
