"""The tool's settings: where things are, which ports the local stack uses, and the table names.

Read from the environment in this one place:

| variable                   | default                        | meaning                                   |
|----------------------------|--------------------------------|-------------------------------------------|
| SRE_WORKSHOP_STATE_DIR     | ./.sre-workshop                | all local state: pids, logs, data, configs |
| SRE_WORKSHOP_PORT_OFFSET   | 0                              | added to every local port (parallel stacks);|
|                            |                                | keep ports below 32768, the kernel's range  |
|                            |                                | for client sockets                          |
| SRE_WORKSHOP_HOME          | the checkout holding this file | where apps/ and infra/ are                 |
| SRE_WORKSHOP_METRICS_PERIOD| 60                             | seconds per datapoint of the twin's metrics |
|                            |                                | (CloudWatch's basic monitoring; 10 for fast |
|                            |                                | local work; `up --metrics-period`)          |
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

LOOPBACK = "127.0.0.1"

# Base local ports. The public ALB's two listeners stand for :80 and :8080 of the AWS ALB.
BASE_PORTS = {
    "public-alb": 8000,        # -> nginx target group (AWS: listener 80)
    "public-alb-crm": 8080,    # -> CRM target group (AWS: listener 8080)
    "nginx": 8001,
    "private-alb": 8002,
    "sre-app": 8003,           # AWS: 8080 on its own instance
    "crm-app": 8004,           # AWS: 8080 on its own instance
    "dynamodb-endpoint": 8005, # what the apps call: a proxy where faults can be injected
    "dynamodb": 8006,          # the emulator itself
    "aws-api": 8007,           # the AWS API twin: AWS_ENDPOINT_URL for the aws CLI, boto3 and agents
    "aws-api-scoped": 8009,    # the twin for IAM users' own credentials, their policies enforced (an evaluated agent)
}

# Table names as the apps see them (environment variables of the spec).
TABLE_NAMES = {
    "METRICS_TABLE": "ApplicationMetricsTable",
    "CUSTOMERS_TABLE": "CRMCustomersTable",
    "DEALS_TABLE": "CRMDealsTable",
    "ACTIVITIES_TABLE": "CRMActivitiesTable",
    "INCIDENTS_TABLE": "IncidentHistoryTable",
}


@dataclass(frozen=True)
class HealthCheck:
    """Target-group health check knobs, named as in CloudFormation (AWS: 30 s, 5 healthy, 3 unhealthy)."""

    interval_seconds: float = 1.0
    healthy_threshold: int = 2
    unhealthy_threshold: int = 3
    timeout_seconds: float = 1.0
    path: str = "/health"


@dataclass(frozen=True)
class Settings:
    """Everything the tool needs to know about this machine and its local stack."""

    home: Path
    state_dir: Path
    port_offset: int = 0
    region: str = "us-east-1"
    dynamodb_endpoint: str | None = None  # an external DynamoDB-compatible endpoint instead of an engine
    engine: str = "dynalite"  # the local DynamoDB engine (local/engines.py): dynalite or moto
    metrics_period: int = 60  # seconds per datapoint of the twin's metrics (CloudWatch basic monitoring)
    health_check: HealthCheck = field(default_factory=HealthCheck)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides) -> Settings:
        """Build settings from the environment, with keyword overrides (from CLI options) on top."""
        env = os.environ if env is None else env
        home = Path(env.get("SRE_WORKSHOP_HOME") or Path(__file__).resolve().parents[2])
        values = {
            "home": home,
            "state_dir": Path(env.get("SRE_WORKSHOP_STATE_DIR") or Path.cwd() / ".sre-workshop").absolute(),
            "port_offset": int(env.get("SRE_WORKSHOP_PORT_OFFSET") or 0),
            "metrics_period": int(env.get("SRE_WORKSHOP_METRICS_PERIOD") or 60),
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    def port(self, name: str) -> int:
        """Return the local port of a listener, offset for this stack."""
        return BASE_PORTS[name] + self.port_offset

    def url(self, name: str) -> str:
        """Return the local http URL of a listener."""
        return f"http://{LOOPBACK}:{self.port(name)}"

    @property
    def apps_dir(self) -> Path:
        """Where the two apps' packages live."""
        return self.home / "apps"

    @property
    def infra_dir(self) -> Path:
        """Where nginx, HAProxy and CloudFormation files live."""
        return self.home / "infra"

    @property
    def logs_dir(self) -> Path:
        """Every component's log files."""
        return self.state_dir / "logs"

    @property
    def run_dir(self) -> Path:
        """Pid records, sockets and rendered configs."""
        return self.state_dir / "run"

    @property
    def examiner_dir(self) -> Path:
        """The examiner's records: what faults saved and changed, a running lab. Private to the user (0700)
        and hidden in every instance's view (twin/hostview.py), so that nothing a learner or an examinee is
        pointed at names the fault."""
        return self.state_dir / "examiner"

    @property
    def data_dir(self) -> Path:
        """Persistent data: the DynamoDB snapshot."""
        return self.state_dir / "data"

    @property
    def endpoints(self) -> dict[str, str]:
        """The public entry points, as `status --json` reports them."""
        return {"app": self.url("public-alb"), "crm": self.url("public-alb-crm")}
