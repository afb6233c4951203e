"""The settings that point an app at its dependency (where: region, endpoint; as whom: credentials; which
tables), as each app's running process has them, against what the template deploys in that world.

observe-host.sh reads them from the app's main process on its instance (/proc/PID/environ, as systemd's
EnvironmentFile gave them: a file edited without a restart changes nothing yet); secrets leave the instance
only as a digest, enough to tell "another secret" from the template's. The expected values are the world's
(world.py): locally the stack's app_env, on AWS the stack's region and its tables' physical names, with no
endpoint and no credentials (the instance role gives them).
"""

from __future__ import annotations

import hashlib

from ..settings import TABLE_NAMES

# Those the template does not set are drift when present (an endpoint only for DynamoDB, a session token).
POINTING = ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB",
            "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", *TABLE_NAMES)
SECRETS = ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")  # observe-host.sh prints only their digest
APP_TABLES = {"sre-app": ("METRICS_TABLE",), "crm-app": ("CUSTOMERS_TABLE", "DEALS_TABLE", "ACTIVITIES_TABLE")}


def digest(value: str) -> str:
    """A secret as it may leave an instance (observe-host.sh computes the same)."""
    return "sha256:" + hashlib.sha256(value.encode()).hexdigest()[:16]


def pointing(env: dict[str, str]) -> dict[str, str]:
    """The pointing settings of an environment, secrets as their digest."""
    return {k: digest(v) if k in SECRETS else v for k, v in env.items() if k in POINTING}


def drift(expected: dict[str, str], running: dict[str, str]) -> list[tuple[str, str, str]]:
    """Each pointing setting whose running value differs from the template's: (key, template's, running)."""
    return [(k, expected.get(k, ""), running.get(k, "")) for k in POINTING if running.get(k, "") != expected.get(k, "")]
