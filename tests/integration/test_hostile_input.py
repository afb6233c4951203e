"""Hostile input through every entry point of a whole local stack (issue 21): the public ALB's :8000 (HAProxy,
nginx, the private ALB, sre-app) and :8080 (HAProxy, crm-app), and both apps straight at Gunicorn.

Property-based (Hypothesis) over header names and values, JSON shapes and number forms, body sizes and
framing (Content-Length, chunked, Expect: 100-continue), sent with a raw socket (tests/rawhttp.py), so no
client library tidies the input. The property everywhere: an answer always arrives, whole, and it is never a
5xx; the CRM's 4xx name the field. Examples are bounded for CI (about a minute on two cores with the stack);
bench/hostile_input.py runs the same properties with many more examples.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sre_workshop.settings import BASE_PORTS

from conftest import http, local_stack, port_offset
from rawhttp import Answer, exchange, request_head

OFFSET = port_offset(1100)
# Each entry point and a path of it that takes a POST body: the CRM's API, sre-app's / (405 to a POST).
ENTRIES = {
    "public :8000": (BASE_PORTS["public-alb"] + OFFSET, "/"),
    "public :8080": (BASE_PORTS["public-alb-crm"] + OFFSET, "/api/customers"),
    "sre-app": (BASE_PORTS["sre-app"] + OFFSET, "/"),
    "crm-app": (BASE_PORTS["crm-app"] + OFFSET, "/api/customers"),
}
CRM_ENTRIES = ("public :8080", "crm-app")
BODY_LIMITS = {"public :8000": 1024 * 1024, "public :8080": 64 * 1024, "crm-app": 64 * 1024}  # nginx, crm-app
FRESH_ID = re.compile("[0-9a-f]{32}")

# Examples per test are bounded for CI; bench/hostile_input.py multiplies them with SRE_WORKSHOP_HOSTILE_SCALE.
SCALE = int(os.environ.get("SRE_WORKSHOP_HOSTILE_SCALE", "1"))


def bounded(examples: int) -> settings:
    """Settings of a property: `examples` (times SCALE), no deadline (a 6 MB body takes a while on a busy
    host); the stack is module-scoped, so Hypothesis's function-scoped-fixture check does not apply."""
    return settings(max_examples=examples * SCALE, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Iterator[Path]:
    """A whole local stack for the module; every fault cleared (the leak is not what is tested here)."""
    with local_stack(tmp_path_factory, "hostile", OFFSET) as state:
        yield state


def assert_answered(answer: Answer, where: str) -> None:
    """An answer below 500; a CRM 4xx is JSON and, if a 422, names the field."""
    assert answer.status < 500, (where, answer.status, answer.body[:300])
    if where in CRM_ENTRIES and 400 <= answer.status < 500 and answer.headers.get("content-type") == "application/json":
        body = json.loads(answer.body)
        assert "error" in body or "detail" in body, body
        if answer.status == 422:
            assert body.get("field") or any(body.get("detail", {}).values()), body


# Header names: the ones the system reads, echoes, logs or forwards, any token, and bytes no token has.
# Framing headers are left to the body properties: a made-up Content-Length would make a server wait.
KNOWN_NAMES = [b"X-Request-ID", b"X-Forwarded-For", b"Host", b"Accept", b"Content-Type", b"Cookie", b"User-Agent",
               b"Idempotency-Key", b"Expect", b"Connection", b"Upgrade", b"X-Fault-Token", b"Range", b"Origin",
               b"Forwarded", b"X-Forwarded-Proto", b"X-Forwarded-Host", b"Accept-Encoding", b"If-None-Match",
               b"Authorization", b"Referer", b"X-Amzn-Trace-Id"]
TOKEN_CHARS = b"!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
header_names = st.one_of(
    st.sampled_from(KNOWN_NAMES),
    st.binary(min_size=1, max_size=40).map(lambda b: bytes(TOKEN_CHARS[x % len(TOKEN_CHARS)] for x in b)),
    st.binary(min_size=1, max_size=20).filter(lambda b: b"\r" not in b and b"\n" not in b and b":" not in b),
).filter(lambda name: name.lower() not in (b"content-length", b"transfer-encoding"))
header_values = st.one_of(
    st.binary(max_size=64),
    st.binary(min_size=100, max_size=9000),
    st.builds(lambda unit, count: unit * count, st.sampled_from([b"a", b"0", b"-", b" ", b"\xff", b"%", b","]),
              st.integers(0, 20000)),
).map(lambda value: value.replace(b"\r\n", b"\r"))


@bounded(30)
@given(headers=st.lists(st.tuples(header_names, header_values), max_size=4))
@pytest.mark.parametrize("where", ENTRIES)
def test_any_headers_get_a_whole_answer_below_500(stack, where, headers):
    port, path = ENTRIES[where]
    method = "GET"
    assert_answered(exchange(port, request_head(method, path, headers)), where)


request_ids = st.one_of(
    st.text(st.sampled_from("abcXYZ019._:+/=@-"), min_size=1, max_size=128),  # valid: echoed as sent
    st.text(st.sampled_from("abcXYZ019._:+/=@-"), min_size=129, max_size=12000),  # too long
    st.text(st.characters(codec="latin-1", exclude_characters="\r\n"), min_size=1, max_size=200),  # odd ones
)


@bounded(25)
@given(sent=request_ids)
@pytest.mark.parametrize("where", ENTRIES)
def test_a_request_id_is_echoed_if_valid_and_replaced_otherwise(stack, where, sent):
    port, _ = ENTRIES[where]
    path = "/api/customers?limit=1" if where in CRM_ENTRIES else "/"
    answer = exchange(port, request_head("GET", path, [(b"X-Request-ID", sent.encode("latin-1"))]))
    if answer.status == 400:  # a server refused the header line itself (a NUL, or longer than it reads)
        return
    assert answer.status == 200, (answer.status, answer.body[:300])
    echoed = answer.headers["x-request-id"]
    if re.fullmatch(r"[A-Za-z0-9._:+/=@-]{1,128}", sent):
        assert echoed == sent
    else:
        assert FRESH_ID.fullmatch(echoed), echoed


def test_a_replaced_request_id_is_logged_as_replaced(stack):
    long_id = "r" * 5000
    through_nginx = http("GET", f"http://127.0.0.1:{ENTRIES['public :8000'][0]}/", headers={"X-Request-ID": long_id})
    straight = http("GET", f"http://127.0.0.1:{ENTRIES['public :8080'][0]}/health", headers={"X-Request-ID": long_id})
    assert through_nginx.status == straight.status == 200
    # Every line of nginx's access log is UTF-8 JSON, after all the hostile headers of the tests before.
    access_log = (stack / "logs" / "nginx-access.log").read_bytes().decode()
    nginx_lines = [json.loads(line) for line in access_log.splitlines()]
    assert any(e["request_id"] == through_nginx.headers["x-request-id"] and e["request_id_sent"] == "replaced"
               for e in nginx_lines)
    crm_lines = [json.loads(line) for line in (stack / "logs" / "crm-app.json.log").read_text().splitlines()]
    assert any(e.get("request_id") == straight.headers["x-request-id"] and "X-Request-ID replaced" in e["message"]
               for e in crm_lines)
