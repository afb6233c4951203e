"""From symptoms to findings, the same rules for both worlds.

Each rule looks at the observations and returns findings for the root causes it recognises; a root cause
carries its consequences (the failing public entry points, error counts, log lines) as evidence. Rules run
from the deepest cause up, and a component already explained is not reported again by a shallower rule.
"""

from __future__ import annotations

from collections.abc import Callable

from . import breakage
from .model import METRIC_THROTTLE_EVENTS, METRIC_THROTTLED, Finding, Observations, Probe
from .paths import APP_PATH, APP_PATHS, CRM_PATH, down_public, failing_public, probe_of
from .trend import Trend, fit

# What the local world calls the things an AWS operator would fix.
FIX = {
    "iam-role": "restore the DynamoDBAccess inline policy of EC2InstanceRole from the template (`aws iam "
                "put-role-policy`; locally the same call through `eval \"$(sre-workshop aws-env --shell)\"`: "
                "the DynamoDB endpoint enforces the role as the twin has it)",
    "throttling": "raise the tables' throughput (on-demand without a maximum, as the template creates them: "
                  "`aws dynamodb update-table --billing-mode PAY_PER_REQUEST`; locally the same call through "
                  "`sre-workshop aws-env`)",
    "policy": "put the DynamoDBAccess inline policy of the instances' role back as the template has it "
              "(`aws iam put-role-policy --role-name ROLE --policy-name DynamoDBAccess --policy-document "
              "file://doc.json`, the document from the template) and remove any Deny added to the role",
    "network": "authorize the missing ingress rule again as the template has it (`aws ec2 "
               "authorize-security-group-ingress --group-id GROUP --protocol tcp --port PORT --source-group "
               "SOURCE`, the ids in the evidence)",
}
DENIED = ("AccessDeniedException", "UnrecognizedClientException")
THROTTLED = ("ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded")
LEAK_CAP_MB = 200.0  # sre-app's default cap per worker
RSS_READINGS = 30  # RSS is noisy: its trend needs the whole window (5 minutes of 10 s readings)
BURNED_CPU = 60.0  # % of one core wanted by processes that hold no socket (they serve nobody)
# A target whose check got an answer, but not 200: ELBv2's reason code, HAProxy's check text. The target runs.
WRONG_STATUS = ("ResponseCodeMismatch", "wrong status")
TARGET_APPS = {"PrivateALBTargetGroup": "sre-app", "CRMAppTargetGroup": "crm-app"}
# The service each instance of the architecture runs; a busy process that names no instance is the app host's.
INSTANCE_SERVICE = {"AppServerInstance1": "sre-app", "CRMAppInstance": "crm-app", "NginxInstance1": "nginx"}
APP_HOST = "AppServerInstance1"


def diagnose(obs: Observations) -> list[Finding]:
    """Return the findings, most severe first, one per root cause."""
    findings: list[Finding] = []
    for rule in RULES:
        explained = {f.component for f in findings}
        attributed = {line for f in findings for line in f.evidence}
        # A failing entry point that a deeper finding already carries as evidence is a consequence (the hop
        # it fails at may be one no rule names: a security group sits between two hops that both answer).
        # So are an app's slowness and errors while the data tier it waits on is found hung, slow or gone.
        findings.extend(f for f in rule(obs) if f.component not in explained
                        and not (rule is public_failures and f.evidence[0] in attributed)
                        and not (rule in CONSEQUENCES and f.component in APP_PATHS and _data_tier_found(findings)))
    down = set(down_public(obs))
    for finding in findings:  # severity follows impact: what explains a failing entry point is critical
        if down & set(finding.evidence):
            finding.severity = "critical"
    rank = {"critical": 0, "major": 1, "minor": 2}
    return sorted(findings, key=lambda f: rank[f.severity])


def _data_tier_found(findings: list[Finding]) -> bool:
    return any(f.component in ("dynamodb", "dynamodb-endpoint") and f.category in DATA_CAUSES for f in findings)


_probe = probe_of


def processes_down(obs: Observations) -> list[Finding]:
    """A component whose process is gone."""
    found = []
    for state in obs.components.values():
        if state.state == "running":
            continue
        what = "exited" if state.state == "exited" else "is not running"
        found.append(Finding(state.name, "crash", "critical", f"{state.name} {what}",
                             [f"{state.name}: no live process (last pid {state.pid or '-'})", *failing_public(obs)],
                             f"`sre-workshop service start {state.name}` (on AWS: `systemctl start` on its instance)"))
    return found


