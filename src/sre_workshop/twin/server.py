"""The `aws-api` component: the twin's server. `python -m sre_workshop.twin.server --port P`.

Start: the state saved by the last run (data/aws-api/twin.pickle), else a fresh deployment of the template
(from the per-user cache when the same template was deployed before). Then it serves on 127.0.0.1 until
SIGTERM, saving its state after every change (control-plane changes within a second, log events and
metrics within DATA_SAVE_S), and once more on the way out.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

from ..settings import LOOPBACK, Settings

logger = logging.getLogger("sre_workshop.twin")

DATA_SAVE_S = 10.0
# Calls CloudTrail records as data events (off by default on AWS): not in the trail's management events.
DATA_EVENTS = {"PutLogEvents", "PutMetricData", "GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query", "Scan",
               "BatchGetItem", "BatchWriteItem", "TransactGetItems", "TransactWriteItems", "ExecuteStatement",
               "BatchExecuteStatement", "ExecuteTransaction", "CreateLogStream"}
SOURCES = {"monitoring": "monitoring.amazonaws.com", "elasticloadbalancing": "elasticloadbalancing.amazonaws.com"}


def paths(settings: Settings) -> dict[str, Path]:
    """Where the twin keeps its state (data/, kept by `down`) and its run-time files (run/)."""
    data = settings.data_dir / "aws-api"
    return {"state": data / "twin.pickle", "trail": data / "trail.jsonl", "resources": data / "resources.json"}


class Twin:
    """The running twin: moto's backends, the plug-ins, the saver and the alarm evaluator."""

    def __init__(self, settings: Settings, metrics_period: int, engine_url: str) -> None:
        self.settings, self.metrics_period, self.engine_url = settings, metrics_period, engine_url
        self.paths = paths(settings)
        self.dirty_control = self.dirty_data = False
        self.last_save = time.monotonic()
        self.stopping = threading.Event()
        self.physical: dict[str, str] = {}
        self.app: Any = None
        self.wire: Any = None  # network.Wire: the security groups on the local network

    # --- state ---------------------------------------------------------------------------------------

    def load_or_deploy(self) -> str:
        """Restore the last state, or deploy the template; return where the state came from."""
        from . import persist, resources

        if self.paths["state"].exists():
            persist.load(self.paths["state"].read_bytes())
            self.physical = json.loads(self.paths["resources"].read_text())
            return "restored"
        template = (self.settings.infra_dir / "cloudformation" / "sre-workshop.yaml").read_bytes()
        cache = persist.cache_path(template, self.settings.region, f"period={self.metrics_period}|v{resources.VERSION}")
        if cache.exists():
            try:
                cached = json.loads(cache.with_suffix(".json").read_text())
                persist.load(cache.read_bytes())
                self.physical = cached
                self.save(force=True)
                return f"deployed (from {cache})"
            except (OSError, ValueError, EOFError) as exc:
                logger.warning("ignoring the cached deployment %s: %s", cache, exc)
        self.physical = self._deploy()
        state = persist.dump()
        persist.write_atomic(cache, state)
        persist.write_atomic(cache.with_suffix(".json"), json.dumps(self.physical).encode())
        self.save(force=True)
        return "deployed"

    def _deploy(self) -> dict[str, str]:
        """Deploy the template through a server of our own on a free port (nothing listens on the twin's port
        until its resources exist, so a client never sees a half-made stack)."""
        import boto3
        from werkzeug.serving import make_server

        from . import resources

        server = make_server(LOOPBACK, 0, self._moto_app(), threaded=True)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            url = f"http://{LOOPBACK}:{server.server_port}"
            session = boto3.session.Session(aws_access_key_id="deploy", aws_secret_access_key="deploy",  # noqa: S106 - unchecked
                                             region_name=self.settings.region)
            return resources.deploy(lambda name: session.client(name, endpoint_url=url),
                                    self.settings.infra_dir / "cloudformation" / "sre-workshop.yaml",
                                    self.settings.region, self.metrics_period)
        finally:
            server.shutdown()
            thread.join()

    def save(self, force: bool = False) -> None:
        """Write the state if it changed (control-plane changes at once, data within DATA_SAVE_S)."""
        from . import persist

        due = self.dirty_control or (self.dirty_data and time.monotonic() - self.last_save >= DATA_SAVE_S)
        if not (force or due):
            return
        lock = self.app.write_lock if self.app else threading.RLock()
        with lock:
            self.dirty_control = self.dirty_data = False
            data = persist.dump()
        persist.write_atomic(self.paths["state"], data)
        persist.write_atomic(self.paths["resources"], json.dumps(self.physical).encode())
        self.last_save = time.monotonic()

    # --- serving -------------------------------------------------------------------------------------

    def _moto_app(self) -> Any:
        from moto.elbv2.models import FakeTargetGroup
        from moto.server import DomainDispatcherApplication, create_backend_app

        from . import alarm_history, metric_reads

        if not hasattr(FakeTargetGroup, "get_cfn_attribute"):  # moto 5.2 lacks GetAtt on target groups
            FakeTargetGroup.get_cfn_attribute = _target_group_attribute
        alarm_history.install()  # moto 5.2 lacks DescribeAlarmHistory
        metric_reads.install(self.metrics_period)  # and reads metrics otherwise than CloudWatch
        return DomainDispatcherApplication(create_backend_app)

    def build_app(self) -> Any:
        """Return the WSGI app: moto behind the dispatcher, with the plug-ins."""
        from . import plugins
        from .app import TwinApp

        self.app = TwinApp(self._moto_app(), self.changed)
        plugins.install(self.app, self)
        return self.app

    def changed(self, call: Any, answer: Any) -> None:
        """Record a successful change: mark the state dirty, and add it to the trail (management events)."""
        from . import trail

        if call.operation in ("PutLogEvents", "PutMetricData"):
            self.dirty_data = True
        else:
            self.dirty_control = True
        if call.operation in DATA_EVENTS or not call.service:
            return
        if self.wire is not None:
            self.wire.wake.set()  # a control-plane change: the security groups may have changed
        source = SOURCES.get(call.service, f"{call.service}.amazonaws.com")
        params = call.params if call.protocol != "cbor" else {}
        trail.append(self.paths["trail"], trail.event(call.operation, source, call.access_key or "anonymous",
                                                      call.access_key, call.region or self.settings.region,
                                                      trail.resources_of(params), _public(params)))

    def background(self) -> None:
        """Save the state, keep the ALBs' servers to the API's registrations and evaluate alarms until the twin
        stops."""
        from . import plugins

        next_alarms = 0.0
        while not self.stopping.wait(0.5):
            try:
                self.save()
                plugins.enforce_registrations(self)
                if time.monotonic() >= next_alarms:
                    plugins.evaluate_alarms(self)
                    next_alarms = time.monotonic() + min(10.0, self.metrics_period)
            except Exception:
                logger.exception("background work failed; trying again")


