"""The CloudFormation template, checked statically: linters, and what moto's deploy cannot show."""

from __future__ import annotations

import fnmatch
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cfn import TEMPLATE, handler_permissions, load
from sre_workshop.aws import stack

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
    # A path relative to the checkout: with an absolute one, checkov's secrets check (CKV_AWS_46) answers
    # differently depending on where the checkout is (it flagged the user data under /tmp, not elsewhere).
    result = subprocess.run([checkov, "--config-file", ".checkov.yaml", "-f", str(TEMPLATE.relative_to(ROOT))],
                            cwd=ROOT,
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
        assert props["ImageId"] == {"Fn::If": ["PinnedImage", {"Ref": "ImageId"}, {"Ref": "LatestAmiId"}]}
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
    assert "ASSETS_ZIP=nginx-assets.zip" in data["NginxInstance1"]
    assert "\nPRIVATE_ALB_DNS=${PrivateALB.DNSName}\n" in data["NginxInstance1"]
    assert "ASSETS_ZIP=sre-app.zip" in data["AppServerInstance1"]
    assert "\nMETRICS_TABLE=${ApplicationMetricsTable}\n" in data["AppServerInstance1"]
    crm = data["CRMAppInstance"]
    for variable, table in (("CUSTOMERS_TABLE", "CRMCustomersTable"), ("DEALS_TABLE", "CRMDealsTable"),
                            ("ACTIVITIES_TABLE", "CRMActivitiesTable")):
        assert f"\n{variable}=${{{table}}}\n" in crm
    assert "ASSETS_ZIP=crm-app.zip" in crm
    assert "init_sample_data.py" in (ROOT / "infra/crm-app/activate.sh").read_text()
    for script in data.values():
        assert "set -euxo pipefail" in script and "bash /tmp/sre-workshop-assets/activate.sh" in script
    for app in ("nginx", "sre-app", "crm-app"):
        activate = (ROOT / "infra" / app / "activate.sh").read_text()
        assert "amazon-cloudwatch-agent-ctl" in activate and "set -euxo pipefail" in activate
        assert "/usr/local/sbin/sre-workshop-update-assets" in activate and "curl -fsS" in activate


def test_dynamodb_policy_names_exactly_the_tables():
    (policy,) = [p for p in R["EC2InstanceRole"]["Properties"]["Policies"] if p["PolicyName"] == "DynamoDBAccess"]
    (statement,) = policy["PolicyDocument"]["Statement"]
    assert sorted(statement["Action"]) == sorted(f"dynamodb:{a}" for a in (
        "PutItem", "GetItem", "Query", "Scan", "UpdateItem", "DeleteItem", "BatchWriteItem"))
    assert "*" not in str(statement["Resource"])
    assert len(statement["Resource"]) == 7  # five tables, two customer-index GSIs


def ingress_rules() -> set[tuple]:
    """Every ingress rule of the template as (group, port, source): inline or a SecurityGroupIngress resource."""
    rules = set()
    for name, group in resources("AWS::EC2::SecurityGroup").items():
        for rule in group["Properties"].get("SecurityGroupIngress", []):
            rules.add((name, rule["FromPort"], rule.get("CidrIp") or rule["SourceSecurityGroupId"]["Ref"]))
    for rule in resources("AWS::EC2::SecurityGroupIngress").values():
        props = rule["Properties"]
        assert props["FromPort"] == props["ToPort"] and props["IpProtocol"] == "tcp"
        rules.add((props["GroupId"]["Ref"], props["FromPort"], props["SourceSecurityGroupId"]["Ref"]))
    return rules


def test_ingress_is_the_specs_chain_rule_by_rule():
    assert ingress_rules() == {
        ("PublicALBSecurityGroup", 80, "0.0.0.0/0"), ("PublicALBSecurityGroup", 443, "0.0.0.0/0"),
        ("PublicALBSecurityGroup", 8080, "0.0.0.0/0"), ("NginxSecurityGroup", 80, "PublicALBSecurityGroup"),
        ("PrivateALBSecurityGroup", 80, "NginxSecurityGroup"),
        ("AppServerSecurityGroup", 8080, "PrivateALBSecurityGroup"),
        ("CRMAppSecurityGroup", 8080, "PublicALBSecurityGroup")}


def test_egress_reaches_only_the_next_hop_and_https():
    """Issue 9.10: no group keeps the default allow-all egress; each may reach the next hop of the chain only."""
    egress = {}
    for name, group in resources("AWS::EC2::SecurityGroup").items():
        rules = group["Properties"].get("SecurityGroupEgress")
        assert rules, f"{name} keeps the default egress to 0.0.0.0/0 on every port"
        egress[name] = {(r["FromPort"], r["ToPort"], r.get("CidrIp") or r["DestinationSecurityGroupId"]["Ref"])
                        for r in rules}
        assert all(r["IpProtocol"] == "tcp" for r in rules)
    https = (443, 443, "0.0.0.0/0")
    assert egress == {
        "PublicALBSecurityGroup": {(80, 80, "NginxSecurityGroup"), (8080, 8080, "CRMAppSecurityGroup")},
        "NginxSecurityGroup": {(80, 80, "PrivateALBSecurityGroup"), https},
        "PrivateALBSecurityGroup": {(8080, 8080, "AppServerSecurityGroup")},
        "AppServerSecurityGroup": {https}, "CRMAppSecurityGroup": {https}}
    assert not resources("AWS::EC2::SecurityGroupEgress")  # separate egress would not drop the default rule


def test_ssm_parameters_of_the_background():
    names = {r["Properties"]["Name"] for r in resources("AWS::SSM::Parameter").values()}
    assert names == {"/sre-workshop/ec2/nginx-instance-id", "/sre-workshop/ec2/app-instance-id",
                     "/sre-workshop/dynamodb/crm-customers-table-name", "/sre-workshop/dynamodb/crm-deals-table-name",
                     "/sre-workshop/dynamodb/crm-activities-table-name", "/sre-workshop/vpc/vpc-id",
                     "/sre-workshop/alb/public-dns", "/sre-workshop/alb/private-dns", "/sre-workshop/assets/location"}


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
    assert schedule["DependsOn"] == "NatGateway"  # gives IAM time to show the tool's new expiry role
    arn = schedule["Properties"]["Target"]["Arn"]["Fn::Sub"]
    assert arn == "arn:${AWS::Partition}:scheduler:::aws-sdk:cloudformation:deleteStack"


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



# ---------------------------------------------------------------- issue 9: what moto cannot show


def test_capability_iam_is_enough():
    """Issue 9.1: a named IAM resource needs CAPABILITY_NAMED_IAM, which the tool does not pass."""
    naming = {"RoleName", "InstanceProfileName", "ManagedPolicyName", "GroupName", "UserName", "PolicyName"}
    for name, resource in R.items():
        if resource["Type"].startswith("AWS::IAM::"):
            assert not naming & set(resource["Properties"]), f"{name} has a custom name"
    assert stack.CAPABILITIES == ["CAPABILITY_IAM"]


def test_the_stack_holds_no_role_its_own_deletion_needs():
    """Issue 9.2/9.3: the expiry and service roles live outside the stack (made by the tool), so a deletion
    never depends on a role it deletes, and nothing retained blocks the next deploy."""
    roles = resources("AWS::IAM::Role")
    assert set(roles) == {"EC2InstanceRole"}
    assert all("DeletionPolicy" not in r for r in R.values())
    target = R["ExpirySchedule"]["Properties"]["Target"]
    assert target["RoleArn"] == {"Ref": "ExpiryRoleArn"}
    assert T["Parameters"]["ExpiryRoleArn"]["Default"] == ""
    assert "ExpiryRoleArn" in str(T["Conditions"]["HasExpiry"]) and "ExpiryNeedsItsRole" in T["Rules"]


def service_role_policy() -> dict:
    return json.loads((ROOT / "infra/cloudformation/service-role-policy.json").read_text())


def allowed(action: str, policy: dict) -> bool:
    patterns = [p for s in policy["Statement"] if s["Effect"] == "Allow"
                for p in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])]
    return any(fnmatch.fnmatchcase(action.lower(), pattern.lower()) for pattern in patterns)


