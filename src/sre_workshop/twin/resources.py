"""Create the stack's resources in the twin from infra/cloudformation/sre-workshop.yaml itself.

CloudFormation (moto's) deploys the template; what moto's CloudFormation skips is then made from the same
template through the services' own APIs, so it is validated as on AWS: the alarms (AWS::CloudWatch::Alarm),
the dashboard and the log groups' metric filters. The intrinsic functions those properties use are resolved
here from the deployed stack's resources (Ref, GetAtt, Sub, Join, If, Select, pseudo parameters).
"""

from __future__ import annotations

import json
import logging
import re
import time
from pathlib import Path
from typing import Any

from ..diagnose.aws.template import parse
from .instances import STACK_NAME

logger = logging.getLogger(__name__)

ACCOUNT = "123456789012"  # moto's default account, what every local call is made in
PARAMETERS = {"AssetsBucketName": "sre-workshop-local-assets", "ImageId": "ami-0a1b2c3d4e5f60718",
              "InstanceType": "t3.micro"}
SKIPPED_BY_MOTO = ("AWS::CloudWatch::Alarm", "AWS::CloudWatch::Dashboard", "AWS::Logs::MetricFilter")


# Bump when what `deploy` makes changes: cached deployments of an older version are not reused.
VERSION = 3


def local_template(text: str) -> dict:
    """Return the template as the twin deploys it: the same, but each table named by its logical id, as the
    local stack (and its DynamoDB engine) has always named them; on AWS CloudFormation generates the names."""
    template = parse(text)
    for logical, resource in template["Resources"].items():
        if resource["Type"] == "AWS::DynamoDB::Table":
            resource["Properties"].setdefault("TableName", logical)
    return template


def deploy(clients: Any, template_path: Path, region: str, alarm_period: int | None = None) -> dict[str, str]:
    """Deploy the template as stack `sre-workshop`, then what moto skips; return logical -> physical ids."""
    template = local_template(template_path.read_text())
    cfn = clients("cloudformation")
    cfn.create_stack(StackName=STACK_NAME, TemplateBody=json.dumps(template), Capabilities=["CAPABILITY_IAM"],
                     Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in PARAMETERS.items()],
                     Tags=[{"Key": "Project", "Value": "sre-workshop"}])
    _wait_complete(cfn)
    physical = stack_resources(cfn)
    resolver = Resolver(template, physical, clients, region)
    for logical, resource in template["Resources"].items():
        if resource["Type"] == "AWS::ElasticLoadBalancingV2::TargetGroup" and "Targets" in resource["Properties"]:
            # moto's CloudFormation creates the group but does not register its Targets
            clients("elbv2").register_targets(TargetGroupArn=physical[logical],
                                              Targets=resolver.resolve(resource["Properties"]["Targets"]))
        if resource["Type"] == "AWS::IAM::Role":
            # moto's CloudFormation keeps inline policies as Python reprs, not JSON: put them as AWS has them
            for policy in resolver.resolve(resource["Properties"].get("Policies", [])):
                clients("iam").put_role_policy(RoleName=physical[logical], PolicyName=policy["PolicyName"],
                                               PolicyDocument=json.dumps(policy["PolicyDocument"]))
        if resource["Type"] in SKIPPED_BY_MOTO:
            _create(clients, resource["Type"], logical, resolver.resolve(resource.get("Properties", {})),
                    alarm_period)
    return physical


