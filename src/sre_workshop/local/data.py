"""The local stack's DynamoDB data: the tool's own client, the tables, the snapshot and the sample data.

The tool's own calls go straight to the engine, never through the endpoint proxy where faults are
injected. An engine that keeps its tables in memory (moto) is saved to data/dynamodb.json before it
stops and restored from it after it starts; a durable engine (dynalite) imports that snapshot once.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from ..errors import ComponentFailed, StateError
from ..tables import create_tables
from . import snapshot
from .components import LOCAL_CREDENTIALS, app_env, engine_url
from .engines import wait_engine_ready
from .process import tail
from .records import StackRecords

# The tool's own DynamoDB calls: a few quick attempts, never an unbounded wait.
TOOL_CLIENT_CONFIG = Config(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=2, read_timeout=10)


class StackData(StackRecords):
    """The stack's tables and their data, kept between runs."""

    @property
    def snapshot_path(self) -> Path:
        """Where the DynamoDB data is kept between runs."""
        return self.settings.data_dir / "dynamodb.json"

    def dynamodb_client(self):
        """Return a DynamoDB client for the engine itself: the tool's own calls (tables, snapshot, seeding)
        never pass the endpoint proxy, where faults are injected."""
        return boto3.session.Session(**{k.lower(): v for k, v in LOCAL_CREDENTIALS.items()}).client(
            "dynamodb", region_name=self.settings.region, endpoint_url=engine_url(self.settings),
            config=TOOL_CLIENT_CONFIG)

    def _prepare_data(self, timeout: float) -> None:
        """Create the five tables; on a new store, restore the snapshot (moto's, or one left from moto before
        a durable engine took over: imported once) or seed sample data on a first run."""
        if "dynamodb" in self.components:
            self._wait_engine(timeout)
        client = self.dynamodb_client()
        try:
            created = create_tables(client)
        except (BotoCoreError, ClientError) as exc:
            raise ComponentFailed(f"the DynamoDB engine at {engine_url(self.settings)} does not work: {exc}") from exc
        if not created:
            return
        restored = snapshot.restore(client, self.snapshot_path)
        if restored:
            self.progress(f"restored {sum(restored.values())} items from {self.snapshot_path}")
            engine = self.components.get("dynamodb")
            if engine is not None and not engine.data:  # a durable engine keeps them from now on
                self.snapshot_path.rename(self.snapshot_path.with_suffix(".json.imported"))
            return
        self.seed()

    def _wait_engine(self, timeout: float) -> None:
        """Wait until the engine answers a DynamoDB call (an open port is not enough for dynalite)."""
        record = self.record("dynamodb")
        if record is None or not wait_engine_ready(record, self.settings.url("dynamodb"), timeout):
            log = self.components["dynamodb"].spec.log_path
            raise ComponentFailed(f"the DynamoDB engine ({self.settings.engine}) did not start "
                                  f"({tail(log, 1) or 'no output'}); see {log}")

    def seed(self, count: int = 50) -> None:
        """Run the CRM's init_sample_data against the stack's tables (straight to the engine)."""
        argv = [sys.executable, "-m", "crm_app.init_sample_data", "--count", str(count)]
        env = {**app_env(self.settings, "crm-app"), "AWS_ENDPOINT_URL": engine_url(self.settings),
               "PATH": "/usr/bin:/bin"}
        result = subprocess.run(argv, cwd=self.settings.apps_dir, env=env, capture_output=True, text=True,
                                check=False)
        if result.returncode != 0:
            raise ComponentFailed(f"init_sample_data failed: {(result.stderr or result.stdout).strip()[-300:]}")
        self.progress(f"seeded sample data: {result.stdout.strip()}")

    def save_data(self) -> None:
        """Dump the emulator's tables to the snapshot file; raise StateError if that is impossible."""
        try:
            counts = snapshot.dump(self.dynamodb_client(), self.snapshot_path)
        except (OSError, BotoCoreError, ClientError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise StateError(f"could not save DynamoDB data to {self.snapshot_path} ({reason}); the engine keeps "
                             "running with it: fix that and run `down` again, or `down --discard-data`") from exc
        self.progress(f"saved {sum(counts.values())} DynamoDB items to {self.snapshot_path}")
