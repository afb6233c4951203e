"""Validation and the OpenAPI shapes of the CRM's data: one schema per input and output."""

from __future__ import annotations

import re
from collections.abc import Mapping

from apiflask import Schema
from apiflask.fields import Date, DateTime, Decimal, Email, Float, Integer, List, Nested, String
from apiflask.validators import Length, OneOf, Range, Regexp
from marshmallow import EXCLUDE, ValidationError, post_load, pre_load

from .store import ID_PATTERN

CUSTOMER_STATUSES = ("lead", "prospect", "active", "churned")
DEAL_STAGES = ("prospecting", "qualification", "proposal", "negotiation", "closed_won", "closed_lost")
ACTIVITY_TYPES = ("call", "email", "meeting", "note", "task")
# Text a person could not have typed into one line: control characters (C0, DEL, C1), line and paragraph
# separators, and lone surrogates (valid in JSON's \u escapes, but not Unicode text DynamoDB can store).
NOT_ONE_LINE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")
# Multi-line fields (notes) may also hold tabs and line breaks.
NOT_TEXT = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")


def clean_text(schema: Schema, data, multiline: tuple[str, ...] = ()) -> dict:
    """Trim every text field of `schema` in `data`, refusing control characters and lone surrogates."""
    if not isinstance(data, Mapping):
        return data
    cleaned, errors = {}, {}
    for name, value in data.items():
        if isinstance(value, str) and name in schema.fields:
            value = value.strip()
            if (NOT_TEXT if name in multiline else NOT_ONE_LINE).search(value):
                errors[name] = ["must not contain control characters or unpaired surrogates"]
        cleaned[name] = value
    if errors:
        raise ValidationError(errors)
    return cleaned


class Input(Schema):
    """Base of the input schemas: text is trimmed before it is validated, unknown fields are ignored,
    blank optional fields count as absent."""

    class Meta:
        unknown = EXCLUDE

    OPTIONAL: tuple[str, ...] = ()
    MULTILINE: tuple[str, ...] = ()

    @pre_load
    def clean(self, data, **kwargs):
        """Trim and check text fields; treat optional fields sent empty (as HTML forms do) as absent."""
        data = clean_text(self, data, self.MULTILINE)
        if not isinstance(data, Mapping):
            return data
        return {k: (None if k in self.OPTIONAL and v == "" else v) for k, v in data.items()}


class CustomerIn(Input):
    """A customer as a client sends it."""

    OPTIONAL = ("company", "phone")

    name = String(required=True, validate=Length(1, 100))
    company = String(load_default=None, allow_none=True, validate=Length(0, 100))
    email = Email(required=True, validate=Length(3, 254))
    phone = String(load_default=None, allow_none=True, validate=Regexp(
        r"^\+?[0-9][0-9 ().-]{5,22}$", error="must be a phone number: digits, spaces, + ( ) . -"))
    status = String(load_default="lead", validate=OneOf(CUSTOMER_STATUSES))


class CustomerOut(Schema):
    """A stored customer."""

    customer_id = String()
    name = String()
    company = String(allow_none=True, dump_default=None)
    email = String()
    phone = String(allow_none=True, dump_default=None)
    status = String()
    created_at = String()
    updated_at = String()


class DealIn(Input):
    """A deal as a client sends it."""

    OPTIONAL = ("close_date",)

    customer_id = String(required=True, validate=Regexp(ID_PATTERN, error="not a customer id"))
    title = String(required=True, validate=Length(1, 200))
    amount = Decimal(required=True, places=2, validate=Range(0, 1_000_000_000), as_string=False)
    stage = String(load_default="prospecting", validate=OneOf(DEAL_STAGES))
    close_date = Date(load_default=None, allow_none=True)

    @post_load
    def plain(self, data: dict, **kwargs) -> dict:
        """Store the amount as a number and the date as ISO text."""
        data["amount"] = float(data["amount"])
        data["close_date"] = data["close_date"].isoformat() if data.get("close_date") else None
        return data


class DealOut(Schema):
    """A stored deal."""

    deal_id = String()
    customer_id = String()
    title = String()
    amount = Float()
    stage = String()
    close_date = String(allow_none=True, dump_default=None)
    created_at = String()


class ActivityIn(Input):
    """An activity (call, email, meeting, note, task) as a client sends it."""

    OPTIONAL = ("note", "occurred_at")
    MULTILINE = ("note",)

    customer_id = String(required=True, validate=Regexp(ID_PATTERN, error="not a customer id"))
    type = String(required=True, validate=OneOf(ACTIVITY_TYPES))
    subject = String(required=True, validate=Length(1, 200))
    note = String(load_default=None, allow_none=True, validate=Length(0, 4000))
    occurred_at = DateTime(load_default=None, allow_none=True)

    @post_load
    def plain(self, data: dict, **kwargs) -> dict:
        """Store the time as ISO text."""
        data["occurred_at"] = data["occurred_at"].isoformat() if data.get("occurred_at") else None
        return data


class ActivityOut(Schema):
    """A stored activity."""

    activity_id = String()
    customer_id = String()
    type = String()
    subject = String()
    note = String(allow_none=True, dump_default=None)
    occurred_at = String(allow_none=True, dump_default=None)
    created_at = String()


class PageQuery(Schema):
    """Paging parameters of every list endpoint."""

    limit = Integer(load_default=25, validate=Range(1, 100))
    cursor = String(load_default=None, validate=Length(1, 2000))

    @pre_load
    def clean(self, data, **kwargs):
        """Trim and check text parameters as the input schemas do."""
        return clean_text(self, data)


class CustomerQuery(PageQuery):
    """Paging plus an optional case-insensitive name prefix."""

    q = String(load_default=None, validate=Length(1, 100))


class IdempotencyHeader(Schema):
    """The optional Idempotency-Key header of the create endpoints: the same key and data create once."""

    class Meta:
        unknown = EXCLUDE

    idempotency_key = String(data_key="Idempotency-Key", load_default=None, validate=[
        Length(1, 255), Regexp(r"^[\x21-\x7e]+$", error="must be visible ASCII characters")])


class CustomerPage(Schema):
    """One page of customers and the cursor to the next (null at the end)."""

    items = List(Nested(CustomerOut))
    next_cursor = String(allow_none=True)


class DealPage(Schema):
    """One page of deals and the cursor to the next (null at the end)."""

    items = List(Nested(DealOut))
    next_cursor = String(allow_none=True)


class ActivityPage(Schema):
    """One page of activities and the cursor to the next (null at the end)."""

    items = List(Nested(ActivityOut))
    next_cursor = String(allow_none=True)