def aws_codes(obs: Observations, skip: set[str] | frozenset[str] = frozenset()) -> dict[str, int]:
    """Count the AWS error codes named in the logs and in the probes' answers (but those of the apps in
    `skip`, whose errors another finding explains)."""
    codes: dict[str, int] = {}
    for source, summary in obs.logs.items():
        if source in skip:
            continue
        for code, n in summary.aws_codes.items():
            codes[code] = codes.get(code, 0) + n
    skipped = {name for app in skip for name in APP_PATHS[app]}
    for probe in obs.probes.values():
        if probe.error and probe.name not in skipped:
            codes[probe.error] = codes.get(probe.error, 0) + 1
    return codes


def misdeployed(obs: Observations) -> set[str]:
    """The apps whose table settings name a table that does not exist."""
    return {app for app, settings in obs.app_tables.items()
            if obs.tables and any(v not in obs.tables for v in settings.values())}


def role_policy(obs: Observations) -> list[Finding]:
    """The instances' role no longer grants what the template grants (a Deny, a changed or missing policy)."""
    if not obs.policy_drift:
        return []
    denied = {c: n for c, n in aws_codes(obs).items() if c in DENIED}
    evidence = [*obs.policy_drift, *(f"{c}: {n} times in the apps' logs and probes" for c, n in denied.items())]
    return [Finding("iam-role", "permissions", "critical",
                    "the instances' role does not grant DynamoDB access as the template does",
                    evidence + failing_public(obs), FIX["policy"])]


def security_groups(obs: Observations) -> list[Finding]:
    """An ingress rule of the security-group chain is gone: the hop behind it drops connections."""
    if not obs.network_drift:
        return []
    timed_out = [f"{t['target_group']}: {t['target']} {t['state']} ({t['reason']})" for t in obs.targets
                 if "timeout" in t["reason"].lower() or "timed out" in t["reason"].lower()]
    nginx = _probe(obs, "nginx /")
    hop = [nginx.describe()] if nginx and nginx.status in (0, 502, 504) else []
    return [Finding("security-groups", "network", "critical",
                    "a hop of the security-group chain is closed: its ingress rule is gone",
                    [*obs.network_drift, *timed_out, *hop, *failing_public(obs)], FIX["network"])]


def dynamodb_refusals(obs: Observations) -> list[Finding]:
    """DynamoDB answering AccessDenied (the role) or throttling (the tables), seen in logs, probes and metrics.
    An app deployed with a wrong table is refused too: missing_tables explains its errors."""
    codes = aws_codes(obs, misdeployed(obs))
    for metric in (METRIC_THROTTLED, METRIC_THROTTLE_EVENTS):
        if obs.metrics.get(metric, 0) > 0:
            codes[f"{metric} (CloudWatch)"] = int(obs.metrics[metric])
    found = []
    denied = {c: n for c, n in codes.items() if c in DENIED}
    if denied:
        found.append(Finding("iam-role", "permissions", "critical",
                             "DynamoDB refuses the instances' requests: access denied",
                             [f"{c}: {n} times in the apps' logs and probes" for c, n in denied.items()]
                             + failing_public(obs), FIX["iam-role"]))
    throttled = {c: n for c, n in codes.items() if c in THROTTLED or c.endswith("(CloudWatch)")}
    if throttled:
        found.append(Finding("dynamodb", "throttling", "major", "DynamoDB throttles the CRM tables",
                             [f"{c}: {n} times in the window" if c.endswith(")") else
                              f"{c}: {n} times in the apps' logs and probes" for c, n in throttled.items()]
                             + failing_public(obs), FIX["throttling"]))
    return found


def missing_tables(obs: Observations) -> list[Finding]:
    """An app configured with a table that does not exist (a bad deploy)."""
    found = []
    for app, settings in obs.app_tables.items():
        template = obs.template_settings.get(app, {})
        wrong = {k: v for k, v in settings.items() if obs.tables and v not in obs.tables and v != template.get(k)}
        if wrong:
            evidence = [f"{k}={v}: no such table (tables: {', '.join(sorted(obs.tables))})"
                        + (f"; the template sets {template[k]}" if k in template else "") for k, v in wrong.items()]
            summary = obs.logs.get(app)
            codes = {c: n for c, n in (summary.aws_codes.items() if summary else ())
                     if c in (*DENIED, "ResourceNotFoundException")}
            evidence += [f"{c} {n} times in {app}'s log" for c, n in sorted(codes.items())]
            found.append(Finding(app, "config", "critical", f"{app} was deployed with a table that does not exist",
                                 evidence + failing_public(obs),
                                 f"set {', '.join(wrong)} back to the table's name in {app}'s environment "
                                 f"(/etc/sre-workshop/{app}.env) and restart it (`systemctl restart {app}`)"))
    return found


