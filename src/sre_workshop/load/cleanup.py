"""Remove exactly the data load made, through the CRM's own API (no DynamoDB access from here).

Load writes only to customers it created, each marked (marker.py); deleting such a customer through
`DELETE /api/customers/{id}` deletes its deals and activities with it.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import quote, urlencode

from ..errors import ComponentFailed
from .marker import is_marked_customer

PAGE = 100


@dataclass(frozen=True)
class CleanupResult:
    """What cleanup removed."""

    customers: int
    deals: int
    activities: int

    def to_dict(self) -> dict[str, int]:
        """Return the counts as plain data."""
        return asdict(self)


def _call(method: str, url: str, timeout: float) -> tuple[int, Any]:
    """Send one request to the CRM; return (status, parsed JSON or None)."""
    headers = {"Accept": "application/json", "User-Agent": "sre-workshop-load/1 cleanup"}
    request = urllib.request.Request(url, method=method, headers=headers)  # noqa: S310 (Targets checked it)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            body = response.read()
            return response.status, json.loads(body) if body else None
    except urllib.error.HTTPError as exc:
        return exc.code, None
    except (urllib.error.URLError, OSError) as exc:
        raise ComponentFailed(f"cleanup cannot reach the CRM at {url}: {exc}") from None


def _pages(crm_url: str, path: str, timeout: float) -> list[dict[str, Any]]:
    """Return every item of a paged CRM list, one page at a time."""
    items, cursor = [], None
    while True:
        query = urlencode({"limit": PAGE, **({"cursor": cursor} if cursor else {})})
        status, page = _call("GET", f"{crm_url}{path}?{query}", timeout)
        if status != 200:
            raise ComponentFailed(f"cleanup: the CRM answered {status} to GET {path}; try again when it is healthy")
        items.extend(page["items"])
        cursor = page.get("next_cursor")
        if not cursor:
            return items


def marked_customers(crm_url: str, timeout: float = 10.0) -> list[dict[str, Any]]:
    """Return the customers load created (read page by page through the API)."""
    return [c for c in _pages(crm_url, "/api/customers", timeout) if is_marked_customer(c)]


def cleanup(crm_url: str, timeout: float = 10.0) -> CleanupResult:
    """Delete every marked customer with its deals and activities; return what was removed."""
    customers = deals = activities = 0
    for customer in marked_customers(crm_url, timeout):
        path = f"/api/customers/{quote(customer['customer_id'])}"
        owned = [len(_pages(crm_url, f"{path}/{kind}", timeout)) for kind in ("deals", "activities")]
        status, _ = _call("DELETE", f"{crm_url}{path}", timeout)
        if status == 404:
            continue  # deleted meanwhile (another cleanup): nothing left to do
        if status != 204:
            raise ComponentFailed(f"cleanup: the CRM answered {status} to DELETE {path}; run --cleanup again")
        customers, deals, activities = customers + 1, deals + owned[0], activities + owned[1]
    return CleanupResult(customers, deals, activities)
