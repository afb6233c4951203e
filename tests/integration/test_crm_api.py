"""crm-app's JSON API under real Gunicorn against moto's server over HTTP."""

from __future__ import annotations

import contextlib
import re
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from sre_workshop.settings import TABLE_NAMES

from conftest import (
    children_of,
    create_tables,
    dynamodb,
    eventually,
    http,
    moto_spec,
    scan_all,
    seed,
    slow_senders,
    start_server,
)

CUSTOMER = {"name": "Ada Lovelace", "company": "Analytical Engines", "email": "ada@example.com",
            "phone": "+44 20 7946 0018", "status": "active"}


@pytest.fixture
def crm(moto, start_app):
    return start_app("crm_app", moto.url)


def new_customer(crm, **changes) -> dict:
    reply = http("POST", crm.url + "/api/customers", {**CUSTOMER, **changes})
    assert reply.status == 201, reply.text
    return reply.json()


def test_health(crm):
    assert http("GET", crm.url + "/health").json() == {"status": "healthy"}
    deep = http("GET", crm.url + "/health?deep=1")
    assert deep.status == 200 and set(deep.json()["checks"]["dynamodb"].values()) == {"ok"}


def test_customer_crud(crm):
    created = new_customer(crm)
    cid = created["customer_id"]
    assert cid.startswith("cust-") and created["created_at"]
    assert http("GET", f"{crm.url}/api/customers/{cid}").json()["email"] == "ada@example.com"
    updated = http("PUT", f"{crm.url}/api/customers/{cid}", {**CUSTOMER, "name": "Ada King", "phone": None})
    assert updated.status == 200
    assert updated.json()["name"] == "Ada King" and updated.json().get("phone") is None
    assert http("DELETE", f"{crm.url}/api/customers/{cid}").status == 204
    assert http("GET", f"{crm.url}/api/customers/{cid}").status == 404



def test_deals_and_activities_through_customer_index(crm):
    cid = new_customer(crm)["customer_id"]
    deal = http("POST", crm.url + "/api/deals", {"customer_id": cid, "title": "Engine", "amount": 1234.5,
                                                 "stage": "proposal", "close_date": "2026-12-31"})
    assert deal.status == 201, deal.text
    assert deal.json()["amount"] == 1234.5
    act = http("POST", crm.url + "/api/activities", {"customer_id": cid, "type": "call", "subject": "Intro",
                                                     "note": "Went well"})
    assert act.status == 201, act.text
    deals = http("GET", f"{crm.url}/api/customers/{cid}/deals").json()["items"]
    assert [d["deal_id"] for d in deals] == [deal.json()["deal_id"]]
    acts = http("GET", f"{crm.url}/api/customers/{cid}/activities").json()["items"]
    assert [a["subject"] for a in acts] == ["Intro"]
    assert any(d["deal_id"] == deal.json()["deal_id"] for d in _all(crm, "/api/deals"))


def _all(crm, path: str) -> list[dict]:
    items, cursor = [], None
    while True:
        page = http("GET", crm.url + path + "?limit=100" + (f"&cursor={cursor}" if cursor else "")).json()
        items.extend(page["items"])
        cursor = page["next_cursor"]
        if not cursor:
            return items




def test_customers_are_paginated_by_cursor(crm):
    ids = {new_customer(crm, name=f"Pager {n}")["customer_id"] for n in range(7)}
    seen, cursor, pages = [], None, 0
    while True:
        page = http("GET", crm.url + "/api/customers?limit=3" + (f"&cursor={cursor}" if cursor else "")).json()
        assert len(page["items"]) <= 3
        seen.extend(c["customer_id"] for c in page["items"])
        pages += 1
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert ids <= set(seen) and len(seen) == len(set(seen)) and pages >= 3


def test_search_by_name_prefix(crm):
    new_customer(crm, name="Zebediah Quill")
    found = http("GET", crm.url + "/api/customers?q=zebed&limit=100").json()
    names = [c["name"] for c in found["items"]]
    while found["next_cursor"]:
        found = http("GET", crm.url + f"/api/customers?q=zebed&limit=100&cursor={found['next_cursor']}").json()
        names += [c["name"] for c in found["items"]]
    assert "Zebediah Quill" in names and all(n.lower().startswith("zebed") for n in names)




def test_dynamodb_down_gives_a_fast_503_then_recovers(tmp_path, start_app):
    spec = moto_spec(tmp_path)
    moto = start_server(spec)
    create_tables(dynamodb(moto.url))
    crm = start_app("crm_app", moto.url)
    assert http("GET", crm.url + "/api/customers").status == 200
    moto.stop()
    api, seconds = timed(lambda: http("GET", crm.url + "/api/customers"))
    assert api.status == 503 and seconds < 2.5
    assert api.json()["error"] == "database_error" and api.json()["code"] and api.headers["retry-after"] == "1"
    page = http("GET", crm.url + "/customers")
    assert page.status == 503 and "database error" in page.text
    assert http("GET", crm.url + "/health").status == 200  # the app itself stays up
    moto = start_server(spec)
    try:
        create_tables(dynamodb(moto.url))
        eventually(lambda: http("GET", crm.url + "/api/customers").status == 200, timeout=15)
        assert "database error" not in http("GET", crm.url + "/customers").text
    finally:
        moto.stop()


