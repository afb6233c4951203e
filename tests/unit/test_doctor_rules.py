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
    # 0.8 MB/min, read every 10 s: 0.7 MB over the last six readings is noise; 2.5 MB over three minutes is not
    slow = [(t * 10.0, t * 10.0 * 0.8 / 60, 60.0) for t in range(20)]
    assert not fit([(t, v) for t, v, _ in slow[-6:]]).leaking
    assert top(healthy(memory={"w": slow})) == ("sre-app", "memory")


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


# --- classes of breakage beyond the catalogue (issue 19) ---------------------------------------------------

def silent_probe(name: str, component: str) -> Probe:
    return Probe(name, component, "http://x", 0, 2.0, "timeout")


def test_a_stopped_engine_is_a_hang_and_the_apps_behind_it_are_its_consequences():
    obs = healthy()
    obs.components["dynamodb"].suspended = 1
    for name, component in (("dynamodb ListTables", "dynamodb"), ("crm-app /api/customers", "crm-app"),
                            ("public-alb :8080 /api/customers", "public-alb")):
        obs.probes[name] = silent_probe(name, component)
    obs.logs = {"crm-app": LogSummary("crm-app", 10, {"500": 10}, {"Read timeout on endpoint URL": 10})}
    findings = diagnose(obs)
    assert [(f.component, f.category, f.severity) for f in findings] == [("dynamodb", "hang", "critical")]
    assert any("state T" in e for e in findings[0].evidence)


def test_an_app_silent_on_its_own_check_is_a_hang_but_one_finishing_slow_requests_is_slow():
    obs = healthy()
    obs.probes["crm-app /health"] = silent_probe("crm-app /health", "crm-app")
    assert top(obs) == ("crm-app", "hang")
    obs.logs = {"crm-app": LogSummary("crm-app", 10, {"200": 10}, slow=10)}
    assert top(obs) == ("crm-app", "latency")


def test_workers_all_held_are_exhaustion():
    obs = healthy(connections={"sre-app": (6, 2)})
    obs.probes["sre-app /health"] = silent_probe("sre-app /health", "sre-app")
    assert top(obs) == ("sre-app", "exhaustion")
    obs.connections = {"sre-app": (1, 2)}  # a free worker: not held, silent all the same: a hang
    assert top(obs) == ("sre-app", "hang")


def test_file_descriptors_disk_and_nginx_connections_used_up_are_exhaustion():
    assert top(healthy(descriptors={"crm-app": (1020, 1024)})) == ("crm-app", "exhaustion")
    assert diagnose(healthy(descriptors={"crm-app": (40, 1024)})) == []
    full = LogSummary("sre-app", 5, errors={"[Errno N] No space left on device: '/var/log/sre-app.json.log'": 5})
    assert top(healthy(logs={"sre-app": full}, disk_free={"/x/logs": 0.0})) == ("sre-app", "exhaustion")
    nginx = LogSummary("nginx-error", 3, errors={"N worker_connections are not enough": 3})
    assert top(healthy(logs={"nginx-error": nginx})) == ("nginx", "exhaustion")
    assert top(healthy(disk_free={"/x/data": 0.2})) == ("dynamodb", "exhaustion")


def test_a_deleted_table_is_a_missing_resource_not_a_config():
    settings = {"crm-app": {"CUSTOMERS_TABLE": "CRMCustomersTable"}}
    obs = healthy(tables=["ApplicationMetricsTable"], template_tables=["ApplicationMetricsTable", "CRMCustomersTable"],
                  app_tables=settings, template_settings=settings)
    findings = diagnose(obs)
    assert [(f.component, f.category) for f in findings] == [("dynamodb", "missing-resource")]
    assert "`sre-workshop restore CRMCustomersTable`" in findings[0].remediation
    # the same missing table named by a setting the template does not set: the setting is wrong
    obs.app_tables = {"crm-app": {"CUSTOMERS_TABLE": "CRMCustomersTable-v2"}}
    obs.tables = ["ApplicationMetricsTable", "CRMCustomersTable"]
    assert top(obs) == ("crm-app", "config")


def test_a_deleted_log_group_is_a_missing_resource_with_the_templates_retention():
    obs = healthy()
    obs.logs.pop("nginx-error", None)
    obs.unknown["nginx-error log"] = "ResourceNotFoundException: The specified log group does not exist."
    obs.missing_log_groups = {"nginx-error": ("/aws/sre-workshop/nginx/error", 7)}
    (finding,) = diagnose(obs)
    assert (finding.component, finding.category, finding.severity) == ("cloudwatch-logs", "missing-resource", "major")
    assert ("`aws logs create-log-group --log-group-name /aws/sre-workshop/nginx/error && aws logs "
            "put-retention-policy --log-group-name /aws/sre-workshop/nginx/error --retention-in-days 7`"
            ) in finding.remediation
    obs.missing_log_groups = {"nginx-error": ("/aws/sre-workshop/nginx/error", None)}  # the template unread
    assert "put-retention-policy" not in diagnose(obs)[0].remediation


