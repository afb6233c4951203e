"""IAM evaluation of identity-based policies (twin/enforce/iam.py): AWS's documented evaluation logic."""

from __future__ import annotations

import pytest

from sre_workshop.twin.enforce.iam import (
    Decision,
    PolicyError,
    assumed_role_arn,
    compile_policies,
    denial_message,
    evaluate,
    principal_context,
)

ACCOUNT = "123456789012"
T = f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/"
CONTEXT = principal_context(ACCOUNT, "EC2InstanceRole", "i-0abc", "us-east-1")
TABLES = ["ApplicationMetrics", "CRMCustomers", "CRMDeals", "CRMActivities", "IncidentHistory"]
# The template's DynamoDBAccess inline policy (infra/cloudformation/sre-workshop.yaml), resolved.
DYNAMODB_ACCESS = {"Version": "2012-10-17", "Statement": [{
    "Sid": "WorkshopTables", "Effect": "Allow",
    "Action": ["dynamodb:PutItem", "dynamodb:GetItem", "dynamodb:Query", "dynamodb:Scan", "dynamodb:UpdateItem",
               "dynamodb:DeleteItem", "dynamodb:BatchWriteItem"],
    "Resource": [T + name for name in TABLES] + [T + "CRMDeals/index/customer-index",
                                                  T + "CRMActivities/index/customer-index"]}]}


def decide(policies, action, resource):
    return evaluate(policies, action, resource, CONTEXT).decision


def allow(action="*", resource="*", **extra):
    return {"Statement": {"Effect": "Allow", "Action": action, "Resource": resource, **extra}}


def deny(action="*", resource="*", **extra):
    return {"Statement": [{"Effect": "Deny", "Action": action, "Resource": resource, **extra}]}


@pytest.mark.parametrize("action", DYNAMODB_ACCESS["Statement"][0]["Action"])
def test_the_template_policy_allows_its_actions_on_every_table(action):
    for name in TABLES:
        assert decide([DYNAMODB_ACCESS], action, T + name) is Decision.ALLOW


def test_the_template_policy_denies_implicitly_what_it_does_not_name():
    assert decide([DYNAMODB_ACCESS], "dynamodb:DescribeTable", T + "CRMDeals") is Decision.IMPLICIT_DENY
    assert decide([DYNAMODB_ACCESS], "dynamodb:BatchGetItem", T + "CRMDeals") is Decision.IMPLICIT_DENY
    assert decide([DYNAMODB_ACCESS], "dynamodb:GetItem", T + "Other") is Decision.IMPLICIT_DENY


def test_an_index_needs_its_own_arn():
    index = T + "CRMDeals/index/customer-index"
    assert decide([DYNAMODB_ACCESS], "dynamodb:Query", index) is Decision.ALLOW
    other = T + "CRMCustomers/index/customer-index"
    assert decide([DYNAMODB_ACCESS], "dynamodb:Query", other) is Decision.IMPLICIT_DENY
    assert decide([allow("dynamodb:Query", T + "CRMCustomers")], "dynamodb:Query", T + "CRMCustomers/index/x") \
        is Decision.IMPLICIT_DENY
    assert decide([allow("dynamodb:Query", T + "CRMCustomers/*")], "dynamodb:Query", T + "CRMCustomers/index/x") \
        is Decision.ALLOW


def test_an_explicit_deny_wins_over_any_allow():
    policies = [DYNAMODB_ACCESS, allow(), deny("dynamodb:GetItem", T + "CRMCustomers")]
    assert decide(policies, "dynamodb:GetItem", T + "CRMCustomers") is Decision.EXPLICIT_DENY
    assert decide(policies, "dynamodb:GetItem", T + "CRMDeals") is Decision.ALLOW


def test_no_policy_is_an_implicit_deny():
    assert decide([], "dynamodb:GetItem", T + "CRMDeals") is Decision.IMPLICIT_DENY


