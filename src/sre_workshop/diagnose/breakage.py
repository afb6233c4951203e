"""Rules for breakage beyond a crash or an error: a process alive but silent, a resource gone or used up, a
target taken out of its load balancer, a setting that points elsewhere, a slow dependency.

Each tells apart two things that look alike from the entry point: a frozen process from a dead one, a table
deleted from a setting that names another (compared with the template), a target out of service from one
failing its checks, a pool used up from an app that is slow, a slow dependency from a slow app.
"""

from __future__ import annotations

from ..local.lbstats import ADMIN  # the ALB's reason codes of a target out of service
from .model import Finding, LogSummary, Observations, Probe
from .paths import APP_PATHS, failing_public, probe_of, silent

# A component's own check: a request that asks nothing of the tiers below it.
OWN_PROBE = {"dynamodb": "dynamodb ListTables", "nginx": "nginx /health", "sre-app": "sre-app /health",
             "crm-app": "crm-app /health"}
# The data each app's probes ask of DynamoDB (a silent one with a quick /health: stuck on the dependency).
DATA_PROBES = {"sre-app": ["sre-app /", "sre-app /health?deep=1"], "crm-app": ["crm-app /api/customers"]}
ENGINE, ENDPOINT = "dynamodb ListTables", "dynamodb-endpoint GetItem"
# The load balancer that owns each target group (a target out of service is its configuration, not the target's).
BALANCER = {"PublicALBTargetGroup": "public-alb", "CRMAppTargetGroup": "public-alb",
            "PrivateALBTargetGroup": "private-alb"}
TARGET_COMPONENT = {"PublicALBTargetGroup": "nginx", "CRMAppTargetGroup": "crm-app",
                    "PrivateALBTargetGroup": "sre-app"}
SLOW_DEPENDENCY_S = 0.5  # an app request waiting this long on DynamoDB, whose calls take milliseconds
SLOW_SAMPLE_S = 0.3  # an answer of the engine (or the endpoint) this late counts as slow
QUICK_S = 0.25  # an app's own /health this fast is not itself slowed (by its CPU, or the host pausing doctor)
FD_FULL = 0.9  # a process holding this share of its descriptor limit has (about) none left
DISK_FULL_PERCENT = 1.0
ENOSPC, EMFILE, NGINX_CONNECTIONS = "No space left on device", "Too many open files", "worker_connections are not"


def hung(obs: Observations) -> list[Finding]:
    """A process alive but answering nothing: stopped by a signal (state T), or silent on its own check while
    it finishes no slow request either (an app that is only slow is latency's; one whose workers are all
    held is exhaustion's, which runs first)."""
    found = []
    for name, state in obs.components.items():
        if state.state != "running" or name not in (*OWN_PROBE, "dynamodb-endpoint", "public-alb", "private-alb",
                                                    "aws-api", "cloudwatch-agent"):
            continue
        own = _own_probe(obs, name)
        summary = obs.logs.get(name)
        if state.suspended and (own is None or not own.status):  # stopped now and then, answering: slow
            why = (f"{name}: {state.suspended} of its processes are stopped by a signal (state T): alive, "
                   "answering nothing")
            fix = (f"resume it (`kill -CONT -{state.pid}`: its process group) and find who stopped it; or "
                   f"`sre-workshop service restart {name}` (on AWS: `systemctl restart` on its instance)")
        elif silent(own) and not (summary and summary.slow) and not obs.network_drift:
            # (a silence behind a closed security group is the network's: security_groups names it)
            why = f"{name}: its process runs (pid {state.pid}) but its own check gets no answer"
            fix = (f"`sre-workshop service restart {name}` (on AWS: `systemctl restart` on its instance); first "
                   f"see where it waits (`py-spy dump --pid {state.pid}`, or its log)")
        else:
            continue
        waiting = [p.describe() for p in obs.probes.values() if silent(p) and p is not own]
        found.append(Finding(name, "hang", "critical", f"{name} is alive but answers nothing",
                             [why, *([own.describe()] if own else []), *waiting[:4], *failing_public(obs)], fix))
    return found


def _own_probe(obs: Observations, name: str) -> Probe | None:
    """The probe that asks `name` alone; the endpoint's passes to the engine, so it is its own only while the
    engine answers."""
    if name == "dynamodb-endpoint":
        engine = probe_of(obs, ENGINE)
        return probe_of(obs, ENDPOINT) if engine is None or engine.status else None  # any answer: it works
    return probe_of(obs, OWN_PROBE.get(name, ""))


