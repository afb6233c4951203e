"""What a fault may do to the local stack: the stack's AWS resources in the AWS API twin, as on AWS.

Every fault of the catalogue runs locally as its AWS implementation against the twin (fault.toml's
`[worlds.local] via = "twin"`): its Run Command runs a step in an instance's view of the machine, whose
systemctl acts on the stack's components by their pid records (never by a process name or a glob), and its
IAM, DynamoDB and EC2 calls change what the DynamoDB endpoint and the network gates enforce. A fault with no
AWS path that works through the twin would keep a local.py given this object.
"""

from __future__ import annotations

import boto3

from ..aws.control import AwsControl
from ..settings import LOOPBACK
from ..twin.instances import STACK_NAME as TWIN_STACK
from .components import LOCAL_CREDENTIALS
from .stack import Stack

TWIN_POLL = 0.05  # seconds between GetCommandInvocation calls to the local twin


class LocalControl:
    """The local stack, as a fault sees it."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.settings = stack.settings

    def running(self, name: str) -> bool:
        """True if the component's main process is alive."""
        return self.stack.running(name)

    # --- the stack's AWS resources, in the AWS API twin ----------------------------------------------

    def twin(self) -> AwsControl:
        """Return the stack's AWS resources (its role, tables, security groups) in the AWS API twin, as a fault
        on AWS acts on them: the same calls, which the DynamoDB endpoint enforces on the apps' requests."""
        session = boto3.session.Session(region_name=self.settings.region,
                                        **{k.lower(): v for k, v in LOCAL_CREDENTIALS.items()})
        # The private ALB's DNS name is, on the local network, its loopback listener (nginx.conf names it); the
        # apps listen on their own loopback ports, which an instance's view shares with the machine.
        private_alb = f"{LOOPBACK}:{self.settings.port('private-alb')}"
        ports = {c: self.settings.port(c) for c in ("nginx", "sre-app", "crm-app")}
        # The twin runs a command within a second: poll for it often (AWS's agent is polled every second).
        return AwsControl(session, TWIN_STACK, public=self.settings.endpoints, poll=TWIN_POLL,
                          endpoint_url=self.settings.url("aws-api"), addresses={"PrivateALBDNSName": private_alb},
                          ports=ports)
