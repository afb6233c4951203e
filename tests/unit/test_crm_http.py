"""crm-app's HTTP behaviour in process: validation, limits, cursors, idempotency, the OpenAPI document,
error shapes and security headers. Bad input is a 4xx naming the problem, never a 5xx, and writes nothing."""

from __future__ import annotations

import base64
import io
import json

import boto3
import pytest

from crm_app.app import create_app
from crm_app.config import Settings
from crm_app.guards import MAX_BODY_BYTES, MAX_JSON_DEPTH, json_depth
from sre_workshop.settings import TABLE_NAMES

CUSTOMER = {"name": "Ada Lovelace", "company": "Analytical Engines", "email": "ada@example.com",
            "phone": "+44 20 7946 0018", "status": "active"}


def customers_in_table() -> int:
    return boto3.client("dynamodb", region_name="us-east-1").scan(
        TableName=TABLE_NAMES["CUSTOMERS_TABLE"], Select="COUNT")["Count"]


def new_customer(client, **changes) -> dict:
    reply = client.post("/api/customers", json={**CUSTOMER, **changes})
    assert reply.status_code == 201, reply.text
    return reply.json


def cursor_of(key: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(key).encode()).decode()


@pytest.mark.parametrize(("changes", "field"), [
    ({"email": "not-an-email"}, "email"), ({"name": ""}, "name"), ({"status": "vip"}, "status"),
    ({"phone": "call me"}, "phone"), ({"name": "x" * 101}, "name"),
    ({"name": "   "}, "name"),  # blank after trimming
    ({"name": "a\ud800"}, "name"),  # a lone surrogate: the emulator could not even store it
    ({"name": "bell\x07"}, "name"), ({"company": "nul\x00"}, "company"), ({"name": "esc\x1b[31m"}, "name"),
    ({"name": "two\nlines"}, "name"), ({"phone": ""}, "phone"),  # blank means absent only in an HTML form
])
def test_invalid_customer_is_422_naming_the_field_and_writes_nothing(crm_client, changes, field):
    reply = crm_client.post("/api/customers", json={**CUSTOMER, **changes})
    assert reply.status_code == 422, reply.text
    assert field in reply.json["detail"]["json"]
    assert customers_in_table() == 0


@pytest.mark.parametrize(("path", "body", "field"), [
    ("/api/deals", {"title": "\ud83d", "amount": 1}, "title"),
    ("/api/deals", {"title": "   ", "amount": 1}, "title"),
    ("/api/activities", {"type": "call", "subject": "\x1b"}, "subject"),
    ("/api/activities", {"type": "call", "subject": "S", "note": "\ud800"}, "note"),
])
def test_invalid_deal_or_activity_text_is_422(crm_client, path, body, field):
    cid = new_customer(crm_client)["customer_id"]
    reply = crm_client.post(path, json={"customer_id": cid, **body})
    assert reply.status_code == 422 and field in reply.json["detail"]["json"], reply.text


def test_a_note_may_hold_line_breaks_and_tabs(crm_client):
    cid = new_customer(crm_client)["customer_id"]
    reply = crm_client.post("/api/activities", json={"customer_id": cid, "type": "note", "subject": "S",
                                                     "note": "line one\n\tline two\r\n"})
    assert reply.status_code == 201 and reply.json["note"] == "line one\n\tline two"


def test_text_is_trimmed_before_it_is_stored(crm_client):
    assert new_customer(crm_client, name="  Ada  ", company=" Engines ")["name"] == "Ada"


def test_malformed_json_is_a_4xx_json_error(crm_client):
    reply = crm_client.post("/api/customers", data=b"{not json", content_type="application/json")
    assert 400 <= reply.status_code < 500 and reply.json


@pytest.mark.parametrize("path", ["/api/customers", "/api/deals", "/api/activities"])
def test_deeply_nested_json_is_400_naming_the_limit(crm_client, path):
    body = '{"name": ' + "[" * 1000 + "]" * 1000 + "}"
    reply = crm_client.post(path, data=body, content_type="application/json")
    assert reply.status_code == 400, reply.text
    assert "nested deeper than" in reply.json["message"]