def _wait_complete(cfn: Any, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while True:
        status = cfn.describe_stacks(StackName=STACK_NAME)["Stacks"][0]["StackStatus"]
        if status.endswith("_COMPLETE") and "ROLLBACK" not in status:
            return
        if "FAILED" in status or "ROLLBACK" in status or time.monotonic() > deadline:
            raise RuntimeError(f"deploying the template into the twin ended {status}")
        time.sleep(0.1)


def stack_resources(cfn: Any) -> dict[str, str]:
    """Return the stack's resources: logical id -> physical id."""
    pages = cfn.get_paginator("list_stack_resources").paginate(StackName=STACK_NAME)
    return {r["LogicalResourceId"]: r.get("PhysicalResourceId", "") for p in pages
            for r in p["StackResourceSummaries"]}


def _create(clients: Any, kind: str, logical: str, props: dict, alarm_period: int | None) -> None:
    """Make one resource moto's CloudFormation skips, through its service's API."""
    if kind == "AWS::Logs::MetricFilter":
        clients("logs").put_metric_filter(logGroupName=props["LogGroupName"], filterName=logical,
                                          filterPattern=props["FilterPattern"],
                                          metricTransformations=[_transformation(t) for t in
                                                                 props["MetricTransformations"]])
    elif kind == "AWS::CloudWatch::Dashboard":
        clients("cloudwatch").put_dashboard(DashboardName=props.get("DashboardName") or f"{STACK_NAME}-{logical}",
                                            DashboardBody=props["DashboardBody"])
    else:
        clients("cloudwatch").put_metric_alarm(**_alarm(logical, props, alarm_period))


def _transformation(t: dict) -> dict:
    keys = {"MetricNamespace": "metricNamespace", "MetricName": "metricName", "MetricValue": "metricValue",
            "DefaultValue": "defaultValue", "Unit": "unit", "Dimensions": "dimensions"}
    return {keys[k]: v for k, v in t.items() if k in keys}


def _alarm(logical: str, props: dict, alarm_period: int | None) -> dict:
    """Return PutMetricAlarm's arguments for a template alarm (named `<stack>-<logical id>` as CloudFormation
    names one without AlarmName), its period shortened to the local metrics period when that is shorter."""
    args = {k: v for k, v in props.items() if k not in ("AlarmActions", "OKActions", "InsufficientDataActions")}
    args.setdefault("AlarmName", f"{STACK_NAME}-{logical}")
    for action in ("AlarmActions", "OKActions", "InsufficientDataActions"):
        if props.get(action):
            args[action] = props[action]
    if alarm_period:
        if "Period" in args:
            args["Period"] = min(int(args["Period"]), alarm_period)
        for query in args.get("Metrics", []):
            if "MetricStat" in query:
                query["MetricStat"]["Period"] = min(int(query["MetricStat"]["Period"]), alarm_period)
    return args


class Resolver:
    """Resolve the intrinsic functions of a template's properties against a deployed stack."""

    def __init__(self, template: dict, physical: dict[str, str], clients: Any, region: str) -> None:
        self.template, self.physical, self.clients, self.region = template, physical, clients, region
        self.parameters = {k: str(v.get("Default", "")) for k, v in template.get("Parameters", {}).items()}
        self.parameters.update(PARAMETERS)

    def resolve(self, value: Any) -> Any:
        """Return `value` with every intrinsic function replaced by its value."""
        if isinstance(value, list):
            return [v for v in (self.resolve(v) for v in value) if v is not _NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            (key, arg), = value.items()
            function = _FUNCTIONS.get(key)
            if function:
                return function(self, arg)
        resolved = {k: self.resolve(v) for k, v in value.items()}
        return {k: v for k, v in resolved.items() if v is not _NO_VALUE}

    def ref(self, name: str) -> Any:
        """Return Ref of a resource, a parameter or a pseudo parameter."""
        pseudo = {"AWS::Region": self.region, "AWS::AccountId": ACCOUNT, "AWS::StackName": STACK_NAME,
                  "AWS::Partition": "aws", "AWS::URLSuffix": "amazonaws.com", "AWS::NoValue": _NO_VALUE}
        if name in pseudo:
            return pseudo[name]
        if name in self.parameters:
            return self.parameters[name]
        return self.physical[name]

    def get_att(self, logical: str, attribute: str) -> str:
        """Return the few attributes alarms and dashboards use."""
        if attribute in ("LoadBalancerFullName", "DNSName"):
            (lb,) = self.clients("elbv2").describe_load_balancers(LoadBalancerArns=[self.physical[logical]])[
                "LoadBalancers"]
            return lb["DNSName"] if attribute == "DNSName" else lb["LoadBalancerArn"].split(":loadbalancer/", 1)[1]
        if attribute == "TargetGroupFullName":
            return self.physical[logical].split(":", 5)[-1]
        if attribute == "Arn" and self.template["Resources"][logical]["Type"] == "AWS::DynamoDB::Table":
            return f"arn:aws:dynamodb:{self.region}:{ACCOUNT}:table/{self.physical[logical]}"
        if attribute == "Arn":
            return self.physical[logical]
        raise ValueError(f"the twin cannot resolve GetAtt {logical}.{attribute}")

    def condition(self, name: str) -> bool:
        """Evaluate one of the template's Conditions."""
        return bool(self.resolve(self.template.get("Conditions", {})[name]))

    def sub(self, arg: Any) -> str:
        """Return Fn::Sub of a string (and its optional variable map)."""
        text, names = (arg, {}) if isinstance(arg, str) else (arg[0], self.resolve(arg[1]))

        def one(match: re.Match) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in names:
                return str(names[name])
            if "." in name:
                return str(self.get_att(*name.split(".", 1)))
            return str(self.ref(name))

        return re.sub(r"\$\{([^}]+)\}", one, text)


_NO_VALUE = object()
_FUNCTIONS = {
    "Ref": lambda r, a: r.ref(a),
    "Fn::GetAtt": lambda r, a: r.get_att(*(a if isinstance(a, list) else a.split(".", 1))),
    "Fn::Sub": lambda r, a: r.sub(a),
    "Fn::Join": lambda r, a: str(a[0]).join(str(v) for v in r.resolve(a[1])),
    "Fn::Select": lambda r, a: r.resolve(a[1])[int(r.resolve(a[0]))],
    "Fn::If": lambda r, a: r.resolve(a[1] if r.condition(a[0]) else a[2]),
    "Fn::Equals": lambda r, a: r.resolve(a[0]) == r.resolve(a[1]),
    "Fn::Not": lambda r, a: not r.resolve(a[0]),
    "Fn::And": lambda r, a: all(r.resolve(v) for v in a),
    "Fn::Or": lambda r, a: any(r.resolve(v) for v in a),
    "Condition": lambda r, a: r.condition(a),
}

