"""What differs between the two worlds doctor reads, and nothing else: observe.py reads both the same way.

Both worlds are read through the AWS API (AWS's own, or the local stack's AWS API twin): the instances
through SSM Run Command (scripts/observe-host.sh), target health, CloudWatch logs and metrics, the role, the
security groups and the tables. What differs:
- where the API is and how long to wait for it: the twin answers in milliseconds and runs a command within
  a tenth of a second, so a local run has a 2.5 s deadline; AWS's SSM takes a few seconds to deliver one;
- how the template renders nginx.conf on the instance (user data on AWS, the local paths and ports here),
  and the settings it gives the apps (AWS: the stack's region and tables, the role's credentials; here the
  twin's endpoint and the stack's fixed credentials);
- how far back to read: CloudWatch's logs and one-minute datapoints reach AWS's API a minute or two late;
  the twin's agent ships them within a second, and its DynamoDB metrics are per second (10 s periods);
- what runs as a process only here. The load balancers, DynamoDB, the AWS API and its agents are managed
  services on AWS (their health is AWS's metrics and target health); on a laptop they are processes that can
  exit, freeze or be slow, and the ALBs' configuration is files. The machine is shared, too: its busy
  processes that are no instance's are context (local/extras.py reads all of that).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..aws.control import AwsControl
from ..local.components import app_env
from ..local.configs import render, render_nginx
from ..local.control import LocalControl
from ..local.stack import Stack
from ..settings import TABLE_NAMES
from . import appsettings
from .deadline import Readers
from .model import Observations

MEMORY_WINDOW_S = 300.0  # the leak's trend: the last five minutes of interval metrics

LOCAL_DEADLINE_S = 2.5  # the probes time out by 2 s (1.5 s on an instance): a whole run stays within 3 s
AWS_DEADLINE_S = 10.0  # SSM delivers a command to an instance in 1-3 s, and the script takes one more


@dataclass
class World:
    """One world's differences; observe.py reads every world through `ctl` the same way."""

    name: str  # local | aws
    ctl: AwsControl
    expected_nginx: Callable[[], str]  # nginx.conf as the template puts it on the instance
    # An app's pointing settings as the template deploys them here (appsettings.py), secrets as their digest.
    expected_settings: Callable[[str], dict[str, str]]
    deadline_s: float
    log_window_s: float  # logs: what is happening now (a cleared fault stops counting within this)
    metrics_window_s: float  # CloudWatch sums (throttling): the last datapoints that have arrived ...
    metrics_period_s: int  # ... in periods of this many seconds
    # Readers of what only this world runs as processes: started with the others, collected after them.
    extras: Callable[[Readers, Observations], Callable[[], None]] | None = None
    # On AWS a stack that is not there (or AWS refusing the caller) is the user's error, said at once; locally
    # the twin is one of the stack's processes, and one that does not answer is evidence like any other.
    api_required: bool = False


def local(stack: Stack) -> World:
    """The local stack, read through its AWS API twin, plus the processes that are managed services on AWS."""
    from .local import extras  # the machine's processes: only a local run reads them

    settings, ctl = stack.settings, _twin(stack)
    return World("local", ctl, lambda: render(settings, "nginx.conf", ""),
                 lambda app: appsettings.pointing(app_env(settings, app)), LOCAL_DEADLINE_S, log_window_s=20.0,
                 metrics_window_s=20.0, metrics_period_s=10,
                 extras=lambda run, obs: extras.start(stack, ctl, run, obs, MEMORY_WINDOW_S))


# One AwsControl per running twin, kept for the process (the MCP server, a scenario run, the tests' in-process
# CLI): its clients (each costs botocore's model loading) and the stack's ids it has read stay valid while
# that twin process runs; another twin (restarted: its pid changed) gets a new one.
_controls: dict[tuple[str, int], AwsControl] = {}


def _twin(stack: Stack) -> AwsControl:
    record = stack.record("aws-api") if "aws-api" in stack.components else None
    if record is None:
        return LocalControl(stack).twin()
    key = (str(stack.settings.state_dir.resolve()), record.pid)
    if key not in _controls:
        if len(_controls) >= 8:  # stacks come and go in one process (the tests): keep the last few
            _controls.pop(next(iter(_controls)))
        _controls[key] = LocalControl(stack).twin()
    return _controls[key]


def aws(ctl: AwsControl, infra_dir: Path) -> World:
    """A stack deployed by `sre-workshop deploy` (`infra_dir`: where the nginx.conf template is)."""
    def expected_nginx() -> str:
        return render_nginx((infra_dir / "nginx" / "nginx.conf").read_text(), ctl.outputs()["PrivateALBDNSName"])

    def expected_settings(app: str) -> dict[str, str]:
        """The region the stack runs in and its tables' names, as the user data writes them; no endpoint and
        no credentials (the instance role gives them)."""
        return {"AWS_REGION": ctl.region, **{k: ctl.physical(TABLE_NAMES[k]) for k in appsettings.APP_TABLES[app]}}

    return World("aws", ctl, expected_nginx, expected_settings, AWS_DEADLINE_S, log_window_s=60.0,
                 metrics_window_s=300.0, metrics_period_s=60, api_required=True)
