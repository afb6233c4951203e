"""How data made by load is recognised: a marker in a field of every record the flows create.

Customers created by load have an email at MARKER_DOMAIN (`.invalid` is reserved: never a real mailbox);
their deals and activities (the flows only write to those customers) have titles and subjects starting
with MARKER_PREFIX. Cleanup deletes the marked customers, and the CRM deletes their deals and activities
with them, so it removes exactly what load made.
"""

from __future__ import annotations

import secrets
from typing import Any

MARKER_DOMAIN = "load.sre-workshop.invalid"
MARKER_PREFIX = "[load]"
MARKER_COMPANY = "sre-workshop load"


def is_marked_customer(customer: dict[str, Any]) -> bool:
    """True for a customer created by load (its email is at the marker domain)."""
    return str(customer.get("email", "")).lower().endswith("@" + MARKER_DOMAIN)


def new_customer() -> dict[str, str]:
    """Return the fields of a fresh marked customer."""
    tag = secrets.token_hex(4)
    return {"name": f"Load Visitor {tag}", "company": MARKER_COMPANY, "email": f"visitor-{tag}@{MARKER_DOMAIN}",
            "status": "lead"}


def marked(text: str) -> str:
    """Return `text` with the marker in front (deal titles, activity subjects)."""
    return f"{MARKER_PREFIX} {text}"
