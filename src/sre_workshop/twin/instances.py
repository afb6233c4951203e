"""The stack's instances: which local components each EC2 instance of the template stands for, and where the
files it has at its AWS paths live in the local stack's state directory."""

from __future__ import annotations

from pathlib import Path

from ..settings import Settings

# The twin's CloudFormation stack (the tool's default stack name on AWS).
STACK_NAME = "sre-workshop"
# Logical id of each instance in the template -> the local components that run on it.
COMPONENTS = {"NginxInstance1": ("nginx",), "AppServerInstance1": ("sre-app",), "CRMAppInstance": ("crm-app",)}
# Each instance's logs at their AWS paths -> the file in the local stack's logs/ that stands for it.
LOGS = {
    "NginxInstance1": {"/var/log/nginx/access.log": "nginx-access.log", "/var/log/nginx/error.log": "nginx-error.log"},
    "AppServerInstance1": {"/var/log/sre-app/app.log": "sre-app.json.log"},
    "CRMAppInstance": {"/var/log/crm-app/app.log": "crm-app.json.log"},
}


def files(settings: Settings) -> dict[str, dict[str, Path]]:
    """Return, per instance logical id, its AWS paths -> the local files that stand for them."""
    found = {logical: {aws: settings.logs_dir / name for aws, name in logs.items()} for logical, logs in LOGS.items()}
    found["NginxInstance1"]["/etc/nginx/nginx.conf"] = settings.run_dir / "nginx.conf"
    return found


def instance_of(component: str) -> str | None:
    """Return the logical id of the instance a component runs on, or None (a managed service)."""
    return next((logical for logical, names in COMPONENTS.items() if component in names), None)
