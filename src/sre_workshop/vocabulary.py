"""The names that faults' ground truth, doctor's findings and scenarios' scores share.

Components are the names `sre-workshop status` uses, plus the two AWS-side things a fault can break that
are not processes: the instances' IAM role and the security groups. Every component sits in one layer.
A category says what kind of breakage it is; a diagnosis is scored on the component and the category.
"""

from __future__ import annotations

# component -> layer
COMPONENTS: dict[str, str] = {
    "public-alb": "edge",
    "nginx": "web",
    "private-alb": "app",
    "sre-app": "app",
    "crm-app": "app",
    "dynamodb-endpoint": "data",
    "dynamodb": "data",
    "iam-role": "security",
    "security-groups": "network",
}

LAYERS: dict[str, str] = {
    "edge": "the public load balancer: what users reach",
    "web": "the nginx web tier",
    "app": "the private load balancer and the application servers",
    "data": "DynamoDB: its endpoint and tables",
    "security": "identity and permissions (the instances' IAM role)",
    "network": "reachability between tiers (security groups)",
}

CATEGORIES: dict[str, str] = {
    "memory": "memory grows until something gives (a leak)",
    "cpu": "CPU saturated",
    "latency": "answers are slow",
    "errors": "a share of requests fail with server errors",
    "health-check": "the health check fails while the process runs",
    "crash": "a process is gone",
    "config": "a wrong configuration was deployed",
    "throttling": "a dependency refuses requests for capacity",
    "permissions": "a dependency refuses requests for lack of permission",
    "network": "connections between tiers are dropped",
}


def layer_of(component: str) -> str:
    """Return the layer a component sits in."""
    return COMPONENTS[component]
