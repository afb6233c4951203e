"""crm-app: the workshop's CRM demo (Flask/APIFlask on Gunicorn, 2 workers, port 8080) over three tables."""
