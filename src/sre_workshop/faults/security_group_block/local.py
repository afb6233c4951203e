"""security-group-block on the local stack: one hop's connections time out, on loopback only.

The hop's source is pointed at a blackhole (local/listener.py: a listener whose full accept queue makes
the kernel drop every SYN), by an overlay on the source's config, which the source reads without a restart
(nginx reloads, a load balancer's server moves through its runtime API); the blackhole is recorded by pid
(run/helpers/) and stopped by that record. clear drops the overlay first, so the hop never meets a closed
port on the way back. Neither the rendered line nor the listener's name or command line says which fault
this is: an examinee reads configs and the process table.
"""

from __future__ import annotations

import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

from ...errors import ComponentFailed
from ...settings import LOOPBACK
from ..contract import LocalCtl
from ..model import NotYet

OWNER = "security-group-block"
HELPER = "listener"  # an ordinary name: it shows in the helper's log file and record (the examiner's)


@dataclass(frozen=True)
class Hop:
    """One hop of the chain: who connects, the config line naming the destination, where it shows."""

    source: str
    config: str
    line: str  # the line of the rendered config that names the destination, with {address}
    destination: str
    target: str | None  # the load balancer's target whose health checks time out (nginx checks none)
    entry: str  # the public entry point and path where the symptom shows
    status: int  # what that entry point answers
    backend: str = ""  # a load balancer's backend (target group) holding `target`


HOPS = {
    "public-alb->nginx": Hop("public-alb", "public-alb.cfg", "server NginxInstance1 {address} check", "nginx",
                             "NginxInstance1", "app:/", 503, "PublicALBTargetGroup"),
    "nginx->private-alb": Hop("nginx", "nginx.conf", 'set $private_alb "{address}";', "private-alb", None,
                              "app:/", 504),
    "private-alb->sre-app": Hop("private-alb", "private-alb.cfg", "server AppServerInstance1 {address} check",
                                "sre-app", "AppServerInstance1", "app:/", 503, "PrivateALBTargetGroup"),
    "public-alb->crm-app": Hop("public-alb", "public-alb.cfg", "server CRMAppInstance {address} check", "crm-app",
                               "CRMAppInstance", "crm:/health", 503, "CRMAppTargetGroup"),
}


def _line(ctl: LocalCtl, hop: Hop) -> str:
    return hop.line.format(address=f"{LOOPBACK}:{ctl.settings.port(hop.destination)}")


def snapshot(ctl: LocalCtl, params: dict[str, Any]) -> dict[str, Any]:
    """Save the hop's line as the source reads it, and where the blackhole will be recorded."""
    hop = HOPS[params["hop"]]
    if _line(ctl, hop) not in ctl.rendered(hop.config):
        raise ComponentFailed(f"{hop.config} does not name {hop.destination} as expected (another fault?)")
    return {"config": hop.config, "line": _line(ctl, hop), "blackhole": str(ctl.helper_path(HELPER))}


def inject(ctl: LocalCtl, params: dict[str, Any]) -> None:
    """Start the blackhole, point the hop's source at it, and have the source read its config."""
    hop = HOPS[params["hop"]]
    port = _start_blackhole(ctl)
    cut = hop.line.format(address=f"{LOOPBACK}:{port}")
    ctl.add_overlay(OWNER, hop.config, {_line(ctl, hop): cut})
    _apply(ctl, hop, port)


def _apply(ctl: LocalCtl, hop: Hop, port: int) -> None:
    """Have the running source connect to `port` as its rendered config now says: nginx by a reload, a load
    balancer through its runtime API. A revoked rule restarts nothing on AWS, so nothing restarts here."""
    ctl.render()
    if not ctl.running(hop.source):
        return  # it reads the rendered config when it starts
    if hop.backend:
        ctl.set_server(hop.source, hop.backend, hop.target or "", port)
    else:
        ctl.reload(hop.source)


def _start_blackhole(ctl: LocalCtl, timeout: float = 15.0) -> int:
    """Start the blackhole (a fresh one) and return its port once it listens."""
    ctl.stop_helper(HELPER)
    port_file = ctl.helper_path(HELPER).with_suffix(".port")
    port_file.unlink(missing_ok=True)
    ctl.start_helper(HELPER, [sys.executable, "-m", "sre_workshop.local.listener", str(port_file)])
    deadline = time.monotonic() + timeout
    while not port_file.exists():
        if ctl.helper(HELPER) is None or time.monotonic() > deadline:
            raise ComponentFailed(f"the blackhole listener did not start (see {ctl.settings.logs_dir}/{HELPER}.log)")
        time.sleep(0.02)
    return int(port_file.read_text())


def verify(ctl: LocalCtl, params: dict[str, Any]) -> str:
    """Evidence: the source's connections time out (its health checks say so) and the entry point fails."""
    hop = HOPS[params["hop"]]
    if ctl.helper(HELPER) is None:
        raise NotYet("the blackhole listener is not running")
    seen = ""
    if hop.target:
        health = next((t for t in ctl.stack.targets() if t.target == hop.target), None)
        if health is None or health.state != "unhealthy" or "timeout" not in health.reason.lower():
            raise NotYet(f"target {hop.target} is {health.state if health else 'not found'}")
        seen = f"target {hop.target} is unhealthy ({health.reason}); "
    endpoint, path = hop.entry.split(":")
    url = ctl.settings.endpoints[endpoint] + path
    status = _status(url)
    if status != hop.status:
        raise NotYet(f"GET {url} answers {status or 'nothing'}")
    return f"{params['hop']}: connections time out; {seen}GET {url} answers {status}"


def _status(url: str) -> int:
    """Return the status of GET url, waiting longer than nginx's 5 s connect timeout (0: no answer)."""
    try:
        with urllib.request.urlopen(url, timeout=15) as response:  # noqa: S310 - loopback URLs of the stack
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return 0


def active(ctl: LocalCtl, params: dict[str, Any]) -> bool:
    """True while the source's config names the hop's line with another address than the destination's,
    blackhole running or not: either way the hop is cut (a hand repair of the line ends it too)."""
    hop = HOPS[params["hop"]]
    start, right = hop.line.split("{address}")[0], _line(ctl, hop)
    return any(line.strip().startswith(start) and line.strip() != right
               for line in ctl.rendered(hop.config).splitlines())


def clear(ctl: LocalCtl, params: dict[str, Any], saved: dict[str, Any]) -> None:
    """Point the source at the destination again (the template's line), then stop the blackhole."""
    hop = HOPS[params["hop"]]
    if ctl.remove_overlays(OWNER) or active(ctl, params):  # an inject killed before its overlay changed nothing
        _apply(ctl, hop, ctl.settings.port(hop.destination))
    ctl.stop_helper(HELPER)
    ctl.helper_path(HELPER).with_suffix(".port").unlink(missing_ok=True)
