"""doctor --aws against moto's server (a real process) holding a stack deployed by `sre-workshop deploy`: each
reader's output from seeded log events, metrics and interval metrics and from changed resources (a Deny in
the role, a revoked ingress rule), and doctor's top finding for each; the instance-side script run here
against a real sre-app.

What moto cannot show, and so these tests do not claim: SSM commands are recorded, never run (their output
is empty: the instances read as unknown), no target is registered (target health reads as unknown), the
ALB's DNS name answers nothing (the public probes go to real apps on loopback instead, through
AwsControl's `public`), percentiles of metrics are not computed, Logs Insights filters are ignored and alarms
are never evaluated (doctor uses neither). Metric datapoints cannot be deleted, so the metrics seeded here
are older than doctor's own window and are read back over an explicit one.
"""

from __future__ import annotations

import ast
import contextlib
import io
import json
import logging
import shlex
import socket
import subprocess
import time
import uuid
from datetime import UTC, datetime

import boto3
import pytest

from appkit.jsonlog import JsonFormatter
from sre_workshop.aws.control import AwsControl
from sre_workshop.aws.ssm import render, script
from sre_workshop.cli.main import ExitStatus, main
from sre_workshop.diagnose.aws import hosts, logs, metrics, policy, template
from sre_workshop.diagnose.doctor import run_aws
from sre_workshop.settings import Settings

from conftest import app_spec, eventually, http, moto_spec, start_server

REGION = "us-east-1"
STACK = "wk"
INFRA = Settings.from_env().infra_dir
DENY = {"Version": "2012-10-17",
        "Statement": [{"Sid": "Quarantine", "Effect": "Deny", "Action": "dynamodb:*", "Resource": "*"}]}


@pytest.fixture(scope="module")
def deployed(tmp_path_factory):
    """moto's server with the stack deployed by `sre-workshop deploy`, and the two apps running against it as
    the public entry points; yields (session, outputs, {"app": URL, "crm": URL})."""
    tmp = tmp_path_factory.mktemp("doctor-aws")
    server = start_server(moto_spec(tmp))
    apps = []
    try:
        with pytest.MonkeyPatch.context() as mp:
            for key, value in (("AWS_ENDPOINT_URL", server.url), ("AWS_ACCESS_KEY_ID", "testing"),
                               ("AWS_SECRET_ACCESS_KEY", "testing")):
                mp.setenv(key, value)
            mp.delenv("AWS_PROFILE", raising=False)
            out = io.StringIO()
            with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(out):
                assert main(["deploy", "--region", REGION, "--stack-name", STACK, "--ttl", "0", "--json"]) == 0
            outputs = json.loads(out.getvalue())["outputs"]
            session = boto3.session.Session(region_name=REGION)
            json_policy(session)
            register_targets(session)
            tables = {"METRICS_TABLE": outputs["MetricsTableName"], "CUSTOMERS_TABLE": outputs["CustomersTableName"],
                      "DEALS_TABLE": outputs["DealsTableName"], "ACTIVITIES_TABLE": outputs["ActivitiesTableName"]}
            for package in ("sre_app", "crm_app"):
                apps.append(start_server(app_spec(package, tmp, server.url, LEAK_MODE="off", **tables)))
            warm(apps[0].url + "/"), warm(apps[1].url + "/api/customers?limit=1")
            yield session, outputs, {"app": apps[0].url, "crm": apps[1].url}
    finally:
        for app in apps:
            app.stop()
        server.stop()


def warm(url: str) -> None:
    """Wait until an app answers quickly: its first request makes its DynamoDB client, which takes a while."""
    def quick() -> bool:
        started = time.monotonic()
        return http("GET", url).status == 200 and time.monotonic() - started < 0.5

    eventually(quick, timeout=30, interval=0.2)


def json_policy(session) -> None:
    """moto keeps the policies of a role made by CloudFormation as Python reprs, which AWS never answers:
    put the same documents back as JSON, as AWS holds them."""
    iam = session.client("iam")
    role = next(r["RoleName"] for r in iam.list_roles()["Roles"] if "EC2InstanceRole" in r["RoleName"])
    for name in iam.list_role_policies(RoleName=role)["PolicyNames"]:
        document = iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"]
        if isinstance(document, str):
            iam.put_role_policy(RoleName=role, PolicyName=name, PolicyDocument=json.dumps(ast.literal_eval(document)))


