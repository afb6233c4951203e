"""health-check-fail on AWS: the app's /health answers 503 (its /admin/faults on its instance, through SSM);
the load balancer's checks (every 30 s, 3 to fail) then mark the target unhealthy. With its only target
unhealthy the ALB fails open: GET / keeps answering 200, so only the target health shows it."""

from __future__ import annotations

from typing import Any

from ...aws.ssm import Step, shell
from ...errors import AwsError, ComponentFailed
from ..contract import AwsCtl
from ..model import NotYet

FIELDS = ("health",)
TARGET_GROUPS = {"sre-app": "PrivateALBTargetGroup", "crm-app": "CRMAppTargetGroup"}


def health_status(port: int) -> Step:
    """Return the step that prints what the load balancer's health check gets, asked on the instance itself."""
    url = f"http://127.0.0.1:{int(port)}/health"
    return shell(f"curl -s -o /dev/null -w '%{{http_code}}\\n' --max-time 5 {url} || true")


def _target(params: dict[str, Any]) -> str:
    return params.get("target", "sre-app")  # the fault is sre-app's; a target parameter may widen it


def snapshot(ctl: AwsCtl, params: dict[str, Any]) -> dict[str, Any]:
    """Save the app's health setting as it is."""
    settings = ctl.app_fault_settings(_target(params))
    return {k: settings[k] for k in FIELDS}


def inject(ctl: AwsCtl, params: dict[str, Any]) -> None:
    """Make the app's /health answer 503 while the app keeps serving."""
    ctl.put_app_faults(_target(params), {"health": "fail"})


def verify(ctl: AwsCtl, params: dict[str, Any]) -> str:
    """Evidence: /health answers 503 on the instance; the target group's view of the target, as it is now."""
    target = _target(params)
    status = ctl.run(target, health_status(ctl.app_port(target)), label="curl /health").strip()
    if status != "503":
        raise NotYet(f"/health on {ctl.instance(target)} answers {status or 'nothing'}")
    group = TARGET_GROUPS[target]
    states = ", ".join(t["state"] for t in ctl.target_health()[group]) or "no target"
    return (f"/health of {target} on {ctl.instance(target)} answers 503; {group} sees {states} "
            "(unhealthy after 3 failed checks, 30 s apart)")


def active(ctl: AwsCtl, params: dict[str, Any]) -> bool | None:
    """True while the app's /health is set to fail (None when it cannot be asked: it is down)."""
    try:
        return ctl.app_fault_settings(_target(params))["health"] == "fail"
    except (AwsError, ComponentFailed):
        return None


def clear(ctl: AwsCtl, params: dict[str, Any], saved: dict[str, Any]) -> None:
    """Put the saved health setting back (the app's other run-time faults stay as they are)."""
    ctl.restore_app_faults(_target(params), saved)
