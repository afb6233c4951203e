"""The user flows, as Locust users (imported only in the load child process: Locust monkey-patches on import).

Weighted like real traffic: visitors of the main app load `GET /`; CRM visitors list customers, page
through with the cursor, search by name, open a customer with its deals and activities, and sometimes
log an activity or add a deal, through the JSON API (with an Idempotency-Key) or through the UI's forms
as a browser does (GET the form, keep the CSRF cookie, POST the csrf and form_token fields, follow the
redirect). Each flow alternates between the API and the UI per user, so both are always exercised.
Writes only go to customers this run created (marked: see marker.py), so cleanup can remove them exactly.
"""

from __future__ import annotations

import itertools
import random
import re
import secrets
import uuid
from collections import Counter
from collections.abc import Callable
from html import unescape
from typing import Any

from locust import FastHttpUser, between, constant, task
from locust.exception import StopUser

from .marker import marked, new_customer
from .pacer import Pacer

USER_AGENT = "sre-workshop-load/1 (Locust)"
CSRF_FIELD = re.compile(r'name="csrf" value="([^"]+)"')
FORM_TOKEN_FIELD = re.compile(r'name="form_token" value="([^"]+)"')
CUSTOMER_LINK = re.compile(r'href="/customers/(cust-[0-9a-f]+)"')
NEXT_PAGE_LINK = re.compile(r'id="next-page" href="([^"]+)"')
CUSTOMER_LOCATION = re.compile(r"/customers/(cust-[0-9a-f]+)")
MAX_KNOWN = 500  # customer ids and names remembered from listings, shared by the CRM visitors

FLOW_COUNTS: Counter[str] = Counter()
_rng = random.Random()  # noqa: S311 (picks what a visitor does next; nothing secret)
_request_numbers = itertools.count(1)


def flow(name: str, weight: int) -> Callable:
    """Make a method a Locust task of `weight` that counts its runs under `name`."""
    def decorate(method: Callable) -> Callable:
        def run(user: Any) -> None:
            FLOW_COUNTS[name] += 1
            method(user)
        run.__name__ = method.__name__
        return task(weight)(run)
    return decorate


class Visitor(FastHttpUser):
    """A visitor of one public entry point: paced, tagged, and pinned to its target."""

    abstract = True
    entry = ""                    # "app" or "crm": the first word of every request name
    target_url = ""               # set by configure()
    run_id = "load"
    pacer: Pacer | None = None
    network_timeout = 70.0        # longer than the ALB's 60 s idle timeout, so its 504 is what we see
    connection_timeout = 10.0

    def __init__(self, environment) -> None:
        # Pinned here, not taken from the class's `host`: the web UI's host field cannot send load elsewhere.
        self.host = self.target_url
        super().__init__(environment)

    def send(self, method: str, path: str, name: str, **kwargs: Any):
        """Send one request, paced, with this run's X-Request-ID; its stats go under "<entry> <method> <name>"."""
        if self.pacer is not None and not self.pacer.wait():
            raise StopUser  # the run is stopping: send nothing more
        request_id = f"{self.run_id}-{next(_request_numbers)}"
        headers = {"X-Request-ID": request_id, "User-Agent": USER_AGENT, **kwargs.pop("headers", {})}
        return self.client.request(method, path, name=f"{self.entry} {method} {name}", headers=headers,
                                   context={"request_id": request_id}, **kwargs)


class AppVisitor(Visitor):
    """A visitor of the main app through the public ALB's listener 80 (nginx, private ALB, sre-app)."""

    abstract = True
    entry = "app"

    @flow("app.home", 1)
    def home(self) -> None:
        self.send("GET", "/", "/")