def unknown_table(obs: Observations) -> list[Finding]:
    """An app whose DynamoDB calls name a table that does not exist, when its settings could not be read. (An
    AccessDenied is not taken for a wrong table here, even with the role as the template has it: a table's
    resource policy or an organisation's SCP can refuse too.)"""
    found = []
    for app in ("sre-app", "crm-app"):
        summary = obs.logs.get(app)
        missing = summary.aws_codes.get("ResourceNotFoundException", 0) if summary else 0
        if missing < 3 or app in obs.app_tables:
            continue  # with the app's settings read, missing_tables names the very setting
        top = sorted(((m, n) for m, n in summary.errors.items() if "ResourceNotFound" in m), key=lambda kv: -kv[1])
        why = obs.unknown.get(f"{app} settings") or obs.unknown.get(f"{app} instance")
        evidence = [f"ResourceNotFoundException {missing} times in {app}'s log in the window",
                    *[f"error log: {m} ({n}x)" for m, n in top[:2]],
                    f"{app}'s table settings could not be read" + (f" ({why})" if why else ""),
                    *([f"tables that exist: {', '.join(sorted(obs.tables))}"] if obs.tables else [])]
        found.append(Finding(app, "config", "major", f"{app} asks DynamoDB for a table that does not exist",
                             evidence + failing_public(obs),
                             f"compare the *_TABLE settings in /etc/sre-workshop/{app}.env with the stack's tables "
                             f"and restart {app} (`systemctl restart {app}`)"))
    return found


def nginx_config(obs: Observations) -> list[Finding]:
    """nginx.conf edited away from its template: the upstream or the proxy timeouts."""
    drift = obs.config_drift.get("nginx.conf", [])
    if not drift:
        return []
    errors = obs.logs.get("nginx-error")
    access = obs.logs.get("nginx-access")
    upstream = [(a, b) for a, b in drift if "$private_alb" in a or "$private_alb" in b]
    if upstream:
        evidence = [f"nginx.conf: {b!r} (template: {a!r})" for a, b in upstream]
        evidence += _log_evidence(access, errors, "502", "connect()") + failing_public(obs)
        return [Finding("nginx", "config", "critical", "nginx's upstream is not the private load balancer",
                        evidence, "put the template's `set $private_alb` line back in nginx.conf, then "
                                  "`sre-workshop service reload nginx` (AWS: `systemctl reload nginx`)")]
    timeouts = [(a, b) for a, b in drift if "timeout" in a or "timeout" in b]
    if timeouts:
        evidence = [f"nginx.conf: {b!r} (template: {a!r})" for a, b in timeouts]
        evidence += _log_evidence(access, errors, "504", "timed out") + failing_public(obs)
        seen = access.count("504") if access else 0
        return [Finding("nginx", "config", "major" if seen else "minor",
                        "nginx's proxy timeouts were cut below the template's", evidence,
                        "restore the proxy_*_timeout lines of nginx.conf from the template, then "
                        "`sre-workshop service reload nginx`")]
    return [Finding("nginx", "config", "minor", "nginx.conf differs from its template",
                    [f"nginx.conf: {b!r} (template: {a!r})" for a, b in drift[:5]],
                    "restore nginx.conf from the template, then `sre-workshop service reload nginx`")]


def _log_evidence(access, errors, status: str, phrase: str) -> list[str]:
    evidence = []
    if access and access.count(status):
        evidence.append(f"nginx answered {status} {access.count(status)} times in the window")
    if errors:
        evidence += [f"nginx error log: {m} ({n}x)" for m, n in errors.errors.items() if phrase in m][:2]
    return evidence


def health_checks(obs: Observations) -> list[Finding]:
    """A running target whose own /health fails (503) while it otherwise answers; or a hop that times out."""
    found = []
    # A target out of service by the load balancer's choice (maintenance, draining) is out_of_service's.
    unhealthy = {t["target_group"]: t for t in obs.targets if t["state"] not in ("healthy", "unused", "draining")
                 and t["reason"].split(":", 1)[0] not in breakage.ADMIN}
    for app in ("sre-app", "crm-app"):
        health = _probe(obs, f"{app} /health")
        # On AWS the target health alone may show it: an ALB whose only target is unhealthy fails open (GET /
        # stays 200), and the instance's own probe is unknown when SSM cannot read it.
        wrong = [g for g, t in unhealthy.items() if TARGET_APPS.get(g) == app
                 and any(w in t["reason"] for w in WRONG_STATUS)]
        if (health and health.status == 503) or wrong:
            groups = [f"{g}: {t['state']} ({t['reason']})" for g, t in unhealthy.items()]
            own = [health.describe()] if health else []
            found.append(Finding(app, "health-check", "critical", f"{app}'s health check fails while it runs",
                                 [*own, *groups, *failing_public(obs)],
                                 f"find why {app}'s /health answers 503 (its log), fix it, "
                                 f"or `sre-workshop service restart {app}`"))
    timed_out = [t for t in unhealthy.values() if "timeout" in t["reason"].lower()]
    direct_ok = all(p.ok for n, p in obs.probes.items() if n.endswith("/health") and "public" not in n)
    if timed_out and direct_ok:
        found.append(Finding("security-groups", "network", "critical",
                             "the load balancer's connections to a target time out while the target answers directly",
                             [f"{t['target_group']}: {t['target']} {t['state']} ({t['reason']})" for t in timed_out]
                             + failing_public(obs),
                             "restore the security group's ingress rule for this hop from the template"))
    return found


