"""The reference agent's own rules: a diagnosis from raw signals, and the repair an on-call engineer would make.

No doctor here: check_health, get_target_health, get_logs and get_metrics say what is wrong; the repair
is an operator action (service, run_command on an instance, aws_call with the agent's own IAM identity).
Each rule is a plain function of what was observed; the first that matches is the diagnosis. They are
written from the symptoms a person would look at, in the order one would look: a component down, an
error the apps' logs name, nginx's own errors and config, the load balancers' health-check reasons, then
the app's latency, memory, CPU and error rate.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

Call = Callable[[str, dict[str, Any]], Awaitable[dict[str, Any]]]  # (tool, arguments) -> answer
WINDOW_S = 30.0
LOG_CHECKS = {  # name -> (log groups, pattern)
    "denied": (("crm-app", "sre-app"), r"AccessDenied"),
    "throttled": (("crm-app", "sre-app"), r"ProvisionedThroughputExceeded|ThrottlingException"),
    "no_table": (("crm-app", "sre-app"), r"ResourceNotFoundException|non-existent table|resource not found"),
    "upstream_timeout": (("nginx-error",), r"upstream timed out"),
    "upstream_refused": (("nginx-error",), r"Connection refused\) while connecting to upstream"),
    "app_errors": (("sre-app", "crm-app"), r"Traceback|\"ERROR\"|level.: .ERROR"),
}
APP_TABLES = ("ApplicationMetricsTable", "CRMCustomersTable", "CRMDealsTable", "CRMActivitiesTable")
SLOW_MS, LEAK_MB, BUSY_CPU = 900.0, 40.0, 20.0


@dataclass
class Observed:
    """What one look at the raw signals found."""

    health: dict[str, Any]
    targets: list[dict[str, Any]]
    logs: dict[str, dict[str, int]] = field(default_factory=dict)  # check -> group -> matched lines
    metrics: dict[str, float] = field(default_factory=dict)
    nginx_conf: str = ""  # /etc/nginx/nginx.conf on the nginx instance, as Run Command reads it
    private_alb_ports: list[int] = field(default_factory=list)  # where the private load balancer listens

    def nginx_wrong(self) -> str | None:
        """What is wrong in nginx.conf: timeouts of a few seconds, or an upstream that is not the private ALB."""
        if re.search(r"proxy_(send|read)_timeout\s+[1-9]s;", self.nginx_conf):  # connect is 5 s by design
            return "nginx's proxy send/read timeouts are a few seconds"
        target = re.search(r'set \$private_alb "127\.0\.0\.1:(\d+)";', self.nginx_conf)
        if target and self.private_alb_ports and int(target.group(1)) not in self.private_alb_ports:
            return f"nginx's upstream is port {target.group(1)}, not the private load balancer's"
        return None

    def down(self) -> list[str]:
        """Components that are not running."""
        return [c["name"] for c in self.health.get("components", []) if c.get("state") != "running"]

    def hits(self, check: str) -> dict[str, int]:
        """The groups where a log check matched, busiest first."""
        found = {g: n for g, n in self.logs.get(check, {}).items() if n}
        return dict(sorted(found.items(), key=lambda kv: -kv[1]))


async def observe(call: Call) -> Observed:
    """Read health, target health, the log checks and the app's metrics once."""
    health = await call("check_health", {})
    targets = (await call("get_target_health", {})).get("targets", [])
    seen = Observed(health, targets)
    architecture = await call("get_architecture", {})
    private = next((c for c in architecture.get("components", []) if c.get("name") == "private-alb"), {})
    seen.private_alb_ports = list(private.get("ports") or [])
    seen.nginx_conf = (await shell(call, "sre-workshop-nginx", "cat /etc/nginx/nginx.conf")).get("stdout", "")
    for check, (groups, pattern) in LOG_CHECKS.items():
        for group in groups:
            answer = await call("get_logs", {"group": group, "pattern": pattern, "window_s": WINDOW_S, "limit": 1})
            seen.logs.setdefault(check, {})[group] = int(answer.get("matched", 0) or 0)
    for metric, statistic in (("sre_app_latency_p99_ms", "maximum"), ("sre_app_leak_mb", "last"),
                              ("errors_5xx_per_s", "average")):
        answer = await call("get_metrics", {"name": metric, "window_s": WINDOW_S, "statistic": statistic})
        values = [s.get("value") or 0.0 for s in (answer.get("series") or {}).values()]
        seen.metrics[metric] = max(values, default=0.0)
    return seen


