"""Gunicorn's target: `gunicorn -c sre_app/gunicorn.conf.py sre_app.wsgi:app`."""
from .app import create_app

app = create_app()
