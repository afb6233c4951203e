"""The evaluated agent's own AWS identity, and a lab's learner's: an IAM user of the twin, with the on-call
policy (infra/iam/oncall-policy.json), and a fresh access key for each run or lab.

The policy allows the reads an on-call engineer needs (logs, metrics, alarms, target health, CloudTrail, the
instances and security groups, the template, the instance role's policy, the app tables' settings) and the
changes one would make (put back the role's policy, authorize an ingress rule, update an app table's
capacity, Run Command on the instances), and denies every DynamoDB action on IncidentHistoryTable. The twin's
scoped endpoint (twin/scoped.py) checks the key's signature and enforces the policy on every call; the key is
deleted when the run ends. The stack's fixed local credentials are the examiner's, never the agent's.

A lab's learner gets a user of its own (LEARNER) the same way: `aws-env` prints its key while the lab runs
(scenarios/lab.py), so the learner's `aws ssm list-commands` and CloudTrail show the learner's own commands
and parameters, never the steps the fault tool ran on an instance.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ..errors import AwsError
from ..settings import Settings

USER = "sre-workshop-oncall"
LEARNER = "sre-workshop-learner"
POLICY_NAME = "OnCall"


@dataclass(frozen=True)
class Identity:
    """An access key of the agent's user, and where it works (the twin's scoped endpoint)."""

    access_key: str
    secret_key: str
    endpoint: str
    region: str

    def env(self) -> dict[str, str]:
        """Return the variables the aws CLI and boto3 read, for this identity at the scoped endpoint."""
        return {"AWS_ENDPOINT_URL": self.endpoint, "AWS_ACCESS_KEY_ID": self.access_key,
                "AWS_SECRET_ACCESS_KEY": self.secret_key, "AWS_REGION": self.region,
                "AWS_DEFAULT_REGION": self.region}

    def to_dict(self) -> dict[str, str]:
        """Return the identity as it is kept in a file."""
        return {"access_key": self.access_key, "secret_key": self.secret_key, "endpoint": self.endpoint,
                "region": self.region}

    def client(self, service: str) -> Any:
        """Return a boto3 client that calls as this identity."""
        import boto3

        session = boto3.session.Session(aws_access_key_id=self.access_key, aws_secret_access_key=self.secret_key,
                                        region_name=self.region)
        return session.client(service, endpoint_url=self.endpoint)


def policy(settings: Settings) -> dict[str, Any]:
    """Return the on-call policy document."""
    return json.loads((settings.infra_dir / "iam" / "oncall-policy.json").read_text())


def _admin_iam(settings: Settings) -> Any:
    """Return an IAM client of the twin's own port, with the stack's credentials (the examiner's)."""
    import boto3

    from ..local.components import LOCAL_CREDENTIALS

    session = boto3.session.Session(**{k.lower(): v for k, v in LOCAL_CREDENTIALS.items()},
                                    region_name=settings.region)
    return session.client("iam", endpoint_url=settings.url("aws-api"))


def create(settings: Settings, user: str = USER) -> Identity:
    """Make sure the user exists with the policy as committed, drop its old keys, and give it a new one."""
    from botocore.exceptions import BotoCoreError, ClientError

    iam = _admin_iam(settings)
    try:
        with contextlib.suppress(iam.exceptions.EntityAlreadyExistsException):
            iam.create_user(UserName=user)
        iam.put_user_policy(UserName=user, PolicyName=POLICY_NAME, PolicyDocument=json.dumps(policy(settings)))
        for old in iam.list_access_keys(UserName=user)["AccessKeyMetadata"]:  # a run that died kept its key
            iam.delete_access_key(UserName=user, AccessKeyId=old["AccessKeyId"])
        key = iam.create_access_key(UserName=user)["AccessKey"]
    except (BotoCoreError, ClientError) as exc:
        raise AwsError(f"could not make the IAM identity {user} in the twin: {exc}") from None
    return Identity(key["AccessKeyId"], key["SecretAccessKey"], settings.url("aws-api-scoped"), settings.region)


def delete(settings: Settings, identity: Identity, user: str = USER) -> None:
    """Delete the identity's access key (the user and its policy stay, for the next run)."""
    from botocore.exceptions import BotoCoreError, ClientError

    with contextlib.suppress(BotoCoreError, ClientError):
        _admin_iam(settings).delete_access_key(UserName=user, AccessKeyId=identity.access_key)


@contextlib.contextmanager
def oncall(settings: Settings) -> Iterator[Identity]:
    """Yield a fresh identity for one run; its key is deleted afterwards, whatever happened."""
    identity = create(settings)
    try:
        yield identity
    finally:
        delete(settings, identity)
