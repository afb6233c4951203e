"""Seed the CRM tables with realistic sample data; running it again changes nothing.

    python -m crm_app.init_sample_data            # about 50 customers with deals and activities
    python -m crm_app.init_sample_data --count 10000

Ids and contents are derived from the customer's number and a fixed random seed, and only items that
do not exist yet are written, so a second run writes nothing and never undoes a user's edits.
Uses only actions the instance role grants (Scan, BatchWriteItem).
"""

from __future__ import annotations

import argparse
import logging
import random
import sys
import unicodedata
from datetime import UTC, datetime, timedelta
from typing import Any

from appkit.aws import BATCH_CONFIG

from .config import Settings
from .exceptions import DatabaseError
from .schemas import ACTIVITY_TYPES, CUSTOMER_STATUSES, DEAL_STAGES
from .store import ACTIVITY, CUSTOMER, DEAL, Entity, Store, to_item

logger = logging.getLogger(__name__)

FIRST = ["Olivia", "Liam", "Emma", "Noah", "Ava", "Mateo", "Sofia", "Lucas", "Amara", "Hiroshi", "Priya", "Jonas",
         "Fatima", "Diego", "Chloe", "Kwame", "Ingrid", "Ravi", "Elena", "Tomasz", "Aisha", "Marco", "Yuki", "Nora",
         "Samuel", "Leila", "Felix", "Maya", "Omar", "Hannah", "Wei", "Isabel", "Arjun", "Clara", "Mehmet", "Zoe"]
LAST = ["Johnson", "Garcia", "Müller", "Nguyen", "Okafor", "Rossi", "Tanaka", "Silva", "Kowalski", "Patel",
        "Andersson", "Dubois", "Haddad", "Kim", "O'Brien", "Fernández", "Novak", "Schmidt", "Mensah", "Larsen",
        "Costa", "Yilmaz", "Chen", "Walker", "Ivanova", "Moreau", "Singh", "Brennan", "Sato", "Lindqvist"]
COMPANIES = ["Northwind Traders", "Contoso Ltd", "Globex", "Initech", "Umbrella Health", "Stark Logistics",
             "Blue Yonder Airlines", "Fabrikam", "Tailspin Toys", "Wide World Importers", "Litware", "Adatum",
             "Proseware", "Woodgrove Bank", "Coho Winery", "Alpine Ski House", "Lucerne Publishing",
             "Margie's Travel", "Fourth Coffee", "Trey Research"]
DEAL_TITLES = ["Annual subscription", "Platform upgrade", "Support renewal", "Pilot project", "Data migration",
               "Team licences", "Onboarding package", "Enterprise plan", "Security review", "Analytics add-on"]
SUBJECTS = {"call": ["Discovery call", "Pricing follow-up", "Quarterly check-in"],
            "email": ["Sent proposal", "Shared case study", "Answered contract questions"],
            "meeting": ["Demo with the team", "On-site workshop", "Executive briefing"],
            "note": ["Budget approved for Q3", "Prefers email contact", "Evaluating a competitor"],
            "task": ["Prepare quote", "Send invoice", "Schedule renewal review"]}
EPOCH = datetime(2025, 1, 6, 9, 0, tzinfo=UTC)  # fixed, so every run derives the same timestamps


def customer_records(number: int) -> tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]]]:
    """Return customer `number` with its deals and activities, the same on every run."""
    rng = random.Random(number)  # noqa: S311 - sample data, not security
    first, last = rng.choice(FIRST), rng.choice(LAST)
    company = rng.choice(COMPANIES)
    created = EPOCH + timedelta(days=rng.randrange(300), minutes=rng.randrange(600))
    customer_id = f"cust-{number:06d}"
    customer = {
        "customer_id": customer_id, "name": f"{first} {last}", "name_lower": f"{first} {last}".lower(),
        "company": company, "email": ascii_email(first, last, company),
        "phone": f"+1 555 {rng.randrange(100, 1000)} {rng.randrange(1000, 10000)}",
        "status": rng.choice(CUSTOMER_STATUSES), "created_at": created.isoformat(timespec="seconds"),
    }
    deals = [{
        "deal_id": f"deal-{number:06d}{n:02d}", "customer_id": customer_id, "title": rng.choice(DEAL_TITLES),
        "amount": float(rng.randrange(10, 2000) * 50), "stage": rng.choice(DEAL_STAGES),
        "close_date": (created + timedelta(days=rng.randrange(30, 200))).date().isoformat(),
        "created_at": (created + timedelta(days=n)).isoformat(timespec="seconds"),
    } for n in range(rng.randrange(0, 4))]
    activities = []
    for n in range(rng.randrange(1, 5)):
        kind = rng.choice(ACTIVITY_TYPES)
        when = (created + timedelta(days=n * 7, hours=rng.randrange(8))).isoformat(timespec="seconds")
        activities.append({"activity_id": f"act-{number:06d}{n:02d}", "customer_id": customer_id, "type": kind,
                           "subject": rng.choice(SUBJECTS[kind]), "occurred_at": when, "created_at": when})
    return customer, deals, activities


def ascii_email(first: str, last: str, company: str) -> str:
    """Return first.last@company.example in plain ASCII (Müller -> muller, O'Brien -> obrien)."""
    local = unicodedata.normalize("NFKD", f"{first}.{last}").encode("ascii", "ignore").decode()
    domain = company.split()[0].replace("'", "")
    return f"{local}@{domain}.example".lower().replace("'", "")


def existing_ids(store: Store, entity: Entity) -> set[str]:
    """Return every id in the entity's table (a keys-only Scan)."""
    ids: set[str] = set()
    kwargs: dict[str, Any] = {"TableName": store.tables[entity], "ProjectionExpression": "#k",
                              "ExpressionAttributeNames": {"#k": entity.key}}
    while True:
        response = store.call("scan", **kwargs)
        ids.update(item[entity.key]["S"] for item in response.get("Items", []))
        if "LastEvaluatedKey" not in response:
            return ids
        kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]


def seed(store: Store, count: int) -> dict[str, int]:
    """Write the missing sample items for customers 1..count; return how many of each were written."""
    records: dict[Entity, list[dict[str, Any]]] = {CUSTOMER: [], DEAL: [], ACTIVITY: []}
    for number in range(1, count + 1):
        customer, deals, activities = customer_records(number)
        records[CUSTOMER].append(customer)
        records[DEAL].extend(deals)
        records[ACTIVITY].extend(activities)
    written = {}
    # Children first: a customer only appears once its deals and activities are in place.
    for entity in (DEAL, ACTIVITY, CUSTOMER):
        have = existing_ids(store, entity)
        missing = [r for r in records[entity] if r[entity.key] not in have]
        for start in range(0, len(missing), 25):
            chunk = missing[start:start + 25]
            store.batch_write(store.tables[entity], [{"PutRequest": {"Item": to_item(r)}} for r in chunk])
        written[entity.name] = len(missing)
    return written


def main(argv: list[str] | None = None) -> int:
    """Seed the tables named by the environment; print what was written."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=50, help="number of customers (default 50)")
    args = parser.parse_args(argv)
    if not 1 <= args.count <= 1_000_000:
        parser.error("--count must be between 1 and 1000000")
    logging.basicConfig(level=logging.WARNING)
    try:
        written = seed(Store(Settings.from_env(), BATCH_CONFIG), args.count)
    except DatabaseError as exc:
        print(f"init_sample_data: {exc}", file=sys.stderr)
        return 1
    print("written: " + ", ".join(f"{entity}: {n}" for entity, n in written.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
