"""crm-app's JSON API under real Gunicorn against moto's server over HTTP."""

from __future__ import annotations

import pytest

from sre_workshop.settings import TABLE_NAMES

from conftest import create_tables, dynamodb, eventually, http, moto_spec, scan_all, seed, start_server

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
    updated = http("PUT", f"{crm.url}/api/customers/{cid}", {**CUSTOMER, "name": "Ada King", "phone": ""})
    assert updated.status == 200
    assert updated.json()["name"] == "Ada King" and updated.json().get("phone") is None
    assert http("DELETE", f"{crm.url}/api/customers/{cid}").status == 204
    assert http("GET", f"{crm.url}/api/customers/{cid}").status == 404


def test_create_answers_201_with_location(crm):
    reply = http("POST", crm.url + "/api/customers", CUSTOMER)
    assert reply.status == 201
    assert reply.headers["location"].endswith(f"/api/customers/{reply.json()['customer_id']}")


@pytest.mark.parametrize(("changes", "field"), [
    ({"email": "not-an-email"}, "email"), ({"name": ""}, "name"), ({"status": "vip"}, "status"),
    ({"phone": "call me"}, "phone"), ({"name": "x" * 101}, "name"),
])
def test_invalid_customer_is_422_naming_the_field(crm, changes, field):
    before = len(scan_all(dynamodb(crm.spec.env["AWS_ENDPOINT_URL"]), TABLE_NAMES["CUSTOMERS_TABLE"]))
    reply = http("POST", crm.url + "/api/customers", {**CUSTOMER, **changes})
    assert reply.status == 422
    assert field in reply.json()["detail"]["json"]
    assert len(scan_all(dynamodb(crm.spec.env["AWS_ENDPOINT_URL"]), TABLE_NAMES["CUSTOMERS_TABLE"])) == before


def test_malformed_json_is_a_4xx_json_error(crm):
    reply = http("POST", crm.url + "/api/customers", b"{not json", headers={"Content-Type": "application/json"})
    assert 400 <= reply.status < 500
    assert reply.json()


def test_unknown_ids_are_404(crm):
    for method, path in [("GET", "/api/customers/cust-0000ffff"), ("DELETE", "/api/customers/cust-0000ffff"),
                         ("GET", "/api/customers/cust-0000ffff/deals")]:
        assert http(method, crm.url + path).status == 404, path
    assert http("PUT", crm.url + "/api/customers/cust-0000ffff", CUSTOMER).status == 404


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


def test_deal_for_a_missing_customer_is_rejected_and_nothing_written(crm):
    client = dynamodb(crm.spec.env["AWS_ENDPOINT_URL"])
    before = len(scan_all(client, TABLE_NAMES["DEALS_TABLE"]))
    reply = http("POST", crm.url + "/api/deals", {"customer_id": "cust-00000000dead", "title": "Ghost", "amount": 1})
    assert reply.status == 422
    assert reply.json()["field"] == "customer_id"
    reply = http("POST", crm.url + "/api/activities", {"customer_id": "cust-00000000dead", "type": "call",
                                                       "subject": "Ghost"})
    assert reply.status == 422
    assert len(scan_all(client, TABLE_NAMES["DEALS_TABLE"])) == before


def test_idempotency_key_makes_a_repeated_create_return_the_first(crm):
    headers = {"Idempotency-Key": "form-abc-123"}
    first = http("POST", crm.url + "/api/customers", CUSTOMER, headers=headers)
    second = http("POST", crm.url + "/api/customers", {**CUSTOMER, "name": "Other"}, headers=headers)
    assert (first.status, second.status) == (201, 200)
    assert second.json() == first.json()


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


@pytest.mark.parametrize("query", ["limit=0", "limit=1000", "cursor=%%%", "cursor=eyJ4IjoxfQ"])
def test_bad_paging_parameters_are_4xx(crm, query):
    reply = http("GET", crm.url + "/api/customers?" + query)
    assert reply.status in (400, 422), reply.text
    assert reply.json()


def test_openapi_document_lists_the_api(crm):
    spec = http("GET", crm.url + "/openapi.json").json()
    for path in ("/api/customers", "/api/customers/{customer_id}", "/api/customers/{customer_id}/deals",
                 "/api/customers/{customer_id}/activities", "/api/deals", "/api/activities"):
        assert path in spec["paths"], path
    ref = spec["paths"]["/api/customers"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    assert ref.split("/")[-1] in spec["components"]["schemas"]


def test_dynamodb_down_gives_503_then_recovers(tmp_path, start_app):
    spec = moto_spec(tmp_path)
    moto = start_server(spec)
    create_tables(dynamodb(moto.url))
    crm = start_app("crm_app", moto.url)
    assert http("GET", crm.url + "/api/customers").status == 200
    moto.stop()
    api = http("GET", crm.url + "/api/customers")
    assert api.status == 503
    assert api.json()["error"] == "database_error" and api.json()["code"]
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


def test_missing_table_gives_503_with_the_aws_code(moto, start_app):
    crm = start_app("crm_app", moto.url, CUSTOMERS_TABLE="NoSuchTable")
    reply = http("GET", crm.url + "/api/customers")
    assert reply.status == 503 and reply.json()["code"] == "ResourceNotFoundException"
    page = http("GET", crm.url + "/customers")
    assert "database error" in page.text and "ResourceNotFoundException" in page.text


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