def exhausted(obs: Observations) -> list[Finding]:
    """A finite resource used up: an app's workers all held by open connections, a process out of file
    descriptors, no disk left where logs or data are written, nginx out of worker connections."""
    found = [*_pools(obs), *_descriptors(obs), *_disks(obs)]
    errors = obs.logs.get("nginx-error")
    lines = [f"nginx error log: {m} ({n}x)" for m, n in (errors.errors.items() if errors else ())
             if NGINX_CONNECTIONS in m]
    if lines:
        found.append(Finding("nginx", "exhaustion", "major", "nginx has no worker connection left", [
            *lines, *failing_public(obs)], "raise worker_connections (and the open-files limit) in nginx.conf, then "
                                             "`sre-workshop service reload nginx`; find who holds the connections"))
    return found


def _pools(obs: Observations) -> list[Finding]:
    found = []
    for app, (open_, workers) in obs.connections.items():
        own, state, summary = probe_of(obs, f"{app} /health"), obs.components.get(app), obs.logs.get(app)
        held = silent(own) and workers and open_ >= workers
        if not held or (state and state.suspended) or (summary and summary.slow):
            continue  # a stopped app is hung; one finishing slow requests is slow (latency), not held
        found.append(Finding(app, "exhaustion", "critical", f"every worker of {app} is held: new requests queue",
                             [f"{app}: {open_} connections open to its port, {workers} sync workers (one "
                              "connection each): every worker is busy and none finishes a request",
                              own.describe(), *failing_public(obs)],
                             f"find the clients that hold {app}'s connections open (`ss -tnp` on its port) and stop "
                             f"them; then `sre-workshop service restart {app}`; in front of it, a proxy that "
                             "buffers requests (nginx) protects the workers"))
    return found


def _descriptors(obs: Observations) -> list[Finding]:
    found = []
    for name, (open_, limit) in obs.descriptors.items():
        summary = obs.logs.get(name) or obs.logs.get(f"{name}-error")
        said = [f"{name}'s log: {m} ({n}x)" for m, n in (summary.errors.items() if summary else ()) if EMFILE in m]
        if limit and (open_ >= FD_FULL * limit or said):
            found.append(Finding(name, "exhaustion", "major", f"{name} has no file descriptor left", [
                f"{name}: {open_} file descriptors open of a limit of {limit}", *said[:2], *failing_public(obs)],
                f"raise {name}'s open-files limit (LimitNOFILE in its unit) and find what holds the descriptors; "
                f"`sre-workshop service restart {name}` starts it with its unit's limit"))
    return found


def _disks(obs: Observations) -> list[Finding]:
    found = []
    for source, summary in obs.logs.items():
        said = [f"{source} log: {m} ({n}x)" for m, n in summary.errors.items() if ENOSPC in m]
        if said:
            name = "nginx" if source.startswith("nginx") else source
            found.append(Finding(name, "exhaustion", "critical", f"{name} cannot write: the disk is full", [
                *said[:2], *(f"{path}: {free:.1f}% of the disk free" for path, free in obs.disk_free.items()),
                *failing_public(obs)], "free space on the disk (old logs: rotate and compress them), then "
                                       f"`sre-workshop service restart {name}`"))
    data = {p: f for p, f in obs.disk_free.items() if p.endswith("data") and f < DISK_FULL_PERCENT}
    if data and not found:
        found.append(Finding("dynamodb", "exhaustion", "critical", "the disk of DynamoDB's store is full", [
            *(f"{p}: {f:.1f}% of the disk free" for p, f in data.items()), *failing_public(obs)],
            "free space on the store's disk; the engine writes again without a restart"))
    return found


