"""The pure parts of doctor's AWS readers: the template's rules and grants, IAM's wildcards, metric names
and sums, what an instance's answer becomes, and the log parsers that both worlds share."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from sre_workshop.aws.control import AwsControl
from sre_workshop.cli.doctor import verdict
from sre_workshop.diagnose.aws import hosts, logs, metrics, network, policy, template
from sre_workshop.diagnose.local import readers
from sre_workshop.diagnose.model import METRIC_THROTTLE_EVENTS, METRIC_THROTTLED, Observations, Report
from sre_workshop.settings import Settings

TEMPLATE = Settings.from_env().infra_dir / "cloudformation" / "sre-workshop.yaml"
ARN = "arn:aws:dynamodb:us-east-1:123456789012:table/wk-CRMDealsTable-X"


def resources() -> dict:
    return template.parse(TEMPLATE.read_text())["Resources"]


def test_the_template_is_read_with_its_short_tags():
    role = resources()["EC2InstanceRole"]["Properties"]
    (dynamodb,) = [p for p in role["Policies"] if p["PolicyName"] == "DynamoDBAccess"]
    names = dynamodb["PolicyDocument"]["Statement"][0]["Resource"]
    assert names[0] == {"Fn::GetAtt": ["ApplicationMetricsTable", "Arn"]}
    assert {"Fn::Sub": "${CRMDealsTable.Arn}/index/customer-index"} in names
    assert template.parse({"Resources": {}}) == {"Resources": {}}  # a JSON body comes back as data already


def test_the_chains_ingress_rules_come_from_the_template():
    rules = {(r.group, r.describe()) for r in network.template_rules(resources())}
    assert rules == {("PublicALBSecurityGroup", "tcp 80 from 0.0.0.0/0"),
                     ("PublicALBSecurityGroup", "tcp 443 from 0.0.0.0/0"),
                     ("PublicALBSecurityGroup", "tcp 8080 from 0.0.0.0/0"),
                     ("NginxSecurityGroup", "tcp 80 from PublicALBSecurityGroup"),
                     ("PrivateALBSecurityGroup", "tcp 80 from NginxSecurityGroup"),
                     ("AppServerSecurityGroup", "tcp 8080 from PrivateALBSecurityGroup"),
                     ("CRMAppSecurityGroup", "tcp 8080 from PublicALBSecurityGroup")}


class _Groups:
    """Live security groups as DescribeSecurityGroups gives them: the template's chain, physical id = logical."""

    def __init__(self, change: dict[str, list[dict]]) -> None:
        self.change = change

    def physical(self, logical: str) -> str:
        return logical

    def ingress(self, group_id: str) -> list[dict]:
        if group_id in self.change:
            return self.change[group_id]
        rules = [r for r in network.template_rules(resources()) if r.group == group_id]
        return [{"IpProtocol": r.protocol, "FromPort": r.from_port, "ToPort": r.to_port,
                 **({"UserIdGroupPairs": [{"GroupId": r.source}]} if r.source else {"IpRanges": [{"CidrIp": r.cidr}]})}
                for r in rules]

    def ingresses(self, group_ids: list[str]) -> dict[str, list[dict]]:
        return {group_id: self.ingress(group_id) for group_id in group_ids}


