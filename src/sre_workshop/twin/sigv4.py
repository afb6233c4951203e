"""Check a request's AWS Signature Version 4, as AWS does before anything else: which access key signed it,
and whether the signature is that key's secret over this very request.

    signed = parse(environ)                 # None: not a SigV4 request (no or a malformed Authorization)
    verify(signed, environ, body, secret)   # True if the signature matches
    skewed(signed, now)                     # True if X-Amz-Date is more than 15 minutes off

The canonical request is botocore's own (the signer the aws CLI and boto3 use), over exactly the headers the
client listed in SignedHeaders. No HTTP here: a WSGI environ and the body in, a verdict out.
"""

from __future__ import annotations

import hmac
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from hashlib import sha256

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest, HTTPHeaders
from botocore.credentials import Credentials

AUTHORIZATION = re.compile(r"^AWS4-HMAC-SHA256\s+Credential=([^/,\s]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request,\s*"
                           r"SignedHeaders=([a-z0-9;-]+),\s*Signature=([0-9a-f]{64})$")
MAX_SKEW_S = 15 * 60  # AWS refuses a request signed more than 15 minutes away from its clock


@dataclass(frozen=True)
class Signed:
    """What the Authorization header says: who signed, for which scope, over which headers."""

    access_key: str
    date: str
    region: str
    service: str
    headers: tuple[str, ...]
    signature: str


def parse(environ: dict) -> Signed | None:
    """Return the request's SigV4 Authorization, or None if it has none (or a malformed one)."""
    match = AUTHORIZATION.match(environ.get("HTTP_AUTHORIZATION", "").strip())
    if match is None:
        return None
    key, date, region, service, headers, signature = match.groups()
    return Signed(key, date, region, service, tuple(headers.split(";")), signature)


def header(environ: dict, name: str) -> str | None:
    """Return one request header from a WSGI environ (Content-Type and -Length have no HTTP_ prefix)."""
    key = name.upper().replace("-", "_")
    if key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
        return environ.get(key) or None
    return environ.get(f"HTTP_{key}")


def amz_date(environ: dict) -> str | None:
    """Return the request's signing time (X-Amz-Date, as botocore sends it)."""
    return header(environ, "X-Amz-Date")


def skewed(environ: dict, now: float) -> bool:
    """True if the request's X-Amz-Date is missing, malformed or more than MAX_SKEW_S away from `now`."""
    stamp = amz_date(environ)
    try:
        when = datetime.strptime(stamp or "", "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except ValueError:
        return True
    return abs(when.timestamp() - now) > MAX_SKEW_S


def verify(signed: Signed, environ: dict, body: bytes, secret: str) -> bool:
    """True if `signed.signature` is `secret`'s signature over this request."""
    stamp = amz_date(environ)
    if stamp is None or not stamp.startswith(signed.date) or "host" not in signed.headers:
        return False
    values = {name: header(environ, name) for name in signed.headers}
    if any(value is None for value in values.values()):
        return False
    path = environ.get("RAW_URI") or environ.get("REQUEST_URI") or environ.get("PATH_INFO") or "/"
    query = environ.get("QUERY_STRING", "")
    url = f"http://{values['host']}{path.split('?', 1)[0]}" + (f"?{query}" if query else "")
    request = AWSRequest(method=environ.get("REQUEST_METHOD", "GET"), url=url, headers=values, data=body)
    request.context["timestamp"] = stamp
    signer = _Verifier(Credentials(signed.access_key, secret), signed.service, signed.region, signed.headers)
    expected = signer.signature(signer.string_to_sign(request, signer.canonical_request(request)), request)
    return hmac.compare_digest(expected, signed.signature)


class _Verifier(SigV4Auth):
    """botocore's SigV4 signer over exactly the headers the client signed."""

    def __init__(self, credentials: Credentials, service: str, region: str, headers: tuple[str, ...]) -> None:
        super().__init__(credentials, service, region)
        self._signed = headers

    def headers_to_sign(self, request):
        chosen = HTTPHeaders()
        for name in self._signed:
            chosen[name] = request.headers[name]
        return chosen

    def payload(self, request):
        return sha256(request.body or b"").hexdigest()