def _public(params: dict) -> dict:
    """Return request parameters as CloudTrail records them (big documents cut, nothing secret here)."""
    return {k: (v if len(str(v)) <= 2048 else str(v)[:2048] + "...") for k, v in params.items()
            if k not in ("Action", "Version")}


def _target_group_attribute(self: Any, name: str) -> str:
    """Fn::GetAtt on a target group, as AWS documents it (TargetGroupFullName is the ARN's last field)."""
    if name == "TargetGroupFullName":
        return self.arn.split(":")[-1]
    if name == "TargetGroupName":
        return self.name
    raise NotImplementedError(f"target group attribute {name}")


def scoped_server(twin: Twin, port: int) -> Any:
    """Serve the scoped endpoint (IAM users' signed calls only, their policies enforced) in a thread."""
    from werkzeug.serving import make_server

    from .plugins import ACCOUNT
    from .scoped import ScopedApp

    server = make_server(LOOPBACK, port, ScopedApp(twin.app, ACCOUNT, twin.settings.region), threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    logger.info("aws-api scoped endpoint on %s:%d", LOOPBACK, port)
    return server


def main(argv: list[str] | None = None) -> int:
    """Run the twin until SIGTERM or SIGINT."""
    parser = argparse.ArgumentParser(prog="sre-workshop-aws-api")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--metrics-period", type=int, default=60)
    parser.add_argument("--engine-url", required=True, help="the DynamoDB engine DynamoDB calls go to")
    parser.add_argument("--scoped-port", type=int, help="also serve the scoped endpoint (twin/scoped.py) here")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    started = time.monotonic()
    settings = Settings.from_env()
    from .slim import import_ec2_for

    import_ec2_for(settings.region)
    twin = Twin(settings, args.metrics_period, args.engine_url)
    origin = twin.load_or_deploy()
    app = twin.build_app()
    from werkzeug.serving import make_server

    server = make_server(LOOPBACK, args.port, app, threaded=True)
    scoped = scoped_server(twin, args.scoped_port) if args.scoped_port else None
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: threading.Thread(target=server.shutdown, daemon=True).start())
    worker = threading.Thread(target=twin.background, daemon=True)
    worker.start()
    from .network import Wire

    twin.wire = Wire(settings, twin.physical, f"http://{LOOPBACK}:{args.port}")
    threading.Thread(target=twin.wire.run, name="security-groups", daemon=True).start()
    logger.info("aws-api %s, serving on %s:%d after %.1fs", origin, LOOPBACK, args.port, time.monotonic() - started)
    try:
        server.serve_forever()
    finally:
        if scoped is not None:
            scoped.shutdown()
        twin.stopping.set()
        twin.wire.stop()
        worker.join(timeout=5)
        twin.save(force=True)
        logger.info("aws-api stopped, state saved")
    return 0


if __name__ == "__main__":
    sys.exit(main())