def register_targets(session) -> None:
    """Register each target group's Targets from the template, as AWS's CloudFormation does (moto's creates
    the groups and leaves them empty)."""
    resources = template.parse((INFRA / "cloudformation" / "sre-workshop.yaml").read_text())["Resources"]
    physical = {r["LogicalResourceId"]: r["PhysicalResourceId"] for r in session.client("cloudformation")
                .describe_stack_resources(StackName=STACK)["StackResources"]
                if r.get("LogicalResourceId") and r.get("PhysicalResourceId")}  # moto leaves some out
    for logical, resource in resources.items():
        for target in resource.get("Properties", {}).get("Targets", []) if resource["Type"].endswith(
                "::TargetGroup") else []:
            session.client("elbv2").register_targets(TargetGroupArn=physical[logical], Targets=[
                {"Id": physical[target["Id"]["Ref"]], "Port": target["Port"]}])


@pytest.fixture
def ctl(deployed):
    session, _, public = deployed
    return AwsControl(session, STACK, public=public, poll=0.05)


def doctor(ctl: AwsControl):
    return run_aws(ctl, INFRA)


def top(report) -> tuple[str, str] | None:
    return (report.findings[0].component, report.findings[0].category) if report.findings else None


# --- realistic lines, in the formats the apps and nginx write ----------------------------------------------


def app_error(code: str, when: float, operation: str = "Scan", logger: str = "crm_app.store") -> str:
    """An ERROR line as crm-app's store logs a failed DynamoDB call (appkit's own JSON formatter)."""
    record = logging.LogRecord(logger, logging.ERROR, __file__, 0, "DynamoDB %s failed: %s: %s",
                               (operation, code, "An error occurred"), None)
    record.created, record.error_code = when, code
    return JsonFormatter().format(record)


def access(status: int, when: float, path: str = "/api/customers", ms: float = 4.2) -> str:
    """An access line as appkit.requestlog writes it."""
    stamp = datetime.fromtimestamp(when, UTC).isoformat(timespec="milliseconds")
    return json.dumps({"time": stamp, "pid": 4242, "level": "INFO", "logger": "crm_app.access",
                       "message": f"GET {path} {status}", "request_id": uuid.uuid4().hex, "method": "GET",
                       "path": path, "status": status, "duration_ms": ms, "remote_addr": "10.0.1.5",
                       "dynamodb_calls": 1, "dynamodb_scanned": 1})


def nginx_access(status: int, when: float) -> str:
    """An access line in nginx.conf's json_combined format."""
    return json.dumps({"time": datetime.fromtimestamp(when, UTC).isoformat(timespec="seconds"),
                       "remote_addr": "10.0.0.12", "x_forwarded_for": "203.0.113.9", "request_id": uuid.uuid4().hex,
                       "method": "GET", "uri": "/", "status": status, "bytes_sent": 150,
                       "request_time": 5.001 if status == 504 else 0.004, "upstream_addr": "10.0.2.7:80",
                       "upstream_status": str(status), "upstream_response_time": "5.001", "user_agent": "curl/8"})


def nginx_error(when: float) -> str:
    stamp = datetime.fromtimestamp(when, UTC).strftime("%Y/%m/%d %H:%M:%S")
    return (f"{stamp} [error] 2811#2811: *931 upstream timed out (110: Connection timed out) while connecting to "
            "upstream, client: 10.0.0.12, server: _, request: \"GET / HTTP/1.1\", upstream: "
            "\"http://10.0.2.7:80/\", host: \"sre-workshop-public-alb-1.us-east-1.elb.amazonaws.com\"")


