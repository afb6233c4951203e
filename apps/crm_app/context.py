"""The objects a request reaches through the current app (one per app, made by create_app)."""

from __future__ import annotations

from flask import current_app

from .store import Store

STORE_KEY = "crm_store"


def store() -> Store:
    """Return the current app's Store."""
    return current_app.extensions[STORE_KEY]
