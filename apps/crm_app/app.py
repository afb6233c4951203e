"""crm-app: the workshop's CRM demo, on the public ALB's port 8080.

JSON API under /api (OpenAPI document at /openapi.json), a server-rendered UI everywhere else, and
/health for the target group. When DynamoDB fails, the API answers 503 JSON and the UI an error page
that says "database error" with the AWS error code; the app stays up and recovers with DynamoDB.
"""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Any

from apiflask import APIFlask
from flask import render_template, request
from werkzeug.exceptions import HTTPException

from appkit import chaos, drain, jsonlog, requestlog
from appkit.admission import RETRY_AFTER_SECONDS, Admission

from . import guards
from .api import api
from .config import Settings
from .context import STORE_KEY, store
from .exceptions import CRMError, DatabaseError, InvalidField
from .store import Store
from .ui import ui

logger = logging.getLogger(__name__)


def create_app(settings: Settings | None = None) -> APIFlask:
    """Build the CRM from `settings`; without them, from the environment (the only place it is read)."""
    settings = settings or Settings.from_env()
    app = APIFlask(__name__, title="SRE Workshop CRM", version="2.0", docs_path=None)
    # No `servers` entry: the document is served by the CRM itself, so relative URLs are right everywhere.
    app.config.update(VALIDATION_ERROR_STATUS_CODE=422, JSON_SORT_KEYS=False, AUTO_SERVERS=False)
    app.json.sort_keys = False
    jsonlog.configure(settings.log_file)
    logging.getLogger("botocore").setLevel(logging.WARNING)
    app.extensions[STORE_KEY] = Store(settings)
    app.register_blueprint(api)
    app.register_blueprint(ui)
    app.add_url_rule("/health", "health", health)
    chaos.install(app, settings.fault_control_token, settings.runtime_dir)
    app.register_error_handler(CRMError, crm_error)
    app.register_error_handler(HTTPException, http_error)
    app.spec_processor(tidy_openapi)
    guards.install(app)
    # The load balancer's check and the instance's own fault control never wait behind the users' requests:
    # with every slot held by slow requests, putting a delay back must still be possible.
    app.wsgi_app = Admission(app.wsgi_app, settings.max_active, settings.max_waiting, settings.queue_seconds,
                             guards.MAX_BODY_BYTES, exempt=("/health", "/static/", "/admin/"))
    requestlog.install(app, settings.log_file, "crm_app.access")
    drain.install(app)  # outermost: it drains the server's own stream
    return app


# Answers any operation may give that no view returns: Gunicorn's own 414 (an HTML page) for a request line
# over 4 KiB, and the 503 of a database failure or of a full admission queue, with Retry-After.
COMMON_ANSWERS = {
    "414": {"description": "Request line longer than 4 KiB (answered by Gunicorn as a page, not JSON)"},
    "503": {"description": "DynamoDB failed or the CRM is at capacity: try again after Retry-After seconds",
            "headers": {"Retry-After": {"required": True, "schema": {"type": "integer", "minimum": 0}}},
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/HTTPError"}}}},
}


def tidy_openapi(spec: dict[str, Any]) -> dict[str, Any]:
    """Make the generated document valid and complete: numeric bounds as numbers, request bodies
    required, and the answers every operation may give."""
    for schema in spec.get("components", {}).get("schemas", {}).values():
        for prop in schema.get("properties", {}).values():
            for bound in ("minimum", "maximum"):  # a Decimal field's bounds, which JSON would write as text
                if isinstance(prop.get(bound), Decimal):
                    prop[bound] = int(prop[bound]) if prop[bound] == prop[bound].to_integral() else float(prop[bound])
    for operations in spec.get("paths", {}).values():
        for operation in operations.values():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            if "requestBody" in operation:
                operation["requestBody"]["required"] = True
            for code, answer in COMMON_ANSWERS.items():
                operation["responses"].setdefault(code, answer)
    return spec


def health():
    """Answer the target group's check; with ?deep=1 also read each table."""
    if request.args.get("deep") not in ("1", "true", "yes"):
        return {"status": "healthy"}
    tables = store().ping()
    healthy = all(state == "ok" for state in tables.values())
    return {"status": "healthy" if healthy else "unhealthy", "checks": {"dynamodb": tables}}, (
        200 if healthy else 503)


def wants_json() -> bool:
    """True for API calls (and health), which get JSON errors; the UI gets HTML pages."""
    return request.path.startswith(("/api/", "/health", "/openapi"))


def crm_error(exc: CRMError):
    """Answer the CRM's own errors as JSON for the API or as a page for the UI."""
    body: dict[str, Any] = {"error": exc.code, "message": str(exc)}
    if isinstance(exc, InvalidField):
        body.update(field=exc.field, detail={exc.location: {exc.field: [exc.message]}})
    headers = {}
    if isinstance(exc, DatabaseError):
        body.update(message="database error", code=exc.aws_code)
        headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    if wants_json():
        return body, exc.status, headers
    heading = "database error" if isinstance(exc, DatabaseError) else "Not found" if exc.status == 404 else "Error"
    return render_template("error.html", heading=heading, message=body["message"] if heading != "database error"
                           else "The CRM could not reach its database. Try again shortly.",
                           code=getattr(exc, "aws_code", None)), exc.status, headers


def http_error(exc: HTTPException):
    """Answer HTTP errors as JSON for the API and as pages for the UI, keeping their headers (Allow on 405)."""
    headers = [(k, v) for k, v in exc.get_headers() if k.lower() != "content-type"]
    if wants_json():
        return {"error": exc.name.lower().replace(" ", "_"), "message": exc.description}, exc.code or 500, headers
    return render_template("error.html", heading=f"{exc.code} {exc.name}", message=exc.description,
                           code=None), exc.code or 500, headers