def unhealthy(seen: Observed, reason: str) -> list[str]:
    """Components whose targets are unhealthy with a health-check reason matching `reason`."""
    return [t.get("component") or t.get("target", "") for t in seen.targets
            if t.get("state") == "unhealthy" and re.search(reason, str(t.get("reason", "")), re.IGNORECASE)]


def diagnose(seen: Observed) -> tuple[str, str, str] | None:
    """Return (component, category, why) from what was seen, or None if nothing looks wrong."""
    if seen.down():
        return seen.down()[0], "crash", f"{seen.down()[0]} is not running"
    for check, component, category in (("denied", "iam-role", "permissions"), ("throttled", "dynamodb", "throttling")):
        if seen.hits(check):
            return component, category, f"{check} in {', '.join(seen.hits(check))}'s log"
    if seen.hits("no_table"):
        app = next(iter(seen.hits("no_table")))
        return app, "config", f"{app} names a table that does not exist"
    if seen.nginx_wrong():
        return "nginx", "config", seen.nginx_wrong() or ""
    if unhealthy(seen, r"timeout|L4TOUT|timed out"):
        return "security-groups", "network", f"connections to {unhealthy(seen, 'timeout|L4TOUT')[0]} time out"
    if unhealthy(seen, r"L7STS|503|wrong status"):
        return unhealthy(seen, r"L7STS|503|wrong status")[0], "health-check", "its health check fails"
    if seen.metrics.get("sre_app_latency_p99_ms", 0) >= SLOW_MS:
        return "sre-app", "latency", f"sre-app p99 {seen.metrics['sre_app_latency_p99_ms']:.0f} ms"
    if seen.metrics.get("sre_app_leak_mb", 0) >= LEAK_MB:
        return "sre-app", "memory", f"sre-app retains {seen.metrics['sre_app_leak_mb']:.0f} MB per worker"
    if seen.hits("app_errors") and seen.metrics.get("errors_5xx_per_s", 0) > 0:
        app = next(iter(seen.hits("app_errors")))
        return app, "errors", f"{app} logs errors and the entry point answers 5xx"
    return None


# --- repairs ---------------------------------------------------------------------------------------------

async def aws(call: Call, service: str, operation: str, **parameters: Any) -> dict[str, Any]:
    """Make one AWS call with the agent's identity; raise on a refusal."""
    answer = await call("aws_call", {"service": service, "operation": operation, "parameters": parameters})
    if "error" in answer:
        raise RuntimeError(f"{service} {operation}: {answer.get('message')}")
    return answer


async def shell(call: Call, instance: str, *commands: str) -> dict[str, Any]:
    """Run commands on an instance; return the invocation."""
    return await call("run_command", {"instance": instance, "commands": list(commands), "timeout_s": 60})


async def role_name(call: Call) -> str:
    """Return the instances' role, from the stack's resources."""
    for stack in (await aws(call, "cloudformation", "DescribeStacks"))["Stacks"]:
        resources = await aws(call, "cloudformation", "DescribeStackResources", StackName=stack["StackName"])
        for resource in resources["StackResources"]:
            if resource.get("LogicalResourceId") == "EC2InstanceRole":
                return resource["PhysicalResourceId"]
    raise RuntimeError("no EC2InstanceRole in the stack's resources")


