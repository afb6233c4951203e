"""The request paths doctor probes, and what a probe says about the public entry points."""

from __future__ import annotations

from .model import Observations, Probe

# The paths, entry point first: a hop fails because of itself or of something below it.
APP_PATH = ["public-alb :80 /", "nginx /", "private-alb /", "sre-app /"]
CRM_PATH = ["public-alb :8080 /api/customers", "crm-app /api/customers"]
PUBLIC = ["public-alb :80 /", "public-alb :8080 /api/customers"]
APP_PATHS = {"sre-app": APP_PATH, "crm-app": CRM_PATH}


def probe_of(obs: Observations, name: str) -> Probe | None:
    """Return the probe by that name, if doctor made it."""
    return obs.probes.get(name)


def failing_public(obs: Observations) -> list[str]:
    """Describe the public entry points that do not answer 200 quickly."""
    return [obs.probes[n].describe() for n in PUBLIC if n in obs.probes and not obs.probes[n].ok]


def down_public(obs: Observations) -> list[str]:
    """Describe the public entry points that fail outright: an error status, or no answer (a slow 200 serves)."""
    return [obs.probes[n].describe() for n in PUBLIC if n in obs.probes and obs.probes[n].status != 200]


def silent(probe: Probe | None) -> bool:
    """True for a request that got no answer within the probe's time."""
    return probe is not None and probe.status == 0 and probe.error == "timeout"
