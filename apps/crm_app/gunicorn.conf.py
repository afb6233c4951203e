"""Gunicorn settings for crm-app, the same on AWS (systemd) and in the local stack.

Environment: PORT (8080), BIND_ADDRESS (0.0.0.0), WEB_CONCURRENCY (2 workers, as the spec says),
CRM_APP_RUNTIME_DIR (where workers share the fault control file; systemd's RuntimeDirectory on AWS),
CRM_THREADS (64 threads per worker).
"""

import os
import shutil
import tempfile

bind = f"{os.environ.get('BIND_ADDRESS', '0.0.0.0')}:{os.environ.get('PORT', '8080')}"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
# Threads, not sync workers: a CRM request mostly waits on DynamoDB. With two sync workers, 50 clients
# queue in the listen backlog and the load balancer's health check waits behind them until it times out,
# so the target flaps. Here each worker admits a few requests at a time and queues a bounded number for a
# bounded time (crm_app/config.py: CRM_MAX_ACTIVE, CRM_MAX_WAITING, CRM_QUEUE_SECONDS; appkit/admission.py).
# Waiting threads cost no CPU, so there are enough of them for the whole queue plus spares: requests wait
# in the admission queue, which has a time limit, rather than in the thread pool's, which has none, and a
# spare thread answers /health at once. Past the queue, the overflow gets a fast 503 with Retry-After.
threads = int(os.environ.get("CRM_THREADS", "64"))
# Longer than the ALB's 60 s idle timeout, as AWS advises: the ALB, not the target, closes idle connections,
# so it never sends a request on a connection the target is closing (a 502).
keepalive = 75
# Longer than a DynamoDB call's deadline (appkit/aws.py: 2 s) plus the admission queue (2 s).
timeout = 30
graceful_timeout = 10
accesslog = None  # the app writes its own JSON access lines
proc_name = "crm-app"
control_socket_disable = True  # one control socket per user would clash between the apps
_made_runtime_dir: list[str] = []  # the runtime directory on_starting made for this master alone


def on_starting(server):
    """Check the settings once, with one clear line, before any worker starts; then prepare the runtime
    directory the workers share, with no run-time faults left from a last run."""
    import sys

    from appkit import chaos
    from crm_app.config import ConfigError, Settings

    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        server.log.error("crm-app: %s", exc)
        sys.exit(4)
    if settings.max_active + settings.max_waiting >= threads:
        server.log.error("crm-app: CRM_MAX_ACTIVE + CRM_MAX_WAITING must be below CRM_THREADS (%d)", threads)
        sys.exit(4)
    runtime_dir = os.environ.get("CRM_APP_RUNTIME_DIR")
    if not runtime_dir:  # a private one for this master alone, removed with it
        runtime_dir = os.environ["CRM_APP_RUNTIME_DIR"] = tempfile.mkdtemp(prefix="crm-app-")
        _made_runtime_dir.append(runtime_dir)
    os.makedirs(runtime_dir, mode=0o700, exist_ok=True)  # systemd's RuntimeDirectory makes it on AWS; locally we do
    chaos.clear_control_file(runtime_dir)  # a fresh start has no run-time faults, as on AWS (RuntimeDirectory)


def on_exit(server):
    """Remove a runtime directory this master made for itself."""
    for path in _made_runtime_dir:
        shutil.rmtree(path, ignore_errors=True)


def post_worker_init(worker):
    """Make the worker's DynamoDB client before it takes requests: building one costs a CPU-heavy second,
    which would otherwise land on the first requests and on the health checks waiting beside them."""
    worker.wsgi.extensions["crm_store"].client()
