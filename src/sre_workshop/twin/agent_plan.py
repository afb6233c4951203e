"""The cloudwatch-agent's plan: which instance is which local processes and files, where the twin is.

The plan is a JSON file the twin writes (or `build_plan` below, from what the stack knows). Example:

    {"endpoint": "http://127.0.0.1:8007", "region": "us-east-1",
     "credentials": {"aws_access_key_id": "...", "aws_secret_access_key": "..."},
     "config": "/abs/infra/cloudwatch/amazon-cloudwatch-agent.json",
     "period_s": 60, "spool_dir": "/abs/state/run/cloudwatch-agent",
     "instances": {"i-0abc": {"logical_id": "NginxInstance1", "components": ["nginx"],
                              "pid_records": ["/abs/state/run/pids/nginx.json"], "memory_mib": 1024, "vcpus": 2,
                              "private_ip": "10.0.10.5"}},
     "files": {"i-0abc": {"/var/log/nginx/access.log": "/abs/state/logs/nginx-access.log"}},
     "load_balancers": [{"dimension": "app/sre-workshop-public-alb/50dc6c495c0c9188",
                         "socket": "/abs/state/run/public-alb.sock", "frontends": ["listener_80", "listener_8080"],
                         "target_groups": {"PublicALBTargetGroup": "targetgroup/NAME/ID"}}]}

`private_ip` is optional (it fills `{ip_address}` and `{hostname}` in stream names); `memory_mib` and `vcpus`
default to a t3.micro's (1024 MiB, 2 vCPUs), the template's instance type.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import UsageError
from ..local.components import LOCAL_CREDENTIALS
from ..settings import Settings
from .instances import COMPONENTS, EXTRA_PID_FILES, LOGS

# t3.micro, the template's default InstanceType.
DEFAULT_MEMORY_MIB = 1024
DEFAULT_VCPUS = 2

# The stack's instances: logical id -> (components, {path on the instance: file name in the state's logs/}).
INSTANCES = {logical: (components, LOGS[logical]) for logical, components in COMPONENTS.items()}
# The load balancers: logical id -> (HAProxy component, its frontends, its backends = target groups' logical ids).
LOAD_BALANCERS = {
    "PublicALB": ("public-alb", ("listener_80", "listener_8080"), ("PublicALBTargetGroup", "CRMAppTargetGroup")),
    "PrivateALB": ("private-alb", ("listener_80",), ("PrivateALBTargetGroup",)),
}


@dataclass(frozen=True)
class Instance:
    """One EC2 instance of the twin and the local process groups that stand for it."""

    instance_id: str
    logical_id: str
    components: tuple[str, ...]
    pid_records: tuple[Path, ...]
    memory_mib: float = DEFAULT_MEMORY_MIB
    vcpus: int = DEFAULT_VCPUS
    private_ip: str = ""

    @property
    def hostname(self) -> str:
        """The instance's hostname as EC2 names it from its private address (its id without one)."""
        return f"ip-{self.private_ip.replace('.', '-')}" if self.private_ip else self.instance_id


@dataclass(frozen=True)
class LoadBalancer:
    """One ALB of the twin: its CloudWatch dimension and the HAProxy that stands for it."""

    dimension: str
    socket: Path
    frontends: tuple[str, ...]
    target_groups: dict[str, str]  # HAProxy backend name -> targetgroup/NAME/ID


@dataclass(frozen=True)
class Plan:
    """Everything the agent needs: the twin's endpoint, the config, the instances, files and ALBs."""

    endpoint: str
    region: str
    credentials: dict[str, str]
    config: Path
    spool_dir: Path
    period_s: float = 60.0
    instances: dict[str, Instance] = field(default_factory=dict)
    files: dict[str, dict[str, Path]] = field(default_factory=dict)  # instance id -> {AWS path: local path}
    load_balancers: tuple[LoadBalancer, ...] = ()


