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
| CRM_MAX_ACTIVE    | 4                    | requests a worker runs at once (the rest queue)|
| CRM_MAX_WAITING   | 56                   | requests a worker queues before it answers 503 |
| CRM_QUEUE_SECONDS | 2.0                  | longest wait in that queue before a 503        |
| CRM_THREADS       | 64                   | threads per worker (read by gunicorn.conf.py)  |

CRM_MAX_ACTIVE + CRM_MAX_WAITING must stay below CRM_THREADS, so that a thread is always free for the
load balancer's health check and for answering 503 at once.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from appkit.envconfig import ConfigError as ConfigError  # gunicorn.conf.py catches it from here
from appkit.envconfig import number


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
    max_active: int = 4
    max_waiting: int = 56
    queue_seconds: float = 2.0

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
            max_active=int(number(env, "CRM_MAX_ACTIVE", cls.max_active, minimum=1)),
            max_waiting=int(number(env, "CRM_MAX_WAITING", cls.max_waiting, minimum=0)),
            queue_seconds=number(env, "CRM_QUEUE_SECONDS", cls.queue_seconds, minimum=0),
        )

