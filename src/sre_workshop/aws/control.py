"""What a fault may do to an AWS stack made by `sre-workshop deploy`: the AWS twin of local/control.py.

Everything goes through one boto3 session and the stack's own resources, found by logical id:
- shell steps run as root on an instance through SSM Run Command (ssm.py), with the very scripts of
  sre_workshop/steps/ that the local stack runs (only the paths differ), never over the network;
- IAM, DynamoDB, EC2 and ELBv2 calls act on the stack's role, tables, security groups and target groups;
- HTTP probes go to the public ALB's DNS name, as a user's requests would.
"""

from __future__ import annotations

import base64
import json
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from ..errors import AwsError, ComponentFailed
from .ssm import SCRIPTS_DIR, Runner, Step, last_line, script, shell

# The instance each component runs on (by the template's logical id); its systemd unit has its name.
INSTANCES = {"nginx": "NginxInstance1", "sre-app": "AppServerInstance1", "crm-app": "CRMAppInstance"}
TARGET_GROUPS = ("PublicALBTargetGroup", "PrivateALBTargetGroup", "CRMAppTargetGroup")
# Paths on the instances, as the user data and infra/*/install.sh lay them out.
APP_PORT = 8080
TOKEN_FILE = "/etc/sre-workshop/fault-token"  # noqa: S105 - a path; install.sh writes the token there
NGINX_CONF = "/etc/nginx/nginx.conf"
ENV_FILES = {"sre-app": "/etc/sre-workshop/sre-app.env", "crm-app": "/etc/sre-workshop/crm-app.env"}
# Where steps record the processes they start on an instance (on its /run tmpfs: a reboot ends the processes
# and forgets them together); the name says nothing of why they run, as anyone on the instance can list it.
JOBS_DIR = "/run/sre-workshop-jobs"
# After an edit of nginx.conf: refuse a broken file, then have a running nginx read it (a stopped one
# reads it when it starts).
NGINX_RELOAD = (shell("nginx -t -q"), shell("if systemctl is-active --quiet nginx; then systemctl reload nginx; fi"))
PROBE_TIMEOUT = 5.0
TWIN_CONFIG = Config(connect_timeout=2, read_timeout=15, retries={"mode": "standard", "max_attempts": 2})
AWS_CONFIG = Config(connect_timeout=5, read_timeout=30, retries={"mode": "standard", "max_attempts": 3})


def app_faults_step(action: str, settings: dict[str, Any] | None = None, port: int = APP_PORT) -> Step:
    """Return the step that calls an app's /admin/faults on its own instance: get, put SETTINGS or delete."""
    extra = [json.dumps(settings, sort_keys=True)] if settings is not None else []
    return script("app-faults.sh", port, TOKEN_FILE, action, *extra)


def app_leak_step(action: str, settings: dict[str, Any] | None = None, port: int = APP_PORT) -> Step:
    """Return the step that calls sre-app's /admin/leak on its instance: get, put SETTINGS or release."""
    extra = [json.dumps(settings, sort_keys=True)] if settings is not None else []
    return script("app-leak.sh", port, TOKEN_FILE, action, *extra)


def only_if_running(component: str) -> Step:
    """Return a step that ends the run (successfully) when the component's unit is not active."""
    return shell(f"systemctl is-active --quiet {component} || exit 0")


