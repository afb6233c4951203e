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

from ..errors import ComponentFailed, StateError, UsageError
from ..tables import create_tables, table_definitions
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
        a durable engine took over: imported once) or seed sample data on a first run. A table missing from
        a store that has the others (deleted) is recreated with its items from the last snapshot."""
        if "dynamodb" in self.components:
            self._wait_engine(timeout)
        client = self.dynamodb_client()
        try:
            created = create_tables(client)
        except (BotoCoreError, ClientError) as exc:
            raise ComponentFailed(f"the DynamoDB engine at {engine_url(self.settings)} does not work: {exc}") from exc
        if not created:
            return
        if len(created) < len(table_definitions()):
            self._refill(client, created)
            return
        restored = snapshot.restore(client, snapshot.latest(self.snapshot_path))
        if restored:
            self.progress(f"restored {sum(restored.values())} items from {self.snapshot_path}")
            engine = self.components.get("dynamodb")
            if engine is not None and not engine.data and self.snapshot_path.exists():
                # a durable engine keeps them from now on; the file stays its backup under another name
                self.snapshot_path.replace(self.snapshot_path.with_suffix(snapshot.IMPORTED_SUFFIX))
            return
        self.seed()

    def _refill(self, client, created: list[str]) -> None:
        """Fill tables just recreated from the template with their items from the last snapshot; say which."""
        source = snapshot.latest(self.snapshot_path)
        restored = snapshot.restore(client, source, created)
        for name in created:
            if name in restored:
                self.progress(f"{name} was missing: recreated from the template with its {restored[name]} items "
                              f"from {source}")
            else:
                self.progress(f"{name} was missing: recreated from the template, empty (no snapshot holds it)")

    def restore_table(self, name: str) -> dict[str, object]:
        """Recreate a missing table from the template and refill it from the last snapshot; return what was
        done. Refuse a table that exists (its items would be overwritten by older ones)."""
        definition = next((d for d in table_definitions() if d["TableName"] == name), None)
        if definition is None:
            names = ", ".join(d["TableName"] for d in table_definitions())
            raise UsageError(f"no table named {name!r} in the template; tables: {names}")
        with self._locked(f"restore {name}", wait=30):
            client = self.dynamodb_client()
            try:
                if name in client.list_tables().get("TableNames", []):
                    raise UsageError(f"table {name} exists: `restore` only recreates a missing table")
                client.create_table(**definition)
                client.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 0.2, "MaxAttempts": 100})
                source = snapshot.latest(self.snapshot_path)
                items = snapshot.restore(client, source, [name]).get(name, 0)
            except (BotoCoreError, ClientError) as exc:
                raise ComponentFailed(f"the DynamoDB engine at {engine_url(self.settings)} failed: {exc}; "
                                      "is the stack up (`sre-workshop status`)?") from exc
        self.progress(f"recreated {name} from the template with {items} items from {source or 'no snapshot'}")
        return {"table": name, "items": items, "snapshot": str(source) if source else None}

    def backup(self) -> dict[str, object]:
        """Write every table's items to the snapshot now (what `down` writes), so a `restore` or the next `up`
        brings back what the tables hold at this moment; return the counts, and the tables the engine is
        missing (their items from the previous snapshot are kept)."""
        with self._locked("backup", wait=30):
            try:
                saved = snapshot.dump(self.dynamodb_client(), self.snapshot_path)
            except (BotoCoreError, ClientError) as exc:
                raise ComponentFailed(f"the DynamoDB engine at {engine_url(self.settings)} failed: {exc}; "
                                      "is the stack up (`sre-workshop status`)?") from exc
            except OSError as exc:
                raise StateError(f"could not write {self.snapshot_path}: {exc.strerror or exc}") from exc
        self.progress(f"saved {sum(saved.counts.values())} DynamoDB items to {self.snapshot_path}")
        return {"snapshot": str(self.snapshot_path), "items": saved.counts, "missing": [*saved.kept, *saved.lost]}

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

    def save_data(self, required: bool = True) -> None:
        """Dump the engine's tables to the snapshot file, naming any table missing from the engine. If that is
        impossible, raise StateError when `required` (an engine whose data lives in memory), else say so
        (a durable engine keeps its data in its own store; the snapshot is only its backup)."""
        try:
            saved = snapshot.dump(self.dynamodb_client(), self.snapshot_path)
        except (OSError, BotoCoreError, ClientError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            if not required:
                self.progress(f"could not back up DynamoDB data to {self.snapshot_path} ({reason}); "
                              "the engine's own store keeps it")
                return
            raise StateError(f"could not save DynamoDB data to {self.snapshot_path} ({reason}); the engine keeps "
                             "running with it: fix that and run `down` again, or `down --discard-data`") from exc
        self.progress(f"saved {sum(saved.counts.values())} DynamoDB items to {self.snapshot_path}")
        for name, count in saved.kept.items():
            self.progress(f"{name} is missing from the engine: kept its {count} items from the last snapshot "
                          f"(`sre-workshop restore {name}` or the next `up` recreates it)")
        for name in saved.lost:
            self.progress(f"{name} is missing from the engine and no snapshot holds it: not saved")
