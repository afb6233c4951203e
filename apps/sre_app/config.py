"""sre-app settings, read from the environment in this one place.

| variable                  | default                  | meaning                                           |
|---------------------------|--------------------------|---------------------------------------------------|
| AWS_REGION                | us-east-1                | region of the metrics table                       |
| METRICS_TABLE             | ApplicationMetricsTable  | DynamoDB table for the app's interval metrics     |
| AWS_ENDPOINT_URL          | (AWS)                    | read by boto3 itself: emulator or fault endpoint  |
| LOG_FILE                  | (stderr)                 | JSON-lines log file for the CloudWatch agent      |
| LEAK_MODE                 | request                  | off, request (KB per GET /) or time (MB/minute)   |
| LEAK_KB_PER_REQUEST       | 16                       | leak per GET / in request mode                    |
| LEAK_MB_PER_MINUTE        | 1                        | leak rate in time mode                            |
| LEAK_CAP_MB               | 200                      | hard cap per worker (t3.micro has 1 GB)           |
| FAULT_CONTROL_TOKEN       | (unset: control is off)  | token the /admin endpoints require                |
| SRE_APP_RUNTIME_DIR       | (a temporary directory)  | leak and fault control files; Prometheus files    |
| PROMETHEUS_MULTIPROC_DIR  | (set by gunicorn.conf)   | <SRE_APP_RUNTIME_DIR>/prometheus under Gunicorn   |
| METRICS_INTERVAL_SECONDS  | 10                       | length of one metrics interval                    |
| METRICS_BUFFER_MAX        | 10000                    | intervals kept while DynamoDB is unreachable      |
| METRICS_FINAL_FLUSH_SECONDS | 3                      | longest a stopping worker tries to write metrics  |

The runtime directory belongs to one running app: systemd's RuntimeDirectory (/run/sre-app, tmpfs) on
AWS, <state-dir>/run/sre-app in the local stack. Deriving the Prometheus directory from it means that
stopping one stack can never remove the files of another.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from appkit.envconfig import ConfigError, number

LEAK_MODES = ("off", "request", "time")


@dataclass(frozen=True)
class Settings:
    """Everything sre-app reads from its environment."""

    region: str = "us-east-1"
    metrics_table: str = "ApplicationMetricsTable"
    log_file: str | None = None
    leak_mode: str = "request"
    leak_kb_per_request: float = 16.0
    leak_mb_per_minute: float = 1.0
    leak_cap_mb: float = 200.0
    fault_control_token: str | None = None
    runtime_dir: str | None = None
    prometheus_dir: str | None = None
    metrics_interval_seconds: float = 10.0
    metrics_buffer_max: int = 10_000
    metrics_final_flush_seconds: float = 3.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Build settings from `env` (default: os.environ), failing with the variable's name."""
        env = os.environ if env is None else env
        settings = cls(
            region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or cls.region,
            metrics_table=env.get("METRICS_TABLE", cls.metrics_table),
            log_file=env.get("LOG_FILE") or None,
            leak_mode=env.get("LEAK_MODE", cls.leak_mode),
            leak_kb_per_request=number(env, "LEAK_KB_PER_REQUEST", cls.leak_kb_per_request),
            leak_mb_per_minute=number(env, "LEAK_MB_PER_MINUTE", cls.leak_mb_per_minute),
            leak_cap_mb=number(env, "LEAK_CAP_MB", cls.leak_cap_mb),
            fault_control_token=env.get("FAULT_CONTROL_TOKEN") or None,
            runtime_dir=env.get("SRE_APP_RUNTIME_DIR") or None,
            prometheus_dir=env.get("PROMETHEUS_MULTIPROC_DIR") or None,
            metrics_interval_seconds=number(env, "METRICS_INTERVAL_SECONDS", cls.metrics_interval_seconds),
            metrics_buffer_max=int(number(env, "METRICS_BUFFER_MAX", cls.metrics_buffer_max)),
            metrics_final_flush_seconds=number(env, "METRICS_FINAL_FLUSH_SECONDS", cls.metrics_final_flush_seconds),
        )
        if settings.leak_mode not in LEAK_MODES:
            raise ConfigError(f"LEAK_MODE must be one of {', '.join(LEAK_MODES)}, not {settings.leak_mode!r}")
        if settings.metrics_interval_seconds < 1:
            raise ConfigError("METRICS_INTERVAL_SECONDS must be at least 1")
        return settings

