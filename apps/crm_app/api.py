"""The CRM's JSON API under /api, documented in the app's OpenAPI document (/openapi.json)."""

from __future__ import annotations

from apiflask import APIBlueprint
from flask import url_for

from .context import store
from .schemas import (
    ActivityIn,
    ActivityOut,
    ActivityPage,
    CustomerIn,
    CustomerOut,
    CustomerPage,
    CustomerQuery,
    DealIn,
    DealOut,
    DealPage,
    IdempotencyHeader,
    PageQuery,
)
from .store import ACTIVITY, CUSTOMER, DEAL, Entity, Page

api = APIBlueprint("api", __name__, url_prefix="/api", tag="CRM")

# Answers of the endpoints that take a JSON body, besides their success and 422.
BODY_ERRORS = {400: "Not JSON, or JSON nested deeper than 32 levels", 413: "Body larger than 64 KiB"}
CREATE_ERRORS = {**BODY_ERRORS, 409: "Idempotency-Key already used for a request with other data"}
NOT_FOUND = {404: "No such customer"}
CREATE_FOR_CUSTOMER_ERRORS = {**CREATE_ERRORS, 404: "customer_id names no customer"}


def as_page(page: Page) -> dict:
    """Shape a Page for the *Page output schemas."""
    return {"items": page.items, "next_cursor": page.next_cursor}


def create(entity: Entity, data: dict, headers: dict) -> tuple[dict, dict[str, str]]:
    """Create an item, honouring an Idempotency-Key header; return it with the headers of the answer.

    A replay (same key, same data) answers as the first create did, marked Idempotent-Replayed.
    """
    item, created = store().create(entity, data, headers["idempotency_key"])
    return item, {} if created else {"Idempotent-Replayed": "true"}


@api.get("/customers")
@api.input(CustomerQuery, location="query")
@api.output(CustomerPage)
def list_customers(query_data):
    """List customers one page at a time; `q` filters by name prefix."""
    if query_data["q"]:
        page = store().search_customers(query_data["q"], query_data["limit"], query_data["cursor"])
    else:
        page = store().scan_page(CUSTOMER, query_data["limit"], query_data["cursor"])
    return as_page(page)


@api.post("/customers")
@api.input(CustomerIn)
@api.input(IdempotencyHeader, location="headers")
@api.output(CustomerOut, status_code=201)
@api.doc(responses=CREATE_ERRORS)
def create_customer(json_data, headers_data):
    """Create a customer (send Idempotency-Key to make retries safe)."""
    item, headers = create(CUSTOMER, json_data, headers_data)
    return item, 201, {**headers, "Location": url_for("api.get_customer", customer_id=item["customer_id"])}


@api.get("/customers/<customer_id>")
@api.output(CustomerOut)
@api.doc(responses=NOT_FOUND)
def get_customer(customer_id):
    """Get one customer."""
    return store().get(CUSTOMER, customer_id)


@api.put("/customers/<customer_id>")
@api.input(CustomerIn)
@api.output(CustomerOut)
@api.doc(responses={**NOT_FOUND, **BODY_ERRORS})
def update_customer(customer_id, json_data):
    """Replace a customer's fields."""
    return store().update_customer(customer_id, json_data)


@api.delete("/customers/<customer_id>")
@api.output({}, status_code=204)
@api.doc(responses=NOT_FOUND)
def delete_customer(customer_id):
    """Delete a customer with its deals and activities."""
    store().delete_customer(customer_id)
    return ""


@api.get("/customers/<customer_id>/deals")
@api.input(PageQuery, location="query")
@api.output(DealPage)
@api.doc(responses=NOT_FOUND)
def customer_deals(customer_id, query_data):
    """List a customer's deals (Query on customer-index)."""
    store().get(CUSTOMER, customer_id)
    return as_page(store().for_customer(DEAL, customer_id, query_data["limit"], query_data["cursor"]))


@api.get("/customers/<customer_id>/activities")
@api.input(PageQuery, location="query")
@api.output(ActivityPage)
@api.doc(responses=NOT_FOUND)
def customer_activities(customer_id, query_data):
    """List a customer's activities (Query on customer-index)."""
    store().get(CUSTOMER, customer_id)
    return as_page(store().for_customer(ACTIVITY, customer_id, query_data["limit"], query_data["cursor"]))


@api.get("/deals")
@api.input(PageQuery, location="query")
@api.output(DealPage)
def list_deals(query_data):
    """List deals one page at a time."""
    return as_page(store().scan_page(DEAL, query_data["limit"], query_data["cursor"]))


@api.post("/deals")
@api.input(DealIn)
@api.input(IdempotencyHeader, location="headers")
@api.output(DealOut, status_code=201)
@api.doc(responses=CREATE_FOR_CUSTOMER_ERRORS)
def create_deal(json_data, headers_data):
    """Create a deal for an existing customer."""
    item, headers = create(DEAL, json_data, headers_data)
    return item, 201, headers


@api.get("/activities")
@api.input(PageQuery, location="query")
@api.output(ActivityPage)
def list_activities(query_data):
    """List activities one page at a time."""
    return as_page(store().scan_page(ACTIVITY, query_data["limit"], query_data["cursor"]))


@api.post("/activities")
@api.input(ActivityIn)
@api.input(IdempotencyHeader, location="headers")
@api.output(ActivityOut, status_code=201)
@api.doc(responses=CREATE_FOR_CUSTOMER_ERRORS)
def create_activity(json_data, headers_data):
    """Log an activity for an existing customer."""
    item, headers = create(ACTIVITY, json_data, headers_data)
    return item, 201, headers
