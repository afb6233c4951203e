"""The instances' role against the template: does it still grant DynamoDB access the way the template does?

One-line facts, each a difference that can refuse the apps' DynamoDB calls: DynamoDBAccess missing, a
grant of the template's that no statement allows any more, a Deny (in any inline policy, an attached managed
policy the template does not attach, or a permissions boundary) covering one of the template's grants.
A role that grants more than the template is not a fact here: it refuses nothing.
"""

from __future__ import annotations

from fnmatch import fnmatchcase
from typing import Any

from ...aws.control import AwsControl, policy_document
from .template import Resolver

POLICY = "DynamoDBAccess"
Grant = tuple[str, str]  # (action, resource)


def _listed(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else list(value or [])


def grants(document: dict[str, Any], effect: str = "Allow") -> list[tuple[list[str], list[str]]]:
    """Return (actions, resources) of the document's statements with `effect`."""
    statements = document.get("Statement") or []
    statements = [statements] if isinstance(statements, dict) else statements
    return [(_listed(s.get("Action")), _listed(s.get("Resource"))) for s in statements
            if s.get("Effect") == effect and "Action" in s]


def covers(statements: list[tuple[list[str], list[str]]], grant: Grant) -> bool:
    """True if a statement names the grant's action and resource (IAM's * and ? wildcards)."""
    action, resource = grant
    return any(any(fnmatchcase(action.lower(), a.lower()) for a in actions)
               and any(fnmatchcase(resource, r) for r in resources) for actions, resources in statements)


def expected_grants(resources: dict[str, Any], resolver: Resolver) -> list[Grant]:
    """Return every (action, resource) the template's DynamoDBAccess allows, resolved against the stack."""
    policies = resources["EC2InstanceRole"]["Properties"].get("Policies", [])
    document = next(p["PolicyDocument"] for p in policies if p["PolicyName"] == POLICY)
    found = []
    for actions, names in grants(document):
        found += [(a, r) for a in actions for r in resolver.value(names)]
    return found


def drift(ctl: AwsControl, resources: dict[str, Any], resolver: Resolver) -> list[str]:
    """Return how the role differs from the template in ways that refuse the apps' DynamoDB calls."""
    wanted, role = expected_grants(resources, resolver), ctl.role_name()
    document = ctl.role_policy(POLICY)
    if document is None:
        return [f"role {role} has no inline policy {POLICY} (the template's grants DynamoDB access)"]
    facts = []
    lost = [g for g in wanted if not covers(grants(document), g)]
    if lost:
        facts.append(f"{POLICY} of role {role} no longer allows {len(lost)} of the template's {len(wanted)} grants, "
                     f"e.g. {lost[0][0]} on {lost[0][1]}")
    for name, other in _other_documents(ctl, role, resources, resolver):
        facts += _denials(name, role, other, wanted)
    return facts + _denials(POLICY, role, document, wanted)


def _denials(name: str, role: str, document: dict[str, Any], wanted: list[Grant]) -> list[str]:
    """One fact per Deny statement of `document` that covers one of the template's grants."""
    return [f"{name} of role {role} denies {', '.join(actions)} on {', '.join(names)}"
            for actions, names in grants(document, "Deny") if any(covers([(actions, names)], g) for g in wanted)]


def _other_documents(ctl: AwsControl, role: str, resources: dict[str, Any], resolver: Resolver):
    """Yield (name, document) of the role's other inline policies, of managed policies the template does not
    attach, and of its permissions boundary: any of them can hold a Deny."""
    iam = ctl.client("iam")
    for name in iam.list_role_policies(RoleName=role)["PolicyNames"]:
        if name != POLICY:
            yield f"inline policy {name}", ctl.role_policy(name) or {}
    attached = {p["PolicyArn"] for p in iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"]}
    boundary = iam.get_role(RoleName=role)["Role"].get("PermissionsBoundary", {}).get("PermissionsBoundaryArn")
    template_arns = set(resolver.value(resources["EC2InstanceRole"]["Properties"].get("ManagedPolicyArns", [])))
    for arn in sorted(attached - template_arns) + ([boundary] if boundary else []):
        policy = iam.get_policy(PolicyArn=arn)["Policy"]
        version = iam.get_policy_version(PolicyArn=arn, VersionId=policy["DefaultVersionId"])["PolicyVersion"]
        kind = "permissions boundary" if arn == boundary else "managed policy"
        yield f"{kind} {arn}", policy_document(version["Document"])
