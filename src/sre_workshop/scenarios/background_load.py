"""Load for a lab, in a process of its own that outlives the `lab start` command:

    python -m sre_workshop.scenarios.background_load STATE_DIR USERS RATE TARGET SECONDS

It runs the load generator (sre_workshop.load) against the local stack until SECONDS pass or it gets
SIGTERM (`lab check` or `lab giveup`), then stops it cleanly.
"""

from __future__ import annotations

import signal
import sys
from pathlib import Path

from ..load import local_targets, start
from ..settings import Settings

STARTED = "lab load: users running"


def main(argv: list[str]) -> int:
    """Run load until the duration ends or SIGTERM arrives."""
    state_dir, users, rate, target, seconds = argv
    settings = Settings.from_env(state_dir=Path(state_dir))
    handle = start(local_targets(settings, target), users=int(users), rate=float(rate), duration=float(seconds))
    signal.signal(signal.SIGTERM, lambda signum, frame: handle.stop())
    print(STARTED, flush=True)
    handle.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