def test_actions_match_case_insensitively_with_wildcards():
    assert decide([allow("DynamoDB:get*")], "dynamodb:GetItem", T + "A") is Decision.ALLOW
    assert decide([allow("dynamodb:?etItem")], "dynamodb:GetItem", T + "A") is Decision.ALLOW
    assert decide([allow("dynamodb:?etItem")], "dynamodb:BatchGetItem", T + "A") is Decision.IMPLICIT_DENY
    assert decide([allow("s3:*")], "dynamodb:GetItem", T + "A") is Decision.IMPLICIT_DENY


def test_resources_match_case_sensitively():
    assert decide([allow(resource=T + "crmdeals")], "dynamodb:GetItem", T + "CRMDeals") is Decision.IMPLICIT_DENY
    assert decide([allow(resource=T + "CRM*")], "dynamodb:GetItem", T + "CRMDeals") is Decision.ALLOW


def test_resource_wildcards_stay_in_their_arn_segment_unless_they_end_it():
    assert decide([allow(resource=f"arn:aws:dynamodb:*:{ACCOUNT}:table/A")], "x:y", T + "A") is Decision.ALLOW
    assert decide([allow(resource="arn:aws:dynamodb:us-east-?:*:table/A")], "x:y", T + "A") is Decision.ALLOW
    assert decide([allow(resource="arn:aws:dynamodb:us-*-1:*:table/A")], "x:y", T + "A") is Decision.ALLOW
    assert decide([allow(resource="arn:aws:dynamodb:*")], "x:y", T + "A") is Decision.ALLOW  # ends the segment
    assert decide([allow(resource="arn:aws:dynamodb:u*t:*:table/A")], "x:y", T + "A") is Decision.IMPLICIT_DENY
    # a `*` inside a segment does not reach across the colon into the account
    assert decide([allow(resource="arn:aws:dynamodb:us*2:table/A")], "x:y", T + "A") is Decision.IMPLICIT_DENY


