"""Properties of the CRM that its OpenAPI document cannot state, checked with Hypothesis in process:
cursors, JSON depth, text and idempotency. Whatever a client sends, the answer is a 2xx or a 4xx."""

from __future__ import annotations

import base64
import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crm_app.exceptions import InvalidField
from crm_app.guards import MAX_JSON_DEPTH, json_depth
from crm_app.store import ID_RE, decode_cursor, encode_cursor

# The in-process app and moto's mock live for the whole test; each example writes new items.
IN_PROCESS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

ids = st.from_regex(ID_RE, fullmatch=True)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=40)
# Text as clients send it: any Unicode, lone surrogates and control characters included.
any_text = st.text(st.characters(codec=None, exclude_categories=()), max_size=120)


def depth(value) -> int:
    """How deeply arrays and objects nest in a decoded JSON value."""
    if isinstance(value, list):
        return 1 + max(map(depth, value), default=0)
    if isinstance(value, dict):
        return 1 + max(map(depth, value.values()), default=0)
    return 0


@given(json_values)
def test_json_depth_agrees_with_the_parsed_value(value):
    assert json_depth(json.dumps(value).encode()) == depth(value)


@given(st.integers(0, 200))
def test_json_depth_stops_counting_past_the_limit(levels):
    assert json_depth(b"[" * levels + b"]" * levels) == min(levels, MAX_JSON_DEPTH + 1)


@given(ids, ids)
def test_every_cursor_the_store_gives_out_is_taken_back(deal_id, customer_id):
    key = {"deal_id": {"S": deal_id}, "customer_id": {"S": customer_id}}
    assert decode_cursor(encode_cursor(key), {"deal_id", "customer_id"}, {"customer_id": customer_id}) == key


@given(st.one_of(st.text(max_size=300), json_values.map(
    lambda v: base64.urlsafe_b64encode(json.dumps(v).encode()).decode())))
def test_any_other_cursor_is_refused_naming_the_cursor(cursor):
    try:
        key = decode_cursor(cursor, {"customer_id"})
    except InvalidField as error:
        assert error.field == "cursor"
    else:  # it decoded: then it is a key of the right shape, made of one of our ids
        assert key is None or (set(key) == {"customer_id"} and ID_RE.match(key["customer_id"]["S"]))


@IN_PROCESS
@given(cursor=st.text(max_size=200), path=st.sampled_from(["/api/customers", "/api/deals", "/api/activities"]))
def test_a_list_answers_any_cursor_with_200_or_422(crm_client, cursor, path):
    reply = crm_client.get(path, query_string={"cursor": cursor})
    assert reply.status_code in (200, 422), reply.text


@IN_PROCESS
@given(name=any_text, company=st.one_of(st.none(), any_text))
def test_a_customer_of_any_text_is_stored_as_sent_trimmed_or_refused(crm_client, name, company):
    reply = crm_client.post("/api/customers", json={"name": name, "company": company, "email": "a@example.com"})
    assert reply.status_code in (201, 422), reply.text
    if reply.status_code == 201:
        stored = crm_client.get(reply.headers["Location"]).json
        assert stored["name"] == name.strip() != ""
        assert stored["company"] == (company.strip() if company is not None else None)
        assert not any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F or 0xD800 <= ord(c) <= 0xDFFF for c in stored["name"])
    else:
        assert set(reply.json["detail"]["json"]) <= {"name", "company"}


@IN_PROCESS
@given(key=st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=40),
       first=st.text(st.characters(min_codepoint=0x41, max_codepoint=0x5A), min_size=1, max_size=8),
       second=st.text(st.characters(min_codepoint=0x41, max_codepoint=0x5A), min_size=1, max_size=8))
def test_an_idempotency_key_replays_the_same_data_and_refuses_other_data(crm_client, key, first, second):
    headers = {"Idempotency-Key": f"prop-{key}"}
    original = crm_client.post("/api/customers", json={"name": first, "email": "i@example.com"}, headers=headers)
    if original.status_code == 409:  # Hypothesis drew this key with other data before
        return
    assert original.status_code == 201
    again = crm_client.post("/api/customers", json={"name": second, "email": "i@example.com"}, headers=headers)
    if first == second:
        assert again.status_code == 201 and again.json == original.json
    else:
        assert again.status_code == 409 and again.json["field"] == "Idempotency-Key"
