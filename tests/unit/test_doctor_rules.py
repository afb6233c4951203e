"""doctor's rules on hand-made observations, its leak trend, and the import rule that keeps it honest."""

from __future__ import annotations

import ast
from pathlib import Path

from sre_workshop.diagnose.model import (
    METRIC_THROTTLE_EVENTS,
    METRIC_THROTTLED,
    ComponentState,
    LogSummary,
    Observations,
    Probe,
    Report,
)
from sre_workshop.diagnose.rules import diagnose
from sre_workshop.diagnose.trend import fit

DIAGNOSE = Path(__file__).resolve().parents[2] / "src" / "sre_workshop" / "diagnose"
HOPS = {"public-alb :80 /": "public-alb", "nginx /": "nginx", "nginx /health": "nginx", "private-alb /": "private-alb",
        "sre-app /": "sre-app", "sre-app /health": "sre-app", "public-alb :8080 /api/customers": "public-alb",
        "crm-app /health": "crm-app", "crm-app /api/customers": "crm-app"}


def healthy(**changes) -> Observations:
    obs = Observations("now", "local")
    obs.components = {n: ComponentState(n, "running", 1) for n in
                      ("dynamodb", "dynamodb-endpoint", "sre-app", "crm-app", "private-alb", "nginx", "public-alb")}
    obs.probes = {n: Probe(n, c, "http://x", 200, 0.002) for n, c in HOPS.items()}
    obs.targets = [{"target_group": g, "target": "t", "state": "healthy", "reason": "Layer7 check passed"}
                   for g in ("PublicALBTargetGroup", "PrivateALBTargetGroup", "CRMAppTargetGroup")]
    obs.tables = ["CRMCustomersTable"]
    obs.app_tables = {"crm-app": {"CUSTOMERS_TABLE": "CRMCustomersTable"}}
    for key, value in changes.items():
        setattr(obs, key, value)
    return obs


def top(obs: Observations) -> tuple[str, str]:
    findings = diagnose(obs)
    assert findings, "nothing found"
    return findings[0].component, findings[0].category


def test_a_healthy_stack_has_no_finding():
    assert diagnose(healthy()) == []


def test_a_dead_process_is_the_root_cause_not_its_consequences():
    obs = healthy()
    obs.components["nginx"].state = "exited"
    for name in ("public-alb :80 /", "nginx /", "nginx /health"):
        obs.probes[name].status = 503 if name.startswith("public") else 0
    findings = diagnose(obs)
    assert [(f.component, f.category) for f in findings] == [("nginx", "crash")]
    assert any("public-alb :80 /: 503" in e for e in findings[0].evidence)


def test_access_denied_in_the_logs_points_at_the_role():
    obs = healthy(logs={"crm-app": LogSummary("crm-app", 10, {"503": 10}, {}, {"AccessDeniedException": 10})})
    assert top(obs) == ("iam-role", "permissions")


def test_a_table_setting_that_names_no_table_is_a_bad_deploy():
    obs = healthy(app_tables={"crm-app": {"CUSTOMERS_TABLE": "CRMCustomersTable-v2"}})
    assert top(obs) == ("crm-app", "config")


def test_a_bad_deploy_refused_by_iam_is_the_deploy_not_the_role():
    # The role grants only the stack's tables, so IAM refuses the misnamed table before DynamoDB looks for it.
    denied = {"crm-app": LogSummary("crm-app", 10, {"503": 10}, {}, {"AccessDeniedException": 10})}
    probes = healthy().probes | {"crm-app /api/customers": Probe("crm-app /api/customers", "crm-app", "http://x", 503,
                                                                 0.01, error="AccessDeniedException")}
    obs = healthy(logs=denied, probes=probes, app_tables={"crm-app": {"CUSTOMERS_TABLE": "CRMCustomersTable-v2"}})
    findings = diagnose(obs)
    assert [(f.component, f.category) for f in findings] == [("crm-app", "config")]
    assert "AccessDeniedException 10 times in crm-app's log" in findings[0].evidence
    # the same denials with the settings right, or unreadable: the role
    assert top(healthy(logs=denied, probes=probes)) == ("iam-role", "permissions")
    assert top(healthy(logs=denied, probes=probes, app_tables={})) == ("iam-role", "permissions")


def test_an_edited_upstream_is_an_nginx_config_finding():
    obs = healthy(config_drift={"nginx.conf": [('set $private_alb "127.0.0.1:8002";', 'set $private_alb "x:1";')]})
    assert top(obs) == ("nginx", "config")


def test_a_failing_health_check_read_from_target_health_alone():
    """Issue 20.5: on AWS the ALB fails open (GET / stays 200) and SSM may not read the instance: the target's
    reason (its check got 503) is enough."""
    reason = "Target.ResponseCodeMismatch: Health checks failed with these codes: [503]"
    probes = {n: p for n, p in healthy().probes.items() if not n.startswith("sre-app")}
    targets = [{"target_group": "PrivateALBTargetGroup", "target": "i-1:8080", "state": "unhealthy", "reason": reason},
               {"target_group": "PublicALBTargetGroup", "target": "i-2:80", "state": "healthy", "reason": ""}]
    obs = healthy(probes=probes, targets=targets)
    obs.components.pop("sre-app")
    (finding,) = diagnose(obs)
    assert (finding.component, finding.category) == ("sre-app", "health-check")
    assert any(reason in line for line in finding.evidence)
    timed_out = [{**targets[0], "reason": "Target.Timeout: Request timed out"}]
    assert all(f.category != "health-check" for f in diagnose(healthy(probes=probes, targets=timed_out)))


def test_a_failing_health_check_of_a_running_app():
    obs = healthy()
    obs.probes["sre-app /health"].status = 503
    assert top(obs) == ("sre-app", "health-check")


