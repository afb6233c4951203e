"""Gunicorn's target: `gunicorn -c crm_app/gunicorn.conf.py crm_app.wsgi:app`."""
from .app import create_app

app = create_app()
