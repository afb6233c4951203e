"""Gunicorn settings for crm-app, the same on AWS (systemd) and in the local stack.

Environment: PORT (8080), BIND_ADDRESS (0.0.0.0), WEB_CONCURRENCY (2 workers, as the spec says),
CRM_APP_RUNTIME_DIR (where workers share the fault control file; systemd's RuntimeDirectory on AWS).
"""

import os
import shutil
import tempfile

bind = f"{os.environ.get('BIND_ADDRESS', '0.0.0.0')}:{os.environ.get('PORT', '8080')}"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_class = "sync"
# Longer than boto3's worst case (2 s connect + 5 s read, 3 attempts) so a slow DynamoDB gives a 503
# from the app rather than a worker killed mid-request.
timeout = 30
graceful_timeout = 10
accesslog = None  # the app writes its own JSON access lines
proc_name = "crm-app"
control_socket_disable = True  # one control socket per user would clash between the apps
_made_runtime_dir: list[str] = []  # the runtime directory on_starting made for this master alone


def on_starting(server):
    """Prepare the runtime directory the workers share, with no run-time faults left from a last run."""
    from appkit import chaos

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