def test_nesting_within_the_limit_is_ordinary_validation(crm_client):
    inner = MAX_JSON_DEPTH - 1  # the object around it is one level
    body = '{"name": ' + "[" * inner + "]" * inner + ', "email": "a@example.com"}'
    reply = crm_client.post("/api/customers", data=body, content_type="application/json")
    assert reply.status_code == 422 and "name" in reply.json["detail"]["json"]


@pytest.mark.parametrize(("text", "depth"), [(b"1", 0), (b"[]", 1), (b'{"a": [{"b": "[[[["}]}', 3),
                                              (b'["\\"[[[", [[]]]', 3), (b"[" * 50, MAX_JSON_DEPTH + 1)])
def test_json_depth_ignores_brackets_in_strings(text, depth):
    assert json_depth(text) == depth


def test_a_body_over_the_limit_is_413_before_it_is_read(crm_client):
    class Unreadable:
        def read(self, *args):
            raise AssertionError("the body was read")

    reply = crm_client.post("/api/customers", content_type="application/json", environ_overrides={
        "wsgi.input": Unreadable(), "CONTENT_LENGTH": str(200 * 1024 * 1024)})
    assert reply.status_code == 413 and reply.json["error"] == "request_entity_too_large"
    assert customers_in_table() == 0


def test_a_chunked_body_over_the_limit_is_413(crm_client):
    body = json.dumps({**CUSTOMER, "company": "x" * MAX_BODY_BYTES}).encode()
    reply = crm_client.post("/api/customers", input_stream=io.BytesIO(body), content_type="application/json",
                            headers={"Transfer-Encoding": "chunked"},  # as Gunicorn passes it: no length
                            environ_overrides={"wsgi.input_terminated": True, "CONTENT_LENGTH": ""})
    assert reply.status_code == 413
    small = json.dumps(CUSTOMER).encode()
    reply = crm_client.post("/api/customers", input_stream=io.BytesIO(small), content_type="application/json",
                            headers={"Transfer-Encoding": "chunked"},
                            environ_overrides={"wsgi.input_terminated": True, "CONTENT_LENGTH": ""})
    assert reply.status_code == 201


@pytest.mark.parametrize("key", [
    {"deal_id": {"S": "deal-0000aaaa"}},  # a table key without the index key
    {"deal_id": {"S": "deal-0000aaaa"}, "customer_id": {"S": "cust-0000bbbb"}},  # another customer's
    {"deal_id": {"S": ""}, "customer_id": {"S": "CID"}},  # an empty key
    {"deal_id": {"S": "x" * 3000}, "customer_id": {"S": "CID"}},  # longer than a key may be
    {"deal_id": {"N": "1"}, "customer_id": {"S": "CID"}},
])
def test_a_forged_cursor_on_a_customers_deals_is_422(crm_client, key):
    cid = new_customer(crm_client)["customer_id"]
    forged = cursor_of(json.loads(json.dumps(key).replace("CID", cid)))
    for path in (f"/api/customers/{cid}/deals", f"/api/customers/{cid}/activities"):
        reply = crm_client.get(f"{path}?cursor={forged}")
        assert reply.status_code == 422 and "cursor" in reply.json["detail"]["query"], reply.text


def test_a_cursor_the_api_gave_out_pages_on(crm_client):
    cid = new_customer(crm_client)["customer_id"]
    for n in range(3):
        deal = {"customer_id": cid, "title": f"D{n}", "amount": n}
        assert crm_client.post("/api/deals", json=deal).status_code == 201
    first = crm_client.get(f"/api/customers/{cid}/deals?limit=2").json
    second = crm_client.get(f"/api/customers/{cid}/deals?limit=2&cursor={first['next_cursor']}")
    assert second.status_code == 200 and len(first["items"]) + len(second.json["items"]) == 3


@pytest.mark.parametrize("query", ["limit=0", "limit=1000", "limit=1e5", "cursor=%25%25%25", "cursor=eyJ4IjoxfQ",
                                   "q=%00", "cursor=" + "A" * 2001])
def test_bad_paging_parameters_are_4xx(crm_client, query):
    reply = crm_client.get("/api/customers?" + query)
    assert reply.status_code in (400, 422), reply.text
    assert reply.json


