"""Gunicorn settings for sre-app, the same on AWS (systemd) and in the local stack.

Environment: PORT (8080), BIND_ADDRESS (0.0.0.0), WEB_CONCURRENCY (2 workers), SRE_APP_RUNTIME_DIR
(where workers share the leak and fault control files and Prometheus files; systemd's RuntimeDirectory on
AWS).
"""

import os
import shutil
import sys
import tempfile

bind = f"{os.environ.get('BIND_ADDRESS', '0.0.0.0')}:{os.environ.get('PORT', '8080')}"
# Two sync workers: a t3.micro has 2 vCPUs, and the leak is per worker, as a real one would be.
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_class = "sync"
timeout = 30
# Long enough for the final metrics flush (METRICS_FINAL_FLUSH_SECONDS, 3 s by default) on SIGTERM.
graceful_timeout = 20
accesslog = None  # the app writes its own JSON access lines
proc_name = "sre-app"
control_socket_disable = True  # one control socket per user would clash between the apps

_made_runtime_dir: str | None = None  # a temporary runtime directory this master made, removed on exit


def on_starting(server):
    """Check the settings, then prepare the runtime directory before any worker imports prometheus_client."""
    global _made_runtime_dir
    from appkit import chaos
    from sre_app.config import ConfigError, Settings

    try:
        Settings.from_env()
    except ConfigError as exc:  # one clear line in the log instead of a traceback per worker
        server.log.error("sre-app: %s", exc)
        sys.exit(4)
    runtime_dir = os.environ.get("SRE_APP_RUNTIME_DIR")
    if not runtime_dir:  # started by hand, outside systemd and the local stack
        runtime_dir = _made_runtime_dir = tempfile.mkdtemp(prefix="sre-app-")
    os.makedirs(runtime_dir, mode=0o700, exist_ok=True)  # systemd's RuntimeDirectory makes it on AWS; locally we do
    os.environ["SRE_APP_RUNTIME_DIR"] = runtime_dir
    chaos.clear_control_file(runtime_dir)  # a fresh start has no run-time faults, as on AWS (RuntimeDirectory)
    # The Prometheus files belong to this app's runtime directory (tmpfs on AWS), so one stack's cleanup
    # never touches another's. Files left by a killed master would be added to this run's counters: start
    # empty, as prometheus_client requires.
    prom_dir = os.path.join(runtime_dir, "prometheus")
    shutil.rmtree(prom_dir, ignore_errors=True)
    os.makedirs(prom_dir, mode=0o700)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = prom_dir


def on_exit(server):
    """Remove the Prometheus files with the master, and the runtime directory if this master made it."""
    shutil.rmtree(os.environ.get("PROMETHEUS_MULTIPROC_DIR", ""), ignore_errors=True)
    if _made_runtime_dir:
        shutil.rmtree(_made_runtime_dir, ignore_errors=True)


def post_worker_init(worker):
    """Start the worker's ticker and metrics flusher (threads must start after the fork)."""
    worker.wsgi.extensions["sre_app"].start()


def worker_exit(server, worker):
    """Flush the worker's metrics to DynamoDB before it exits."""
    runtime = getattr(worker, "wsgi", None) and worker.wsgi.extensions.get("sre_app")
    if runtime:
        runtime.stop()


def child_exit(server, worker):
    """Drop a dead worker's live gauges from the Prometheus files."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
