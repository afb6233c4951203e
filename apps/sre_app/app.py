"""sre-app: the workshop's main application, behind nginx and the private ALB.

GET /        -> {"message": "SRE Workshop App", "timestamp": ..., "memory_leak_size_mb": ...}
GET /health  -> {"status": "healthy"} without touching DynamoDB (the target-group check);
                /health?deep=1 also reads the metrics table and reports each dependency.
GET /metrics -> Prometheus text format, all workers.
/admin/leak  -> the leak's fault control; only exists when FAULT_CONTROL_TOKEN is set, and nginx denies
                /admin/ so it is never reachable through the public entry point.
/admin/faults -> latency, error-rate and health faults (appkit.chaos), under the same token.
"""

from __future__ import annotations

import hmac
import logging
import os
import time
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from flask import Blueprint, Flask, Response, current_app, jsonify, request
from werkzeug.exceptions import HTTPException

from appkit import chaos, drain, jsonlog, requestlog

from .config import Settings
from .leak import MIB, LeakSettingsError, rss_bytes
from .runtime import Runtime

logger = logging.getLogger(__name__)

main = Blueprint("main", __name__)
admin = Blueprint("admin", __name__, url_prefix="/admin")


def create_app(settings: Settings | None = None) -> Flask:
    """Build the app from `settings`; without them, from the environment (the only place it is read)."""
    settings = settings or Settings.from_env()
    app = Flask(__name__)
    app.json.sort_keys = False
    jsonlog.configure(settings.log_file)
    app.extensions["sre_app"] = rt = Runtime(settings)
    app.register_blueprint(main)
    if settings.fault_control_token:
        app.register_blueprint(admin)
    chaos.install(app, settings.fault_control_token, settings.runtime_dir)
    requestlog.install(app, settings.log_file, "sre_app.access", rt.observe)
    drain.install(app)  # outermost: it drains the server's own stream
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _server_error)
    return app


def runtime() -> Runtime:
    """Return the current app's Runtime."""
    return current_app.extensions["sre_app"]


@main.get("/")
def index():
    """Answer the workshop's JSON, leaking as configured."""
    rt = runtime()
    rt.leak.on_request()
    return {
        "message": "SRE Workshop App",
        "timestamp": datetime.now(UTC).isoformat(),  # with its offset: logs and metrics are UTC too
        "memory_leak_size_mb": rt.leak.size_mb,
        "worker_pid": rt.pid,
    }


@main.get("/health")
def health():
    """Answer the load balancer's check; with ?deep=1 also check DynamoDB."""
    if request.args.get("deep") not in ("1", "true", "yes"):
        return {"status": "healthy"}
    check = _check_dynamodb()
    healthy = check["status"] == "ok"
    body = {"status": "healthy" if healthy else "unhealthy", "checks": {"dynamodb": check}}
    return body, 200 if healthy else 503


def _check_dynamodb() -> dict[str, Any]:
    """Read one (absent) item of the metrics table: proves reachability and GetItem permission."""
    rt = runtime()
    started = time.perf_counter()
    try:
        rt.client().get_item(TableName=rt.settings.metrics_table,
                             Key={"metric_id": {"S": "__healthcheck__"}, "timestamp": {"N": "0"}})
    except ClientError as exc:
        return {"status": "error", "table": rt.settings.metrics_table, "code": exc.response["Error"]["Code"]}
    except BotoCoreError as exc:
        return {"status": "error", "table": rt.settings.metrics_table, "code": type(exc).__name__}
    return {"status": "ok", "table": rt.settings.metrics_table,
            "latency_ms": round((time.perf_counter() - started) * 1000, 2),
            "metrics_buffered": len(rt.recorder.buffer)}


@main.get("/metrics")
def metrics():
    """Expose Prometheus metrics of every worker."""
    return Response(runtime().prom.exposition(), mimetype="text/plain; version=0.0.4")


@admin.before_request
def _require_token():
    """Refuse fault control without the configured token."""
    expected = runtime().settings.fault_control_token or ""
    given = request.headers.get("X-Fault-Token", "")
    if not hmac.compare_digest(given.encode(), expected.encode()):
        return {"error": "unauthorized", "message": "a valid X-Fault-Token header is required"}, 401
    return None


@admin.get("/leak")
def leak_state():
    """Show the leak settings and this worker's retained memory."""
    leak = runtime().leak
    return {"settings": leak.settings.to_dict(),
            "worker": {"pid": os.getpid(), "memory_leak_size_mb": leak.size_mb,
                       "rss_mb": round(rss_bytes() / MIB, 2)}}


@admin.put("/leak")
def leak_update():
    """Change the leak settings of every worker (within one tick)."""
    body = request.get_json(silent=True)
    try:
        settings = runtime().leak.change(lambda latest: latest.updated(body if body is not None else []))
    except LeakSettingsError as exc:
        return {"error": "invalid_field", "field": exc.field, "message": str(exc)}, 400
    return {"settings": settings.to_dict(), "applies_to": "all workers within 1 s"}


@admin.post("/leak/release")
def leak_release():
    """Free the leaked memory in every worker (within one tick)."""
    settings = runtime().leak.change(lambda latest: replace(latest, generation=latest.generation + 1))
    return {"settings": settings.to_dict(), "applies_to": "all workers within 1 s"}


def _http_error(exc: HTTPException):
    """Answer HTTP errors (404, 405, ...) as JSON."""
    return {"error": exc.name.lower().replace(" ", "_"), "message": exc.description}, exc.code or 500


def _server_error(exc: Exception):
    """Log an unexpected error with its traceback and answer a JSON 500."""
    logger.exception("unhandled error", extra={"request_id": request.environ.get("request_id")})
    return jsonify(error="internal_error", message="internal server error"), 500
