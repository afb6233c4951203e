"""Load the CloudFormation template with its short tags (!Ref, !Sub, ...) as plain data, for static tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sre_workshop.diagnose.aws.template import parse

TEMPLATE = Path(__file__).resolve().parents[1] / "infra" / "cloudformation" / "sre-workshop.yaml"


def load(path: Path = TEMPLATE) -> dict[str, Any]:
    """Return the template as data."""
    return parse(path.read_text())


def handler_permissions(resource_type: str) -> set[str]:
    """Return the IAM actions CloudFormation's handlers for a resource type need (create/read/update/delete).

    Read from the resource provider schemas that AWS publishes and cfn-lint ships: the documented list, not
    a guess.
    """
    import json

    import cfnlint

    schemas = Path(cfnlint.__file__).parent / "data" / "schemas"
    index = json.loads((schemas / "providers" / "us-east-1.json").read_text())
    schema = json.loads((schemas / "resources" / f"{index[resource_type]}.json").read_text())
    handlers = schema.get("handlers", {})
    return {p for kind in ("create", "read", "update", "delete") for p in handlers.get(kind, {}).get("permissions", [])}
