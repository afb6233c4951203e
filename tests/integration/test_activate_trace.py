"""The instances' activate.sh scripts trace every step (set -x), and that trace goes to cloud-init's output and
to every rollout's SSM command output: the fault-control token must never appear in it (issue 20.3).

Each script runs for real under bash, with its absolute paths moved under a temporary root and the system
commands it calls (systemctl, useradd, curl, nginx, the CloudWatch agent, the venv's python) replaced by
stubs; install.sh is a stub that writes the env files with a known token, as the real one does.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "tok3nNeverTraced9f2c"  # a marker to look for in the trace, not a secret
STUBS = ("useradd", "id", "systemctl", "curl", "chown", "nginx")
MOVED = ("/etc/sre-workshop", "/opt/", "/usr/local/sbin/", "/var/log/")
FAKE_INSTALL = f"""#!/bin/bash
set -euo pipefail
mkdir -p "$FAKE_ROOT/etc/sre-workshop"
printf '%s' "{TOKEN}" > "$FAKE_ROOT/etc/sre-workshop/fault-token"
for app in sre-app crm-app; do
  echo "FAULT_CONTROL_TOKEN=$(cat "$FAKE_ROOT/etc/sre-workshop/fault-token")" > "$FAKE_ROOT/etc/sre-workshop/$app.env"
done
"""
# The venv's python stands in for init_sample_data.py: it needs the token in its environment, like the app.
FAKE_PYTHON = f"""#!/bin/sh
[ "$FAULT_CONTROL_TOKEN" = "{TOKEN}" ] && touch "$FAKE_ROOT/seeded"
"""


def executable(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(0o755)


def prepare(app: str, tmp: Path) -> tuple[Path, dict[str, str]]:
    """Return the moved activate.sh and the environment it runs in."""
    root, here, bin_dir = tmp / "root", tmp / "assets", tmp / "bin"
    script = (ROOT / "infra" / app / "activate.sh").read_text()
    for path in MOVED:
        script = script.replace(path, f"{root}{path}")
    executable(here / "activate.sh", script)
    executable(here / "install.sh", FAKE_INSTALL)
    executable(here / "update-assets.sh", "#!/bin/sh\n")
    for stub in STUBS:
        executable(bin_dir / stub, "#!/bin/sh\nexit 0\n")
    executable(root / "opt/aws/amazon-cloudwatch-agent/bin/amazon-cloudwatch-agent-ctl", "#!/bin/sh\n")
    executable(root / f"opt/{app}/venv/bin/python", FAKE_PYTHON)
    (root / "usr/local/sbin").mkdir(parents=True)
    (root / "etc/sre-workshop").mkdir(parents=True, exist_ok=True)
    (root / "etc/sre-workshop/instance.env").write_text("AWS_REGION=us-east-1\nASSETS_ZIP=x.zip\n")
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "FAKE_ROOT": str(root)}
    return here / "activate.sh", env


@pytest.mark.parametrize("app", ["nginx", "sre-app", "crm-app"])
def test_activate_never_traces_the_fault_token(app, tmp_path):
    script, env = prepare(app, tmp_path)
    done = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "+ systemctl" in done.stderr  # the steps are traced, so the check below means something
    assert TOKEN not in done.stdout + done.stderr
    if app == "crm-app":
        assert (tmp_path / "root" / "seeded").exists()  # the seeding still gets the app's settings
