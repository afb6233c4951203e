"""Validation and the OpenAPI shapes of the CRM's data: one schema per input and output."""

from __future__ import annotations

import re

from apiflask import Schema
from apiflask.fields import Date, DateTime, Decimal, Email, Float, Integer, List, Nested, String
from apiflask.validators import Length, OneOf, Range, Regexp
from marshmallow import EXCLUDE, ValidationError, post_load

from .store import ID_PATTERN

CUSTOMER_STATUSES = ("lead", "prospect", "active", "churned")
DEAL_STAGES = ("prospecting", "qualification", "proposal", "negotiation", "closed_won", "closed_lost")
ACTIVITY_TYPES = ("call", "email", "meeting", "note", "task")
# Text rules, written as patterns so that the OpenAPI document states them and a client (or a fuzzer)
# can know what is valid. Not in text: control characters (C0, DEL, C1), line and paragraph separators, and
# unpaired surrogates (valid in JSON's \u escapes, but not Unicode text that DynamoDB can store; checked
# apart, because a regular expression over Unicode scalar values, as in most validators, cannot name them).
_CONTROL = "\\x00-\\x1f\\x7f-\\x9f\\u2028\\u2029"
_MULTILINE_CONTROL = "\\x00-\\x08\\x0b\\x0c\\x0e-\\x1f\\x7f-\\x9f"  # tabs and line breaks allowed
_SURROGATE = re.compile("[\\ud800-\\udfff]")


def no_surrogates(value: str) -> None:
    """Refuse text with an unpaired surrogate."""
    if _SURROGATE.search(value):
        raise ValidationError("must not contain unpaired surrogates (\\ud800-\\udfff)")


ONE_LINE = [Regexp(f"^[^{_CONTROL}]*[^\\s{_CONTROL}][^{_CONTROL}]*$",
                   error="must have a visible character and no control characters"), no_surrogates]
ONE_LINE_OR_BLANK = [Regexp(f"^[^{_CONTROL}]*$", error="must have no control characters"), no_surrogates]
MULTI_LINE = [Regexp(f"^[^{_MULTILINE_CONTROL}]*$",
                     error="must have no control characters other than tabs and line breaks"), no_surrogates]
PHONE = Regexp(r"^\+?[0-9][0-9 ().-]{5,22}$", error="must be a phone number: digits, spaces, + ( ) . -")


class Input(Schema):
    """Base of the input schemas: unknown fields are ignored; text is validated as sent, then trimmed."""

    class Meta:
        unknown = EXCLUDE

    OPTIONAL: tuple[str, ...] = ()  # fields an HTML form sends blank to mean "none" (see ui.form_data)

    @post_load
    def trim(self, data: dict, **kwargs) -> dict:
        """Store text without the spaces around it (the patterns ensure something visible is left)."""
        return {k: v.strip() if isinstance(v, str) else v for k, v in data.items()}


class CustomerIn(Input):
    """A customer as a client sends it."""

    OPTIONAL = ("company", "phone")

    name = String(required=True, validate=[Length(1, 100), *ONE_LINE])
    company = String(load_default=None, allow_none=True, validate=[Length(0, 100), *ONE_LINE_OR_BLANK])
    email = Email(required=True, validate=Length(3, 254))
    phone = String(load_default=None, allow_none=True, validate=PHONE)
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
    title = String(required=True, validate=[Length(1, 200), *ONE_LINE])
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

    customer_id = String(required=True, validate=Regexp(ID_PATTERN, error="not a customer id"))
    type = String(required=True, validate=OneOf(ACTIVITY_TYPES))
    subject = String(required=True, validate=[Length(1, 200), *ONE_LINE])
    note = String(load_default=None, allow_none=True, validate=[Length(0, 4000), *MULTI_LINE])
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
    # Opaque: the next_cursor of the page before (URL-safe base64), refused with 422 if it is not one.
    cursor = String(load_default=None, validate=[Length(1, 1000), Regexp(
        r"^[A-Za-z0-9_-]+={0,2}$", error="not a cursor this API gave out")])


class CustomerQuery(PageQuery):
    """Paging plus an optional case-insensitive name prefix."""

    q = String(load_default=None, validate=[Length(1, 100), *ONE_LINE])


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