def parse_plan(data: Mapping) -> Plan:
    """Return the plan described by a decoded plan file, or raise UsageError naming what is wrong."""
    try:
        instances = {iid: Instance(iid, i["logical_id"], tuple(i.get("components", ())),
                                   tuple(Path(p) for p in i.get("pid_records", ())),
                                   float(i.get("memory_mib", DEFAULT_MEMORY_MIB)), int(i.get("vcpus", DEFAULT_VCPUS)),
                                   i.get("private_ip", ""))
                     for iid, i in data.get("instances", {}).items()}
        lbs = tuple(LoadBalancer(lb["dimension"], Path(lb["socket"]), tuple(lb.get("frontends", ())),
                                 dict(lb.get("target_groups", {}))) for lb in data.get("load_balancers", ()))
        files = {iid: {aws: Path(local) for aws, local in paths.items()}
                 for iid, paths in data.get("files", {}).items()}
        plan = Plan(data["endpoint"], data.get("region", "us-east-1"), dict(data.get("credentials", {})),
                    Path(data["config"]), Path(data["spool_dir"]), float(data.get("period_s", 60)),
                    instances, files, lbs)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise UsageError(f"bad agent plan: {type(exc).__name__} {exc}") from exc
    if plan.period_s <= 0:
        raise UsageError("bad agent plan: period_s must be positive")
    return plan


def load_plan(path: Path) -> Plan:
    """Read and check a plan file."""
    try:
        return parse_plan(json.loads(path.read_text()))
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot read the agent plan {path}: {exc}") from exc


def full_name(arn_or_name: str) -> str:
    """Return the name CloudWatch's dimensions use (app/NAME/ID, targetgroup/NAME/ID) from an ARN or that name."""
    if ":loadbalancer/" in arn_or_name:
        return arn_or_name.split(":loadbalancer/", 1)[1]
    return arn_or_name.rsplit(":", 1)[-1]


def build_plan(settings: Settings, endpoint: str, instance_ids: Mapping[str, str], resources: Mapping[str, str], *,
               period_s: float = 60, credentials: Mapping[str, str] | None = None,
               private_ips: Mapping[str, str] | None = None) -> dict:
    """Return the plan (as JSON-ready data) of a local stack whose twin gave these ids.

    `instance_ids` maps the template's instance logical ids (NginxInstance1, AppServerInstance1, CRMAppInstance)
    to instance ids; `resources` maps PublicALB, PrivateALB and the three target groups' logical ids to their
    ARNs or full names. An instance or load balancer missing from them is left out of the plan.
    """
    creds = credentials or {"aws_access_key_id": LOCAL_CREDENTIALS["AWS_ACCESS_KEY_ID"],
                            "aws_secret_access_key": LOCAL_CREDENTIALS["AWS_SECRET_ACCESS_KEY"]}
    plan = {"endpoint": endpoint, "region": settings.region, "credentials": dict(creds),
            "config": str(settings.infra_dir / "cloudwatch" / "amazon-cloudwatch-agent.json"),
            "period_s": period_s, "spool_dir": str(settings.run_dir / "cloudwatch-agent"),
            "instances": {}, "files": {}, "load_balancers": []}
    for logical, (components, files) in INSTANCES.items():
        if (iid := instance_ids.get(logical)) is None:
            continue
        plan["instances"][iid] = {"logical_id": logical, "components": list(components),
                                  "pid_records": [str(settings.run_dir / "pids" / f"{c}.json") for c in components]
                                  + [str(settings.run_dir / p) for p in EXTRA_PID_FILES.get(logical, ())],
                                  "memory_mib": DEFAULT_MEMORY_MIB, "vcpus": DEFAULT_VCPUS,
                                  "private_ip": (private_ips or {}).get(logical, "")}
        plan["files"][iid] = {aws: str(settings.logs_dir / name) for aws, name in files.items()}
    for logical, (component, frontends, groups) in LOAD_BALANCERS.items():
        if logical in resources:
            plan["load_balancers"].append({
                "dimension": full_name(resources[logical]), "socket": str(settings.run_dir / f"{component}.sock"),
                "frontends": list(frontends),
                "target_groups": {g: full_name(resources[g]) for g in groups if g in resources}})
    return plan
