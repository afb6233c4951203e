"""A test agent that repairs dynamodb-access-denied the way an on-call engineer would, with its own credentials.

    python tests/oncall_agent.py [--no-repair] URL      (run by `scenario run NAME --agent`, as the examinee)

It finds the instances' role in the stack's resources (CloudFormation), puts back an Allow of DynamoDB on
the tables as the role's DynamoDBAccess policy, with the AWS variables it was given (the twin's scoped
endpoint and its own IAM user's keys), then submits iam-role/permissions over MCP. With --no-repair it
submits the same diagnosis and changes nothing (the tool's clear is then no mitigation of the agent's).
"""

from __future__ import annotations

import asyncio
import json
import sys

import boto3
from mcp import Client

ALLOW = {"Version": "2012-10-17", "Statement": [{"Sid": "PutBack", "Effect": "Allow", "Action": "dynamodb:*",
                                                 "Resource": "arn:aws:dynamodb:*:*:table/*"}]}


def role_name() -> str:
    """Return the physical name of the stack's EC2InstanceRole (boto3 reads AWS_ENDPOINT_URL and the keys)."""
    cfn = boto3.client("cloudformation")
    for stack in cfn.describe_stacks()["Stacks"]:
        for resource in cfn.describe_stack_resources(StackName=stack["StackName"])["StackResources"]:
            if resource.get("LogicalResourceId") == "EC2InstanceRole":
                return resource["PhysicalResourceId"]
    raise SystemExit("no EC2InstanceRole in any stack")


def repair() -> str:
    """Put an Allow back as the role's DynamoDBAccess policy; return what was done."""
    role = role_name()
    boto3.client("iam").put_role_policy(RoleName=role, PolicyName="DynamoDBAccess", PolicyDocument=json.dumps(ALLOW))
    return f"iam put-role-policy {role} DynamoDBAccess (Allow dynamodb:* on the tables)"


async def main(url: str, act: bool) -> None:
    done = [repair()] if act else []
    async with Client(url) as client:
        answer = await client.call_tool("submit_diagnosis", {"component": "iam-role", "category": "permissions",
                                                              "cause": "the role's policy denies DynamoDB",
                                                              "actions": done})
        print(json.dumps(answer.structured_content))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[-1], "--no-repair" not in sys.argv))
