"""sre-app as deployed at /opt/sre-app/app.py: the Gunicorn target (`app:app`).

The application itself is the sre_app package beside this file (sre_app/app.py, and the deliberate
memory leak in sre_app/leak.py).
"""

from sre_app.wsgi import app  # noqa: F401 - re-exported for Gunicorn