def hop_timeouts(obs: Observations) -> list[Finding]:
    """nginx times out on the private load balancer while both answer directly: a dropped hop."""
    nginx, private = _probe(obs, "nginx /"), _probe(obs, "private-alb /")
    timed_out = nginx and (nginx.status == 504 or nginx.error == "timeout")
    if timed_out and private and private.ok and not obs.config_drift.get("nginx.conf"):
        return [Finding("security-groups", "network", "critical",
                        "connections from nginx to the private load balancer time out",
                        [nginx.describe(), private.describe(), *failing_public(obs)],
                        "restore the private load balancer's security group ingress from nginx (port 80)")]
    return []


def cpu_saturation(obs: Observations) -> list[Finding]:
    """An instance's CPU saturated by processes that are not the stack's services, and its app slowed by it.
    Each busy process counts for the instance it runs on (the app host when it does not say)."""
    burned = sum(cpu for _, _, cpu in obs.top_processes)
    if obs.host_cpu_percent < 85 or burned < BURNED_CPU:
        return []  # a busy host is a finding only when processes that serve nobody take the CPU
    by_instance: dict[str, float] = {}
    for pid, _name, cpu in obs.top_processes:
        instance = obs.process_instances.get(pid, APP_HOST)
        by_instance[instance] = by_instance.get(instance, 0.0) + cpu
    instance = max(by_instance, key=lambda i: by_instance[i])
    component = INSTANCE_SERVICE.get(instance, "sre-app")
    evidence = [f"host CPU {obs.host_cpu_percent:.0f}%"]
    evidence += [f"pid {pid} {name!r}: wants {cpu:.0f}% of a core" + (f" on {obs.process_instances[pid]}"
                                                          if pid in obs.process_instances else "")
                 for pid, name, cpu in obs.top_processes]
    slow = [p.describe() for n, p in obs.probes.items() if p.status == 200 and p.seconds >= 0.2]
    host = "the app host" if component == "sre-app" else f"{component}'s host"
    return [Finding(component, "cpu", "major", f"{host}'s CPU is saturated by processes outside {component}",
                    evidence + slow, "stop the busy processes (`kill PID`) or move them off the instance")]


def _slow(probe: Probe | None) -> bool:
    """True for a request answered 200 after a second or more, or not answered within the probe's time."""
    return probe is not None and ((probe.status == 200 and probe.seconds >= 1.0) or probe.error == "timeout")


def _log_agrees(own: Probe, summary) -> bool:
    """True unless the app's own log contradicts one slow probe: a probe answered after a second while none
    of the app's logged requests took a second is the host pausing doctor (a busy CPU, a burst of load),
    not the app. A timeout stands on its own: slow requests still in flight are not in the log yet."""
    return own.error == "timeout" or summary is None or not summary.lines or summary.slow > 0


