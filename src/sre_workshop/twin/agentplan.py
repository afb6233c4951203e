"""The `cloudwatch-agent` component: find the stack's instances in the twin, write the agent's plan, run it.

`python -m sre_workshop.twin.agentplan --metrics-period N`. The plan (agent_plan.py) maps what the real agent
finds on its instance (its instance id, its files at their AWS paths, its processes) onto the local stack:
the ids come from the twin's CloudFormation stack (the same calls as on AWS), the files and process groups
from instances.py. The agent itself (agent.py) knows nothing of the local stack.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from ..local.components import LOCAL_CREDENTIALS
from ..settings import Settings
from .agent_plan import build_plan
from .resources import STACK_NAME

logger = logging.getLogger("sre_workshop.twin.agentplan")


def stack_resources(settings: Settings, timeout: float = 120) -> dict[str, str]:
    """Wait for the twin, then return the stack's logical -> physical ids."""
    cfn = boto3.client("cloudformation", endpoint_url=settings.url("aws-api"), region_name=settings.region,
                       aws_access_key_id=LOCAL_CREDENTIALS["AWS_ACCESS_KEY_ID"],
                       aws_secret_access_key=LOCAL_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
                       config=Config(retries={"max_attempts": 1}, connect_timeout=1, read_timeout=10))
    deadline = time.monotonic() + timeout
    while True:
        try:
            pages = cfn.get_paginator("list_stack_resources").paginate(StackName=STACK_NAME)
            return {r["LogicalResourceId"]: r["PhysicalResourceId"] for p in pages
                    for r in p["StackResourceSummaries"]}
        except (BotoCoreError, ClientError) as exc:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the twin at {settings.url('aws-api')} did not answer: {exc}") from exc
            time.sleep(0.5)


def main(argv: list[str] | None = None) -> int:
    """Write the plan, then become the agent (exec: the same pid, without the CloudFormation client's ~20 MB)."""
    parser = argparse.ArgumentParser(prog="sre-workshop-cloudwatch-agent")
    parser.add_argument("--metrics-period", type=int, default=60)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="%(asctime)s %(levelname)s %(message)s")
    settings = Settings.from_env()
    physical = stack_resources(settings)
    plan = build_plan(settings, settings.url("aws-api"), physical, physical, period_s=args.metrics_period)
    path = Path(plan["spool_dir"]) / "plan.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(plan, indent=1))
    sys.stdout.flush()
    os.execv(sys.executable, [sys.executable, "-m", "sre_workshop.twin.agent", "--plan", str(path)])  # noqa: S606 - our own module


if __name__ == "__main__":
    sys.exit(main())