def test_not_action_and_not_resource():
    everything_but_iam = {"Statement": {"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}}
    assert decide([everything_but_iam], "dynamodb:GetItem", T + "A") is Decision.ALLOW
    assert decide([everything_but_iam], "iam:CreateUser", "*") is Decision.IMPLICIT_DENY
    deny_all_but_a = {"Statement": {"Effect": "Deny", "Action": "dynamodb:*", "NotResource": [T + "A"]}}
    assert decide([allow(), deny_all_but_a], "dynamodb:GetItem", T + "A") is Decision.ALLOW
    assert decide([allow(), deny_all_but_a], "dynamodb:GetItem", T + "B") is Decision.EXPLICIT_DENY


def test_supported_conditions_are_evaluated():
    region = {"StringEquals": {"aws:RequestedRegion": "us-east-1"}}
    assert decide([allow(Condition=region)], "dynamodb:GetItem", T + "A") is Decision.ALLOW
    other = {"StringEquals": {"aws:RequestedRegion": ["eu-west-1", "eu-west-3"]}}
    assert decide([allow(Condition=other)], "dynamodb:GetItem", T + "A") is Decision.IMPLICIT_DENY
    outside = {"StringNotEquals": {"aws:RequestedRegion": "us-east-1"}}
    assert decide([allow(), deny(Condition=outside)], "dynamodb:GetItem", T + "A") is Decision.ALLOW
    role = {"ArnLike": {"aws:PrincipalArn": f"arn:aws:iam::{ACCOUNT}:role/EC2*"},
            "Bool": {"aws:SecureTransport": False}}
    assert decide([allow(Condition=role)], "dynamodb:GetItem", T + "A") is Decision.ALLOW
    like = {"StringLike": {"ec2:SourceInstanceARN": "*:instance/i-0abc"}}
    assert decide([allow(Condition=like)], "dynamodb:GetItem", T + "A") is Decision.ALLOW


def test_missing_keys_if_exists_and_null():
    assert decide([allow(Condition={"StringEqualsIfExists": {"aws:SourceVpce": "vpce-1"}})], "a:b", T + "A") \
        is Decision.ALLOW
    assert decide([allow(Condition={"Null": {"aws:SourceVpce": "true"}})], "a:b", T + "A") is Decision.ALLOW
    assert decide([allow(Condition={"Null": {"aws:PrincipalArn": "true"}})], "a:b", T + "A") is Decision.IMPLICIT_DENY


def test_unsupported_conditions_never_allow_and_always_deny():
    leading = {"ForAllValues:StringEquals": {"dynamodb:LeadingKeys": ["u1"]}}
    assert decide([allow(Condition=leading)], "dynamodb:GetItem", T + "A") is Decision.IMPLICIT_DENY
    numeric = {"NumericLessThan": {"aws:MultiFactorAuthAge": "3600"}}
    assert decide([allow(), deny(Condition=numeric)], "dynamodb:GetItem", T + "A") is Decision.EXPLICIT_DENY
    # ... but an unsupported Deny still needs its Action and Resource to match
    assert decide([allow(), deny("s3:*", Condition=numeric)], "dynamodb:GetItem", T + "A") is Decision.ALLOW


def test_policy_variables():
    mine = "arn:aws:dynamodb:${aws:RequestedRegion}:${aws:PrincipalAccount}:table/A"
    assert decide([allow(resource=mine)], "dynamodb:GetItem", T + "A") is Decision.ALLOW
    assert decide([allow(resource=T + "${*}")], "dynamodb:GetItem", T + "A") is Decision.IMPLICIT_DENY
    assert decide([allow(resource=T + "${aws:username}")], "dynamodb:GetItem", T + "A") is Decision.IMPLICIT_DENY
    assert decide([allow(), deny(resource=T + "${aws:username}")], "dynamodb:GetItem", T + "A") \
        is Decision.EXPLICIT_DENY


def test_a_call_needs_every_authorization_and_reports_the_first_refused():
    policies = compile_policies([allow("dynamodb:BatchWriteItem", T + "A")], CONTEXT)
    verdict = policies.authorize([("dynamodb:BatchWriteItem", T + "A"), ("dynamodb:BatchWriteItem", T + "B")])
    assert (verdict.decision, verdict.resource) == (Decision.IMPLICIT_DENY, T + "B")
    assert policies.authorize([("dynamodb:BatchWriteItem", T + "A")]).allowed


def test_policy_documents_may_be_json_text():
    assert compile_policies(['{"Statement": {"Effect": "Allow", "Action": "*", "Resource": "*"}}']).decide(
        "dynamodb:GetItem", T + "A") is Decision.ALLOW


@pytest.mark.parametrize("document", [
    {"Version": "2012-10-17"}, {"Statement": {"Effect": "Maybe", "Action": "*", "Resource": "*"}},
    {"Statement": {"Effect": "Allow", "Resource": "*"}},
    {"Statement": {"Effect": "Allow", "Action": 3, "Resource": "*"}},
    {"Statement": ["nope"]}])
def test_malformed_policies_are_refused(document):
    with pytest.raises(PolicyError):
        compile_policies([document])


def test_the_messages_are_dynamodbs():
    caller = assumed_role_arn(ACCOUNT, "EC2InstanceRole", "i-0abc")
    implicit = evaluate([], "dynamodb:GetItem", T + "CRMDeals", CONTEXT)
    assert denial_message(caller, implicit) == (
        f"User: arn:aws:sts::{ACCOUNT}:assumed-role/EC2InstanceRole/i-0abc is not authorized to perform: "
        f"dynamodb:GetItem on resource: {T}CRMDeals because no identity-based policy allows the "
        "dynamodb:GetItem action")
    explicit = evaluate([deny()], "dynamodb:GetItem", T + "CRMDeals", CONTEXT)
    assert denial_message(caller, explicit) == (
        f"User: arn:aws:sts::{ACCOUNT}:assumed-role/EC2InstanceRole/i-0abc is not authorized to perform: "
        f"dynamodb:GetItem on resource: {T}CRMDeals with an explicit deny in an identity-based policy")