@pytest.fixture
def put_logs(ctl):
    """Ship lines to a log group as the CloudWatch agent would (a stream of this test, deleted afterwards)."""
    made: list[tuple[str, str]] = []

    def put(source: str, lines: list[str], age_s: float = 2.0) -> None:
        group, stream = ctl.physical(logs.GROUPS[source]), f"i-{uuid.uuid4().hex[:17]}"
        client = ctl.client("logs")
        client.create_log_stream(logGroupName=group, logStreamName=stream)
        made.append((group, stream))
        stamp = int((time.time() - age_s) * 1000)
        client.put_log_events(logGroupName=group, logStreamName=stream,
                              logEvents=[{"timestamp": stamp, "message": line} for line in lines])

    yield put
    for group, stream in made:
        ctl.client("logs").delete_log_stream(logGroupName=group, logStreamName=stream)


# --- a clean stack ------------------------------------------------------------------------------------------


def test_a_clean_stack_has_no_finding_and_says_what_it_could_not_read(ctl, deployed):
    report = doctor(ctl)
    obs = report.observations
    assert report.findings == [], [f.to_dict() for f in report.findings]
    assert obs.policy_drift == [] and obs.network_drift == [] and obs.config_drift == {}
    assert all(s.lines == 0 for s in obs.logs.values()) and set(obs.logs) == set(logs.GROUPS)
    assert obs.probes["public-alb :80 /"].ok and obs.probes["public-alb :8080 /api/customers"].ok
    # moto runs no SSM command: unknown, never down and never healthy
    for component in ("nginx", "sre-app", "crm-app"):
        assert "the command did not run" in obs.unknown[f"{component} instance"]
        assert component not in obs.components
    assert len(obs.unknown) == 3  # the role, the groups, the targets, logs, metrics and tables were all read
    assert sorted((t["target_group"], t["registered"]) for t in obs.targets) == [
        ("CRMAppTargetGroup", "yes"), ("PrivateALBTargetGroup", "yes"), ("PublicALBTargetGroup", "yes")]
    assert not report.healthy and report.to_dict()["unknown"] == obs.unknown
    assert set(deployed[1][k] for k in ("CustomersTableName", "DealsTableName")) <= set(obs.tables)
    assert report.seconds < 10


def test_a_target_the_template_registers_and_its_group_does_not_list_is_deregistered(ctl, deployed):
    elb, arn = ctl.client("elbv2"), ctl.physical("CRMAppTargetGroup")
    (target,) = [t["Target"] for t in elb.describe_target_health(TargetGroupArn=arn)["TargetHealthDescriptions"]]
    elb.deregister_targets(TargetGroupArn=arn, Targets=[target])
    try:
        report = doctor(ctl)
        first = report.findings[0]
        assert (first.component, first.category) == ("public-alb", "out-of-service"), report.findings
        assert "deregistered" in first.summary
        assert first.remediation.startswith(f"register it again: `aws elbv2 register-targets --target-group-arn "
                                            f"{arn} --targets Id={target['Id']},Port={target['Port']}`")
    finally:
        elb.register_targets(TargetGroupArn=arn, Targets=[target])


def test_each_instance_is_read_by_one_ssm_command_with_the_script_shipped(ctl, deployed):
    _, outputs, _ = deployed
    sent: list[dict] = []
    ctl.client("ssm").meta.events.register("provide-client-params.ssm.SendCommand",
                                           lambda params, **_: sent.append(params))
    unknown: dict[str, str] = {}
    assert hosts.read_all(ctl, unknown) == {}
    by_instance = {s["InstanceIds"][0]: s["Parameters"]["commands"][0] for s in sent}
    assert set(by_instance) == {outputs[k] for k in ("NginxInstanceId", "AppServerInstanceId", "CRMAppInstanceId")}
    body = (hosts.SCRIPTS_DIR / hosts.SCRIPT).read_text().rstrip("\n")
    nginx = by_instance[outputs["NginxInstanceId"]]
    assert f"\n{body}\nSRE_WORKSHOP_SCRIPT_END\n" in nginx
    assert shlex.quote(f"private-alb /=http://{outputs['PrivateALBDNSName']}/") in nginx
    assert " nginx - /etc/nginx/nginx.conf " in nginx
    assert " crm-app /etc/sre-workshop/crm-app.env - " in by_instance[outputs["CRMAppInstanceId"]]
    assert all(s["DocumentName"] == "AWS-RunShellScript" for s in sent)
    assert set(unknown) == {"nginx instance", "sre-app instance", "crm-app instance"}