# Handler permissions the service role leaves out on purpose: they serve features the template does not use.
NOT_USED = {
    "cognito-idp:DescribeUserPoolClient": "ALB listener authentication with Cognito",
    "firehose:TagDeliveryStream": "SNS delivery to Firehose",
    "kinesis:DescribeStream": "DynamoDB Kinesis streaming destinations",
    "kinesis:PutRecords": "DynamoDB Kinesis streaming destinations",
    "kms:ListAliases": "a customer-managed key named by alias",
    "s3:GetObject": "DynamoDB ImportSourceSpecification (table import from S3)",
    "s3:GetObjectMetadata": "DynamoDB table import from S3",
    "s3:ListBucket": "DynamoDB table import from S3",
    "s3:REST.PUT.OBJECT": "not an IAM action (a log-delivery operation listed by the Logs schema)",
    "iam:PutRolePermissionsBoundary": "a PermissionsBoundary on EC2InstanceRole",
    "iam:DeleteRolePermissionsBoundary": "a PermissionsBoundary on EC2InstanceRole",
}


def test_service_role_allows_every_handler_permission_of_the_templates_resources():
    """Issue 9.2: CloudFormation creates, updates and deletes with the service role, so it needs what every
    resource type's handlers need (AWS's provider schemas, e.g. logs:DeleteMetricFilter, scheduler:GetSchedule)."""
    policy = service_role_policy()
    needed = {p for kind in {r["Type"] for r in R.values()} for p in handler_permissions(kind)}
    missing = sorted(p for p in needed if not allowed(p, policy) and p not in NOT_USED)
    assert not missing, missing
    assert needed >= {"logs:DeleteMetricFilter", "logs:DescribeLogGroups", "cloudwatch:DescribeAlarms",
                      "cloudwatch:GetDashboard", "scheduler:GetSchedule"}


