"""Operator actions as MCP tools: what an on-call engineer does, never a fault's name.

    service       start, stop, restart or reload a component, as `systemctl` on its instance
    run_command   SSM Run Command (AWS-RunShellScript) on an instance, waiting for its output
    aws_call      one AWS API call (e.g. iam put_role_policy, ec2 authorize_security_group_ingress,
                  dynamodb update_table) through the given clients

In an evaluated run the clients are the agent's own IAM identity at the twin's scoped endpoint, so what
run_command and aws_call may do is what its policy allows, enforced by the twin, not by this module.
"""

from __future__ import annotations

import json
import time
from typing import Annotated, Any

import mcp_types as types
from pydantic import Field

from ..errors import AwsError, UsageError
from .aws_tools import Clients, call

CHANGES = types.ToolAnnotations(read_only_hint=False, destructive_hint=True, open_world_hint=False)
SERVICE_ACTIONS = ("start", "stop", "restart", "reload")
SERVICES = ("logs", "cloudwatch", "elbv2", "ec2", "iam", "ssm", "dynamodb", "cloudtrail", "cloudformation", "sts")
POLL_S = 0.5
DONE = ("Success", "Failed", "TimedOut", "Cancelled")


def instance_id(clients: Clients, instance: str) -> str:
    """Return the id of an instance given by id or Name tag (an unknown one is a clear error)."""
    if instance.startswith("i-"):
        return instance
    answer = call(clients("ec2"), "describe_instances", Filters=[{"Name": "tag:Name", "Values": [instance]}])
    ids = [i["InstanceId"] for r in answer.get("Reservations", []) for i in r.get("Instances", [])]
    if not ids:
        raise UsageError(f"no instance has the id or Name tag {instance!r} (ec2 describe_instances lists them)")
    return ids[0]


def run_command(clients: Clients, instance: str, commands: list[str], timeout_s: float) -> dict[str, Any]:
    """Run shell commands on an instance with SSM Run Command; wait for them; return status and output."""
    if not commands or not all(isinstance(c, str) and c.strip() for c in commands):
        raise UsageError("commands must be a non-empty list of shell command lines")
    target = instance_id(clients, instance)
    ssm = clients("ssm")
    sent = call(ssm, "send_command", InstanceIds=[target], DocumentName="AWS-RunShellScript",
                Parameters={"commands": commands, "executionTimeout": [str(int(timeout_s))]})
    command_id = sent["Command"]["CommandId"]
    deadline = time.monotonic() + timeout_s + 10
    while time.monotonic() < deadline:
        time.sleep(POLL_S)
        try:
            got = call(ssm, "get_command_invocation", CommandId=command_id, InstanceId=target)
        except AwsError as exc:
            if "InvocationDoesNotExist" in str(exc):
                continue
            raise
        if got["Status"] in DONE:
            return {"instance": target, "command_id": command_id, "status": got["Status"],
                    "exit_code": got["ResponseCode"], "stdout": got["StandardOutputContent"],
                    "stderr": got["StandardErrorContent"]}
    return {"instance": target, "command_id": command_id, "status": "InProgress", "exit_code": None,
            "stdout": "", "stderr": f"still running after {timeout_s:g}s (get_command_invocation with this id)"}


def aws_call(clients: Clients, service: str, operation: str, parameters: dict[str, Any]) -> dict[str, Any]:
    """Make one AWS API call; return its answer as JSON (AWS's refusal is a tool error)."""
    from botocore import xform_name

    if service not in SERVICES:
        raise UsageError(f"service must be one of {', '.join(SERVICES)}, not {service!r}")
    client = clients(service)
    name = xform_name(operation) if not operation.islower() else operation
    if name not in client.meta.method_to_api_mapping:
        raise UsageError(f"{operation!r} is not an operation of {service} (e.g. describe_instances, "
                         "put_role_policy, authorize_security_group_ingress, update_table)")
    answer = call(client, name, **(parameters or {}))
    answer.pop("ResponseMetadata", None)
    return json.loads(json.dumps(answer, default=str))


def tools(world: Any, clients: Clients) -> dict[str, tuple]:
    """Return the operator actions: name -> (function, description, annotations)."""
    def service(action: Annotated[str, Field(description="start, stop, restart or reload.")],
                name: Annotated[str, Field(description="A component, as check_health names them.")]
                ) -> dict[str, Any]:
        if action not in SERVICE_ACTIONS:
            raise UsageError(f"action must be one of {', '.join(SERVICE_ACTIONS)}, not {action!r}")
        return world.service(action, name)

    def run_command_tool(
            instance: Annotated[str, Field(description="An instance id (i-...) or Name tag (sre-workshop-nginx, "
                                           "sre-workshop-app, sre-workshop-crm-app).")],
            commands: Annotated[list[str], Field(min_length=1, description="Shell command lines, run in order "
                                                 "by sh, e.g. ['cat /etc/nginx/nginx.conf'].")],
            timeout_s: Annotated[float, Field(ge=1, le=600, description="How long they may run.")] = 60.0,
    ) -> dict[str, Any]:
        return run_command(clients, instance, commands, timeout_s)

    def aws_call_tool(
            service: Annotated[str, Field(description="One of: " + ", ".join(SERVICES) + ".")],
            operation: Annotated[str, Field(description="The API operation, e.g. GetRolePolicy or "
                                            "get_role_policy.")],
            parameters: Annotated[dict[str, Any] | None, Field(description="Its parameters, as boto3 takes "
                                                               "them.")] = None,
    ) -> dict[str, Any]:
        return aws_call(clients, service, operation, parameters or {})

    return {"service": (service, SERVICE, CHANGES), "run_command": (run_command_tool, RUN, CHANGES),
            "aws_call": (aws_call_tool, AWS_CALL, CHANGES)}


SERVICE = ("Act on one component as `systemctl ACTION` on its instance would: start, stop, restart, or reload "
           "(nginx re-reads /etc/nginx/nginx.conf as it is on the instance; others restart). Returns {action, "
           "name, health}. Changes the system.")
RUN = ("SSM Run Command (AWS-RunShellScript) on an instance: run shell command lines there (e.g. read or edit "
       "/etc/nginx/nginx.conf, `systemctl reload nginx`, `ps`), wait for them, and return {instance, command_id, "
       "status, exit_code, stdout, stderr}. Changes the system.")
AWS_CALL = ("Make one AWS API call with your own credentials, as the aws CLI would: e.g. iam get_role_policy / "
            "put_role_policy, ec2 describe_security_groups / authorize_security_group_ingress, elbv2 "
            "describe_target_health / register_targets, logs create_log_group / put_retention_policy, dynamodb "
            "describe_table / update_table. Your IAM policy "
            "decides what is allowed; a refusal is an error naming the action. Returns the API's answer.")
