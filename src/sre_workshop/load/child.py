"""The load child process: `python -m sre_workshop.load.child`, started by handle.start().

Locust runs on gevent, which monkey-patches the standard library process-wide. It is kept in this child
so that the tool (and any program that imports sre_workshop.load) keeps real threads, sockets and its
own Ctrl-C handling.

Protocol, one JSON object per line:
  stdin (parent -> child): first the run's config {"targets", "options", "run_id", "trace_path"}; then
      "stop" stops the run early; end of input (the parent went away) stops it too.
  stdout (child -> parent): {"event": "started", "run_id", "web_url"}, then {"event": "progress", ...}
      each second, then {"event": "summary", "summary": {...}}; or {"event": "error", "error", "message"}.
"""

from __future__ import annotations


def main() -> int:
    """Run one load test as the parent's config says; report on stdout."""
    # Patch before anything else is imported, as gevent requires; nothing else runs in this process.
    from gevent import monkey

    monkey.patch_all()

    import json
    import signal
    import sys

    from gevent.fileobject import FileObjectPosix

    from ..errors import WorkshopError

    control = FileObjectPosix(sys.stdin.fileno(), "rb", close=False)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and asks us to stop

    def emit(event: dict) -> None:
        sys.stdout.write(json.dumps(event) + "\n")
        sys.stdout.flush()

    try:
        config = json.loads(control.readline())
        summary = _run(config, control, emit)
    except WorkshopError as exc:
        emit({"event": "error", **exc.to_dict()})
        return 1
    emit({"event": "summary", "summary": summary.to_dict()})
    return 0


def _run(config: dict, control, emit):
    """Start the stop watcher and run the engine."""
    import signal

    import gevent
    import gevent.event

    from .engine import run
    from .options import LoadOptions
    from .targets import Targets

    targets, options = Targets.from_dict(config["targets"]), LoadOptions(**config["options"])
    stop = gevent.event.Event()
    gevent.signal_handler(signal.SIGTERM, stop.set)
    gevent.spawn(_watch_control, control, stop)
    _check_web_port(options.web_port)
    return run(targets, options, config["run_id"], emit, stop, config.get("trace_path"))


def _watch_control(control, stop) -> None:
    """Set `stop` on a "stop" line or at the end of input."""
    for line in iter(control.readline, b""):
        if line.strip() == b"stop":
            break
    stop.set()


def _check_web_port(port: int | None) -> None:
    """Raise PortInUse if the web UI's port is taken (Locust would only log it)."""
    if port is None:
        return
    import socket

    from ..errors import PortInUse

    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            raise PortInUse(f"port {port} for the web UI is in use") from None


if __name__ == "__main__":
    raise SystemExit(main())