def test_service_role_is_scoped_where_it_could_escalate():
    """Issue 9.9: no Delete* wildcards, IAM only on roles named after the stack, PassRole only to EC2 (the
    instance role) and to Scheduler (the expiry role), and only the spec's two managed policies."""
    policy = service_role_policy()
    for statement in policy["Statement"]:
        actions = [statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"]
        assert not any(a.endswith("*") and "Delete" in a for a in actions)
        if any(a.startswith("iam:") for a in actions):
            assert statement["Resource"] != "*" or statement["Condition"], statement["Sid"]
        if "iam:PassRole" in actions:
            (operator, keys), = statement["Condition"].items()
            assert operator in ("StringEquals", "StringEqualsIfExists")
            assert keys["iam:PassedToService"] in ("ec2.amazonaws.com", "scheduler.amazonaws.com")
            assert statement["Resource"] != "*"
        if "iam:AttachRolePolicy" in actions:
            assert len(statement["Condition"]["ArnEquals"]["iam:PolicyARN"]) == 2
    assert len(json.dumps(policy, separators=(",", ":"))) < 10240 - 400  # IAM's inline-policy size limit


def test_no_template_policy_has_wildcard_deletes_or_passrole():
    text = json.dumps(R)
    assert "Delete*" not in text and "iam:PassRole" not in text


def test_public_alb_depends_on_the_gateway_attachment():
    """Issue 9.4: an internet-facing ALB needs the gateway attached; on delete it must go before the detach."""
    depends = R["PublicALB"].get("DependsOn", [])
    assert "VPCGatewayAttachment" in ([depends] if isinstance(depends, str) else depends)


def user_data(name: str) -> str:
    return R[name]["Properties"]["UserData"]["Fn::Base64"]["Fn::Sub"]


def test_user_data_is_the_same_on_every_deploy():
    """Issue 9.5: a changed user data stops and starts the instance without running again. It must not name
    the deploy's assets (read from SSM instead) and must run the zip's activate.sh and record its hash."""
    for name in resources("AWS::EC2::Instance"):
        script = user_data(name)
        assert "AssetsPrefix" not in script and "AssetsBucketName" not in script
        assert "${AssetsLocationParameter}" in script and "activate.sh" in script
        assert "/etc/sre-workshop/installed.sha256" in script
    location = R["AssetsLocationParameter"]["Properties"]
    assert location["Name"] == "/sre-workshop/assets/location"
    assert location["Value"] == {"Fn::Sub": "s3://${AssetsBucketName}/${AssetsPrefix}"}


def test_a_new_image_does_not_replace_the_instances_by_surprise():
    """Issue 9.5: LatestAmiId re-resolves on every update; the instances run the pinned ImageId when given."""
    assert T["Conditions"]["PinnedImage"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "ImageId"}, ""]}]}
    assert T["Parameters"]["ImageId"]["Type"] == "String"


def test_update_keeps_parameters_it_does_not_set():
    """Issue 9.5: an omitted parameter falls back to the template default unless UsePreviousValue is sent."""
    previous = {"AssetsPrefix": "assets/a/", "InstanceType": "t3.small", "AlarmEmail": "a@b.c"}
    listed = stack.parameter_list({"AssetsPrefix", "InstanceType", "AlarmEmail", "NewOne"},
                                  {"AssetsPrefix": "assets/b/"}, previous)
    assert listed == [{"ParameterKey": "AssetsPrefix", "ParameterValue": "assets/b/"},
                      {"ParameterKey": "AlarmEmail", "UsePreviousValue": True},
                      {"ParameterKey": "InstanceType", "UsePreviousValue": True}]
    assert stack.parameter_list({"A"}, {"A": "1"}, None) == [{"ParameterKey": "A", "ParameterValue": "1"}]