def missing_resources(obs: Observations) -> list[Finding]:
    """A table (or an index) the template defines is gone: no setting changed (the apps name it as the
    template does), the resource itself was deleted."""
    gone = [t for t in obs.template_tables if t not in obs.tables] if obs.tables and obs.template_tables else []
    if not gone and not obs.missing_indexes:
        return []
    users = [f"{app}: {k}={v} as the template sets it, and {v} does not exist"
             for app, settings in obs.app_tables.items() for k, v in settings.items() if v in gone]
    codes = [f"{code} {s.aws_codes[code]} times in {app}'s log" for app, s in obs.logs.items()
             for code in ("ResourceNotFoundException", "ValidationException") if s.aws_codes.get(code)]
    indexes = [f"{t}: no index {', '.join(names)} (the template defines it)"
               for t, names in obs.missing_indexes.items()]
    what = [f"table {', '.join(gone)}"] if gone else []
    what += [f"index {', '.join(n)} of {t}" for t, n in obs.missing_indexes.items()]
    fix = [f"`sre-workshop restore {t}`" for t in gone]
    fix += [f"recreate {t} with its index as the template defines it (on AWS: `aws dynamodb update-table "
            f"--table-name {t} --global-secondary-index-updates` with a Create; locally, where the engine cannot "
            f"add an index: export its newer items, delete it, `sre-workshop restore {t}`, write them back)"
            for t in obs.missing_indexes]
    return [Finding("dynamodb", "missing-resource", "critical" if gone else "major",
                    f"{' and '.join(what)} is gone (the template defines it)",
                    [f"{t}: not in DynamoDB (tables: {', '.join(sorted(obs.tables))})" for t in gone]
                    + indexes + users + codes + failing_public(obs),
                    "; ".join(fix) + (" recreates each from the template with the last snapshot's items (on AWS: "
                                      "restore it from a backup or point-in-time recovery, or update the stack so "
                                      "CloudFormation recreates it)" if gone else ""))]


def missing_log_groups(obs: Observations) -> list[Finding]:
    """A log group the template defines is gone (deleted; CloudFormation made it). What it held is lost, and
    its source's lines are not shipped until it exists again: the CloudWatch agent creates it at the next
    line it ships (its role may, with CloudWatchAgentServerPolicy), so a quiet source stays without it."""
    if not obs.missing_log_groups:
        return []
    groups = [group for group, _ in obs.missing_log_groups.values()]
    fix = []
    for group, days in obs.missing_log_groups.values():
        create = f"aws logs create-log-group --log-group-name {group}"
        fix.append(f"`{create} && aws logs put-retention-policy --log-group-name {group} --retention-in-days {days}`"
                   if days else f"`{create}`")
    return [Finding("cloudwatch-logs", "missing-resource", "major",
                    f"log group {', '.join(groups)} is gone (the template defines it)",
                    [f"{group}: ResourceNotFoundException: the log group does not exist ({source}'s lines are "
                     "not shipped, and what it held is lost)" for source, (group, _) in obs.missing_log_groups.items()],
                    "create it again as the template does: " + "; ".join(fix) + " (the same calls on AWS and on "
                    "the local twin; the CloudWatch agent also creates it when it next ships a line)")]


def settings_drift(obs: Observations) -> list[Finding]:
    """An app running with a region, an endpoint, credentials or a table that differ from what the template
    deploys (a table that does not exist is missing_tables', with its refusals as evidence)."""
    found = []
    for app, drift in obs.settings_drift.items():
        if not drift:
            continue
        failing = [p.describe() for n in APP_PATHS.get(app, []) if (p := probe_of(obs, n)) and p.status != 200]
        summary = obs.logs.get(app)
        evidence = [f"{app}: {k}={_shown(k, now)} (template: {_shown(k, was)})" for k, was, now in drift]
        evidence += _refusals(app, summary) + failing
        keys = ", ".join(k for k, *_ in drift)
        found.append(Finding(app, "config", "critical" if failing else "major",
                             f"{app} runs with settings that differ from the template's ({keys})", evidence,
                             f"put {keys} back as the template has them in /etc/sre-workshop/{app}.env on its "
                             f"instance (`sre-workshop shell` on it), then `sre-workshop service restart {app}` "
                             f"(on AWS: `systemctl restart {app}`)"))
    return found


def _shown(key: str, value: str) -> str:
    """A setting's value as a report may show it: a secret's never."""
    return "(a different secret)" if "SECRET" in key or "TOKEN" in key else (value or "(unset)")


def _refusals(app: str, summary: LogSummary | None) -> list[str]:
    return [f"{c} {n} times in {app}'s log" for c, n in sorted((summary.aws_codes if summary else {}).items())]


