"""crm-app settings, read from the environment in this one place.

| variable          | default              | meaning                                        |
|-------------------|----------------------|------------------------------------------------|
| AWS_REGION        | us-east-1            | region of the CRM tables                       |
| CUSTOMERS_TABLE   | CRMCustomersTable    | customers, key customer_id                     |
| DEALS_TABLE       | CRMDealsTable        | deals, key deal_id, GSI customer-index         |
| ACTIVITIES_TABLE  | CRMActivitiesTable   | activities, key activity_id, GSI customer-index|
| AWS_ENDPOINT_URL  | (AWS)                | read by boto3 itself                           |
| LOG_FILE          | (stderr)             | JSON-lines log file for the CloudWatch agent   |
| FAULT_CONTROL_TOKEN | (unset: control is off) | token /admin/faults requires                 |
| CRM_APP_RUNTIME_DIR | (set by gunicorn.conf)  | where the workers share the fault control file |
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Settings:
    """Everything crm-app reads from its environment."""

    region: str = "us-east-1"
    customers_table: str = "CRMCustomersTable"
    deals_table: str = "CRMDealsTable"
    activities_table: str = "CRMActivitiesTable"
    log_file: str | None = None
    fault_control_token: str | None = None
    runtime_dir: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Build settings from `env` (default: os.environ)."""
        env = os.environ if env is None else env
        return cls(
            region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or cls.region,
            customers_table=env.get("CUSTOMERS_TABLE", cls.customers_table),
            deals_table=env.get("DEALS_TABLE", cls.deals_table),
            activities_table=env.get("ACTIVITIES_TABLE", cls.activities_table),
            log_file=env.get("LOG_FILE") or None,
            fault_control_token=env.get("FAULT_CONTROL_TOKEN") or None,
            runtime_dir=env.get("CRM_APP_RUNTIME_DIR") or None,
        )
