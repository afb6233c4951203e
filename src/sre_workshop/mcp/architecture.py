"""get_architecture: the system as the live stack is configured now, read from its rendered configs.

Nothing here is a fixed text: components, ports and states come from the stack's process records, the
paths from the hops doctor probes, target groups and health checks from the load balancers' configs, and
the config facts (nginx's upstream and timeouts, the apps' tables) from the files the processes read.
"""

from __future__ import annotations

import re
from dataclasses import asdict
from typing import Any

from ..diagnose.local import probes, readers
from ..local.health import TARGET_COMPONENTS
from ..local.stack import Stack
from ..vocabulary import COMPONENTS, LAYERS

NGINX_FACTS = re.compile(r"^\s*(listen|set \$private_alb|proxy_pass|proxy_\w*timeout|location)\b")
HAPROXY_FACTS = re.compile(r"^\s*(frontend|backend|bind|server|option httpchk|http-check|default_backend|use_backend|"
                           r"timeout \w+)\b")


def describe(stack: Stack) -> dict[str, Any]:
    """Return the live architecture: components, entry points, paths, target groups, config facts."""
    status = stack.status()
    return {
        "world": "local",
        "entry_points": status["endpoints"],
        "layers": LAYERS,
        "components": [_component(row) for row in status["components"]],
        "paths": _paths(stack),
        "target_groups": {"health_check": asdict(stack.settings.health_check),
                          "targets": [{**t, "component": TARGET_COMPONENTS.get(t["target_group"], t["target"])}
                                      for t in status["targets"]]},
        "config": _config_facts(stack),
    }


def _component(row: dict[str, Any]) -> dict[str, Any]:
    return {"name": row["name"], "layer": COMPONENTS.get(row["name"], "data"), "state": row["state"],
            "healthy": row["healthy"], "pid": row["pid"], "ports": row["ports"], "url": row["url"]}


def _paths(stack: Stack) -> dict[str, list[dict[str, str]]]:
    """The request paths, hop by hop from the entry point down, as doctor probes them."""
    hops = [{"component": c, "hop": n, "url": u} for c, n, u in probes.hops(stack.settings)]
    app = [h for h in hops if h["component"] in ("public-alb", "nginx", "private-alb", "sre-app")
           and ":8080" not in h["hop"]]
    crm = [h for h in hops if h["component"] == "crm-app" or ":8080" in h["hop"]]
    data = [h for h in hops if h["component"].startswith("dynamodb")]
    return {"app": app, "crm": crm, "data": data}


def _config_facts(stack: Stack) -> dict[str, Any]:
    """The lines of each rendered config that say where traffic goes and how long it may take."""
    facts: dict[str, Any] = {}
    for component in stack.components.values():
        for name in component.configs:
            path = stack.settings.run_dir / name
            if not path.exists():
                continue
            pattern = NGINX_FACTS if name == "nginx.conf" else HAPROXY_FACTS
            facts[name] = [line.strip() for line in path.read_text().splitlines() if pattern.match(line)]
    facts["app_tables"] = readers.app_tables(stack)
    return facts
