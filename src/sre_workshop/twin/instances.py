"""The stack's instances: which local components each EC2 instance of the template stands for, and where the
files it has at its AWS paths live in the local stack's state directory."""

from __future__ import annotations

from pathlib import Path

from ..settings import Settings

# Logical id of each instance in the template -> the local components that run on it.
COMPONENTS = {"NginxInstance1": ("nginx",), "AppServerInstance1": ("sre-app",), "CRMAppInstance": ("crm-app",)}
# The instance type's memory (t3.micro, the template's default): what mem_used_percent is a share of.
MEMORY_MIB = 1024
VCPUS = 2
# Logical id of each target group -> the local load balancer (HAProxy) that serves it.
TARGET_GROUP_ALBS = {"PublicALBTargetGroup": "public-alb", "CRMAppTargetGroup": "public-alb",
                     "PrivateALBTargetGroup": "private-alb"}
LOAD_BALANCERS = {"PublicALB": "public-alb", "PrivateALB": "private-alb"}


def files(settings: Settings) -> dict[str, dict[str, Path]]:
    """Return, per instance logical id, its AWS paths -> the local files that stand for them."""
    logs, run = settings.logs_dir, settings.run_dir
    return {
        "NginxInstance1": {"/var/log/nginx/access.log": logs / "nginx-access.log",
                           "/var/log/nginx/error.log": logs / "nginx-error.log",
                           "/etc/nginx/nginx.conf": run / "nginx.conf"},
        "AppServerInstance1": {"/var/log/sre-app/app.log": logs / "sre-app.json.log"},
        "CRMAppInstance": {"/var/log/crm-app/app.log": logs / "crm-app.json.log"},
    }


def instance_of(component: str) -> str | None:
    """Return the logical id of the instance a component runs on, or None (a managed service)."""
    return next((logical for logical, names in COMPONENTS.items() if component in names), None)