@pytest.mark.parametrize("customer_id", ["cust-0000ffff", "not-an-id", "x" * 3000, "\u00e9t\u00e9"])
def test_unknown_or_impossible_ids_are_json_404(crm_client, customer_id):
    for method in ("GET", "DELETE"):
        reply = crm_client.open(f"/api/customers/{customer_id}", method=method)
        assert reply.status_code == 404 and reply.json["error"] == "not_found", (method, reply.text)
    assert crm_client.get(f"/api/customers/{customer_id}/deals").status_code == 404
    assert crm_client.put(f"/api/customers/{customer_id}", json=CUSTOMER).status_code == 404


def test_idempotency_key_replays_the_first_answer(crm_client):
    headers = {"Idempotency-Key": "form-abc-123"}
    first = crm_client.post("/api/customers", json={**CUSTOMER, "phone": None}, headers=headers)
    again = crm_client.post("/api/customers", json={**CUSTOMER, "name": " Ada Lovelace ", "phone": None},
                            headers=headers)  # the same data once trimmed
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json == first.json  # every field, the absent phone included
    assert again.headers["Location"] == first.headers["Location"]
    assert again.headers["Idempotent-Replayed"] == "true" and "Idempotent-Replayed" not in first.headers
    assert customers_in_table() == 1


def test_idempotency_key_reused_with_other_data_is_refused(crm_client):
    headers = {"Idempotency-Key": "reused-key"}
    assert crm_client.post("/api/customers", json=CUSTOMER, headers=headers).status_code == 201
    reply = crm_client.post("/api/customers", json={**CUSTOMER, "name": "Other"}, headers=headers)
    assert reply.status_code == 409 and reply.json["field"] == "Idempotency-Key", reply.text
    assert reply.json["error"] == "idempotency_conflict"
    assert customers_in_table() == 1


@pytest.mark.parametrize("key", ["", "x" * 256, "has space", "caf\u00e9"])
def test_a_malformed_idempotency_key_is_422(crm_client, key):
    reply = crm_client.post("/api/customers", json=CUSTOMER, headers={"Idempotency-Key": key})
    assert reply.status_code == 422 and "Idempotency-Key" in reply.json["detail"]["headers"], reply.text


def test_openapi_document_is_valid_for_tools(crm_client):
    spec = crm_client.get("/openapi.json").json
    assert "servers" not in spec  # relative to wherever the document was fetched, on AWS as locally
    amount = spec["components"]["schemas"]["DealIn"]["properties"]["amount"]
    assert (amount["minimum"], amount["maximum"]) == (0, 1_000_000_000)
    bodies = [op["requestBody"] for ops in spec["paths"].values() for op in ops.values() if "requestBody" in op]
    assert len(bodies) == 4 and all(body["required"] for body in bodies)
    assert "404" in spec["paths"]["/api/customers/{customer_id}"]["get"]["responses"]
    for path in ("/api/customers", "/api/customers/{customer_id}", "/api/customers/{customer_id}/deals",
                 "/api/customers/{customer_id}/activities", "/api/deals", "/api/activities"):
        assert path in spec["paths"], path


def test_ui_pages_carry_security_headers(crm_client):
    for path in ("/customers", "/customers/new", "/deals", "/api/customers", "/customers/cust-0000beef"):
        headers = crm_client.get(path).headers
        csp = headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp and "unsafe-inline" not in csp
        assert headers["X-Frame-Options"] == "DENY" and headers["X-Content-Type-Options"] == "nosniff"


def test_ui_pages_have_no_inline_script(crm_client):
    cid = new_customer(crm_client)["customer_id"]
    for path in ("/customers", f"/customers/{cid}", "/customers/new", f"/customers/{cid}/deals/new", "/deals"):
        page = crm_client.get(path).text
        assert "javascript:" not in page and " onsubmit=" not in page and " onclick=" not in page, path
        assert "<script>" not in page and "<script src=\"/static/crm.js\"" in page, path


def test_control_characters_are_refused_by_the_ui_form_too(crm_client):
    form = crm_client.get("/customers/new")
    csrf = form.text.split('name="csrf" value="')[1].split('"')[0]
    reply = crm_client.post("/customers/new", data={"csrf": csrf, "name": "Eve\x1b[2J", "email": "e@example.com"})
    assert reply.status_code == 422 and 'data-field="name"' in reply.text
    assert customers_in_table() == 0


