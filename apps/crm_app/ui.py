"""The CRM's server-rendered web UI: Customers tab, customer page, forms, Deals pipeline.

Templates are Jinja with autoescaping. Forms carry two hidden tokens: `csrf` (double-submit: it must
match a SameSite cookie, so another site cannot post on a user's behalf) and `form_token` (the
idempotency key: submitting the same form twice creates one record).
"""

from __future__ import annotations

import hmac
import secrets
from collections import OrderedDict
from typing import Any

from flask import Blueprint, abort, current_app, redirect, render_template, request, url_for
from marshmallow import Schema, ValidationError

from .context import store
from .exceptions import InvalidField, NotFound
from .schemas import ACTIVITY_TYPES, CUSTOMER_STATUSES, DEAL_STAGES, ActivityIn, CustomerIn, DealIn
from .store import ACTIVITY, CUSTOMER, DEAL, Entity

ui = Blueprint("ui", __name__)

PAGE_SIZE = 25
CSRF_COOKIE = "crm_csrf"


@ui.get("/")
def home():
    """Open the Customers tab."""
    return redirect(url_for("ui.customers"))


@ui.get("/customers")
def customers():
    """List customers, one page at a time, optionally by name prefix."""
    q = request.args.get("q", "").strip()[:100]
    cursor = request.args.get("cursor") or None
    try:
        page = store().search_customers(q, PAGE_SIZE, cursor) if q else store().scan_page(
            CUSTOMER, PAGE_SIZE, cursor)
    except InvalidField:
        abort(400)
    rows = sorted(page.items, key=lambda c: c["name"].lower())
    return render_template("customers.html", customers=rows, q=q, next_cursor=page.next_cursor,
                           first_page=not cursor)


@ui.get("/customers/<customer_id>")
def customer(customer_id: str):
    """Show one customer with its deals and activities (three DynamoDB calls in all)."""
    found = _get_or_404(CUSTOMER, customer_id)
    deals = store().for_customer(DEAL, customer_id, 50, None)
    activities = store().for_customer(ACTIVITY, customer_id, 50, None)
    return _with_csrf("customer.html", customer=found, deals=deals.items, activities=activities.items,
                      more_deals=bool(deals.next_cursor), more_activities=bool(activities.next_cursor),
                      message=request.args.get("message", "")[:200])


@ui.route("/customers/new", methods=["GET", "POST"])
def new_customer():
    """Create a customer from the form."""
    return _form("Create customer", CustomerIn(), CUSTOMER, {}, lambda item: item["customer_id"])


@ui.route("/customers/<customer_id>/edit", methods=["GET", "POST"])
def edit_customer(customer_id: str):
    """Edit a customer from the form."""
    current = _get_or_404(CUSTOMER, customer_id)
    if request.method == "GET":
        return _render_form("Edit customer", CUSTOMER, current, {})
    data, errors = _validate(CustomerIn())
    if errors:
        return _render_form("Edit customer", CUSTOMER, request.form, errors), 422
    try:
        store().update_customer(customer_id, data)
    except NotFound:
        abort(404)
    return redirect(url_for("ui.customer", customer_id=customer_id, message="Customer saved."))


@ui.post("/customers/<customer_id>/delete")
def delete_customer(customer_id: str):
    """Delete a customer with its deals and activities."""
    _check_csrf()
    try:
        store().delete_customer(customer_id)
    except NotFound:
        abort(404)
    return redirect(url_for("ui.customers"))


@ui.route("/customers/<customer_id>/deals/new", methods=["GET", "POST"])
def new_deal(customer_id: str):
    """Add a deal to a customer."""
    owner = _get_or_404(CUSTOMER, customer_id)
    return _form(f"New deal for {owner['name']}", DealIn(), DEAL, {"customer_id": customer_id},
                 lambda item: customer_id)


@ui.route("/customers/<customer_id>/activities/new", methods=["GET", "POST"])
def new_activity(customer_id: str):
    """Log an activity for a customer."""
    owner = _get_or_404(CUSTOMER, customer_id)
    return _form(f"Log activity for {owner['name']}", ActivityIn(), ACTIVITY, {"customer_id": customer_id},
                 lambda item: customer_id)


@ui.get("/deals")
def deals():
    """Show a page of deals as a pipeline, grouped by stage."""
    cursor = request.args.get("cursor") or None
    try:
        page = store().scan_page(DEAL, 100, cursor)
    except InvalidField:
        abort(400)
    stages: OrderedDict[str, list[dict[str, Any]]] = OrderedDict((s, []) for s in DEAL_STAGES)
    for deal in page.items:
        stages.setdefault(deal.get("stage", "prospecting"), []).append(deal)
    totals = {stage: sum(d.get("amount", 0) for d in items) for stage, items in stages.items()}
    return render_template("deals.html", stages=stages, totals=totals, next_cursor=page.next_cursor)


# --- helpers -----------------------------------------------------------------------------------------


def _get_or_404(entity: Entity, entity_id: str) -> dict[str, Any]:
    try:
        return store().get(entity, entity_id)
    except NotFound:
        abort(404)


def _form(title: str, schema: Schema, entity: Entity, fixed: dict[str, str], target):
    """Show a create form, or validate and create from it, redirecting to the customer page."""
    if request.method == "GET":
        return _render_form(title, entity, fixed, {})
    data, errors = _validate(schema, fixed)
    if not errors:
        try:
            item, _ = store().create(entity, data, request.form.get("form_token") or None)
            message = f"{entity.name.capitalize()} saved."
            return redirect(url_for("ui.customer", customer_id=target(item), message=message))
        except InvalidField as exc:
            errors = {exc.field: [exc.message]}
    return _render_form(title, entity, request.form, errors), 422


def form_data(schema: Schema, form: dict[str, str]) -> dict[str, Any]:
    """Return a posted form as the API would get it: an optional field left blank is absent (None)."""
    optional = getattr(schema, "OPTIONAL", ())
    return {k: (None if k in optional and not v.strip() else v) for k, v in form.items()}


def _validate(schema: Schema, fixed: dict[str, str] | None = None) -> tuple[dict[str, Any], dict]:
    """Load the posted form through `schema`; return (data, errors by field)."""
    _check_csrf()
    raw = form_data(schema, {**request.form.to_dict(), **(fixed or {})})
    try:
        return schema.load(raw), {}
    except ValidationError as exc:
        return {}, exc.normalized_messages()


def _render_form(title: str, entity: Entity, values, errors: dict):
    """Render the form for `entity` with its current values and error messages."""
    return _with_csrf("form.html", title=title, entity=entity.name, values=values, errors=errors,
                      form_token=request.form.get("form_token") or secrets.token_urlsafe(16),
                      statuses=CUSTOMER_STATUSES, stages=DEAL_STAGES, activity_types=ACTIVITY_TYPES)


def _with_csrf(template: str, **context: Any):
    """Render a page that holds forms, with the CSRF token in a field and in its cookie."""
    token = request.cookies.get(CSRF_COOKIE) or secrets.token_urlsafe(24)
    response = current_app.make_response(render_template(template, csrf=token, **context))
    response.set_cookie(CSRF_COOKIE, token, httponly=True, samesite="Strict")
    return response


def _check_csrf() -> None:
    """Refuse a form post whose csrf field does not match its cookie."""
    cookie = request.cookies.get(CSRF_COOKIE, "")
    sent = request.form.get("csrf", "")
    if not cookie or not hmac.compare_digest(cookie, sent):
        abort(400, description="form expired or sent from another site: reload the page and try again")