class CrmVisitor(Visitor):
    """A visitor of the CRM through the public ALB's listener 8080."""

    abstract = True
    entry = "crm"
    known_ids: list[str] = []      # shared by all CRM visitors: what listings showed
    known_names: list[str] = []
    customers_created = 0

    def on_start(self) -> None:
        self.toggles: Counter[str] = Counter()
        self.own_customer: str | None = None

    def via_ui(self, flow_name: str) -> bool:
        """Alternate between the API and the UI for each flow, starting with the API."""
        self.toggles[flow_name] += 1
        return self.toggles[flow_name] % 2 == 0

    # --- reading ---------------------------------------------------------------------------------

    @flow("crm.list", 8)
    def list_customers(self) -> None:
        self.first_page(self.via_ui("list"))

    @flow("crm.page", 4)
    def page_through(self) -> None:
        ui = self.via_ui("page")
        following = self.first_page(ui)
        for _ in range(_rng.randint(1, 3)):
            if not following:
                break
            following = self.ui_page(next_link=following) if ui else self.api_page(cursor=following)

    @flow("crm.search", 4)
    def search(self) -> None:
        name = _rng.choice(self.known_names) if self.known_names else _rng.choice("ABCDEFGHJKLMNPRSTW")
        prefix = name[: _rng.randint(1, 3)]
        if self.via_ui("search"):
            self.ui_page(q=prefix)
        else:
            self.api_page(q=prefix)

    @flow("crm.open", 6)
    def open_customer(self) -> None:
        if not self.known_ids:
            self.first_page(ui=False)
            if not self.known_ids:
                return
        customer_id = _rng.choice(self.known_ids)
        if self.via_ui("open"):
            self.send("GET", f"/customers/{customer_id}", "/customers/{id}")
            return
        self.send("GET", f"/api/customers/{customer_id}", "/api/customers/{id}")
        self.send("GET", f"/api/customers/{customer_id}/deals", "/api/customers/{id}/deals")
        self.send("GET", f"/api/customers/{customer_id}/activities", "/api/customers/{id}/activities")

    def first_page(self, ui: bool) -> str | None:
        """Load the first page of customers; return the API's next cursor or the UI's next-page link."""
        return self.ui_page() if ui else self.api_page()

    def api_page(self, cursor: str | None = None, q: str | None = None) -> str | None:
        """GET one page from the API, remember its customers; return the next cursor."""
        params = {"limit": 25, **({"cursor": cursor} if cursor else {}), **({"q": q} if q else {})}
        name = "/api/customers" + ("?q" if q else "?cursor" if cursor else "")
        response = self.send("GET", "/api/customers", name, params=params)
        if response.status_code != 200:
            return None
        page = response.json()
        self.remember([c["customer_id"] for c in page["items"]], [c["name"] for c in page["items"]])
        return page.get("next_cursor")

    def ui_page(self, next_link: str | None = None, q: str | None = None) -> str | None:
        """GET one page of the Customers tab (or the page a next-page link points to); return its next link."""
        if next_link:
            response = self.send("GET", next_link, "/customers?cursor")
        else:
            name = "/customers?q" if q else "/customers"
            response = self.send("GET", "/customers", name, params={"q": q} if q else None)
        if response.status_code != 200:
            return None
        html = response.text or ""
        self.remember(CUSTOMER_LINK.findall(html), [])
        link = NEXT_PAGE_LINK.search(html)
        return unescape(link.group(1)) if link else None

    def remember(self, ids: list[str], names: list[str]) -> None:
        """Add customer ids and names seen in a listing to the pool the CRM visitors share (bounded)."""
        for pool, values in ((type(self).known_ids, ids), (type(self).known_names, names)):
            for value in values:
                if len(pool) < MAX_KNOWN and value not in pool:
                    pool.append(value)

    # --- writing ---------------------------------------------------------------------------------

    @flow("crm.add_activity", 1)
    def add_activity(self) -> None:
        customer_id = self.ensure_customer()
        if customer_id is None:
            return
        fields = {"type": _rng.choice(["call", "email", "meeting", "note"]),
                  "subject": marked(f"follow-up {secrets.token_hex(3)}"), "note": "logged by sre-workshop load"}
        if self.via_ui("add_activity"):
            self.submit_form(f"/customers/{customer_id}/activities/new", "/customers/{id}/activities/new", fields)
        else:
            self.api_create("/api/activities", {"customer_id": customer_id, **fields})

    @flow("crm.add_deal", 1)
    def add_deal(self) -> None:
        customer_id = self.ensure_customer()
        if customer_id is None:
            return
        fields = {"title": marked(f"deal {secrets.token_hex(3)}"), "amount": f"{_rng.randint(5, 500) * 100}.00",
                  "stage": _rng.choice(["prospecting", "qualification", "proposal"])}
        if self.via_ui("add_deal"):
            self.submit_form(f"/customers/{customer_id}/deals/new", "/customers/{id}/deals/new", fields)
        else:
            self.api_create("/api/deals", {"customer_id": customer_id, **fields, "amount": float(fields["amount"])})

    def ensure_customer(self) -> str | None:
        """Return this visitor's own marked customer, creating it (by API or UI, alternately) the first time."""
        if self.own_customer is None:
            # Each visitor creates one customer; visitors take turns between the API and the UI form.
            type(self).customers_created += 1
            if type(self).customers_created % 2 == 0:
                location = self.submit_form("/customers/new", "/customers/new", new_customer())
                found = CUSTOMER_LOCATION.search(location or "")
                self.own_customer = found.group(1) if found else None
            else:
                created = self.api_create("/api/customers", new_customer())
                self.own_customer = created.get("customer_id") if created else None
        return self.own_customer

    def api_create(self, path: str, body: dict[str, Any]) -> dict[str, Any] | None:
        """POST a new record as JSON with an Idempotency-Key; return it, or None if refused."""
        response = self.send("POST", path, path, json=body, headers={"Idempotency-Key": str(uuid.uuid4())})
        return response.json() if response.status_code in (200, 201) else None

    def submit_form(self, path: str, name: str, fields: dict[str, str]) -> str | None:
        """GET a form, POST it back with its csrf and form_token, follow the redirect; return its Location."""
        form = self.send("GET", path, name)
        csrf, token = CSRF_FIELD.search(form.text or ""), FORM_TOKEN_FIELD.search(form.text or "")
        if form.status_code != 200 or not csrf or not token:
            return None
        data = {"csrf": csrf.group(1), "form_token": token.group(1), **fields}
        with self.send("POST", path, name, data=data, allow_redirects=False, catch_response=True) as posted:
            location = posted.headers.get("Location") if posted.status_code in (302, 303) else None
            if location is None and posted.status_code < 400:
                posted.failure(f"form answered {posted.status_code}, not a redirect")
        if location:
            self.send("GET", location, "/customers/{id}")
        return location


def configure(targets: dict[str, str], run_id: str, pacer: Pacer | None) -> list[type[Visitor]]:
    """Return the user classes for `targets` (entry point -> base URL), all paced by `pacer` if any."""
    # With a rate, the shared pacer spaces requests and users need no think time; without, users
    # think 0.5-2 s between flows as people do.
    wait = constant(0) if pacer else between(0.5, 2.0)
    classes: list[type[Visitor]] = []
    for base, entry in ((AppVisitor, "app"), (CrmVisitor, "crm")):
        if entry in targets:
            attrs: dict[str, Any] = {"abstract": False, "target_url": targets[entry], "run_id": run_id,
                                     "pacer": pacer, "wait_time": wait, "weight": 1}
            if base is CrmVisitor:
                attrs.update(known_ids=[], known_names=[], customers_created=0)  # fresh per run
            classes.append(type(f"{base.__name__}Run", (base,), attrs))
    return classes
