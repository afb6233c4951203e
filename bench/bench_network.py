"""The twin's security groups on the local network: how soon a rule change takes effect on its hop.

For each hop of the chain, on a fresh stack: the hop's ingress rule revoked with RevokeSecurityGroupIngress
(the aws CLI's call), then the time until a new connection on that hop is dropped, seen as a request through
the public entry point that does not answer 200 within PROBE_S; then the rule authorized again, and the time
until the entry point answers 200. Goal (issue 17): both within 2 s. Also the twin's idle CPU with the wire.

    .venv/bin/python bench/bench_network.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import boto3

from sre_workshop.cli.main import main as cli
from sre_workshop.cli.twin import aws_environment
from sre_workshop.faults.security_group_block.aws import HOPS, PUBLIC
from sre_workshop.local.process import ProcessRecord
from sre_workshop.settings import Settings

from common import machine

OFFSET = 22000
PROBE_S = 0.25  # a request on a closed hop waits for a connect timeout: this long without 200 is closed



def answers_200(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=PROBE_S) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def until(url: str, wanted: bool, timeout: float = 30.0) -> float:
    """Seconds until the URL answers 200 (wanted) or does not."""
    started = time.monotonic()
    while answers_200(url) != wanted:
        if time.monotonic() - started > timeout:
            return float("inf")
        time.sleep(0.05)
    return time.monotonic() - started


def cpu_ms_per_s(pid: int, seconds: float = 30.0) -> float:
    def ticks() -> int:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])
    before = ticks()
    time.sleep(seconds)
    return (ticks() - before) * 10 / seconds


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(machine())
    with tempfile.TemporaryDirectory(prefix="bench-network-") as tmp:
        state = Path(tmp) / "stack"
        settings = Settings.from_env(port_offset=OFFSET, state_dir=state)
        os.environ["SRE_WORKSHOP_PORT_OFFSET"] = str(OFFSET)
        assert cli(["--state-dir", str(state), "up", "--detach"]) == 0
        try:
            assert cli(["--state-dir", str(state), "fault", "clear", "--all"]) == 0
            env = aws_environment(settings)
            session = boto3.session.Session(aws_access_key_id=env["AWS_ACCESS_KEY_ID"], region_name=env["AWS_REGION"],
                                            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"])
            ec2 = session.client("ec2", endpoint_url=env["AWS_ENDPOINT_URL"])
            cfn = session.client("cloudformation", endpoint_url=env["AWS_ENDPOINT_URL"])

            def physical(logical: str) -> str:
                return cfn.describe_stack_resource(StackName="sre-workshop", LogicalResourceId=logical)[
                    "StackResourceDetail"]["PhysicalResourceId"]

            print("| hop | closed after (median, max) | open again after (median, max) |\n|---|---|---|")
            for hop, (group, source, port) in HOPS.items():  # the chain as the fault knows it
                entry, path = PUBLIC[hop]
                url = settings.endpoints[entry] + path
                permission = {"IpProtocol": "tcp", "FromPort": port, "ToPort": port,
                              "UserIdGroupPairs": [{"GroupId": physical(source)}]}
                closed, opened = [], []
                for _ in range(args.rounds):
                    until(url, True)
                    ec2.revoke_security_group_ingress(GroupId=physical(group), IpPermissions=[permission])
                    closed.append(until(url, False))
                    ec2.authorize_security_group_ingress(GroupId=physical(group), IpPermissions=[permission])
                    opened.append(until(url, True))
                print(f"| {hop} | {statistics.median(closed):.2f} s, {max(closed):.2f} s "
                      f"| {statistics.median(opened):.2f} s, {max(opened):.2f} s |")
            pid = ProcessRecord.load(state / "run" / "pids" / "aws-api.json").pid
            print(f"aws-api idle CPU over 30 s: {cpu_ms_per_s(pid):.1f} ms/s")
        finally:
            cli(["--state-dir", str(state), "down", "--discard-data"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
