"""crm-app as deployed at /opt/crm-app/app.py: the Gunicorn target (`app:app`).

The application itself is the crm_app package beside this file.
"""

from crm_app.wsgi import app  # noqa: F401 - re-exported for Gunicorn
