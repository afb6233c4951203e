"""The names that faults' ground truth, doctor's findings and scenarios' scores share.

Components are the names `sre-workshop status` uses, plus the two AWS-side things a fault can break that
are not processes: the instances' IAM role and the security groups. Every component sits in one layer.
A category says what kind of breakage it is; a diagnosis is scored on the component and the category.

Breakage by class, and how doctor names it (component, category):
    a process gone (killed, exited)                          the component, crash
    a process alive but answering nothing (stopped by         the component, hang (a frozen engine: dynamodb,
      SIGSTOP, deadlocked)                                      hang; the apps stuck behind it are consequences)
    a resource deleted (a table the template defines)         dynamodb, missing-resource (not config: no
                                                                setting changed; `sre-workshop restore TABLE`)
    a log group the template defines deleted                  cloudwatch-logs, missing-resource (the agent
                                                                creates it again at its next line; what it
                                                                held is gone)
    a setting that points elsewhere (a table name, the        the app, config (compared with what the
      region, the endpoint, the credentials)                    template's user data writes)
    a resource used up (disk where logs or data go, file      the component whose resource it is, exhaustion
      descriptors, an app's workers all held, nginx's
      worker_connections)
    a target taken out of its load balancer (deregistered,    the load balancer, out-of-service (the target
      draining, in maintenance)                                 runs and passes its checks)
    a target failing its checks                               the target, health-check
    a slow dependency (answers, late)                         the dependency, latency
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
    # Locally, the processes that stand in for AWS itself: the API twin and the agent shipping logs and metrics.
    "aws-api": "control",
    "cloudwatch-agent": "control",
    # CloudWatch Logs' log groups, which the template defines: a resource in both worlds, not a process.
    "cloudwatch-logs": "control",
}

LAYERS: dict[str, str] = {
    "edge": "the public load balancer: what users reach",
    "web": "the nginx web tier",
    "app": "the private load balancer and the application servers",
    "data": "DynamoDB: its endpoint and tables",
    "security": "identity and permissions (the instances' IAM role)",
    "network": "reachability between tiers (security groups)",
    "control": "the AWS API, the agent that ships logs and metrics (locally, processes of the stack) and the log "
               "groups it ships to",
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
    "hang": "a process is alive but answers nothing (stopped, deadlocked, stuck)",
    "missing-resource": "a resource the template defines is gone (a table, an index, a log group)",
    "exhaustion": "a finite resource is used up (disk, file descriptors, a worker or connection pool)",
    "out-of-service": "a target was taken out of its load balancer (deregistered, draining, in maintenance)",
}


def layer_of(component: str) -> str:
    """Return the layer a component sits in."""
    return COMPONENTS[component]