def latency(obs: Observations) -> list[Finding]:
    """An app that answers slowly: its own request is slow (or times out: doctor's probes queue behind each
    other on sync workers) and so is every hop above it, none failing otherwise; or its log shows many slow
    requests."""
    found = []
    for app, path, log in (("sre-app", APP_PATH, "sre-app"), ("crm-app", CRM_PATH, "crm-app")):
        hops = [obs.probes[n] for n in path if n in obs.probes]
        own = _probe(obs, path[-1])
        summary = obs.logs.get(log)
        slow = summary.slow if summary else 0
        many_slow = summary is not None and slow >= max(3, summary.lines // 10)
        chain_slow = _slow(own) and all(p.ok or _slow(p) for p in hops) and _log_agrees(own, summary)
        if chain_slow or (own is not None and own.status == 200 and many_slow):
            found.append(Finding(app, "latency", "major", f"{app} answers slowly",
                                 [p.describe() for p in hops] + [f"{slow} of {summary.lines if summary else 0} "
                                                                 "requests took over a second in its log"],
                                 f"find what slows {app} (its log, CPU, dependencies); "
                                 f"`sre-workshop service restart {app}` if it is stuck"))
    return found


def server_errors(obs: Observations) -> list[Finding]:
    """An app answering a share of 500s with error lines of its own (no dependency named)."""
    found = []
    for app in ("sre-app", "crm-app"):
        summary = obs.logs.get(app)
        if not summary or not summary.lines:
            continue
        errors = summary.count("500")
        if errors >= 3 and errors / summary.lines >= 0.05:
            top = sorted(summary.errors.items(), key=lambda kv: -kv[1])[:2]
            found.append(Finding(app, "errors", "major",
                                 f"{app} answers {100 * errors / summary.lines:.0f}% of its requests with 500",
                                 [f"{errors} of {summary.lines} requests answered 500 in the window",
                                  *[f"error log: {m} ({n}x)" for m, n in top]],
                                 f"read `sre-workshop logs {app}` for the failing code path, fix and redeploy"))
    return found


def memory_growth(obs: Observations) -> list[Finding]:
    """Workers whose retained memory grows steadily (the trend, not the level)."""
    evidence, worst = [], None
    for worker, points in obs.memory.items():
        leak = recent_trend([(t, leak) for t, leak, _ in points])
        rss = fit([(t, rss) for t, _, rss in points][-RSS_READINGS:])
        if leak.leaking or rss.leaking:
            trend = leak if leak.leaking else rss
            to_cap = trend.minutes_to(LEAK_CAP_MB)
            evidence.append(f"{worker}: +{trend.slope_mb_per_min:.1f} MB/min over {trend.points} readings "
                            f"(now {trend.last_mb:.0f} MB; RSS {rss.last_mb:.0f} MB"
                            + (f"; the {LEAK_CAP_MB:.0f} MB cap in {to_cap:.0f} min)" if to_cap else ")"))
            worst = max(worst or 0.0, trend.slope_mb_per_min)
    if not evidence:
        return []
    return [Finding("sre-app", "memory", "major" if worst >= 10 else "minor",
                    f"sre-app's workers leak memory ({worst:.1f} MB/min at worst)", evidence,
                    "find what retains memory (the leak in sre-app/leak.py); until then restart the workers "
                    "(`sre-workshop service restart sre-app`) before they reach the cap")]


def recent_trend(points: list[tuple[float, float]]) -> Trend:
    """Fit the leak counter over the last 3 to 6 readings, and over all of them (the reader's five minutes),
    and keep the steepest steady one: a leak that began a minute ago shows at once, a slow one once it has
    risen past the noise over the longer window, while a flat series stays flat in every window."""
    fits = [fit(points[-n:]) for n in range(3, min(6, len(points)) + 1)]
    if len(points) > 6:
        fits.append(fit(points))
    leaking = [t for t in fits if t.leaking]
    return max(leaking, key=lambda t: t.slope_mb_per_min) if leaking else (fits[-1] if fits else fit(points))


def public_failures(obs: Observations) -> list[Finding]:
    """A public entry point failing with no deeper cause found: name the first hop that fails. A slow 200
    is not a failure: slowness is latency's to judge, and one it did not confirm is the host's pause."""
    for path in (APP_PATH, CRM_PATH):
        entry = _probe(obs, path[0])
        if not entry or entry.ok or entry.status == 200:
            continue
        failing = [n for n in path if (p := _probe(obs, n)) and not p.ok]
        first = failing[-1] if failing else path[0]
        component = obs.probes[first].component
        return [Finding(component, "errors", "major", f"{path[0]} fails, first at {first}",
                        [obs.probes[n].describe() for n in path if n in obs.probes],
                        f"look at `sre-workshop logs {component}` and `sre-workshop status`")]
    return []


RULES: list[Callable[[Observations], list[Finding]]] = [
    processes_down, breakage.exhausted, breakage.hung, role_policy, breakage.missing_resources, missing_tables,
    unknown_table, breakage.settings_drift, dynamodb_refusals, nginx_config, security_groups,
    breakage.out_of_service, health_checks, hop_timeouts, cpu_saturation, breakage.slow_dependency, latency,
    server_errors, memory_growth, public_failures, breakage.missing_log_groups,
]
# The rules whose app findings are consequences when the data tier is found hung, slow, gone or used up.
CONSEQUENCES = (latency, server_errors, public_failures, unknown_table)
DATA_CAUSES = ("crash", "hang", "latency", "missing-resource", "exhaustion")