# --- configuration against the template ------------------------------------------------------------------------


def test_a_deny_in_the_role_is_policy_drift_and_the_top_finding(ctl):
    iam, role = ctl.client("iam"), ctl.role_name()
    original = ctl.role_policy("DynamoDBAccess")
    ctl.put_role_policy("DynamoDBAccess", DENY)
    try:
        report = doctor(ctl)
        drift = report.observations.policy_drift
        assert any("no longer allows 49 of the template's 49 grants" in d for d in drift)  # 7 actions x 7 tables
        assert f"DynamoDBAccess of role {role} denies dynamodb:* on *" in drift
        assert top(report) == ("iam-role", "permissions")
        assert report.findings[0].severity == "critical" and drift[0] in report.findings[0].evidence
    finally:
        ctl.put_role_policy("DynamoDBAccess", original)
    iam.put_role_policy(RoleName=role, PolicyName="Quarantine", PolicyDocument=json.dumps(DENY))
    try:
        assert policy.drift(ctl, template.resources(ctl), template.Resolver(ctl)) == [
            f"inline policy Quarantine of role {role} denies dynamodb:* on *"]
    finally:
        iam.delete_role_policy(RoleName=role, PolicyName="Quarantine")
    assert doctor(ctl).observations.policy_drift == []


def test_a_narrowed_policy_names_a_lost_grant(ctl, deployed):
    _, outputs, _ = deployed
    original = ctl.role_policy("DynamoDBAccess")
    narrowed = json.loads(json.dumps(original))
    narrowed["Statement"][0]["Action"] = [a for a in narrowed["Statement"][0]["Action"] if a != "dynamodb:Scan"]
    ctl.put_role_policy("DynamoDBAccess", narrowed)
    try:
        (fact,) = doctor(ctl).observations.policy_drift
        assert "no longer allows 7 of the template's 49 grants, e.g. dynamodb:Scan on arn:" in fact
        assert outputs["MetricsTableName"] in fact
    finally:
        ctl.put_role_policy("DynamoDBAccess", original)


