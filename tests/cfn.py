"""Load the CloudFormation template with its short tags (!Ref, !Sub, ...) as plain data, for static tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

TEMPLATE = Path(__file__).resolve().parents[1] / "infra" / "cloudformation" / "sre-workshop.yaml"


class _Loader(yaml.SafeLoader):
    pass


def _tag(loader: yaml.Loader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = "Ref" if suffix == "Ref" else f"Fn::{suffix}"
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
        if suffix == "GetAtt":
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {name: value}


_Loader.add_multi_constructor("!", _tag)


def load(path: Path = TEMPLATE) -> dict[str, Any]:
    """Return the template as data."""
    return yaml.load(path.read_text(), Loader=_Loader)


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
