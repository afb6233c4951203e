"""The CloudFormation template, checked statically: linters, and what moto's deploy cannot show."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cfn import TEMPLATE, load

ROOT = Path(__file__).resolve().parents[2]
T = load()
R = T["Resources"]


def resources(kind: str) -> dict[str, dict]:
    return {name: r for name, r in R.items() if r["Type"] == kind}


def test_cfn_lint_is_clean():
    result = subprocess.run([str(Path(sys.executable).parent / "cfn-lint"), str(TEMPLATE)], cwd=ROOT,
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_checkov_findings_are_all_triaged():
    checkov = shutil.which("checkov") or str(ROOT / ".venv-tools" / "bin" / "checkov")
    result = subprocess.run([checkov, "--config-file", ".checkov.yaml", "-f", str(TEMPLATE)], cwd=ROOT,
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "Passed checks" in result.stdout


def test_description_warns_about_billing_and_outputs_are_described():
    assert "billed" in T["Description"]
    assert all(o.get("Description") for o in T["Outputs"].values())


def test_instances_sit_in_private_subnet_1_with_their_security_group():
    expected = {"NginxInstance1": "NginxSecurityGroup", "AppServerInstance1": "AppServerSecurityGroup",
                "CRMAppInstance": "CRMAppSecurityGroup"}
    instances = resources("AWS::EC2::Instance")
    assert set(instances) == set(expected)
    for name, group in expected.items():
        props = instances[name]["Properties"]
        assert props["SubnetId"] == {"Ref": "PrivateSubnet1"}
        assert props["SecurityGroupIds"] == [{"Ref": group}]
        assert props["IamInstanceProfile"] == {"Ref": "EC2InstanceProfile"}
        assert props["ImageId"] == {"Ref": "LatestAmiId"}
        assert "CreationPolicy" in instances[name]  # a broken boot fails the stack instead of hanging it
        assert "cfn-signal" in props["UserData"]["Fn::Base64"]["Fn::Sub"]
    assert T["Parameters"]["LatestAmiId"]["Type"] == "AWS::SSM::Parameter::Value<AWS::EC2::Image::Id>"
    assert T["Parameters"]["InstanceType"]["Default"] == "t3.micro"


def test_instance_names_and_tags():
    instances = resources("AWS::EC2::Instance").items()
    tags = {n: {t["Key"]: t["Value"] for t in r["Properties"]["Tags"]} for n, r in instances}
    assert tags["AppServerInstance1"]["Name"] == "sre-workshop-app"
    assert tags["CRMAppInstance"] == {"Name": "sre-workshop-crm-app", "DeploymentVersion": "2.0"}


def test_targets_are_registered_to_the_right_groups_and_ports():
    groups = resources("AWS::ElasticLoadBalancingV2::TargetGroup")
    assert groups["PublicALBTargetGroup"]["Properties"]["Targets"] == [{"Id": {"Ref": "NginxInstance1"}, "Port": 80}]
    assert groups["CRMAppTargetGroup"]["Properties"]["Targets"] == [{"Id": {"Ref": "CRMAppInstance"}, "Port": 8080}]
    assert groups["PrivateALBTargetGroup"]["Properties"]["Targets"] == [
        {"Id": {"Ref": "AppServerInstance1"}, "Port": 8080}]


def test_user_data_installs_each_zip_with_the_specs_environment():
    data = {n: r["Properties"]["UserData"]["Fn::Base64"]["Fn::Sub"] for n, r in resources("AWS::EC2::Instance").items()}
    assert "nginx-assets.zip" in data["NginxInstance1"] and 'PRIVATE_ALB_DNS="${PrivateALB.DNSName}"' in data[
        "NginxInstance1"]
    assert "sre-app.zip" in data["AppServerInstance1"]
    assert 'METRICS_TABLE="${ApplicationMetricsTable}"' in data["AppServerInstance1"]
    crm = data["CRMAppInstance"]
    for variable, table in (("CUSTOMERS_TABLE", "CRMCustomersTable"), ("DEALS_TABLE", "CRMDealsTable"),
                            ("ACTIVITIES_TABLE", "CRMActivitiesTable")):
        assert f'{variable}="${{{table}}}"' in crm
    assert "init_sample_data.py" in crm and "crm-app.zip" in crm
    for script in data.values():
        assert "amazon-cloudwatch-agent-ctl" in script and "set -euxo pipefail" in script


def test_dynamodb_policy_names_exactly_the_tables():
    (policy,) = [p for p in R["EC2InstanceRole"]["Properties"]["Policies"] if p["PolicyName"] == "DynamoDBAccess"]
    (statement,) = policy["PolicyDocument"]["Statement"]
    assert sorted(statement["Action"]) == sorted(f"dynamodb:{a}" for a in (
        "PutItem", "GetItem", "Query", "Scan", "UpdateItem", "DeleteItem", "BatchWriteItem"))
    assert "*" not in str(statement["Resource"])
    assert len(statement["Resource"]) == 7  # five tables, two customer-index GSIs


def test_no_security_group_is_open_wider_than_the_chain():
    for name, group in resources("AWS::EC2::SecurityGroup").items():
        for rule in group["Properties"]["SecurityGroupIngress"]:
            if "CidrIp" in rule:
                assert name == "PublicALBSecurityGroup" and rule["FromPort"] in (80, 443, 8080)


def test_ssm_parameters_of_the_background():
    names = {r["Properties"]["Name"] for r in resources("AWS::SSM::Parameter").values()}
    assert names == {"/sre-workshop/ec2/nginx-instance-id", "/sre-workshop/ec2/app-instance-id",
                     "/sre-workshop/dynamodb/crm-customers-table-name", "/sre-workshop/dynamodb/crm-deals-table-name",
                     "/sre-workshop/dynamodb/crm-activities-table-name", "/sre-workshop/vpc/vpc-id",
                     "/sre-workshop/alb/public-dns", "/sre-workshop/alb/private-dns"}


def test_alarms_and_dashboard_cover_both_flows():
    metrics = {r["Properties"].get("MetricName") for r in resources("AWS::CloudWatch::Alarm").values()}
    assert {"UnHealthyHostCount", "mem_used_percent"} <= metrics
    assert any("5XX" in str(r) for r in resources("AWS::CloudWatch::Alarm").values())
    body = str(R["Dashboard"]["Properties"]["DashboardBody"])
    for metric in ("HTTPCode_ELB_5XX_Count", "TargetResponseTime", "HealthyHostCount", "mem_used_percent",
                   "MemoryLeakSizeMB", "ThrottledRequests"):
        assert metric in body, metric


def test_cost_guard_deletes_the_stack_at_expiry():
    schedule = R["ExpirySchedule"]
    assert schedule["Condition"] == "HasExpiry"
    assert schedule["Properties"]["Target"]["Arn"].endswith("cloudformation:deleteStack")


@pytest.mark.parametrize("path", ["infra/systemd/sre-app.service", "infra/systemd/crm-app.service"])
def test_units_do_not_restart_by_themselves(path):
    unit = (ROOT / path).read_text()
    assert "EnvironmentFile=/etc/sre-workshop/" in unit and "Restart=" not in unit.replace("no Restart=", "")


def test_subnets_use_their_route_tables():
    associations = {r["Properties"]["SubnetId"]["Ref"]: r["Properties"]["RouteTableId"]["Ref"]
                    for r in resources("AWS::EC2::SubnetRouteTableAssociation").values()}
    assert associations == {"PublicSubnet1": "PublicRouteTable", "PublicSubnet2": "PublicRouteTable",
                            "PrivateSubnet1": "PrivateRouteTable", "PrivateSubnet2": "PrivateRouteTable"}
    assert R["PrivateRoute"]["Properties"]["NatGatewayId"] == {"Ref": "NatGateway"}
    assert R["NatGateway"]["Properties"]["SubnetId"] == {"Ref": "PublicSubnet1"}


def test_instance_role_has_the_two_managed_policies():
    arns = [a["Fn::Sub"] for a in R["EC2InstanceRole"]["Properties"]["ManagedPolicyArns"]]
    assert [a.rsplit("/", 1)[1] for a in arns] == ["AmazonSSMManagedInstanceCore", "CloudWatchAgentServerPolicy"]
    profile = R["EC2InstanceProfile"]["Properties"]["Roles"]
    assert profile == [{"Ref": "EC2InstanceRole"}]


def test_the_expiry_role_outlives_the_deletion_it_performs():
    role = R["ExpiryRole"]
    assert role["DeletionPolicy"] == "Retain" and role["Condition"] == "HasExpiry"
    assert role["Properties"]["RoleName"] == {"Fn::Sub": "${AWS::StackName}-expiry-${AWS::Region}"}
