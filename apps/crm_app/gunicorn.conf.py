"""Gunicorn settings for crm-app, the same on AWS (systemd) and in the local stack.

Environment: PORT (8080), BIND_ADDRESS (0.0.0.0), WEB_CONCURRENCY (2 workers, as the spec says).
"""

import os

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