async def allow_dynamodb(call: Call) -> str:
    """Drop the Deny statements of the role's DynamoDB policy (an Allow of the tables if none is left)."""
    role = await role_name(call)
    names = (await aws(call, "iam", "ListRolePolicies", RoleName=role))["PolicyNames"]
    for name in names:
        document = (await aws(call, "iam", "GetRolePolicy", RoleName=role, PolicyName=name))["PolicyDocument"]
        document = json.loads(document) if isinstance(document, str) else document
        statements = document.get("Statement", [])
        statements = [statements] if isinstance(statements, dict) else statements
        kept = [s for s in statements if s.get("Effect") != "Deny"]
        if len(kept) == len(statements):
            continue
        kept = kept or [{"Effect": "Allow", "Action": "dynamodb:*", "Resource": "arn:aws:dynamodb:*:*:table/*"}]
        await aws(call, "iam", "PutRolePolicy", RoleName=role, PolicyName=name,
                  PolicyDocument=json.dumps({**document, "Statement": kept}))
        return f"iam put-role-policy {role} {name} without its Deny"
    return "no Deny in the role's policies"


async def on_demand(call: Call) -> str:
    """Switch every provisioned app table to on-demand."""
    switched = []
    for table in APP_TABLES:
        found = (await aws(call, "dynamodb", "DescribeTable", TableName=table))["Table"]
        if (found.get("BillingModeSummary") or {}).get("BillingMode", "PROVISIONED") == "PROVISIONED":
            await aws(call, "dynamodb", "UpdateTable", TableName=table, BillingMode="PAY_PER_REQUEST")
            switched.append(table)
    return f"dynamodb update-table --billing-mode PAY_PER_REQUEST: {', '.join(switched) or 'none needed'}"


async def fix_env_tables(call: Call, app: str) -> str:
    """Point the app's table settings at tables that exist again, and restart it."""
    instance = {"crm-app": "sre-workshop-crm-app", "sre-app": "sre-workshop-app"}[app]
    tables = (await aws(call, "dynamodb", "ListTables"))["TableNames"]
    env = (await shell(call, instance, f"cat /etc/sre-workshop/{app}.env"))["stdout"]
    edits = []
    for key, value in re.findall(r"^(\w*TABLE\w*)=(.*)$", env, re.MULTILINE):
        if value not in tables:
            right = next((t for t in tables if value.startswith(t) or t.startswith(value)), None)
            if right:
                edits.append(f"sed -i 's/^{key}=.*/{key}={right}/' /etc/sre-workshop/{app}.env")
    if not edits:
        return f"{app}'s table settings name existing tables"
    await shell(call, instance, *edits, f"systemctl restart {app}")
    return f"{app}.env: {len(edits)} table setting(s) put back; restarted {app}"


async def fix_nginx(call: Call) -> str:
    """Give nginx its timeouts back and point its upstream at the private load balancer; reload it."""
    seen = await observe(call)
    conf, ports = seen.nginx_conf, seen.private_alb_ports
    edits = []
    if re.search(r"proxy_(send|read)_timeout\s+[1-9]s;", conf):
        edits.append(r"sed -i -E 's/(proxy_(send|read)_timeout) [0-9]+s;/\1 60s;/' /etc/nginx/nginx.conf")
    target = re.search(r'set \$private_alb "127\.0\.0\.1:(\d+)";', conf)
    if target and ports and int(target.group(1)) not in ports:
        edits.append(f"sed -i -E 's/(set \\$private_alb \"127\\.0\\.0\\.1:)[0-9]+/\\1{ports[0]}/' "
                     "/etc/nginx/nginx.conf")
    if not edits:
        return "nginx.conf looks right"
    await shell(call, "sre-workshop-nginx", *edits, "nginx -t 2>/dev/null; systemctl reload nginx")
    return f"nginx.conf: {len(edits)} edit(s), reloaded"