class AwsControl:
    """An AWS stack, as a fault sees it: its resources, its instances through SSM, its public entry points."""

    def __init__(self, session, stack_name: str, public: dict[str, str] | None = None,
                 scripts_dir: Path = SCRIPTS_DIR, command_timeout: float = 120.0, poll: float = 1.0,
                 endpoint_url: str | None = None, addresses: dict[str, str] | None = None,
                 ports: dict[str, int] | None = None) -> None:
        self.session = session
        self.endpoint_url = endpoint_url  # the local stack's AWS API twin instead of AWS
        self.stack_name = stack_name
        self.poll = poll
        self._public = public  # {"app": URL, "crm": URL} instead of the stack's outputs (tests)
        self._clients: dict[str, Any] = {}
        self._making = threading.Lock()  # a session is not safe to make clients from in threads at once
        self._outputs: dict[str, str] | None = None
        self._addresses = addresses or {}  # outputs that are other addresses where the stack runs (locally)
        self._ports = ports or {}  # the port a component listens on in its instance, where not AWS's (locally)
        self._resources: dict[str, str] | None = None
        self._scripts_dir, self._command_timeout = scripts_dir, command_timeout
        self._runner: Runner | None = None  # made on the first command: a reader (doctor) needs no SSM client

    @property
    def region(self) -> str:
        """The stack's region."""
        return self.session.region_name

    def client(self, service: str):
        """Return this session's client for `service` (made once)."""
        with self._making:
            if service not in self._clients:
                # The local twin answers in milliseconds: one that hangs should cost seconds, not botocore's
                # minutes; AWS's own answer within seconds too.
                config = TWIN_CONFIG if self.endpoint_url else AWS_CONFIG
                self._clients[service] = self.session.client(service, endpoint_url=self.endpoint_url, config=config)
            return self._clients[service]

    # --- the stack ------------------------------------------------------------------------------

    def outputs(self) -> dict[str, str]:
        """Return the stack's outputs by key; raise AwsError if there is no such stack."""
        if self._outputs is None:
            try:
                stack = self.client("cloudformation").describe_stacks(StackName=self.stack_name)["Stacks"][0]
            except ClientError as exc:
                if "does not exist" in exc.response["Error"].get("Message", ""):
                    raise AwsError(f"no stack named {self.stack_name} in {self.region}: create it with "
                                   f"`sre-workshop deploy --stack-name {self.stack_name}`") from None
                raise _aws_error(f"cannot read stack {self.stack_name}", exc) from exc
            except BotoCoreError as exc:
                raise AwsError(f"cannot reach CloudFormation in {self.region}: {exc}") from exc
            self._outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])} | self._addresses
        return self._outputs

    def physical(self, logical: str) -> str:
        """Return the physical id of one of the stack's resources (a name, an id or an ARN)."""
        if self._resources is None:
            found = self._call("cloudformation", "describe_stack_resources", StackName=self.stack_name)
            # A resource not (yet) created has no physical id; moto leaves ids out of those it does not model.
            self._resources = {r["LogicalResourceId"]: r["PhysicalResourceId"] for r in found["StackResources"]
                               if r.get("LogicalResourceId") and r.get("PhysicalResourceId")}
        if logical not in self._resources:
            raise AwsError(f"stack {self.stack_name} has no resource {logical}: was it made by `sre-workshop deploy`?")
        return self._resources[logical]

    def instance(self, component: str) -> str:
        """Return the instance id a component runs on."""
        return self.physical(INSTANCES[component])

    def _call(self, service: str, operation: str, **kwargs: Any) -> dict[str, Any]:
        """Call one AWS API; an AWS refusal becomes an AwsError naming the call."""
        try:
            return getattr(self.client(service), operation)(**kwargs)
        except ClientError as exc:
            raise _aws_error(f"{service} {operation}", exc) from exc
        except BotoCoreError as exc:
            raise AwsError(f"{service} {operation}: {exc}") from exc

    # --- shell steps on an instance, through SSM Run Command -------------------------------------------

    def run(self, component: str, *steps: Step, label: str = "") -> str:
        """Run `steps` as root on the component's instance; return their output or raise naming the instance."""
        if self._runner is None:
            self._runner = Runner(self.client("ssm"), self._scripts_dir, self._command_timeout, self.poll)
        return self._runner.run(self.instance(component), component, list(steps), label)

    def run_json(self, component: str, *steps: Step, label: str = "") -> dict[str, Any]:
        """Run `steps` and return the JSON object their last output line holds."""
        output = self.run(component, *steps, label=label)
        try:
            answer = json.loads(last_line(output))
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            raise AwsError(f"{label or steps[-1].script} on {component} answered no JSON object: "
                           f"{last_line(output)[:200]!r}")
        return answer

    # --- components: systemd units, files, the apps' fault controls --------------------------------------

    def unit_state(self, component: str) -> str:
        """Return `systemctl is-active` of the component's unit: active, failed, inactive, ..."""
        state = last_line(self.run(component, shell(f"systemctl is-active {component} || true"),
                                   label=f"systemctl is-active {component}"))
        if not state:
            raise AwsError(f"systemctl is-active {component} on {self.instance(component)} said nothing")
        return state

    def running(self, component: str) -> bool:
        """True if the component's unit is active."""
        return self.unit_state(component) == "active"

    def kill(self, component: str) -> None:
        """SIGKILL every process of the component's unit (`pkill -9`): it stays down, there is no Restart=."""
        self.run(component, shell(f"systemctl kill --signal=SIGKILL {component}"))

    def start(self, component: str) -> None:
        """Start the component's unit if it is not active (a unit killed by SIGKILL is 'failed')."""
        self.run(component, shell(f"systemctl is-active --quiet {component} || "
                                  f"{{ systemctl reset-failed {component} || true; systemctl start {component}; }}"),
                 label=f"systemctl start {component}")

    def restart(self, component: str) -> None:
        """Restart the component's unit."""
        self.run(component, shell(f"systemctl restart {component}"))

    def read_file(self, component: str, path: str) -> bytes:
        """Return a file's content from the component's instance (via file-get.sh); raise if it is empty."""
        encoded = last_line(self.run(component, script("file-get.sh", path), label=f"file-get.sh {path}"))
        try:
            content = base64.b64decode(encoded, validate=True)
        except ValueError:
            raise AwsError(f"file-get.sh {path} on {component} answered no base64") from None
        if not content:
            raise AwsError(f"{path} on {component} ({self.instance(component)}) read as empty")
        return content

    def save_file(self, component: str, path: str, must_have: tuple[str, ...] = ()) -> dict[str, str]:
        """Return what restore_file needs to put a file back byte for byte; refuse one without `must_have`."""
        content = self.read_file(component, path)
        text = content.decode(errors="replace")
        for needed in must_have:
            if needed not in text:
                raise ComponentFailed(f"{path} on {component} ({self.instance(component)}) has no {needed!r}: "
                                      "it was changed by something else; put it right first")
        return {"path": path, "content_b64": base64.b64encode(content).decode()}

    def restore_file(self, component: str, saved: dict[str, str], *then: Step) -> None:
        """Put a saved file back exactly (file-put.sh: atomic, owner and mode kept), then run `then`."""
        self.run(component, script("file-put.sh", saved["path"], saved["content_b64"]), *then,
                 label=f"restore {saved['path']}")

    def replace_in_file(self, component: str, path: str, changes: dict[str, str], *then: Step) -> None:
        """Replace fixed strings in a file (file-replace.sh: all or nothing), then run `then`."""
        pairs = [text for old, new in changes.items() for text in (old, new)]
        self.run(component, script("file-replace.sh", path, *pairs), *then, label=f"edit {path}")

    def app_port(self, app: str) -> int:
        """Return the port an app listens on, on its instance (APP_PORT; locally the app's own port)."""
        return self._ports.get(app, APP_PORT)

    def app_faults(self, app: str, action: str, settings: dict[str, Any] | None = None) -> dict[str, Any]:
        """Call the app's /admin/faults on its instance (app-faults.sh, the token read there as root)."""
        return self.run_json(app, app_faults_step(action, settings, self.app_port(app)),
                             label=f"app-faults.sh {action}")

    def app_leak(self, action: str, settings: dict[str, Any] | None = None) -> dict[str, Any]:
        """Call sre-app's /admin/leak on its instance (app-leak.sh, the token read there as root)."""
        return self.run_json("sre-app", app_leak_step(action, settings, self.app_port("sre-app")),
                             label=f"app-leak.sh {action}")

    def put_app_faults(self, app: str, settings: dict[str, Any]) -> None:
        """Change some of the app's run-time fault settings (app-faults.sh fails unless the app accepts them)."""
        self.run(app, app_faults_step("put", settings, self.app_port(app)), label="app-faults.sh put")

    def put_leak(self, settings: dict[str, Any]) -> None:
        """Change sre-app's leak settings (app-leak.sh fails unless the app accepts them)."""
        self.run("sre-app", app_leak_step("put", settings, self.app_port("sre-app")), label="app-leak.sh put")

    def app_fault_settings(self, app: str) -> dict[str, Any]:
        """Return the app's run-time fault settings (latency, error rate, health) as its workers see them."""
        return self.app_faults(app, "get")["settings"]

    def restore_app_faults(self, app: str, saved: dict[str, Any]) -> None:
        """Put saved run-time fault settings back (nothing to do when the app is down: a start clears them)."""
        self.run(app, only_if_running(app), app_faults_step("put", saved, self.app_port(app)),
                 label="app-faults.sh put")

    # --- IAM: the instances' role -------------------------------------------------------------------------

    def role_name(self) -> str:
        """Return the name of the stack's EC2InstanceRole."""
        return self.physical("EC2InstanceRole")

    def role_policy(self, name: str) -> dict[str, Any] | None:
        """Return an inline policy of the instances' role as data (None if it has none of that name)."""
        try:
            document = self.client("iam").get_role_policy(RoleName=self.role_name(), PolicyName=name)["PolicyDocument"]
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "NoSuchEntity":
                return None
            raise _aws_error(f"iam get_role_policy {name}", exc) from exc
        return policy_document(document)

    def put_role_policy(self, name: str, document: dict[str, Any]) -> None:
        """Create or replace an inline policy of the instances' role."""
        self._call("iam", "put_role_policy", RoleName=self.role_name(), PolicyName=name,
                   PolicyDocument=json.dumps(document))

    # --- DynamoDB -----------------------------------------------------------------------------------------

    def table_name(self, logical: str) -> str:
        """Return the physical name of one of the stack's tables."""
        return self.physical(logical)

    def describe_table(self, name: str) -> dict[str, Any]:
        """Return a table's description."""
        return self._call("dynamodb", "describe_table", TableName=name)["Table"]

    def update_table(self, name: str, wait: float = 300.0, **changes: Any) -> dict[str, Any]:
        """Change a table once it is ACTIVE (one change at a time is all DynamoDB takes); return its description."""
        self.wait_table(name, wait)
        return self._call("dynamodb", "update_table", TableName=name, **changes)["TableDescription"]

    def wait_table(self, name: str, timeout: float = 300.0) -> dict[str, Any]:
        """Wait until the table and its indexes are ACTIVE; return its description."""
        deadline = time.monotonic() + timeout
        while True:
            table = self.describe_table(name)
            indexes = table.get("GlobalSecondaryIndexes", [])
            if table["TableStatus"] == "ACTIVE" and all(i.get("IndexStatus", "ACTIVE") == "ACTIVE" for i in indexes):
                return table
            if time.monotonic() > deadline:
                raise AwsError(f"table {name} is still {table['TableStatus']} after {timeout:.0f}s")
            time.sleep(self.poll)

    # --- EC2 security groups ----------------------------------------------------------------------------

    def ingress(self, group_id: str) -> list[dict[str, Any]]:
        """Return a security group's ingress permissions."""
        return self.ingresses([group_id]).get(group_id, [])

    def ingresses(self, group_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
        """Return the ingress permissions of each of the security groups, in one call."""
        found = self._call("ec2", "describe_security_groups", GroupIds=sorted(set(group_ids)))["SecurityGroups"]
        return {g["GroupId"]: g.get("IpPermissions", []) for g in found}

    def revoke_ingress(self, group_id: str, permission: dict[str, Any]) -> bool:
        """Revoke one ingress permission; False if it was not there."""
        try:
            self.client("ec2").revoke_security_group_ingress(GroupId=group_id, IpPermissions=[permission])
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "InvalidPermission.NotFound":
                return False
            raise _aws_error(f"ec2 revoke_security_group_ingress on {group_id}", exc) from exc
        return True

    def ingress_rules(self, group_id: str) -> list[dict[str, Any]]:
        """Return a security group's ingress rules with their ids (DescribeSecurityGroupRules)."""
        found = self._call("ec2", "describe_security_group_rules",
                           Filters=[{"Name": "group-id", "Values": [group_id]}])["SecurityGroupRules"]
        return [r for r in found if not r.get("IsEgress")]

    def modify_rule(self, group_id: str, rule_id: str, rule: dict[str, Any]) -> None:
        """Change one rule in place: it keeps its id, which CloudFormation tracks to delete it."""
        self._call("ec2", "modify_security_group_rules", GroupId=group_id,
                   SecurityGroupRules=[{"SecurityGroupRuleId": rule_id, "SecurityGroupRule": rule}])

    def revoke_rule(self, group_id: str, rule_id: str) -> None:
        """Revoke one ingress rule by its id."""
        self._call("ec2", "revoke_security_group_ingress", GroupId=group_id, SecurityGroupRuleIds=[rule_id])

    def authorize_ingress(self, group_id: str, permission: dict[str, Any]) -> bool:
        """Authorize one ingress permission; False if it was already there."""
        try:
            self.client("ec2").authorize_security_group_ingress(GroupId=group_id, IpPermissions=[permission])
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "InvalidPermission.Duplicate":
                return False
            raise _aws_error(f"ec2 authorize_security_group_ingress on {group_id}", exc) from exc
        return True

    # --- load balancers and the public entry points ---------------------------------------------------------

    def target_health(self) -> dict[str, list[dict[str, str]]]:
        """Return each target group's targets: [{"id", "state", "reason"}], by logical id."""
        health = {}
        for logical in TARGET_GROUPS:
            found = self._call("elbv2", "describe_target_health", TargetGroupArn=self.physical(logical))
            health[logical] = [{"id": t["Target"]["Id"], "state": t["TargetHealth"]["State"],
                                "reason": t["TargetHealth"].get("Description", "")}
                               for t in found["TargetHealthDescriptions"]]
        return health

    def local_url(self, component: str, path: str = "/") -> str:
        """Return the URL a component answers on from its own instance: nginx on port 80, an app on APP_PORT."""
        port = self._ports.get(component, 80 if component == "nginx" else APP_PORT)
        return f"http://127.0.0.1{'' if port == 80 else f':{port}'}{path}"

    def url(self, entry: str, path: str = "/") -> str:
        """Return a public URL: entry "app" (the ALB's port 80) or "crm" (its port 8080), with `path`."""
        base = (self._public or {}).get(entry) or self.outputs()["AppURL" if entry == "app" else "CRMURL"]
        return base.rstrip("/") + path

    def probe(self, entry: str, path: str = "/", timeout: float = PROBE_TIMEOUT) -> tuple[int, float]:
        """GET a public URL; return (status, seconds), status 0 when nothing answered in time."""
        started = time.monotonic()
        try:
            with urllib.request.urlopen(self.url(entry, path), timeout=timeout) as response:  # noqa: S310 - http URL of the stack
                response.read()
                status = response.status
        except urllib.error.HTTPError as exc:
            status = exc.code
        except (OSError, ValueError):
            status = 0
        return status, time.monotonic() - started


def policy_document(document: Any) -> dict[str, Any]:
    """Return an IAM policy document as data (boto3 decodes it; a raw URL-encoded JSON string is decoded here)."""
    if isinstance(document, dict):
        return document
    try:
        decoded = json.loads(unquote(str(document)))
    except ValueError:
        decoded = None
    if not isinstance(decoded, dict):
        raise AwsError(f"IAM answered a policy document that is not JSON: {str(document)[:80]!r}")
    return decoded


def _aws_error(what: str, exc: ClientError) -> AwsError:
    """Return a one-line AwsError for a refused call."""
    error = exc.response.get("Error", {})
    return AwsError(f"{what}: {error.get('Code', 'error')}: {error.get('Message', str(exc))}")
