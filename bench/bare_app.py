"""The baseline for bench_app_overhead: a bare Flask JSON endpoint with nothing else."""

from datetime import datetime

from flask import Flask

app = Flask(__name__)


@app.get("/")
def index():
    """Answer the same shape of JSON as sre-app, without logging, metrics or the leak."""
    return {"message": "SRE Workshop App", "timestamp": datetime.now().isoformat(), "memory_leak_size_mb": 0}