def out_of_service(obs: Observations) -> list[Finding]:
    """A target taken out of its load balancer (in maintenance, draining, deregistered): it runs and may pass
    its checks, but the load balancer sends it nothing. The change is the load balancer's, not the target's."""
    found: dict[str, Finding] = {}
    for t in obs.targets:
        code = t["reason"].split(":", 1)[0].strip()
        if code not in ADMIN and t["state"] != "draining":
            continue
        balancer = BALANCER.get(t["target_group"], "public-alb")
        component = TARGET_COMPONENT.get(t["target_group"])
        own = probe_of(obs, f"{component} /health")
        line = f"{t['target_group']}: {t['target']} {ADMIN.get(code, t['state'])} ({t['state']}: {t['reason']})"
        if balancer in found:
            found[balancer].evidence.insert(0, line)
            continue
        found[balancer] = Finding(
            balancer, "out-of-service", "major",
            f"{t['target_group']}'s target {t['target']} was taken out of {balancer} ({ADMIN.get(code, t['state'])})",
            [line, *([f"the target itself answers: {own.describe()}"] if own and own.ok else []), *failing_public(obs)],
            _back_in_service(t, balancer))
    return list(found.values())


def _back_in_service(target: dict[str, str], balancer: str) -> str:
    """The repair of a target out of service: registered again through the API when the API no longer lists it
    (or lists it draining), else (locally, a load balancer process that holds it in maintenance or lost it)
    its load balancer restarted from its configuration, which has every target the API registers."""
    if target.get("registered") == "no" or target["state"] == "draining":
        instance, _, port = target["target"].rpartition(":")
        arn = target.get("target_group_arn", "ARN")
        return (f"register it again: `aws elbv2 register-targets --target-group-arn {arn} --targets "
                f"Id={instance}{f',Port={port}' if port else ''}` (the same call on AWS and on the local twin)")
    return (f"put the target back in service: `sre-workshop service restart {balancer}` (its configuration has "
            "every target the API registers); or `set server GROUP/TARGET state ready` on its HAProxy runtime socket")


def slow_dependency(obs: Observations) -> list[Finding]:
    """DynamoDB answering, but late, in most of its answers over the run, while the apps' own health checks
    are quick: their slowness is the dependency's (a slow engine, or a slow endpoint in front of a quick
    engine). One slow answer among quick ones is a pause of the host (a burst of load), not a finding."""
    engine, endpoint = _answers(obs, ENGINE), _answers(obs, ENDPOINT)
    if _slow_answers(engine):
        slow, component = engine, "dynamodb"
    elif _slow_answers(endpoint) and engine and _median(engine) < QUICK_S:
        slow, component = endpoint, "dynamodb-endpoint"
    else:
        return []
    waiting = []
    for app, names in DATA_PROBES.items():
        own = probe_of(obs, f"{app} /health")
        if own and own.ok and own.seconds < QUICK_S:
            waiting += [p.describe() for n in names if (p := probe_of(obs, n)) and p.seconds >= SLOW_DEPENDENCY_S]
    if not waiting:
        return []  # nothing waits on it
    times = ", ".join(f"{p.seconds * 1000:.0f}" for p in slow)
    return [Finding(component, "latency", "major", f"{component} answers slowly: the apps wait on it",
                    [f"{slow[0].name}: answered in {times} ms over the run", *waiting,
                     "the apps' own health checks answer quickly", *failing_public(obs)],
                    f"find what slows {component} (its host's CPU and disk, its log, the requests it serves); "
                    f"`sre-workshop service restart {component}` if it is stuck")]


def _answers(obs: Observations, name: str) -> list[Probe]:
    """The probe and the samples of one dependency that got an answer (any status: the engine refuses
    doctor's unsigned call with a 400, and that is an answer)."""
    found = [probe_of(obs, name), *obs.dependency_samples.get(name, [])]
    return [p for p in found if p is not None and p.status]


def _median(answers: list[Probe]) -> float:
    times = sorted(p.seconds for p in answers)
    return times[len(times) // 2] if times else 0.0


def _slow_answers(answers: list[Probe]) -> bool:
    """True when most answers (more than half, at least two) took SLOW_SAMPLE_S or longer."""
    slow = sum(1 for p in answers if p.seconds >= SLOW_SAMPLE_S)
    return slow >= 2 and 2 * slow > len(answers)
