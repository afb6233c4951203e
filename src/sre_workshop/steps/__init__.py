"""The shell steps faults take on a host, run as they are: locally by local/control.py, and on an instance
through SSM Run Command by aws/ssm.py (only the paths they are given differ).

They live here, below both worlds, so that neither reaches up into faults/ for them.
"""

from __future__ import annotations

from pathlib import Path

STEPS_DIR = Path(__file__).resolve().parent
