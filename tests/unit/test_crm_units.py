"""crm-app's pieces in process: cursors, ids, schemas."""

from __future__ import annotations

import pytest
from marshmallow import ValidationError

from crm_app.exceptions import InvalidField
from crm_app.schemas import ActivityIn, CustomerIn, DealIn
from crm_app.store import CUSTOMER, decode_cursor, encode_cursor, new_id
from crm_app.ui import form_data


def test_cursor_round_trip():
    key = {"customer_id": {"S": "cust-000001"}}
    assert decode_cursor(encode_cursor(key), {"customer_id"}) == key
    assert encode_cursor(None) is None and decode_cursor(None, {"customer_id"}) is None


@pytest.mark.parametrize("cursor", ["%%%", "bm90IGpzb24", encode_cursor({"other": {"S": "x"}}),
                                    encode_cursor({"customer_id": {"N": "1"}}), encode_cursor({"a": 1})])
def test_foreign_cursors_are_refused(cursor):
    with pytest.raises(InvalidField) as error:
        decode_cursor(cursor, {"customer_id"})
    assert error.value.field == "cursor"


def test_ids_are_fresh_unless_an_idempotency_key_pins_them():
    assert new_id(CUSTOMER) != new_id(CUSTOMER)
    assert new_id(CUSTOMER, "k1") == new_id(CUSTOMER, "k1") != new_id(CUSTOMER, "k2")
    assert new_id(CUSTOMER).startswith("cust-")


def test_customer_schema_trims_what_it_stores():
    data = CustomerIn().load({"name": "  Ada  ", "email": "ada@example.com", "company": " Engines "})
    assert data == {"name": "Ada", "email": "ada@example.com", "phone": None, "company": "Engines", "status": "lead"}


def test_a_blank_optional_form_field_is_absent():
    form = form_data(CustomerIn(), {"name": "Ada", "email": "ada@example.com", "phone": " ", "company": ""})
    assert CustomerIn().load(form) == {"name": "Ada", "email": "ada@example.com", "phone": None, "company": None,
                                       "status": "lead"}


@pytest.mark.parametrize(("schema", "data", "field"), [
    (DealIn, {"customer_id": "cust-0001", "title": "T", "amount": -1}, "amount"),
    (DealIn, {"customer_id": "'; DROP", "title": "T", "amount": 1}, "customer_id"),
    (DealIn, {"customer_id": "cust-0001", "title": "T", "amount": 1, "close_date": "tomorrow"}, "close_date"),
    (ActivityIn, {"customer_id": "cust-0001", "type": "fax", "subject": "S"}, "type"),
    (ActivityIn, {"customer_id": "cust-0001", "type": "call", "subject": ""}, "subject"),
])
def test_invalid_input_names_the_field(schema, data, field):
    with pytest.raises(ValidationError) as error:
        schema().load(data)
    assert field in error.value.messages