def test_drift_finds_a_rule_missing_exactly_when_it_lets_the_source_in_no_more():
    """The verdict the twin gates the local hops with: a group's rule widened to a CIDR holding the VPC is
    no drift; narrowed to one subnet, or moved to another port, it is."""
    assert network.drift(_Groups({}), resources()) == []
    wide = [{"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]}]
    assert network.drift(_Groups({"NginxSecurityGroup": wide}), resources()) == []
    narrow = [{"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "IpRanges": [{"CidrIp": "10.0.1.0/24"}]}]
    moved = [{"IpProtocol": "tcp", "FromPort": 1, "ToPort": 1,
              "UserIdGroupPairs": [{"GroupId": "PublicALBSecurityGroup"}]}]
    for live in (narrow, moved):
        (fact,) = network.drift(_Groups({"NginxSecurityGroup": live}), resources())
        assert fact.startswith("NginxSecurityGroup (NginxSecurityGroup) lets in no tcp 80 from PublicALBSecurityGroup")


def test_iam_wildcards_and_denials():
    allow = policy.grants({"Statement": {"Effect": "Allow", "Action": "dynamodb:*", "Resource": ARN[:-1] + "*"}})
    assert policy.covers(allow, ("dynamodb:GetItem", ARN)) and policy.covers(allow, ("DynamoDB:Query", ARN))
    assert not policy.covers(allow, ("s3:GetObject", ARN))
    assert not policy.covers(allow, ("dynamodb:GetItem", ARN.replace("Deals", "Customers")))
    wanted = [("dynamodb:GetItem", ARN)]
    deny_s3 = {"Statement": [{"Effect": "Deny", "Action": ["s3:*"], "Resource": "*"}]}
    deny_all = {"Statement": [{"Effect": "Deny", "Action": "*", "Resource": "*"}]}
    assert policy._denials("P", "r", deny_s3, wanted) == []  # denies nothing the apps need
    assert policy._denials("P", "r", deny_all, wanted) == ["P of role r denies * on *"]


class _Tables:
    """The two things Resolver asks of a control: physical ids and table descriptions."""

    region, stack_name = "us-east-1", "wk"

    def physical(self, logical: str) -> str:
        return f"wk-{logical}-X"

    def describe_table(self, name: str) -> dict:
        return {"TableArn": f"arn:aws:dynamodb:us-east-1:123456789012:table/{name}"}


def test_the_templates_grants_resolve_to_the_stacks_tables():
    grants = policy.expected_grants(resources(), template.Resolver(_Tables()))
    assert len(grants) == 49  # 7 actions on 5 tables and 2 indexes
    assert ("dynamodb:Scan", ARN + "/index/customer-index") in grants
    resolver = template.Resolver(_Tables())
    assert resolver.value({"Fn::Sub": "arn:${AWS::Partition}:s3:::${Bucket}/*"}) == "arn:aws:s3:::wk-Bucket-X/*"
    assert resolver.value({"Fn::If": ["C", "a", "b"]}) == {"Fn::If": ["C", "a", "b"]}  # left alone


def test_metric_dimension_names_and_sums():
    assert metrics.full_name("arn:aws:elasticloadbalancing:us-east-1:1:loadbalancer/app/sre-workshop-public-alb/ab12"
                             ) == "app/sre-workshop-public-alb/ab12"
    assert metrics.full_name("arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/wk-Public/cd34") == \
        "targetgroup/wk-Public/cd34"
    totals = metrics.totals({f"{METRIC_THROTTLED} CRMCustomersTable Scan": [(1, 2.0), (2, 3.0)],
                             f"{METRIC_THROTTLED} CRMDealsTable Query": [(1, 1.0)],
                             metrics.CPU_EC2: [(1, 40.0), (2, 90.0)], "app requests": []})
    assert totals[METRIC_THROTTLED] == 6 and totals[METRIC_THROTTLE_EVENTS] == 0
    assert metrics.host_cpu(totals) == 90.0 and "app requests" not in totals
    assert metrics.host_cpu({}) is None


def test_an_instances_answer_becomes_states_and_probes():
    answer = {"state": "failed", "main_pid": 0, "pids": [10, 11, 12], "hostname": "ip-10-0-1-5.ec2.internal",
              "probes": [{"name": "crm-app /api/customers", "url": "u", "status": 503, "seconds": 0.01,
                          "body": json.dumps({"error": "database_error", "code": "AccessDeniedException"})},
                         {"name": "nginx /", "url": "u", "status": 0, "seconds": 2.0, "body": "", "error": "timeout"}]}
    assert hosts.component_state("crm-app", answer).state == "exited"
    assert hosts.component_state("crm-app", {**answer, "state": "active"}).state == "running"
    assert hosts.component_state("crm-app", {**answer, "state": "unknown"}) is None  # no systemd answer
    crm, nginx = hosts.probes({"crm-app /api/customers": "crm-app", "nginx /": "nginx"}, answer)
    assert (crm.component, crm.status, crm.error) == ("crm-app", 503, "AccessDeniedException")
    assert (nginx.status, nginx.error, nginx.ok) == (0, "timeout", False)
    assert hosts.worker_metric_ids({**answer, "main_pid": 10}) == ["sre-app#ip-10-0-1-5.ec2.internal#11",
                                                                   "sre-app#ip-10-0-1-5.ec2.internal#12"]


def test_log_lines_are_parsed_the_same_from_a_file_and_from_cloudwatch(tmp_path):
    now = datetime.now(UTC)
    lines = [json.dumps({"time": now.isoformat(), "status": 500, "duration_ms": 1500}),
             json.dumps({"time": now.isoformat(), "level": "ERROR", "message": "DynamoDB Query failed: x",
                         "error_code": "ProvisionedThroughputExceededException"}),
             json.dumps({"time": "2020-01-01T00:00:00+00:00", "status": 200})]
    log = tmp_path / "app.log"
    log.write_text("skipped partial line\n" + "\n".join(lines) + "\n")
    from_file = readers.json_log("crm-app", log, now.timestamp() - 60)
    assert from_file == readers.json_lines("crm-app", lines, now.timestamp() - 60)
    assert (from_file.lines, from_file.slow, from_file.statuses) == (2, 1, {"500": 1})
    assert logs.summarise("crm-app", lines).lines == 3  # CloudWatch chose the events by time already
    old = "2020/01/01 00:00:00 [error] 1#1: *2 connect() failed (111: Connection refused), client: 10.0.0.1"
    (message,) = logs.summarise("nginx-error", [old]).errors
    assert message == "connect() failed (N: Connection refused)"


def test_the_verdict_of_a_round_with_unread_signals_is_not_healthy():
    obs = Observations("now", "aws", unknown={"nginx instance": "the command did not run"})
    assert verdict(Report("now", [], obs, 1.25)) == (
        "no finding, but 1 signal(s) could not be read: not known to be healthy (1.2s)")
    assert verdict(Report("now", [], Observations("now", "aws"), 0.5)) == "healthy (0.5s)"


def observe_host_functions(monkeypatch, *hops: str) -> dict:
    """Load observe-host.sh's Python (its here-document) without running its main()."""
    text = (Path(__file__).resolve().parents[2] / "src/sre_workshop/diagnose/scripts/observe-host.sh").read_text()
    code = text.split("<<'OBSERVE_HOST_PY'\n", 1)[1].split("\nOBSERVE_HOST_PY", 1)[0]
    monkeypatch.setattr(sys, "argv", ["observe-host", "sre-app", "-", "-", *hops])
    namespace: dict = {"__name__": "observe_host"}
    exec(compile(code, "observe-host.sh", "exec"), namespace)  # our own script, as SSM runs it
    return namespace


def test_the_host_observation_counts_only_sustained_burners(monkeypatch):
    """Issue 20.9: as locally, a hog has run 10 s or more, wanting the CPU (running, or waiting to) 50 % of
    its life or more; a process starting up, or a mostly idle one caught busy, is not one."""
    host = observe_host_functions(monkeypatch)
    ticks = host["TICKS"]

    def fields(cpu_s: float, started_s: float) -> list[str]:
        stat = ["0"] * 22
        stat[11], stat[12], stat[19] = str(int(cpu_s * ticks)), "0", str(int(started_s * ticks))
        return stat

    now = 1000.0
    assert host["sustained"](fields(cpu_s=60, started_s=now - 100), now)  # a loop: 60 % of its 100 s
    assert not host["sustained"](fields(cpu_s=4, started_s=now - 5), now)  # starting up: 80 % of 5 s
    assert not host["sustained"](fields(cpu_s=10, started_s=now - 3600), now)  # idle, caught busy: 0.3 %
    assert not host["sustained"](None, now)  # gone
    # A loop on a crowded host: it ran 20 s of its 100 and waited to run for the rest.
    assert host["sustained"](fields(cpu_s=20, started_s=now - 100), now, wanted_s=98.0)
    assert not host["sustained"](fields(cpu_s=20, started_s=now - 100), now, wanted_s=30.0)
    from sre_workshop.diagnose.local import readers  # the same thresholds as locally

    assert (host["BURNER_CPU"], host["BURNER_MIN_AGE_S"], host["BURNER_LIFETIME_CPU"]) == (
        readers.BURNER_CPU, readers.BURNER_MIN_AGE_S, readers.BURNER_LIFETIME_CPU)


def test_the_host_observation_leaves_out_a_busy_loop_that_just_started(tmp_path):
    """Issue 20.9: run the script here, as SSM runs it, with a busy loop a second old: it is no CPU hog."""
    loop = subprocess.Popen(["sh", "-c", "while :; do :; done"])
    try:
        time.sleep(1)
        script = Path(__file__).resolve().parents[2] / "src/sre_workshop/diagnose/scripts/observe-host.sh"
        done = subprocess.run(["sh", str(script), "no-such-unit", "-", "-"], capture_output=True, text=True,
                              timeout=30, check=True)
    finally:
        loop.kill()
        loop.wait()
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    assert loop.pid not in [pid for pid, _, _ in answer["top"]]


def test_a_hop_whose_name_holds_an_equals_sign_keeps_its_name_and_url(monkeypatch):
    """NAME=URL splits where the URL begins: "sre-app /health?deep=1" was probed as "1=http://..." before."""
    host = observe_host_functions(monkeypatch, "sre-app /health?deep=1=http://127.0.0.1:8080/health?deep=1",
                                  "crm-app /api/customers=http://127.0.0.1:8080/api/customers?limit=1")
    assert host["HOPS"] == [("sre-app /health?deep=1", "http://127.0.0.1:8080/health?deep=1"),
                            ("crm-app /api/customers", "http://127.0.0.1:8080/api/customers?limit=1")]


def test_in_a_local_view_only_the_hosts_processes_are_the_instances(monkeypatch):
    """The local view's /proc is the whole machine's: a busy process of another stack or of the machine is not
    on the instance; on AWS (no SRE_WORKSHOP_HOST) every process is."""
    host = observe_host_functions(monkeypatch)
    assert host["on_host"](os.getpid())  # AWS: no variable, no filter
    monkeypatch.setitem(host, "HOST", "/no/such/stack")
    assert not host["on_host"](os.getpid())  # this test's process names no such host
    here = subprocess.Popen(["sleep", "30"], env={"SRE_WORKSHOP_HOST": "/s", "SRE_WORKSHOP_INSTANCE": "X"})
    nowhere = subprocess.Popen(["sleep", "30"], env={"SRE_WORKSHOP_HOST": "/s"})
    try:
        time.sleep(0.1)
        monkeypatch.setitem(host, "HOST", "/s")
        monkeypatch.setitem(host, "INSTANCE", "X")
        assert host["on_host"](here.pid) and host["on_host"](nowhere.pid)
        monkeypatch.setitem(host, "INSTANCE", "Y")
        assert not host["on_host"](here.pid) and host["on_host"](nowhere.pid)  # another instance's; the host's
    finally:
        for process in (here, nowhere):
            process.kill()
            process.wait()


def test_hops_are_probed_where_the_world_has_each_component():
    """On AWS nginx answers on its instance's port 80 and the apps on 8080; locally on the stack's ports."""

    class Ctl(AwsControl):
        def outputs(self):
            return {"PrivateALBDNSName": "internal-alb"}

    on_aws = hosts.hops(Ctl(FakeSession(), "s"))
    assert [url for _, _, url in on_aws["nginx"]] == ["http://127.0.0.1/health", "http://127.0.0.1/",
                                                      "http://internal-alb/"]
    assert on_aws["crm-app"][1] == ("crm-app", "crm-app /api/customers", "http://127.0.0.1:8080/api/customers?limit=1")
    local = hosts.hops(Ctl(FakeSession(), "s", ports={"nginx": 14001, "sre-app": 14003, "crm-app": 14004}))
    assert local["nginx"][0][2] == "http://127.0.0.1:14001/health"
    assert local["sre-app"][2][2] == "http://127.0.0.1:14003/health?deep=1"
    assert hosts.component_state("sre-app", {"state": "active", "suspended": 3}).suspended == 3


class FakeSession:
    """Enough of a boto3 session for an AwsControl that makes no call."""

    region_name = "us-east-1"

    def client(self, service, **_):
        return object()


def test_the_host_observation_reads_the_units_finite_resources(monkeypatch):
    """observe-host.sh, with this process as the unit: the connections established to the ports it listens on
    (a client connected twice, one socket only listening elsewhere in the table), and its descriptors against
    its open-files limit, read from /proc as on an instance."""
    import resource
    import socket

    host = observe_host_functions(monkeypatch)
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    clients = [socket.create_connection(("127.0.0.1", port)) for _ in range(2)]
    accepted = [server.accept()[0] for _ in clients]
    try:
        ports, established = host["connections"]([os.getpid()])
        assert port in ports
        # Both ends of each connection are this process's: the server's ends count (local port = the
        # listening one), the clients' ends do not (their local ports are ephemeral ones nobody listens on).
        assert established == 2
        count, limit = host["descriptors"]([os.getpid()])
        assert limit == resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        assert count == len(os.listdir("/proc/self/fd")) or abs(count - len(os.listdir("/proc/self/fd"))) <= 1
        assert host["connections"]([]) == [[], 0]  # a unit with no process listens on nothing
        assert host["descriptors"]([]) is None
    finally:
        for s in (*clients, *accepted, server):
            s.close()


def test_the_host_observation_reads_the_apps_settings_from_its_process_and_never_a_secret(monkeypatch):
    """An app's pointing settings as its main process runs with them; the secret leaves only as the digest
    appsettings computes, so doctor tells another secret from the template's without seeing either."""
    from sre_workshop.diagnose import appsettings

    env = {"AWS_REGION": "eu-west-3", "AWS_SECRET_ACCESS_KEY": "very-secret", "DEALS_TABLE": "Deals",
           "HOME": "/root", "FAULT_TOKEN": "t0ken"}
    loop = subprocess.Popen(["sleep", "30"], env=env)
    try:
        host = observe_host_functions(monkeypatch)
        host["ENV_FILE"] = "/etc/sre-workshop/crm-app.env"
        found = host["settings"](loop.pid)
    finally:
        loop.kill()
        loop.wait()
    assert found == {"AWS_REGION": "eu-west-3", "AWS_SECRET_ACCESS_KEY": appsettings.digest("very-secret"),
                     "DEALS_TABLE": "Deals"}
    assert "very-secret" not in json.dumps(found)
    assert host["POINTING"] == tuple(k for k in appsettings.POINTING if not k.endswith("_TABLE"))
    assert host["SECRETS"] == appsettings.SECRETS
    host["ENV_FILE"] = "-"
    assert host["settings"](os.getpid()) is None  # not an app's instance


def test_settings_drift_compares_with_the_worlds_template_and_names_unset_ones():
    from sre_workshop.diagnose import appsettings

    expected = {"AWS_REGION": "us-east-1", "DEALS_TABLE": "wk-CRMDealsTable-1"}
    running = {"AWS_REGION": "us-east-1", "DEALS_TABLE": "wk-CRMDealsTable-1",
               "AWS_ACCESS_KEY_ID": "AKIAHARDCODED", "AWS_SECRET_ACCESS_KEY": appsettings.digest("s")}
    assert appsettings.drift(expected, running) == [("AWS_ACCESS_KEY_ID", "", "AKIAHARDCODED"),
                                                    ("AWS_SECRET_ACCESS_KEY", "", appsettings.digest("s"))]
    assert appsettings.drift(expected, {**expected, "AWS_REGION": ""}) == [("AWS_REGION", "us-east-1", "")]
    assert appsettings.pointing({"AWS_SESSION_TOKEN": "x", "PATH": "/bin"}) == {
        "AWS_SESSION_TOKEN": appsettings.digest("x")}