def test_a_revoked_ingress_rule_is_network_drift_and_the_top_finding(ctl):
    group, source = ctl.physical("NginxSecurityGroup"), ctl.physical("PublicALBSecurityGroup")
    rule = {"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "UserIdGroupPairs": [{"GroupId": source}]}
    assert ctl.revoke_ingress(group, rule)
    try:
        report = doctor(ctl)
        assert report.observations.network_drift == [
            f"NginxSecurityGroup ({group}) lets in no tcp 80 from PublicALBSecurityGroup ({source}): "
            "the template's NginxFromPublicALB (from the public ALB)"]
        assert top(report) == ("security-groups", "network")
    finally:
        ctl.authorize_ingress(group, rule)
    assert doctor(ctl).observations.network_drift == []


def test_the_public_albs_open_ingress_is_checked_too(ctl):
    group = ctl.physical("PublicALBSecurityGroup")
    rule = {"IpProtocol": "tcp", "FromPort": 8080, "ToPort": 8080, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}
    assert ctl.revoke_ingress(group, rule)
    try:
        (fact,) = doctor(ctl).observations.network_drift
        assert fact.startswith(f"PublicALBSecurityGroup ({group}) lets in no tcp 8080 from 0.0.0.0/0")
    finally:
        ctl.authorize_ingress(group, rule)


# --- CloudWatch Logs ---------------------------------------------------------------------------------------------


def test_the_logs_reader_summarises_each_group_over_the_window(ctl, put_logs):
    now = time.time()
    put_logs("crm-app", [access(200, now), access(503, now), app_error("AccessDeniedException", now)])
    put_logs("crm-app", [access(503, now - 600), app_error("ThrottlingException", now - 600)], age_s=600)
    put_logs("nginx-access", [nginx_access(504, now), nginx_access(200, now)])
    put_logs("nginx-error", [nginx_error(now)])
    put_logs("sre-app", ['{"time": "not json'])
    unknown: dict[str, str] = {}
    found, missing = logs.read(ctl, now - 60, now + 5, unknown)
    assert unknown == {} and missing == {}
    crm = found["crm-app"]
    assert (crm.lines, crm.statuses, set(crm.aws_codes)) == (3, {"200": 1, "503": 1}, {"AccessDeniedException"})
    assert list(crm.errors) == ["DynamoDB Scan failed: AccessDeniedException: An error occurred"]
    assert (found["nginx-access"].statuses, found["nginx-access"].slow) == ({"504": 1, "200": 1}, 1)
    (message,) = found["nginx-error"].errors
    assert message.startswith("upstream timed out (N: Connection timed out) while connecting to upstream")
    assert found["sre-app"].lines == 0


def test_a_deleted_log_group_is_a_missing_resource_and_its_log_unknown(ctl):
    group = ctl.physical("NginxErrorLogGroup")
    ctl.client("logs").delete_log_group(logGroupName=group)
    try:
        report = doctor(ctl)
        assert "ResourceNotFoundException" in report.observations.unknown["nginx-error log"]
        assert "nginx-error" not in report.observations.logs
        assert [(f.component, f.category) for f in report.findings] == [("cloudwatch-logs", "missing-resource")]
        assert f"--log-group-name {group} --retention-in-days 7`" in report.findings[0].remediation
    finally:
        ctl.client("logs").create_log_group(logGroupName=group)


@pytest.mark.parametrize(("code", "expected"), [("AccessDeniedException", ("iam-role", "permissions")),
                                                 ("ProvisionedThroughputExceededException", ("dynamodb", "throttling")),
                                                 ("ResourceNotFoundException", ("crm-app", "config"))])
def test_aws_error_codes_in_the_crm_log_name_the_cause(ctl, put_logs, code, expected):
    now = time.time()
    put_logs("crm-app", [line for _ in range(5) for line in (app_error(code, now), access(503, now))])
    report = doctor(ctl)
    assert top(report) == expected
    assert any(code in e for e in report.findings[0].evidence)


def test_a_share_of_500s_without_a_dependency_is_the_apps_errors(ctl, put_logs):
    now = time.time()
    lines = [access(200, now, "/") for _ in range(20)] + [access(500, now, "/") for _ in range(6)]
    record = logging.LogRecord("sre_app.app", logging.ERROR, __file__, 0, "unhandled error", (), None)
    record.created = now
    put_logs("sre-app", lines + [JsonFormatter().format(record)] * 6)
    assert top(doctor(ctl)) == ("sre-app", "errors")


# --- metrics -----------------------------------------------------------------------------------------------------


def test_the_metrics_reader_uses_the_alarms_dimensions_and_sums_the_window(ctl):
    wanted = {q.key: q for q in metrics.queries(ctl)}
    public = dict(wanted["public ALB 5xx"].dimensions)["LoadBalancer"]
    assert public.startswith("app/sre-workshop-public-alb/") and ctl.physical("PublicALB").endswith(public)
    crm_group = dict(wanted["crm requests"].dimensions)["TargetGroup"]
    assert crm_group.startswith("targetgroup/") and ctl.physical("CRMAppTargetGroup").endswith(crm_group)
    # Older than doctor's window: datapoints cannot be deleted, and other tests must not see them.
    when = datetime.fromtimestamp(time.time() - 420, UTC)
    cw = ctl.client("cloudwatch")
    for query, value in ((wanted["public ALB 5xx"], 7.0), (wanted[f"{metrics.METRIC_THROTTLED} CRMCustomersTable Scan"],
                                                          12.0), (wanted[metrics.CPU_AGENT], 97.5)):
        cw.put_metric_data(Namespace=query.namespace, MetricData=[{
            "MetricName": query.metric, "Timestamp": when, "Value": value,
            "Dimensions": [{"Name": n, "Value": v} for n, v in query.dimensions]}])
    start = when.timestamp() - 60
    totals = metrics.totals(metrics.fetch(ctl, list(wanted.values()), start, start + 120))
    assert totals["public ALB 5xx"] == 7 and totals[metrics.METRIC_THROTTLED] == 12
    assert totals[f"{metrics.METRIC_THROTTLED} CRMCustomersTable Scan"] == 12
    assert metrics.host_cpu(totals) == 97.5
    assert metrics.METRIC_THROTTLED not in {k for k, v in doctor(ctl).observations.metrics.items() if v}


# --- interval metrics: the leak's trend -------------------------------------------------------------------------------


def test_a_growing_worker_in_the_metrics_table_is_a_leak(ctl):
    client, table = ctl.client("dynamodb"), ctl.physical("ApplicationMetricsTable")
    worker, now = "sre-app#ip-10-0-1-5#4242", int(time.time())
    stamps = [now - 10 * k for k in range(6, -1, -1)]
    for n, stamp in enumerate(stamps):
        client.put_item(TableName=table, Item={"metric_id": {"S": worker}, "timestamp": {"N": str(stamp)},
                                               "memory_leak_size_mb": {"N": str(10.0 * n)},
                                               "rss_mb": {"N": str(60 + 10.0 * n)}, "p50_ms": {"N": "2.1"}})
    try:
        report = doctor(ctl)
        assert report.observations.memory[worker][-1] == (float(stamps[-1]), 60.0, 120.0)
        assert top(report) == ("sre-app", "memory")
        assert report.findings[0].evidence[0].startswith(f"{worker}: +60.0 MB/min")
    finally:
        for stamp in stamps:
            client.delete_item(TableName=table, Key={"metric_id": {"S": worker}, "timestamp": {"N": str(stamp)}})


# --- the CLI ----------------------------------------------------------------------------------------------------------


def test_cli_doctor_aws_json_human_and_report(ctl, capsys, tmp_path):
    five_xx = next(q for q in metrics.queries(ctl) if q.key == "app target 5xx")
    ctl.client("cloudwatch").put_metric_data(Namespace=five_xx.namespace, MetricData=[  # older than doctor's window
        {"MetricName": five_xx.metric, "Timestamp": datetime.fromtimestamp(time.time() - 400 + k * 60, UTC),
         "Value": 30.0, "Dimensions": [{"Name": n, "Value": v} for n, v in five_xx.dimensions]} for k in range(2)])
    page = tmp_path / "report.html"
    args = ["doctor", "--aws", "--stack-name", STACK, "--region", REGION]
    capsys.readouterr()
    assert main([*args, "--json", "--report", str(page)]) == ExitStatus.ERROR  # not known to be healthy
    report = json.loads(capsys.readouterr().out)
    assert set(report) == {"healthy", "checked_at", "seconds", "findings", "unknown", "context"}
    assert report["healthy"] is False and "crm-app instance" in report["unknown"]
    html = page.read_text()
    assert "(aws)" in html
    data = json.loads(html.split("<script type=application/json id=chart-data>", 1)[1].split("</script>", 1)[0])
    (chart,) = [c for c in data["charts"].values() if c["title"] == "5xx per second" and c["data"][0]]
    labels = [s["label"] for s in chart["series"]]
    assert [v for v in chart["data"][1 + labels.index("app targets")] if v is not None] == [0.5, 0.5]  # 30/min
    assert main(args) == ExitStatus.ERROR
    out = capsys.readouterr().out
    assert "unknown: nginx instance: observe-host.sh on its instance answered no JSON" in out
    assert all(len(line) <= 80 for line in out.splitlines() if line.startswith(("unknown:", "  ")))


def test_cli_doctor_aws_usage_and_aws_errors_are_one_line(deployed, capsys):
    assert main(["doctor", "--aws", "--stack-name", "nope", "--region", REGION]) == ExitStatus.AWS
    err = capsys.readouterr().err
    assert "no stack named nope" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert main(["doctor", "--region", REGION]) == ExitStatus.USAGE
    assert "--stack-name and --region go with --aws" in capsys.readouterr().err


# --- the instance side, run here: the very text SSM would run, against a real sre-app ------------------------------


def test_the_host_script_reads_a_real_app_and_never_prints_the_token(deployed, tmp_path):
    _, _, public = deployed
    env = tmp_path / "crm-app.env"
    env.write_text("AWS_REGION=us-east-1\nCUSTOMERS_TABLE=wk-CRMCustomersTable-X\nDEALS_TABLE=wk-Deals\n"
                   "FAULT_CONTROL_TOKEN=s3cret-token\n")
    conf = tmp_path / "nginx.conf"
    conf.write_text((INFRA / "nginx" / "nginx.conf").read_text())
    step = script(hosts.SCRIPT, "crm-app", env, conf, f"crm-app /health={public['crm']}/health",
                  f"crm-app /api/customers={public['crm']}/api/customers?limit=1", "closed=http://127.0.0.1:1/")
    done = subprocess.run(["sh", "-c", render([step], hosts.SCRIPTS_DIR)], capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert "s3cret-token" not in done.stdout
    answer = json.loads(done.stdout)
    assert answer["tables"] == {"CUSTOMERS_TABLE": "wk-CRMCustomersTable-X", "DEALS_TABLE": "wk-Deals"}
    assert answer["nginx_conf"] == conf.read_text() and answer["hostname"] == socket.gethostname()
    assert 0 <= answer["host_cpu_percent"] <= 100
    probes = {p.name: p for p in hosts.probes({"crm-app /health": "crm-app"}, answer)}
    assert probes["crm-app /health"].status == 200 and probes["crm-app /health"].component == "crm-app"
    assert probes["crm-app /api/customers"].ok and (probes["closed"].status, probes["closed"].error) == (0, "refused")
    # no systemd here: the unit's state is not known, which is neither running nor down
    if answer["state"] == "unknown":
        assert hosts.component_state("crm-app", answer) is None
    else:
        assert hosts.component_state("crm-app", answer).state in ("running", "stopped", "exited")



# --- the MCP server with --aws (issue 20.8) -----------------------------------------------------------------


def aws_world(ctl: AwsControl):
    from sre_workshop.faults.aws_backend import AwsBackend
    from sre_workshop.mcp.world import AwsWorld

    return AwsWorld(AwsBackend(ctl), INFRA)


def test_mcp_diagnose_on_aws_is_doctors_aws_report(ctl, put_logs):
    """Issue 20.8: diagnose runs doctor --aws (it answered "local only"); a DynamoDB denial in crm-app's log
    is its top finding, as doctor's own."""
    now = time.time()
    put_logs("crm-app", [app_error("AccessDeniedException", now - 3 + i / 10) for i in range(5)])
    report = aws_world(ctl).diagnose()
    assert report["findings"] and report["findings"][0]["component"] == "iam-role"
    assert "the command did not run" in report["unknown"]["sre-app instance"]


def test_mcp_get_logs_on_aws_reads_cloudwatch(ctl, put_logs):
    """Issue 20.8: get_logs reads the stack's log groups, summarised as the local ones are."""
    now = time.time()
    put_logs("nginx-access", [nginx_access(504, now - 2), nginx_access(200, now - 1), nginx_access(504, now - 1)])
    world = aws_world(ctl)
    answer = world.logs("nginx-access", None, 60, 50)
    assert answer["matched"] >= 3 and answer["by_status"]["504"] >= 2
    only = world.logs("nginx-access", '"status": 504', 60, 1)
    assert only["matched"] >= 2 and len(only["lines"]) == 1 and only["omitted"] >= 1
    with pytest.raises(Exception, match="no log group 'nope'; groups: crm-app, nginx-access"):
        world.logs("nope", None, 60, 50)


def test_mcp_get_metrics_on_aws_reads_cloudwatch(ctl):
    """Issue 20.8: get_metrics reads the stack's CloudWatch metrics (the public ALB's requests here)."""
    lb = metrics.full_name(ctl.physical("PublicALB"))
    group = metrics.full_name(ctl.physical("PublicALBTargetGroup"))
    ctl.client("cloudwatch").put_metric_data(Namespace="AWS/ApplicationELB", MetricData=[{
        "MetricName": "RequestCount", "Value": 120.0, "Timestamp": datetime.fromtimestamp(time.time() - 60, UTC),
        "Dimensions": [{"Name": "LoadBalancer", "Value": lb}, {"Name": "TargetGroup", "Value": group}]}])
    answer = aws_world(ctl).metrics("requests_per_s", 600, "maximum")
    assert answer["period_s"] == 60
    assert answer["series"]["app (public ALB :80)"]["value"] == 2.0  # 120 requests in a minute
