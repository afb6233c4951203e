"""The AWS Labs AWS API MCP server (awslabs.aws-api-mcp-server, in .venv-mcp-api) against the twin, during a fault.

Not in CI: its install takes ~1-2.5 min (it needs mcp<2, the project mcp>=2, hence a venv of its own), more than
CI's budget leaves. tests/integration/test_twin_mcp.py runs the CloudWatch and CloudTrail servers in CI.

A stack is started, nginx stopped (`service stop`: no fault tool), and the server, started as a real
stdio server with the variables `sre-workshop aws-env --json` prints (offline: the shim in
tests/integration/mcp_shims/), is asked through the official MCP client to:
1. describe the nginx target group's health: the target must be unhealthy;
2. delete the role's inline policy with READ_OPERATIONS_ONLY=true: the server must refuse.
Prints a JSON report and exits non-zero if either fails.

    scripts/install --test --aws-api-mcp && .venv/bin/python bench/bench_aws_api_mcp.py
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from mcp import Client
from mcp.client.stdio import StdioServerParameters

from sre_workshop.cli.main import main as cli

from common import ROOT, machine

OFFSET = 23500
API_VENV = ROOT / ".venv-mcp-api" / "bin"
SHIM = ROOT / "tests" / "integration" / "mcp_shims" / "aws_api_offline.py"


def aws_env(state: Path) -> dict[str, str]:
    out = subprocess.run([str(Path(sys.executable).with_name("sre-workshop")), "--state-dir", str(state), "aws-env",
                          "--json"], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


async def ask(params: StdioServerParameters, commands: list[str]) -> list[tuple[bool, str]]:
    async with Client(params) as client:
        results = [await client.call_tool("call_aws", {"cli_command": c}) for c in commands]
    return [(r.is_error, "".join(getattr(c, "text", "") for c in r.content)) for r in results]


def names(env: dict[str, str]) -> tuple[str, str]:
    """The nginx target group's ARN and the instance role's name, as the twin has them."""
    import boto3

    session = boto3.session.Session(region_name=env["AWS_REGION"], aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
                                    aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"])
    groups = session.client("elbv2", endpoint_url=env["AWS_ENDPOINT_URL"]).describe_target_groups()["TargetGroups"]
    roles = session.client("iam", endpoint_url=env["AWS_ENDPOINT_URL"]).list_roles()["Roles"]
    return (next(g["TargetGroupArn"] for g in groups if g["Port"] == 80),
            next(r["RoleName"] for r in roles if "-EC2InstanceRole-" in r["RoleName"]))


def main() -> int:
    if not (API_VENV / "awslabs.aws-api-mcp-server").exists():
        sys.exit("the AWS API MCP server is not installed: scripts/install --test --aws-api-mcp")
    os.environ["SRE_WORKSHOP_PORT_OFFSET"] = str(OFFSET)
    report: dict = {"machine": machine(), "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")}
    with tempfile.TemporaryDirectory(prefix="bench-aws-api-mcp-") as tmp:
        state = Path(tmp) / "state"
        assert cli(["--state-dir", str(state), "up", "--detach"]) == 0
        try:
            env = aws_env(state)
            assert cli(["--state-dir", str(state), "service", "stop", "nginx"]) == 0
            time.sleep(5)  # three failed checks of 1 s, and the twin's next read of HAProxy
            clean = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
            params = StdioServerParameters(command=str(API_VENV / "python"), args=[str(SHIM)], env={
                **clean, **env, "FASTMCP_LOG_LEVEL": "ERROR", "READ_OPERATIONS_ONLY": "true",
                "AWS_API_MCP_WORKING_DIR": tmp, "AWS_API_MCP_TELEMETRY": "false"})
            group, role = names(env)
            started = time.monotonic()
            (health_error, health), (_, write) = asyncio.run(ask(params, [
                f"aws elbv2 describe-target-health --target-group-arn {group}",
                f"aws iam delete-role-policy --role-name {role} --policy-name DynamoDBAccess"]))
            report["seconds"] = round(time.monotonic() - started, 1)
            states = [] if health_error else [
                t["TargetHealth"]["State"] for answer in json.loads(health)
                for t in json.loads(answer["response"]["as_json"])["TargetHealthDescriptions"]]
            report["target_states"] = states
            report["write_refused"] = "denied by security policy" in write
        finally:
            cli(["--state-dir", str(state), "down"])
    report["ok"] = report.get("target_states") == ["unhealthy"] and report.get("write_refused") is True
    json.dump(report, sys.stdout, indent=1)
    print()
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