def test_a_database_failure_is_503_json_with_retry_after(aws, tmp_path):
    client = create_app(Settings(customers_table="NoSuchTable", log_file=str(tmp_path / "log"))).test_client()
    reply = client.get("/api/customers")
    assert reply.status_code == 503 and reply.json["code"] == "ResourceNotFoundException"
    assert reply.headers["Retry-After"] == "1"
    page = client.get("/customers")
    assert page.status_code == 503 and "database error" in page.text and page.headers["Retry-After"] == "1"


def test_create_app_with_settings_reads_no_environment(aws, tmp_path, monkeypatch):
    monkeypatch.setenv("CUSTOMERS_TABLE", "NoSuchTable")
    monkeypatch.setenv("CRM_MAX_ACTIVE", "not a number")
    client = create_app(Settings(log_file=str(tmp_path / "log"))).test_client()
    assert client.get("/api/customers").status_code == 200


def test_health_is_shallow_and_json(crm_client):
    assert crm_client.get("/health").json == {"status": "healthy"}
    deep = crm_client.get("/health?deep=1")
    assert deep.status_code == 200 and set(deep.json["checks"]["dynamodb"].values()) == {"ok"}


def test_unknown_api_path_is_a_json_404_and_unknown_page_an_html_404(crm_client):
    api = crm_client.get("/api/nothing")
    assert api.status_code == 404 and api.json["error"] == "not_found"
    page = crm_client.get("/nothing")
    assert page.status_code == 404 and page.mimetype == "text/html"


def test_create_answers_201_with_location(crm_client):
    reply = crm_client.post("/api/customers", json=CUSTOMER)
    assert reply.status_code == 201
    assert reply.headers["Location"].endswith(f"/api/customers/{reply.json['customer_id']}")


def test_deal_or_activity_for_a_missing_customer_is_404_naming_the_field_and_writes_nothing(crm_client):
    reply = crm_client.post("/api/deals", json={"customer_id": "cust-00000000dead", "title": "Ghost", "amount": 1})
    assert reply.status_code == 404 and reply.json["field"] == "customer_id"
    reply = crm_client.post("/api/activities", json={"customer_id": "cust-00000000dead", "type": "call",
                                                     "subject": "Ghost"})
    assert reply.status_code == 404 and reply.json["field"] == "customer_id"
    deals = boto3.client("dynamodb", region_name="us-east-1").scan(TableName=TABLE_NAMES["DEALS_TABLE"])
    assert deals["Count"] == 0


def test_a_wrong_method_is_405_with_allow(crm_client):
    reply = crm_client.open("/api/customers", method="TRACE")
    assert reply.status_code == 405 and reply.json["error"] == "method_not_allowed"
    assert set(reply.headers["Allow"].split(", ")) >= {"GET", "POST"}


def test_every_answer_an_endpoint_can_give_is_documented(crm_client):
    spec = crm_client.get("/openapi.json").json
    for path in ("/api/customers", "/api/deals", "/api/activities"):
        assert {"201", "400", "409", "413", "422"} <= set(spec["paths"][path]["post"]["responses"]), path
    assert {"200", "400", "404", "413", "422"} <= set(spec["paths"]["/api/customers/{customer_id}"]["put"]["responses"])
    name = spec["components"]["schemas"]["CustomerIn"]["properties"]["name"]
    assert "pattern" in name  # the rule for visible text is stated, not only enforced


def test_a_form_sent_again_with_other_values_says_so(crm_client):
    page = crm_client.get("/customers/new").text
    csrf, token = (page.split(f'name="{name}" value="')[1].split('"')[0] for name in ("csrf", "form_token"))
    form = {"csrf": csrf, "form_token": token, "name": "First", "email": "f@example.com"}
    assert crm_client.post("/customers/new", data=form).status_code == 302
    again = crm_client.post("/customers/new", data={**form, "name": "Changed"})
    assert again.status_code == 422 and 'data-field="form_token"' in again.text
    assert customers_in_table() == 1
