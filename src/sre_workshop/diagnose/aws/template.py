"""The stack's template as deployed (CloudFormation GetTemplate), as data: what the role and the
security groups should be. Only the few intrinsic functions those parts use are resolved: Ref of a resource,
GetAtt of a table's Arn, and Sub over both and the pseudo parameters."""

from __future__ import annotations

import functools
import re
from typing import Any

import yaml

from ...aws.control import AwsControl


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # libyaml's parser when PyYAML has it: 10x faster
    """YAML with CloudFormation's short tags (!Ref, !Sub, !GetAtt ...) read as their long forms."""


def _tag(loader: yaml.Loader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = "Ref" if suffix == "Ref" else f"Fn::{suffix}"
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
        value = value.split(".", 1) if suffix == "GetAtt" else value
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {name: value}


_Loader.add_multi_constructor("!", _tag)


def parse(body: str | dict[str, Any]) -> dict[str, Any]:
    """Return a template body (YAML or JSON text, or already data) as data (the same text is parsed once per
    process: doctor reads the same deployed template every run; callers do not change what they get)."""
    return body if isinstance(body, dict) else _parsed(body)


@functools.lru_cache(maxsize=4)
def _parsed(body: str) -> dict[str, Any]:
    return yaml.load(body, Loader=_Loader)  # noqa: S506 - a SafeLoader


def resources(ctl: AwsControl) -> dict[str, Any]:
    """Return the deployed template's Resources."""
    body = ctl.client("cloudformation").get_template(StackName=ctl.stack_name, TemplateStage="Original")
    return parse(body["TemplateBody"]).get("Resources", {})


ANCHOR = "ApplicationMetricsTable"  # the table whose ARN gives the partition, region and account


class Resolver:
    """Resolve the intrinsics of the role's policy and the security-group rules against the live stack."""

    def __init__(self, ctl: AwsControl) -> None:
        self.ctl = ctl
        self._arns: dict[str, str] = {}

    def arn(self, logical: str) -> str:
        """Return a table's ARN (GetAtt Arn: the only attribute these parts use). One table is described; the
        others' ARNs differ only by name (arn:PARTITION:dynamodb:REGION:ACCOUNT:table/NAME), one call for all."""
        if not self._arns:
            self._arns[ANCHOR] = self.ctl.describe_table(self.ctl.physical(ANCHOR))["TableArn"]
        if logical not in self._arns:
            prefix = self._arns[ANCHOR].rsplit("/", 1)[0]
            self._arns[logical] = f"{prefix}/{self.ctl.physical(logical)}"
        return self._arns[logical]

    def pseudo(self, name: str) -> str:
        """Return AWS::Partition, AWS::Region or AWS::AccountId, read off a table's ARN."""
        _, partition, _, region, account, _ = self.arn(ANCHOR).split(":", 5)
        return {"AWS::Partition": partition, "AWS::Region": region or self.ctl.region,
                "AWS::AccountId": account, "AWS::StackName": self.ctl.stack_name}[name]

    def value(self, node: Any) -> Any:
        """Return `node` with Ref, GetAtt ...Arn and Sub resolved (other functions are left as they are)."""
        if isinstance(node, list):
            return [self.value(n) for n in node]
        if not isinstance(node, dict) or len(node) != 1:
            return node
        (key, arg), = node.items()
        if key == "Ref":
            return self.pseudo(arg) if arg.startswith("AWS::") else self.ctl.physical(arg)
        if key == "Fn::GetAtt" and arg[1] == "Arn":
            return self.arn(arg[0])
        if key == "Fn::Sub" and isinstance(arg, str):
            return re.sub(r"\$\{([\w:]+)(?:\.(\w+))?\}", self._sub, arg)
        return node

    def _sub(self, match: re.Match) -> str:
        name, attribute = match[1], match[2]
        resolved = self.value({"Fn::GetAtt": [name, attribute]} if attribute else {"Ref": name})
        return resolved if isinstance(resolved, str) else match[0]  # left as written: not one these parts use