def timed(action):
    started = time.monotonic()
    result = action()
    return result, time.monotonic() - started


@pytest.fixture
def unresponsive_endpoint():
    """A DynamoDB endpoint that accepts connections and never answers (a dropped network, a hung engine)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(256)  # connections complete in the kernel's backlog; nobody reads them
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


def test_an_unresponsive_dynamodb_fails_in_about_two_seconds_and_health_stays_up(unresponsive_endpoint, start_app):
    crm = start_app("crm_app", unresponsive_endpoint)
    with ThreadPoolExecutor(8) as pool:  # both workers have booted
        list(pool.map(lambda _: http("GET", crm.url + "/api/customers"), range(8)))
    with ThreadPoolExecutor(4) as pool:  # no more than a worker runs at once (CRM_MAX_ACTIVE): none waits
        failing = [pool.submit(timed, lambda: http("GET", crm.url + "/api/customers")) for _ in range(4)]
        checks = []
        while not all(future.done() for future in failing):  # the load balancer's checks meanwhile
            checks.append(timed(lambda: http("GET", crm.url + "/health")))
            time.sleep(0.1)
        answers = [future.result() for future in failing]
    assert {reply.status for reply, _ in checks} == {200}
    assert max(seconds for _, seconds in checks) < 1.0, checks  # the local check's timeout
    assert {reply.status for reply, _ in answers} == {503}
    assert max(seconds for _, seconds in answers) < 2.5, answers
    assert {reply.json()["error"] for reply, _ in answers} == {"database_error"}


def raw_request(port: int, head: bytes, body: bytes = b"", timeout: float = 10) -> bytes:
    """Send a request's head and part of a body over a socket; return the first bytes of the answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(head)
        with contextlib.suppress(OSError):  # the server may close before taking all of it
            sock.sendall(body)
        return sock.recv(4096)


def worker_rss_mb(crm) -> float:
    return sum(int(re.search(r"VmRSS:\s+(\d+)", Path(f"/proc/{pid}/status").read_text()).group(1))
               for pid in children_of(crm.record.pid)) / 1024


def test_a_huge_body_is_413_before_it_is_read(crm):
    with ThreadPoolExecutor(4) as pool:  # both workers have loaded the app and made their client
        list(pool.map(lambda _: http("GET", crm.url + "/api/customers"), range(8)))
    before = worker_rss_mb(crm)
    head = (b"POST /api/customers HTTP/1.1\r\nHost: crm\r\nContent-Type: application/json\r\n"
            b"Content-Length: 209715200\r\n\r\n")
    answer, seconds = timed(lambda: raw_request(crm.port, head, b'{"name": "' + b"x" * 4_000_000))
    assert answer.startswith(b"HTTP/1.1 413") and seconds < 5, answer[:200]
    assert worker_rss_mb(crm) - before < 20
    assert http("GET", crm.url + "/health").status == 200


def test_slow_clients_take_nothing_away(crm):
    """Clients that send their bodies at a byte a second hold a thread each, never the CRM."""
    with slow_senders(crm.port, 4):
        time.sleep(0.5)
        answers = [timed(lambda: http("GET", crm.url + "/api/customers", timeout=5)) for _ in range(10)]
    assert [reply.status for reply, _ in answers] == [200] * 10
    assert max(seconds for _, seconds in answers) < 2


def test_seeding_is_idempotent(own_moto):
    client = dynamodb(own_moto.url)
    first = seed(own_moto.url)
    assert first.returncode == 0, first.stderr
    snapshot = {t: sorted(map(str, scan_all(client, TABLE_NAMES[t])))
                for t in ("CUSTOMERS_TABLE", "DEALS_TABLE", "ACTIVITIES_TABLE")}
    assert len(snapshot["CUSTOMERS_TABLE"]) == 50
    assert snapshot["DEALS_TABLE"] and snapshot["ACTIVITIES_TABLE"]
    second = seed(own_moto.url)
    assert second.returncode == 0 and "customer: 0" in second.stdout
    assert {t: sorted(map(str, scan_all(client, TABLE_NAMES[t]))) for t in snapshot} == snapshot


def test_seeding_count_and_bad_arguments(own_moto):
    assert seed(own_moto.url, "--count", "120").returncode == 0
    assert len(scan_all(dynamodb(own_moto.url), TABLE_NAMES["CUSTOMERS_TABLE"])) == 120
    bad = seed(own_moto.url, "--count", "0")
    assert bad.returncode == 2 and "Traceback" not in bad.stderr


def test_seeding_without_dynamodb_is_one_line(tmp_path):
    result = seed("http://127.0.0.1:9")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr and "database error" in result.stderr


def test_customer_page_costs_three_dynamodb_calls(crm):
    import json

    cid = new_customer(crm)["customer_id"]
    http("POST", crm.url + "/api/deals", {"customer_id": cid, "title": "T", "amount": 5})
    http("GET", f"{crm.url}/customers/{cid}", headers={"X-Request-ID": "page-cost"})

    def entry():
        with open(crm.spec.env["LOG_FILE"]) as f:
            return next((e for e in map(json.loads, f) if e.get("request_id") == "page-cost"), None)

    logged = eventually(entry, timeout=5)
    assert logged["dynamodb_calls"] == 3  # GetItem + Query deals + Query activities
    assert logged["dynamodb_scanned"] == 1  # the one deal; GetItem reads no ScannedCount
