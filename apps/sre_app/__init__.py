"""sre-app: the workshop's main application (Flask on Gunicorn, port 8080), with a deliberate memory leak."""
