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
# Long enough for the final metrics flush (10 s at most) on SIGTERM.
graceful_timeout = 20
accesslog = None  # the app writes its own JSON access lines
proc_name = "sre-app"
control_socket_disable = True  # one control socket per user would clash between the apps


def on_starting(server):
    """Check the settings, then prepare the runtime directory before any worker imports prometheus_client."""
    from appkit import chaos
    from sre_app.config import ConfigError, Settings

    try:
        Settings.from_env()
    except ConfigError as exc:  # one clear line in the log instead of a traceback per worker
        server.log.error("sre-app: %s", exc)
        sys.exit(4)
    runtime_dir = os.environ.get("SRE_APP_RUNTIME_DIR") or tempfile.mkdtemp(prefix="sre-app-")
    os.makedirs(runtime_dir, mode=0o700, exist_ok=True)  # systemd's RuntimeDirectory makes it on AWS; locally we do
    os.environ["SRE_APP_RUNTIME_DIR"] = runtime_dir
    chaos.clear_control_file(runtime_dir)  # a fresh start has no run-time faults, as on AWS (RuntimeDirectory)
    # Workers write these memory-mapped files on every request: keep them in RAM (tmpfs), never on a disk
    # whose writeback would fault on the pages again and again.
    shm = "/dev/shm" if os.path.isdir("/dev/shm") else None  # noqa: S108 - mkdtemp makes a private 0700 dir
    prom_dir = tempfile.mkdtemp(prefix="sre-app-prometheus-", dir=shm)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = prom_dir


def on_exit(server):
    """Remove the Prometheus files with the master."""
    shutil.rmtree(os.environ.get("PROMETHEUS_MULTIPROC_DIR", ""), ignore_errors=True)


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
