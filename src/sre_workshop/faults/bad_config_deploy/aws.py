"""bad-config-deploy on AWS: one table setting of /etc/sre-workshop/crm-app.env changed, crm-app restarted.

Only the changed line is saved with the incident, never the whole file: it holds the fault-control token.
"""

from __future__ import annotations

from typing import Any

from ...aws.control import ENV_FILES
from ...aws.ssm import script, shell
from ...errors import AwsError, ComponentFailed
from ..contract import AwsCtl
from ..model import NotYet

APP = "crm-app"
# What the bad deploy sets: the right name with a "-v2" suffix, a table that was never created.
SUFFIX = "-v2"
PROBES = {"CUSTOMERS_TABLE": "/api/customers?limit=1", "DEALS_TABLE": "/api/deals?limit=1",
          "ACTIVITIES_TABLE": "/api/activities?limit=1"}
ENV_FILE = ENV_FILES[APP]
# The stack output naming each table the variable should hold.
OUTPUTS = {"CUSTOMERS_TABLE": "CustomersTableName", "DEALS_TABLE": "DealsTableName",
           "ACTIVITIES_TABLE": "ActivitiesTableName"}


def env_value(ctl: AwsCtl, variable: str) -> str | None:
    """Return the variable's value in crm-app's env file on its instance (None if it has no such line)."""
    for line in ctl.read_file(APP, ENV_FILE).decode(errors="replace").splitlines():
        name, sep, value = line.partition("=")
        if sep and name.strip() == variable:
            return value.strip()
    return None


def snapshot(ctl: AwsCtl, params: dict[str, Any]) -> dict[str, Any]:
    """Save the setting the deploy breaks (that one line only)."""
    value = env_value(ctl, params["variable"])
    if value is None:
        raise ComponentFailed(f"{ENV_FILE} on {ctl.instance(APP)} sets no {params['variable']}")
    return {"variable": params["variable"], "value": value}


def inject(ctl: AwsCtl, params: dict[str, Any]) -> None:
    """Deploy the bad setting (a table that was never created) and restart crm-app."""
    variable = params["variable"]
    wrong = ctl.outputs()[OUTPUTS[variable]] + SUFFIX
    ctl.run(APP, script("env-set.sh", ENV_FILE, variable, wrong), shell(f"systemctl restart {APP}"),
            label=f"env-set.sh {variable}, systemctl restart {APP}")


def verify(ctl: AwsCtl, params: dict[str, Any]) -> str:
    """Evidence: the CRM answers 503 where it reads that table."""
    path = PROBES[params["variable"]]
    status, _ = ctl.probe("crm", path)
    if status != 503:
        raise NotYet(f"GET {ctl.url('crm', path)} answers {status or 'nothing'}")
    return f"GET {ctl.url('crm', path)} answers 503"


def active(ctl: AwsCtl, params: dict[str, Any]) -> bool | None:
    """True while the env file holds the bad setting (a restart keeps it); None when it cannot be read."""
    variable = params["variable"]
    try:
        return env_value(ctl, variable) == ctl.outputs()[OUTPUTS[variable]] + SUFFIX
    except (AwsError, ComponentFailed):
        return None


def clear(ctl: AwsCtl, params: dict[str, Any], saved: dict[str, Any]) -> None:
    """Deploy the saved setting again and restart crm-app."""
    ctl.run(APP, script("env-set.sh", ENV_FILE, saved["variable"], saved["value"]), shell(f"systemctl restart {APP}"),
            label=f"env-set.sh {saved['variable']}, systemctl restart {APP}")
