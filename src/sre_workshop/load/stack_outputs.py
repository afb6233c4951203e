"""Read the load targets of an AWS stack from its CloudFormation outputs (AppURL, CRMURL, PublicALBDNSName)."""

from __future__ import annotations

from botocore.exceptions import BotoCoreError, ClientError

from ..errors import AwsError
from .targets import Targets

# Output keys of infra/cloudformation/sre-workshop.yaml that name the public entry points.
URL_OUTPUTS = {"app": "AppURL", "crm": "CRMURL"}
ALB_OUTPUT = "PublicALBDNSName"


def stack_outputs(session, stack_name: str) -> dict[str, str]:
    """Return the stack's outputs by key, with a one-line AwsError when it cannot be read."""
    try:
        stacks = session.client("cloudformation").describe_stacks(StackName=stack_name)["Stacks"]
    except ClientError as exc:
        message = exc.response["Error"].get("Message", "")
        if "does not exist" in message:
            raise AwsError(f"stack {stack_name} does not exist in {session.region_name}: deploy it first") from None
        raise AwsError(f"cannot read stack {stack_name}: {message}") from None
    except BotoCoreError as exc:
        raise AwsError(f"cannot read stack {stack_name}: {exc}") from None
    return {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}


def aws_targets(session, stack_name: str) -> Targets:
    """Return the public ALB's entry points of `stack_name`; only its own DNS name is allowed as a host."""
    outputs = stack_outputs(session, stack_name)
    missing = [key for key in (*URL_OUTPUTS.values(), ALB_OUTPUT) if not outputs.get(key)]
    if missing:
        raise AwsError(f"stack {stack_name} has no output {', '.join(missing)}: is it complete and ours?")
    urls = {name: outputs[key].rstrip("/") for name, key in URL_OUTPUTS.items()}
    return Targets(urls, frozenset({outputs[ALB_OUTPUT]}))
