"""The CRM behind the public ALB (real HAProxy from infra/haproxy/public-alb.cfg, real Gunicorn, moto's server):
it stays in service under more clients than it can serve, behind slow clients, and while DynamoDB is away."""

from __future__ import annotations

import csv
import io
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from sre_workshop.local.lbstats import command

from conftest import http, slow_senders, wrk_statuses


def taken_out(alb) -> int:
    """How many times the ALB has taken the CRM target out of service (HAProxy's chkdown)."""
    stats = command(alb.log.parent / "public-alb.sock", "show stat").lstrip("# ")
    return next(int(row["chkdown"] or 0) for row in csv.DictReader(io.StringIO(stats))
                if row["svname"] == "CRMAppInstance")


@pytest.fixture
def crm_behind_alb(moto, start_app, start_public_alb):
    crm = start_app("crm_app", moto.url)
    return crm, start_public_alb(crm)


def test_fifty_clients_get_answers_from_the_app_and_the_target_stays_in_service(crm_behind_alb, tmp_path):
    crm, alb = crm_behind_alb
    for n in range(30):
        http("POST", crm.url + "/api/customers", {"name": f"Load {n}", "email": f"l{n}@example.com"})
    result = wrk_statuses(alb.url + "/api/customers", connections=50, seconds=5, tmp=tmp_path)
    assert taken_out(alb) == 0, (result, [line for line in alb.log.read_text().splitlines() if "DOWN" in line])
    # Every answer is the app's: 200, or its own 503 with Retry-After when its queue is full; none is
    # the load balancer's 503 of a target taken out of service.
    assert set(result["statuses"]) <= {"200", "503"} and result["statuses"].get("200", 0) > 0, result
    assert http("GET", alb.url + "/health").status == 200


def test_slow_request_bodies_wait_in_the_alb_not_in_the_app(crm_behind_alb):
    crm, alb = crm_behind_alb
    with slow_senders(alb.port, 2, b"X-Request-ID: slow-sender\r\n"):
        time.sleep(1.5)
        answers = [http("GET", alb.url + "/api/customers", timeout=5).status for _ in range(10)]
    assert answers == [200] * 10
    # The ALB never passed the unfinished requests on.
    assert "slow-sender" not in Path(crm.spec.env["LOG_FILE"]).read_text()


@pytest.fixture
def unresponsive_endpoint():
    """A DynamoDB endpoint that accepts connections and never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(256)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


def test_while_dynamodb_hangs_clients_get_the_apps_json_503_not_the_load_balancers(
        unresponsive_endpoint, start_app, start_public_alb):
    crm = start_app("crm_app", unresponsive_endpoint)
    alb = start_public_alb(crm)
    with ThreadPoolExecutor(12) as pool:  # about four seconds of steady traffic to a hung database
        replies = list(pool.map(lambda _: http("GET", alb.url + "/api/customers", timeout=10), range(48)))
    assert taken_out(alb) == 0
    assert {reply.status for reply in replies} == {503}
    assert {reply.headers.get("content-type") for reply in replies} == {"application/json"}
    assert {reply.json()["error"] for reply in replies} <= {"database_error", "overloaded"}
    assert {reply.headers["retry-after"] for reply in replies} == {"1"}
