"""Tell which AWS service and operation an HTTP request calls, and answer errors in that protocol's shape.

botocore speaks four wire protocols to the services the twin answers:
    json               X-Amz-Target: Prefix.Operation, a JSON body (logs, ssm, cloudtrail, dynamodb)
    query / ec2        Action=Operation in a form body or the query string, XML answers (iam, elbv2, ec2, cfn)
    smithy-rpc-v2-cbor POST /service/NAME/operation/Operation with a CBOR body (cloudwatch, in new botocores)
The service itself is the signing name in the SigV4 credential scope of the Authorization header.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field
from urllib.parse import parse_qs
from xml.sax.saxutils import escape

PRINCIPAL = "sre_workshop.principal"  # environ key: the ARN of a caller the scoped endpoint authenticated
CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/\d{8}/([^/]+)/([^/]+)/aws4_request")
CBOR_PATH = re.compile(r"^/service/[^/]+/operation/([A-Za-z]+)$")
# XML namespaces of the query-protocol services whose errors the twin writes itself.
NAMESPACES = {
    "elasticloadbalancing": "http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/",
    "iam": "https://iam.amazonaws.com/doc/2010-05-08/",
    "cloudformation": "http://cloudformation.amazonaws.com/doc/2010-05-15/",
    "ec2": "http://ec2.amazonaws.com/doc/2016-11-15/",
    "monitoring": "http://monitoring.amazonaws.com/doc/2010-08-01/",
    "sts": "https://sts.amazonaws.com/doc/2011-06-15/",
}


@dataclass
class Call:
    """One API call as the twin sees it."""

    service: str  # the signing name: logs, monitoring, elasticloadbalancing, iam, ec2, dynamodb ...
    operation: str  # "" when the request names none
    protocol: str  # json | query | cbor | other
    access_key: str
    region: str
    body: bytes
    params: dict = field(default_factory=dict)  # JSON body, or the query/form parameters (first values)

    @property
    def read_only(self) -> bool:
        """True for calls that only read (what CloudTrail marks readOnly)."""
        return self.operation.startswith(("Describe", "List", "Get", "Lookup", "Filter", "Search", "Test",
                                          "StartQuery", "StopQuery", "Simulate", "Batch Get"))


def parse(environ: dict, body: bytes) -> Call:
    """Return the call an HTTP request makes (never raises: what cannot be read stays empty)."""
    match = CREDENTIAL.search(environ.get("HTTP_AUTHORIZATION", ""))
    access_key, region, service = match.groups() if match else ("", "", "")
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    if target:
        return Call(service, target.rsplit(".", 1)[-1], "json", access_key, region, body, _json(body))
    cbor = CBOR_PATH.match(environ.get("PATH_INFO", ""))
    if cbor:
        return Call(service, cbor.group(1), "cbor", access_key, region, body)
    params = {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
    if "x-www-form-urlencoded" in environ.get("CONTENT_TYPE", ""):
        params.update({k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()})
    if "Action" in params:
        return Call(service, params["Action"], "query", access_key, region, body, params)
    return Call(service, "", "other", access_key, region, body)


def _json(body: bytes) -> dict:
    try:
        value = json.loads(body or b"{}")
    except (ValueError, UnicodeDecodeError):
        return {}
    return value if isinstance(value, dict) else {}


def request_id() -> str:
    """Return a fresh request id, as AWS puts in every answer."""
    return str(uuid.uuid4())


def json_answer(payload: dict, status: int = 200) -> tuple[int, list[tuple[str, str]], bytes]:
    """Return a JSON-protocol answer."""
    headers = [("Content-Type", "application/x-amz-json-1.1"), ("x-amzn-RequestId", request_id())]
    return status, headers, json.dumps(payload, default=str).encode()


def error(call: Call, code: str, message: str, status: int = 400) -> tuple[int, list[tuple[str, str]], bytes]:
    """Return an AWS error answer in the call's protocol."""
    if call.protocol == "json" or (call.protocol == "other" and call.service not in NAMESPACES):
        return json_answer({"__type": code, "message": message}, status)
    if call.protocol == "cbor":  # the twin answers no CloudWatch call itself; only a failure lands here
        return status, [("x-amzn-query-error", f"{code};{'Sender' if status < 500 else 'Receiver'}")], b""
    kind = "Sender" if status < 500 else "Receiver"
    xml = (f'<ErrorResponse xmlns="{NAMESPACES.get(call.service, "")}"><Error><Type>{kind}</Type>'
           f"<Code>{escape(code)}</Code><Message>{escape(message)}</Message></Error>"
           f"<RequestId>{request_id()}</RequestId></ErrorResponse>")
    return status, [("Content-Type", "text/xml")], xml.encode()


def refuse(call: Call) -> tuple[int, list[tuple[str, str]], bytes] | None:
    """Answer a request that names no service or no operation as AWS does; None for a well-formed call."""
    if not call.service:
        return json_answer({"__type": "MissingAuthenticationTokenException", "message": "Missing Authentication "
                            "Token"}, 403)
    if call.protocol == "other":
        if call.service in NAMESPACES:
            return error(call, "MissingAction", "Missing Action")
        return error(call, "UnknownOperationException", "")
    return None


def unknown_operation(call: Call) -> tuple[int, list[tuple[str, str]], bytes]:
    """Answer an operation the twin does not know as AWS answers one the service lacks."""
    if call.protocol == "json":
        return error(call, "UnknownOperationException", "")
    name = call.operation or "(none)"
    return error(call, "InvalidAction", f"The action {name} is not valid for this web service.")