def test_a_region_endpoint_or_credentials_unlike_the_templates_are_config_and_secrets_are_not_shown():
    drift = {"crm-app": [("AWS_REGION", "us-east-1", "eu-west-3"), ("AWS_SECRET_ACCESS_KEY", "a", "b")]}
    finding = diagnose(healthy(settings_drift=drift))[0]
    assert (finding.component, finding.category, finding.severity) == ("crm-app", "config", "major")
    assert "crm-app: AWS_REGION=eu-west-3 (template: us-east-1)" in finding.evidence
    assert not any("=b " in e or "template: a)" in e for e in finding.evidence)
    obs = healthy(settings_drift=drift)
    obs.probes["crm-app /api/customers"].status = 500
    assert diagnose(obs)[0].severity == "critical"  # its requests fail: what users see


def test_a_target_out_of_service_is_the_load_balancers_not_an_unhealthy_target():
    for reason, said in (("Target.NotInUse: Target is in maintenance and receives no traffic", "in maintenance"),
                         ("Target.DeregistrationInProgress: Target deregistration is in progress", "draining"),
                         ("Target.NotRegistered: Target is not registered to the target group", "deregistered")):
        obs = healthy()
        obs.targets[1] = {"target_group": "PrivateALBTargetGroup", "target": "AppServerInstance1", "state": "unused",
                          "reason": reason}
        obs.probes["public-alb :80 /"].status = 503
        findings = diagnose(obs)
        assert [(f.component, f.category, f.severity) for f in findings] == [("private-alb", "out-of-service",
                                                                              "critical")], reason
        assert said in findings[0].summary


def test_a_target_the_api_no_longer_lists_is_registered_again_one_the_balancer_lost_restarts_it():
    obs = healthy()
    obs.targets[1] = {"target_group": "PrivateALBTargetGroup", "target": "i-0abc:8080", "state": "unused",
                      "reason": "Target.NotRegistered: Target is not registered to the target group",
                      "registered": "no", "target_group_arn": "arn:aws:elasticloadbalancing:tg/private"}
    (finding,) = diagnose(obs)
    assert finding.remediation.startswith("register it again: `aws elbv2 register-targets --target-group-arn "
                                          "arn:aws:elasticloadbalancing:tg/private --targets Id=i-0abc,Port=8080`")
    obs.targets[1] |= {"registered": "yes", "target": "AppServerInstance1"}  # listed, but its balancer lost it
    (finding,) = diagnose(obs)
    assert "`sre-workshop service restart private-alb`" in finding.remediation


def test_a_slow_engine_is_a_slow_dependency_when_the_apps_themselves_are_quick():
    def engine(*seconds: float) -> list[Probe]:
        return [Probe("dynamodb ListTables", "dynamodb", "http://x", 400, s) for s in seconds]

    obs = healthy()
    obs.probes["dynamodb ListTables"] = engine(0.7)[0]
    obs.probes["crm-app /api/customers"].seconds = 0.7
    obs.dependency_samples = {"dynamodb ListTables": engine(0.01, 0.02, 0.01, 0.01)}
    assert diagnose(obs) == [], "one slow answer among quick ones is a pause of the host"
    obs.dependency_samples = {"dynamodb ListTables": engine(0.5, 0.02, 0.6, 0.4)}
    assert top(obs) == ("dynamodb", "latency")
    obs.probes["crm-app /health"].seconds = 0.6  # the app is slow itself (its CPU, the host): not shown to be DynamoDB
    assert diagnose(obs) == [] or top(obs) != ("dynamodb", "latency")


def test_severity_follows_impact():
    obs = healthy(config_drift={"nginx.conf": [("proxy_read_timeout 60s;", "proxy_read_timeout 1s;")]})
    assert diagnose(obs)[0].severity == "minor"
    obs.probes["public-alb :80 /"].status = 504
    assert diagnose(obs)[0].severity == "critical"  # it explains a failing entry point


def test_a_table_without_the_templates_index_is_a_missing_resource():
    obs = healthy(missing_indexes={"CRMActivitiesTable": ["customer-index"]})
    finding = diagnose(obs)[0]
    assert (finding.component, finding.category) == ("dynamodb", "missing-resource")
    assert "index customer-index of CRMActivitiesTable" in finding.summary
    assert "sre-workshop restore CRMActivitiesTable" in finding.remediation


def test_a_silence_behind_a_closed_security_group_is_the_network_not_a_hang():
    obs = healthy(network_drift=["sg-app: no ingress tcp 8080 from sg-alb (the template has it)"])
    obs.probes["sre-app /health"] = silent_probe("sre-app /health", "sre-app")
    assert top(obs) == ("security-groups", "network")