def test_5xx_alarm_uses_documented_metric_math():
    """Issue 9.6: MAX([requests, 1]) mixes a scalar into an array function; IF and FILL are documented."""
    (rate,) = [m for m in R["Public5xxAlarm"]["Properties"]["Metrics"] if "Expression" in m]
    assert "MAX([" not in rate["Expression"] and rate["Expression"].startswith("IF(")
    assert re.fullmatch(r"[a-z_0-9 ()+*/>,.A-Z]+", rate["Expression"])


def test_instances_wait_for_their_subnets_route_table_association():
    """Issue 9.7: the private route exists before the subnet uses the route table; boot needs both."""
    for name in resources("AWS::EC2::Instance"):
        assert {"PrivateRoute", "PrivateSubnet1RouteTableAssociation"} <= set(R[name]["DependsOn"])


def test_alarm_notifications_can_be_delivered_and_subscribed():
    """Issue 9.8: CloudWatch cannot publish to a topic under alias/aws/sns; an e-mail parameter subscribes."""
    topic = R["AlarmTopic"]["Properties"]
    assert "KmsMasterKeyId" not in topic
    email = [{"Protocol": "email", "Endpoint": {"Ref": "AlarmEmail"}}]
    assert topic["Subscription"] == {"Fn::If": ["HasAlarmEmail", email, {"Ref": "AWS::NoValue"}]}
    for alarm in resources("AWS::CloudWatch::Alarm").values():
        assert alarm["Properties"]["AlarmActions"] == [{"Ref": "AlarmTopic"}]


@pytest.mark.parametrize("app", ["sre-app", "crm-app"])
def test_instance_packages_are_pinned_by_hash_and_installed_offline(app):
    """Issue 9.11: the lock pins every package with a hash; install.sh never reaches an index."""
    lock = (ROOT / "infra" / app / "requirements.txt").read_text()
    entries = [e for e in lock.replace("\\\n", " ").split("\n") if e and not e.startswith("#")]
    assert entries and all(re.match(r"^[a-z0-9-]+==\S+ +--hash=sha256:[0-9a-f]{64}$", e) for e in entries), entries
    script = (ROOT / "infra" / app / "install.sh").read_text()
    assert "--no-index" in script and "--require-hashes" in script and '--find-links "$here/wheels"' in script
    assert not any("pip install" in user_data(n) for n in resources("AWS::EC2::Instance"))


def test_root_volumes_are_encrypted():
    """Issue 9.12."""
    for name, instance in resources("AWS::EC2::Instance").items():
        (root,) = instance["Properties"]["BlockDeviceMappings"]
        assert root["DeviceName"] == "/dev/xvda" and root["Ebs"]["Encrypted"] is True, name


def test_no_partition_is_hard_coded():
    """Issue 9.14: ARNs use ${AWS::Partition}, so the template also works in aws-cn and aws-us-gov."""
    assert not re.search(r"arn:aws:", TEMPLATE.read_text())
    assert not re.search(r"arn:aws:", (ROOT / "infra/cloudformation/service-role-policy.json").read_text())


def test_target_group_dimensions_come_from_their_attribute_and_teardown_is_quick():
    """Issue 9.14: TargetGroupFullName instead of splitting the ARN; 30 s deregistration delay."""
    assert "Fn::Split" not in json.dumps(R)
    for name, group in resources("AWS::ElasticLoadBalancingV2::TargetGroup").items():
        attributes = {a["Key"]: a["Value"] for a in group["Properties"]["TargetGroupAttributes"]}
        assert attributes["deregistration_delay.timeout_seconds"] == "30", name
    dimensions = [d for a in resources("AWS::CloudWatch::Alarm").values() for d in a["Properties"].get("Dimensions", [])
                  if d["Name"] == "TargetGroup"]
    assert dimensions and all(d["Value"]["Fn::GetAtt"][1] == "TargetGroupFullName" for d in dimensions)


def test_checkov_skips_give_the_right_reasons():
    """Issue 9.14: SSEEnabled: true is the AWS-managed KMS key aws/dynamodb, not the AWS-owned key."""
    config = (ROOT / ".checkov.yaml").read_text()
    reason = config[:config.index("- CKV_AWS_119")].rsplit("- CKV", 1)[-1]
    assert "AWS-managed KMS key" in reason and "AWS-owned key (SSE" not in reason
    assert all(r["Properties"]["SSESpecification"] == {"SSEEnabled": True}
               for r in resources("AWS::DynamoDB::Table").values())


# ---------------------------------------------------------------- issue 20: the second audit