def test_a_target_that_times_out_but_answers_directly_is_the_network():
    obs = healthy()
    obs.targets[0].update(state="unhealthy", reason="Layer4 timeout")
    assert top(obs) == ("security-groups", "network")


def test_a_leak_is_a_trend_not_a_level():
    steady = [(t * 10.0, 150.0 + (t % 2) * 0.5, 200.0) for t in range(10)]  # high, noisy, flat
    growing = [(t * 10.0, t * 10.0, 60 + t * 10.0) for t in range(4)]  # 1 MB/s
    assert not fit([(t, v) for t, v, _ in steady]).leaking
    trend = fit([(t, v) for t, v, _ in growing])
    assert trend.leaking and round(trend.slope_mb_per_min) == 60
    assert diagnose(healthy(memory={"w": steady})) == []
    assert top(healthy(memory={"w": growing})) == ("sre-app", "memory")


def test_server_errors_without_a_dependency_are_the_apps():
    obs = healthy(logs={"sre-app": LogSummary("sre-app", 100, {"200": 70, "500": 30}, {"internal server error": 30})})
    assert top(obs) == ("sre-app", "errors")


def test_diagnose_never_imports_the_ground_truth():
    """doctor must find what it finds from symptoms: no faults, scenarios, ledger or fault records."""
    for path in DIAGNOSE.rglob("*.py"):
        tree = ast.parse(path.read_text())
        modules = [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
        modules += [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
        assert not [m for m in modules if any(x in m for x in ("faults", "scenarios", "incidents", "state"))], path
        assert ".faults" not in path.read_text() and ".overlays" not in path.read_text(), path


# --- AWS-only observations: the role, the security groups, CloudWatch metrics, unread signals ------------------


def test_a_deny_in_the_role_is_the_roles_permissions():
    fact = "DynamoDBAccess of role wk-EC2InstanceRole-X denies dynamodb:* on *"
    obs = healthy(policy_drift=[fact], logs={"crm-app": LogSummary("crm-app", 4, {"503": 4}, {},
                                                                   {"AccessDeniedException": 4})})
    (finding,) = diagnose(obs)
    assert (finding.component, finding.category, finding.severity) == ("iam-role", "permissions", "critical")
    assert finding.evidence[:2] == [fact, "AccessDeniedException: 4 times in the apps' logs and probes"]
    assert "put-role-policy" in finding.remediation


def test_a_missing_ingress_rule_is_the_network_not_the_hop_that_shows_it():
    fact = "NginxSecurityGroup (sg-1) lets in no tcp 80 from PublicALBSecurityGroup (sg-2): the template's ..."
    obs = healthy(network_drift=[fact])
    obs.probes["public-alb :80 /"].status = 504
    obs.targets[0].update(state="unhealthy", reason="Target.Timeout: Request timed out")
    findings = diagnose(obs)
    assert [(f.component, f.category) for f in findings] == [("security-groups", "network")]
    assert findings[0].evidence[0] == fact
    assert "PublicALBTargetGroup: t unhealthy (Target.Timeout: Request timed out)" in findings[0].evidence


def test_throttles_seen_only_in_cloudwatch_are_throttling():
    obs = healthy(metrics={METRIC_THROTTLED: 12.0, METRIC_THROTTLE_EVENTS: 0.0})
    (finding,) = diagnose(obs)
    assert (finding.component, finding.category) == ("dynamodb", "throttling")
    assert finding.evidence[0] == f"{METRIC_THROTTLED} (CloudWatch): 12 times in the window"
    assert diagnose(healthy(metrics={METRIC_THROTTLED: 0.0})) == []


def test_a_table_not_found_with_unreadable_settings_is_the_apps_config():
    logs = {"crm-app": LogSummary("crm-app", 10, {"503": 5}, {"DynamoDB Scan failed: ResourceNotFoundException": 5},
                                  {"ResourceNotFoundException": 5})}
    obs = healthy(logs=logs, app_tables={}, unknown={"crm-app instance": "SSM: the command did not run"})
    (finding,) = diagnose(obs)
    assert (finding.component, finding.category) == ("crm-app", "config")
    assert "crm-app's table settings could not be read (SSM: the command did not run)" in finding.evidence
    # with the settings read and naming tables that exist, a missing table is not this app's config
    assert [f.category for f in diagnose(healthy(logs=logs))] != ["config"]


def test_what_could_not_be_read_is_neither_a_finding_nor_healthy():
    obs = healthy(unknown={"nginx instance": "SSM: the command did not run"})
    report = Report("now", diagnose(obs), obs)
    assert report.findings == [] and not report.healthy
    assert report.to_dict()["unknown"] == {"nginx instance": "SSM: the command did not run"}
    assert Report("now", [], healthy()).healthy


def test_one_slow_probe_the_apps_log_contradicts_is_the_host_not_the_app():
    """A probe paused by a busy host (noise) is no latency finding when none of the app's requests was slow;
    the same probe with slow requests in the log, or a probe that timed out, is."""
    def crm(seconds: float, slow: int, error: str = "") -> Observations:
        obs = healthy(logs={"crm-app": LogSummary("crm-app", 138, {"200": 138}, {}, slow=slow)})
        for name in ("public-alb :8080 /api/customers", "crm-app /api/customers"):
            obs.probes[name].seconds, obs.probes[name].error = seconds, error
        return obs
    assert diagnose(crm(1.35, slow=0)) == []
    assert top(crm(1.35, slow=12)) == ("crm-app", "latency")
    timed_out = crm(5.0, slow=0, error="timeout")
    for name in ("public-alb :8080 /api/customers", "crm-app /api/customers"):
        timed_out.probes[name].status = 0
    assert top(timed_out) == ("crm-app", "latency")