def template_of(body: Any) -> dict[str, Any]:
    """Return a template body (GetTemplate's dict, or JSON or YAML text with CloudFormation's tags) as a dict."""
    if isinstance(body, dict):
        return body
    try:
        return json.loads(body)
    except ValueError:
        import yaml

        class Loader(yaml.SafeLoader):
            """YAML with !Ref and the other short forms read as {"Ref": ...} / {"Fn::X": ...}."""

        def tagged(loader: yaml.SafeLoader, tag: str, node: yaml.Node) -> dict[str, Any]:
            value = (loader.construct_scalar(node) if isinstance(node, yaml.ScalarNode)
                     else loader.construct_sequence(node) if isinstance(node, yaml.SequenceNode)
                     else loader.construct_mapping(node))
            return {"Ref" if tag == "Ref" else f"Fn::{tag}": value}

        Loader.add_multi_constructor("!", tagged)
        return yaml.load(body, Loader=Loader)  # noqa: S506 - a SafeLoader subclass


async def restore_ingress(call: Call) -> str:
    """Authorize every ingress rule of the template's chain that a security group lacks now."""
    stack = (await aws(call, "cloudformation", "DescribeStacks"))["Stacks"][0]["StackName"]
    template = template_of((await aws(call, "cloudformation", "GetTemplate", StackName=stack))["TemplateBody"])
    resources = (await aws(call, "cloudformation", "DescribeStackResources", StackName=stack))["StackResources"]
    physical = {r.get("LogicalResourceId"): r.get("PhysicalResourceId") for r in resources}
    groups = {g["GroupId"]: g for g in (await aws(call, "ec2", "DescribeSecurityGroups"))["SecurityGroups"]}
    done = []
    for name, resource in template.get("Resources", {}).items():
        rule = resource.get("Properties", {})
        if resource.get("Type") != "AWS::EC2::SecurityGroupIngress":
            continue
        group = physical.get((rule.get("GroupId") or {}).get("Ref"))
        source = physical.get((rule.get("SourceSecurityGroupId") or {}).get("Ref"))
        if group not in groups or not source:
            continue
        port = int(rule["FromPort"])
        if any(p.get("FromPort") == port and any(u.get("GroupId") == source for u in p.get("UserIdGroupPairs", []))
               for p in groups[group].get("IpPermissions", [])):
            continue
        await aws(call, "ec2", "AuthorizeSecurityGroupIngress", GroupId=group, IpPermissions=[
            {"IpProtocol": rule.get("IpProtocol", "tcp"), "FromPort": port, "ToPort": int(rule["ToPort"]),
             "UserIdGroupPairs": [{"GroupId": source, "Description": rule.get("Description", name)}]}])
        done.append(f"{group} tcp/{port} from {source}")
    return "ec2 authorize-security-group-ingress: " + ("; ".join(done) or "every rule of the template is there")


async def repair(call: Call, component: str, category: str) -> list[str]:
    """Take the repair an engineer would for the diagnosis; return what was done."""
    if category == "crash":
        await call("service", {"action": "start", "name": component})
        return [f"service start {component}"]
    actions: dict[tuple[str, str], Callable[[], Awaitable[str]]] = {
        ("iam-role", "permissions"): lambda: allow_dynamodb(call),
        ("dynamodb", "throttling"): lambda: on_demand(call),
        ("crm-app", "config"): lambda: fix_env_tables(call, "crm-app"),
        ("sre-app", "config"): lambda: fix_env_tables(call, "sre-app"),
        ("nginx", "config"): lambda: fix_nginx(call),
        ("security-groups", "network"): lambda: restore_ingress(call),
    }
    if (component, category) in actions:
        return [await actions[(component, category)]()]
    if component == "sre-app" and category in ("memory", "health-check"):
        await call("service", {"action": "restart", "name": "sre-app"})
        return ["service restart sre-app"]
    return []