def intrinsic_functions(node) -> set[str]:
    """Return the names of the intrinsic and condition functions used anywhere in a template node."""
    if isinstance(node, dict):
        found = {k for k in node if k.startswith("Fn::") or k in ("Ref", "Condition")}
        return found.union(*(intrinsic_functions(v) for v in node.values()))
    if isinstance(node, list):
        return set().union(*(intrinsic_functions(v) for v in node))
    return set()


# What CloudFormation itself calls, with the stack's service role, to evaluate a function or resolve a
# parameter, besides the resource handlers (AWS's docs on Fn::GetAZs and on SSM parameter types). Every
# function the template uses must be listed here, so a new one is classified before it reaches an account.
FUNCTION_NEEDS = {
    "Fn::GetAZs": {"ec2:DescribeAvailabilityZones", "ec2:DescribeAccountAttributes"},
    **{name: set() for name in ("Ref", "Condition", "Fn::Sub", "Fn::GetAtt", "Fn::If", "Fn::Select", "Fn::Base64",
                                "Fn::Not", "Fn::Equals", "Fn::And", "Fn::Or", "Fn::Join", "Fn::Split")},
}
PARAMETER_TYPE_NEEDS = {"AWS::SSM::Parameter::Value<": {"ssm:GetParameters"}, "AWS::EC2::VPC::Id": {"ec2:DescribeVpcs"},
                        "AWS::EC2::Subnet::Id": {"ec2:DescribeSubnets"}, "AWS::EC2::Image::Id": {"ec2:DescribeImages"}}


def test_service_role_allows_what_functions_and_parameters_need():
    """Issue 20.1: CloudFormation evaluates !GetAZs with the service role's credentials, so the role needs
    ec2:DescribeAvailabilityZones and ec2:DescribeAccountAttributes, not only what the handlers need."""
    policy = service_role_policy()
    used = intrinsic_functions(T["Resources"]) | intrinsic_functions(T.get("Outputs", {})) \
        | intrinsic_functions(T.get("Conditions", {}))
    assert "Fn::GetAZs" in used
    assert used <= set(FUNCTION_NEEDS), f"classify what these functions need: {sorted(used - set(FUNCTION_NEEDS))}"
    needed = set().union(*(FUNCTION_NEEDS[f] for f in used))
    for parameter in T["Parameters"].values():
        needed |= set().union(*(n for prefix, n in PARAMETER_TYPE_NEEDS.items()
                                if parameter["Type"].startswith(prefix)))
    assert "{{resolve:" not in TEMPLATE.read_text()  # dynamic references would need their own grants
    missing = sorted(a for a in needed if not allowed(a, policy))
    assert not missing, missing


def test_instance_role_passrole_tolerates_a_missing_service_key():
    """Issue 20.11: iam:PassedToService is not in every request that passes an instance profile's role."""
    (statement,) = [s for s in service_role_policy()["Statement"] if s["Sid"] == "PassTheInstanceRoleToEc2"]
    assert statement["Condition"] == {"StringEqualsIfExists": {"iam:PassedToService": "ec2.amazonaws.com"}}


def test_public_listeners_deny_admin_before_forwarding():
    """Issue 20.4: /admin (the apps' fault controls) answers a fixed 403 on both public listeners."""
    rules = {r["Properties"]["ListenerArn"]["Ref"]: r["Properties"]
             for r in resources("AWS::ElasticLoadBalancingV2::ListenerRule").values()}
    assert set(rules) == {"PublicListener80", "PublicListener8080"}
    for props in rules.values():
        (condition,) = props["Conditions"]
        assert condition["Field"] == "path-pattern"
        assert {"/admin", "/admin/*", "//*"} <= set(condition["PathPatternConfig"]["Values"])
        (action,) = props["Actions"]
        assert action["Type"] == "fixed-response" and action["FixedResponseConfig"]["StatusCode"] == "403"
        assert props["Priority"] == 1


def test_nat_gateway_waits_for_its_subnets_route_to_the_internet():
    """Issue 20.10: the NAT gateway is made after, and deleted before, the public route and its association."""
    assert set(R["NatGateway"]["DependsOn"]) >= {"PublicRoute", "PublicSubnet1RouteTableAssociation"}


TEMPLATE_BODY_LIMIT = 51_200  # bytes, CloudFormation's limit on TemplateBody (TemplateURL allows 1 MB)


def test_template_stays_well_under_the_template_body_limit():
    """Issue 20.12: deploy sends a TemplateURL, but validate-template, cfn-lint's users and a console paste
    take the body: keep a 10 % margin under 51,200 bytes, shortening repeated comments first."""
    assert len(TEMPLATE.read_bytes()) < TEMPLATE_BODY_LIMIT * 0.9
