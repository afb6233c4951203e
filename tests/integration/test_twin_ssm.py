"""SSM Run Command on the local instances, driven as an operator would: boto3 and the aws CLI pointed at the
twin by `sre-workshop aws-env`. The script runs in the instance's view: its files at their AWS paths, its
`systemctl` acting on the stack's real components, its `ps` showing its processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError

from conftest import cli, cli_json, eventually, http, local_stack, port_offset, run_command

OFFSET = port_offset(700)
AWS = str(Path(sys.executable).with_name("aws"))
SRE_WORKSHOP = str(Path(sys.executable).with_name("sre-workshop"))


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with local_stack(tmp_path_factory, "ssm", OFFSET) as state:
        yield state


@pytest.fixture(scope="module")
def env(stack):
    result = subprocess.run([SRE_WORKSHOP, "--state-dir", str(stack), "aws-env", "--json"], capture_output=True,
                            text=True, check=True, env={**os.environ, "SRE_WORKSHOP_PORT_OFFSET": str(OFFSET)})
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def ssm(env):
    session = boto3.session.Session(aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
                                    aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"], region_name=env["AWS_REGION"])
    return session.client("ssm", endpoint_url=env["AWS_ENDPOINT_URL"])


@pytest.fixture(scope="module")
def cloudtrail(env):
    return boto3.client("cloudtrail", endpoint_url=env["AWS_ENDPOINT_URL"], region_name=env["AWS_REGION"],
                        aws_access_key_id=env["AWS_ACCESS_KEY_ID"], aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"])


@pytest.fixture(scope="module")
def ids(env) -> dict[str, str]:
    """The instance ids, read as an operator reads them: by their Name tags."""
    ec2 = boto3.client("ec2", endpoint_url=env["AWS_ENDPOINT_URL"], region_name=env["AWS_REGION"],
                       aws_access_key_id=env["AWS_ACCESS_KEY_ID"], aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"])
    found = {}
    for reservation in ec2.describe_instances()["Reservations"]:
        for instance in reservation["Instances"]:
            name = {t["Key"]: t["Value"] for t in instance.get("Tags", [])}.get("Name", "")
            found[name.removeprefix("sre-workshop-").removesuffix("-app") or "app"] = instance["InstanceId"]
    return found


def pid_of(stack: Path, capsys, name: str) -> int:
    _, status = cli_json(stack, capsys, "status")
    (row,) = [c for c in status["components"] if c["name"] == name]
    return row["pid"]


def test_a_script_reads_the_instance_files_at_their_aws_paths(stack, ssm, ids):
    invocation = run_command(ssm, ids["nginx"], "cat /etc/nginx/nginx.conf", "ls /var/log/nginx")
    assert (invocation["Status"], invocation["ResponseCode"]) == ("Success", 0), invocation["StandardErrorContent"]
    conf = (stack / "run" / "nginx.conf").read_text()
    assert invocation["StandardOutputContent"] == conf + "access.log\nerror.log\n"
    app = run_command(ssm, ids["app"], "ls /opt/sre-app/wsgi.py && grep ^LOG_FILE= /etc/sre-workshop/sre-app.env")
    assert app["StandardOutputContent"] == "/opt/sre-app/wsgi.py\nLOG_FILE=/var/log/sre-app/app.log\n"


def test_systemctl_and_ps_act_on_the_instance_components(stack, ssm, ids, capsys):
    invocation = run_command(ssm, ids["nginx"], "systemctl is-active nginx", "ps -eo pid,comm")
    lines = invocation["StandardOutputContent"].splitlines()
    assert lines[0] == "active" and lines[1].split() == ["PID", "COMMAND"]
    commands = {line.split()[1] for line in lines[2:]}
    assert "nginx" in commands and "gunicorn" not in commands and "haproxy" not in commands
    unknown = run_command(ssm, ids["nginx"], "systemctl status sre-app")
    assert (unknown["Status"], unknown["ResponseCode"]) == ("Failed", 4)
    assert unknown["StandardErrorContent"] == "Unit sre-app.service could not be found.\n"


def test_systemctl_restart_restarts_the_stack_component(stack, ssm, ids, capsys, cloudtrail):
    before = pid_of(stack, capsys, "nginx")
    invocation = run_command(ssm, ids["nginx"], "systemctl restart nginx && systemctl is-active nginx")
    assert invocation["StandardOutputContent"] == "active\n", invocation["StandardErrorContent"]
    after = pid_of(stack, capsys, "nginx")
    assert after and after != before
    # The component runs outside the view: its mounts are the machine's, not the instance's.
    assert os.readlink(f"/proc/{after}/ns/mnt") == os.readlink("/proc/self/ns/mnt")
    # CloudTrail has the SendCommand that was sent, and no second one made up for the restart it caused.
    sent = [json.loads(e["CloudTrailEvent"])["requestParameters"] for e in cloudtrail.lookup_events(
        LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": "SendCommand"}])["Events"]]
    # (a long script's parameters are cut to a string, as the trail records big values: the tool's own steps)
    parameters = [p.get("Parameters") or p.get("parameters") for p in sent]
    commands = [p["commands"] for p in parameters if isinstance(p, dict)]
    assert ["systemctl restart nginx && systemctl is-active nginx"] in commands
    assert ["systemctl restart nginx"] not in commands


def test_an_edit_of_nginx_conf_and_a_reload_take_effect(stack, ssm, ids):
    url = f"http://127.0.0.1:{OFFSET + 8001}/health"  # answered by nginx itself, from nginx.conf
    conf = "/etc/nginx/nginx.conf"
    try:
        edit = run_command(ssm, ids["nginx"], f"sed -i 's/\"tier\":\"nginx\"/\"tier\":\"edited\"/' {conf}",
                   f"grep -c edited {conf}", "systemctl reload nginx")
        assert (edit["Status"], edit["StandardOutputContent"]) == ("Success", "1\n"), edit["StandardErrorContent"]
        assert "edited" in (stack / "run" / "nginx.conf").read_text()
        eventually(lambda: b"edited" in http("GET", url).body, timeout=15)
    finally:
        run_command(ssm, ids["nginx"], f"sed -i 's/\"tier\":\"edited\"/\"tier\":\"nginx\"/' {conf}",
            "systemctl reload nginx")
    eventually(lambda: b'"tier":"nginx"' in http("GET", url).body, timeout=15)


def test_errors_and_exit_codes_are_ssm_s(ssm, ids):
    with pytest.raises(ClientError) as caught:
        ssm.send_command(InstanceIds=["i-0123456789abcdef0"], DocumentName="AWS-RunShellScript",
                         Parameters={"commands": ["true"]})
    assert caught.value.response["Error"]["Code"] == "InvalidInstanceId"
    failed = run_command(ssm, ids["app"], "echo out; echo err >&2; exit 3")
    assert (failed["Status"], failed["ResponseCode"]) == ("Failed", 3)
    assert (failed["StandardOutputContent"], failed["StandardErrorContent"]) == ("out\n", "err\n")
    listed = ssm.list_command_invocations(InstanceId=ids["app"], Details=True)["CommandInvocations"][0]
    assert listed["CommandPlugins"][0]["ResponseCode"] == 3


def test_the_aws_cli_sends_a_command_and_gets_its_output(env, ids):
    clean = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    script = (f'id=$("{AWS}" ssm send-command --instance-ids {ids["nginx"]} --document-name AWS-RunShellScript '
              f"--parameters 'commands=[\"systemctl is-active nginx\"]' --query Command.CommandId --output text) "
              f'&& sleep 2 && "{AWS}" ssm get-command-invocation --command-id "$id" --instance-id {ids["nginx"]}')
    result = subprocess.run(["sh", "-c", script], capture_output=True, text=True, env={**clean, **env}, timeout=60,
                            check=False)
    assert result.returncode == 0, result.stderr
    invocation = json.loads(result.stdout)
    assert (invocation["Status"], invocation["StandardOutputContent"]) == ("Success", "active\n")


def test_sre_workshop_shell_runs_in_the_same_view(stack, capsys):
    assert cli(stack, "shell", "sre-workshop-nginx", "-c", "test -w /etc/nginx/nginx.conf && systemctl "
               "is-active nginx >/dev/null && ! systemctl is-active sre-app >/dev/null") == 0
    assert cli(stack, "shell", "NginxInstance1", "-c", "exit 7") == 7
    assert cli(stack, "shell", "i-nope", "-c", "true") == 2


# --- the evaluated agent's own identity at the twin's scoped endpoint (scenarios/identity.py) --------------

@pytest.fixture(scope="module")
def oncall(stack):
    """An on-call identity for the module, as an evaluated run makes one (its key deleted afterwards)."""
    from sre_workshop.scenarios import identity
    from sre_workshop.settings import Settings

    settings = Settings.from_env({"SRE_WORKSHOP_PORT_OFFSET": str(OFFSET)}, state_dir=stack)
    with identity.oncall(settings) as made:
        yield made


def refusal(call) -> str:
    """Return the error code of a call that must be refused."""
    with pytest.raises(ClientError) as refused:
        call()
    return refused.value.response["Error"]["Code"]


def test_the_agent_identity_may_read_and_repair_what_its_policy_allows(oncall, env):
    assert oncall.endpoint == f"http://127.0.0.1:{8009 + OFFSET}" != env["AWS_ENDPOINT_URL"]
    ddb, iam, cfn = oncall.client("dynamodb"), oncall.client("iam"), oncall.client("cloudformation")
    assert "CRMCustomersTable" in ddb.list_tables()["TableNames"]
    assert ddb.describe_table(TableName="CRMDealsTable")["Table"]["TableStatus"] == "ACTIVE"
    (stack_name,) = [s["StackName"] for s in cfn.describe_stacks()["Stacks"]]
    (role,) = [r["PhysicalResourceId"] for r in cfn.describe_stack_resources(StackName=stack_name)["StackResources"]
               if r.get("LogicalResourceId") == "EC2InstanceRole"]
    document = iam.get_role_policy(RoleName=role, PolicyName="DynamoDBAccess")["PolicyDocument"]
    iam.put_role_policy(RoleName=role, PolicyName="DynamoDBAccess", PolicyDocument=json.dumps(document))
    assert oncall.client("ec2").describe_security_groups()["SecurityGroups"]
    assert oncall.client("cloudwatch").describe_alarms()["MetricAlarms"]
    # the change is in CloudTrail under the agent's own key
    trail = oncall.client("cloudtrail").lookup_events(LookupAttributes=[
        {"AttributeKey": "AccessKeyId", "AttributeValue": oncall.access_key}])["Events"]
    assert [e["EventName"] for e in trail] == ["PutRolePolicy"]


def test_the_agent_identity_cannot_read_the_ledger_nor_grant_itself_more(oncall):
    ddb, iam = oncall.client("dynamodb"), oncall.client("iam")
    for call in (lambda: ddb.scan(TableName="IncidentHistoryTable"),
                 lambda: ddb.describe_table(TableName="IncidentHistoryTable"),
                 lambda: ddb.get_item(TableName="IncidentHistoryTable", Key={"incident_id": {"S": "x"}}),
                 lambda: ddb.scan(TableName="CRMCustomersTable"),  # the apps' data is not the operator's
                 lambda: ddb.delete_table(TableName="CRMDealsTable")):
        assert refusal(call) == "AccessDeniedException"
    allow_all = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*",
                                                                     "Resource": "*"}]})
    assert refusal(lambda: iam.put_user_policy(UserName="sre-workshop-oncall", PolicyName="more",
                                               PolicyDocument=allow_all)) == "AccessDenied"
    assert refusal(lambda: iam.create_access_key(UserName="sre-workshop-oncall")) == "AccessDenied"
    assert refusal(lambda: iam.list_users()) == "AccessDenied"
    group = oncall.client("ec2").describe_security_groups()["SecurityGroups"][0]["GroupId"]
    assert refusal(lambda: oncall.client("ec2").delete_security_group(GroupId=group)) == "UnauthorizedOperation"


def test_the_scoped_endpoint_answers_only_signed_calls_of_a_live_key(oncall, env):
    def at_scoped(key: str, secret: str):
        session = boto3.session.Session(aws_access_key_id=key, aws_secret_access_key=secret, region_name="us-east-1")
        return session.client("dynamodb", endpoint_url=oncall.endpoint)

    assert refusal(lambda: at_scoped(oncall.access_key, "not-the-secret").list_tables()) == "SignatureDoesNotMatch"
    local = (env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"])  # the stack's fixed credentials
    assert refusal(lambda: at_scoped(*local).list_tables()) == "UnrecognizedClientException"
    assert http("POST", oncall.endpoint, b"{}", {"X-Amz-Target": "DynamoDB_20120810.ListTables"}).status == 403


def test_the_agent_s_run_command_is_confined_and_sees_only_its_own_commands(stack, oncall, ids, ssm):
    from sre_workshop.local.components import dynamodb_address
    from sre_workshop.scenarios import netguard
    from sre_workshop.settings import Settings

    run_command(ssm, ids["nginx"], "true")  # the tool's own command: not the agent's to read
    settings = Settings.from_env({"SRE_WORKSHOP_PORT_OFFSET": str(OFFSET)}, state_dir=stack)
    engine = int(dynamodb_address(settings).rsplit(":", 1)[1])
    probe = f"python3 -c 'import socket; socket.create_connection((\"127.0.0.1\", {engine}), 2)'"
    mine = run_command(oncall.client("ssm"), ids["nginx"], f"ls {stack} || echo hidden",
                       f"{probe} && echo reached || echo refused", "grep -c proxy_pass /etc/nginx/nginx.conf")
    assert mine["Status"] == "Success", mine
    assert "hidden" in mine["StandardOutputContent"] and "cannot access" in mine["StandardErrorContent"]
    if netguard.abi() >= netguard.NET_ABI:
        assert "refused" in mine["StandardOutputContent"], mine
    listed = oncall.client("ssm").list_commands()["Commands"]
    assert [c["CommandId"] for c in listed] == [mine["CommandId"]]

