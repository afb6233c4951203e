"""The twin's scoped endpoint: the same AWS APIs as aws-api, for callers with an IAM user's own credentials.

aws-api's own port answers the stack's fixed local credentials (the tool's, the agent's stand-in of the
instances, `aws-env`) without checking them. The scoped endpoint, on its own port, answers as AWS does for
a principal: it checks the request's Signature Version 4 against the access keys of the twin's IAM users
(a key that is not one, or the wrong secret, is refused before anything else), then authorizes the call on
that user's inline policies (enforce/iam.py: an explicit Deny wins, no Allow is an implicit deny), then
hands it to the twin. An evaluated agent gets this endpoint and such a user's keys (scenarios/identity.py),
so what it may read and change is what its policy allows, enforced here.

Run Commands it sends run confined (twin/ssm.py: off the stack's private ports, the state dir hidden), and
it sees only its own commands; CloudTrail shows it other principals' calls without their parameters.
"""

from __future__ import annotations

import io
import json
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from . import calls as dynamodb_calls
from . import protocol, sigv4
from .app import MAX_BODY, STATUS_TEXT, Answer, TwinApp
from .enforce.iam import PolicyError, PolicySet, Verdict, compile_policies, denial_message
from .protocol import PRINCIPAL, Call

logger = logging.getLogger(__name__)

PREFIXES = {"monitoring": "cloudwatch"}  # the IAM action prefix of a signing name, where they differ
AUTH_CODES = {"json": ("UnrecognizedClientException", "AccessDeniedException"),
              "query": ("InvalidClientTokenId", "AccessDenied"), "cbor": ("InvalidClientTokenId", "AccessDenied")}
EC2_AUTH_CODES = ("AuthFailure", "UnauthorizedOperation")


@dataclass(frozen=True)
class Principal:
    """An authenticated IAM user and its compiled policies."""

    name: str
    arn: str
    access_key: str
    policies: PolicySet


class Users:
    """The twin's IAM users (moto's IAM backend), looked up by access key, their policies compiled once."""

    def __init__(self, account: str, region: str) -> None:
        self.account, self.region = account, region
        self._compiled: dict[tuple[str, tuple[str, ...]], PolicySet] = {}

    def _backend(self) -> Any:
        from moto.iam.models import iam_backends

        return iam_backends[self.account]["global"]

    def secret_of(self, access_key: str) -> tuple[Any, str] | None:
        """Return (user, secret) of an active access key; None if no user has it."""
        for user in list(self._backend().users.values()):
            for key in list(user.access_keys):
                if key.access_key_id == access_key and key.status == "Active":
                    return user, key.secret_access_key
        return None

    def principal(self, user: Any, access_key: str) -> Principal:
        """Return the user as a principal, with its inline policies compiled (cached until they change)."""
        documents = tuple(str(d) for d in user.policies.values())
        cache_key = (user.name, documents)
        policies = self._compiled.get(cache_key)
        if policies is None:
            arn = f"arn:aws:iam::{self.account}:user/{user.name}"
            context = {"aws:PrincipalArn": arn, "aws:PrincipalAccount": self.account, "aws:PrincipalType": "User",
                       "aws:username": user.name, "aws:RequestedRegion": self.region, "aws:SecureTransport": "false",
                       "aws:ViaAWSService": "false"}
            try:
                policies = compile_policies(documents, context)
            except (PolicyError, ValueError) as exc:  # a document the evaluator cannot read allows nothing
                logger.warning("user %s: policy not understood (%s): denying everything", user.name, exc)
                policies = compile_policies([], context)
            self._compiled = {cache_key: policies}  # one user at a time is the usual case
        return Principal(user.name, f"arn:aws:iam::{self.account}:user/{user.name}", access_key, policies)


def authorizations(call: Call, region: str, account: str) -> list[tuple[str, str]]:
    """Return the (action, resource ARN) pairs a call needs allowed; "*" where the resource is not computed."""
    action = f"{PREFIXES.get(call.service, call.service)}:{call.operation}"
    params = call.params
    if call.service == "dynamodb":
        return dynamodb_calls.describe(call.operation, params, region, account).authorizations or [(action, "*")]
    if call.service == "iam" and params.get("RoleName"):
        return [(action, f"arn:aws:iam::{account}:role/{params['RoleName']}")]
    if call.service == "iam" and params.get("UserName"):
        return [(action, f"arn:aws:iam::{account}:user/{params['UserName']}")]
    if call.service == "ec2" and params.get("GroupId"):
        return [(action, f"arn:aws:ec2:{region}:{account}:security-group/{params['GroupId']}")]
    if call.service == "elasticloadbalancing" and params.get("TargetGroupArn"):  # its ARN is the resource
        return [(action, params["TargetGroupArn"])]
    if call.service == "logs" and params.get("logGroupName"):  # a log group's own actions name the group
        return [(action, f"arn:aws:logs:{region}:{account}:log-group:{params['logGroupName']}")]
    if call.service == "ssm" and call.operation == "SendCommand":
        instances = params.get("InstanceIds") or ["*"]
        document = f"arn:aws:ssm:{region}::document/{params.get('DocumentName', '')}"
        return [(action, f"arn:aws:ec2:{region}:{account}:instance/{i}") for i in instances] + [(action, document)]
    return [(action, "*")]


class ScopedApp:
    """The scoped endpoint's WSGI app: authenticate, authorize, then the twin's own dispatcher."""

    def __init__(self, app: TwinApp, account: str, region: str, clock: Callable[[], float] = time.time) -> None:
        self.app, self.account, self.region, self.clock = app, account, region, clock
        self.users = Users(account, region)

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        status, headers, body = self.answer(environ)
        start_response(f"{status} {STATUS_TEXT.get(status, 'Unknown')}",
                       [*headers, ("Content-Length", str(len(body)))])
        return [body]

    def answer(self, environ: dict) -> Answer:
        """Return the answer to one request: a refusal, or the twin's answer for the authorized caller."""
        length = int(environ.get("CONTENT_LENGTH") or 0)
        if length > MAX_BODY:
            return 413, [("Content-Type", "application/json")], b'{"message": "Request entity too large"}'
        body = environ["wsgi.input"].read(length) if length else b""
        call = protocol.parse(environ, body)
        refused = protocol.refuse(call)
        if refused:
            return refused
        principal = self.authenticate(call, environ, body)
        if not isinstance(principal, Principal):
            return principal
        try:
            pairs = authorizations(call, self.region, self.account)
        except dynamodb_calls.BadCall as exc:
            return protocol.error(call, exc.code, str(exc))
        verdict = principal.policies.authorize(pairs)
        if not verdict.allowed:
            return self.denied(call, principal, verdict)
        answer = self.app.answer({**environ, "wsgi.input": io.BytesIO(body), "CONTENT_LENGTH": str(len(body)),
                                  PRINCIPAL: principal.arn})
        if (call.service, call.operation) == ("cloudtrail", "LookupEvents") and answer[0] == 200:
            return _others_without_parameters(answer, principal.access_key)
        return answer

    def authenticate(self, call: Call, environ: dict, body: bytes) -> Principal | Answer:
        """Return the caller, or the refusal AWS gives a request it cannot authenticate."""
        unknown, _ = EC2_AUTH_CODES if call.service == "ec2" else AUTH_CODES.get(call.protocol, AUTH_CODES["json"])
        signed = sigv4.parse(environ)
        if signed is None:
            return protocol.error(call, "MissingAuthenticationToken" if call.protocol != "json" else
                                  "MissingAuthenticationTokenException", "Request is missing Authentication Token",
                                  403)
        found = self.users.secret_of(signed.access_key)
        if found is None:
            return protocol.error(call, unknown, "The security token included in the request is invalid.", 403)
        user, secret = found
        if not sigv4.verify(signed, environ, body, secret):
            return protocol.error(call, "SignatureDoesNotMatch", "The request signature we calculated does not "
                                  "match the signature you provided. Check your AWS Secret Access Key and signing "
                                  "method.", 403)
        if sigv4.skewed(environ, self.clock()):
            return protocol.error(call, "SignatureDoesNotMatch" if call.protocol == "json" else "RequestExpired",
                                  "Signature expired: the request's X-Amz-Date is more than 15 minutes away from "
                                  "the server's time.", 403)
        return self.users.principal(user, signed.access_key)

    def denied(self, call: Call, principal: Principal, verdict: Verdict) -> Answer:
        """Answer a call the caller's policies do not allow, as the service words it."""
        _, code = EC2_AUTH_CODES if call.service == "ec2" else AUTH_CODES.get(call.protocol, AUTH_CODES["json"])
        status = 400 if call.protocol == "json" or call.service == "ec2" else 403
        return protocol.error(call, code, denial_message(principal.arn, verdict), status)


def _others_without_parameters(answer: Answer, access_key: str) -> Answer:
    """Return LookupEvents' answer with the request parameters of other principals' events left out (the
    tool's own changes carry the commands and documents of a fault)."""
    status, headers, body = answer
    payload = json.loads(body)
    for event in payload.get("Events", []):
        record = json.loads(event.get("CloudTrailEvent") or "{}")
        if event.get("AccessKeyId") != access_key and record.get("requestParameters"):
            record["requestParameters"] = None
            event["CloudTrailEvent"] = json.dumps(record)
    return status, headers, json.dumps(payload).encode()
