"""The stack's instances: which local components each EC2 instance of the template stands for, and where the
files it has at its AWS paths live in the local stack's state directory and checkout."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..aws.control import JOBS_DIR
from ..settings import Settings

# The twin's CloudFormation stack (the tool's default stack name on AWS).
STACK_NAME = "sre-workshop"
# Logical id of each instance in the template -> the local components that run on it.
COMPONENTS = {"NginxInstance1": ("nginx",), "AppServerInstance1": ("sre-app",), "CRMAppInstance": ("crm-app",)}
# Each instance's Name tag in the template (what `sre-workshop shell` accepts besides the ids).
NAMES = {"NginxInstance1": "sre-workshop-nginx", "AppServerInstance1": "sre-workshop-app",
         "CRMAppInstance": "sre-workshop-crm-app"}
# Each instance's logs at their AWS paths -> the file in the local stack's logs/ that stands for it.
LOGS = {
    "NginxInstance1": {"/var/log/nginx/access.log": "nginx-access.log", "/var/log/nginx/error.log": "nginx-error.log"},
    "AppServerInstance1": {"/var/log/sre-app/app.log": "sre-app.json.log"},
    "CRMAppInstance": {"/var/log/crm-app/app.log": "crm-app.json.log"},
}
# Each instance's application directory (/opt/NAME on AWS, from the zip) -> the package in the checkout's apps/.
APPS = {"AppServerInstance1": ("/opt/sre-app", "sre_app"), "CRMAppInstance": ("/opt/crm-app", "crm_app")}
# Each instance's JOBS_DIR (/run/sre-workshop-jobs: where steps record the processes they start) is
# run/hosts/LOGICAL/jobs/ locally.
JOBS = "jobs"
# Pid files besides the components' records whose processes run on an instance (relative to run/): busy
# processes a step started there through Run Command ("pid start_time" lines; in process groups of their
# own). The agent counts them in the instance's CPU and memory, its `ps` and `top` show them; the name
# says nothing of why they run, as a learner can list run/.
EXTRA_PID_FILES = {"AppServerInstance1": (f"hosts/AppServerInstance1/{JOBS}/processes.pids",)}
IN_VIEW = "SRE_WORKSHOP_FROM_VIEW"  # set on the service actions an instance's systemctl asks for
NGINX_DIR = "etc-nginx"  # run/etc-nginx/ holds nginx.conf (run/nginx.conf links to it): /etc/nginx on the host


@dataclass(frozen=True)
class Bind:
    """One path of an instance's view: `source` on this machine seen at `target`, its AWS path."""

    target: str
    source: Path
    writable: bool = False
    directory: bool = False


def files(settings: Settings) -> dict[str, dict[str, Path]]:
    """Return, per instance logical id, its AWS paths -> the local files that stand for them."""
    found = {logical: {aws: settings.logs_dir / name for aws, name in logs.items()} for logical, logs in LOGS.items()}
    found["NginxInstance1"]["/etc/nginx/nginx.conf"] = settings.run_dir / "nginx.conf"
    return found


def binds(settings: Settings, logical: str) -> list[Bind]:
    """Return what an instance's view binds at its AWS paths: its config, code, settings and logs."""
    found = [Bind(aws, settings.logs_dir / name, writable=True) for aws, name in LOGS[logical].items()]
    if logical == "NginxInstance1":  # the directory: `sed -i` renames a new file over nginx.conf
        found.append(Bind("/etc/nginx", settings.run_dir / NGINX_DIR, writable=True, directory=True))
    if logical in APPS:
        target, package = APPS[logical]
        found.append(Bind(target, settings.apps_dir / package, directory=True))
    # writable on an app's instance: its env file is the app's deployed configuration, edited there by hand
    # (or by a bad deploy) and read again at the app's next start
    found.append(Bind("/etc/sre-workshop", host_dir(settings, logical) / "etc-sre-workshop", writable=logical in APPS,
                      directory=True))
    # the instance's own corner of /run, which outlives a command (processes a step started are recorded there)
    found.append(Bind(JOBS_DIR, host_dir(settings, logical) / JOBS, writable=True, directory=True))
    return found


def host_dir(settings: Settings, logical: str) -> Path:
    """Return the directory of what the stack writes for one instance (its /etc/sre-workshop)."""
    return settings.run_dir / "hosts" / logical


def env_file(settings: Settings, component: str) -> Path:
    """Return an app's env file (/etc/sre-workshop/NAME.env on its instance), as the stack keeps it."""
    return host_dir(settings, instance_of(component) or "") / "etc-sre-workshop" / f"{component}.env"


def instance_of(component: str) -> str | None:
    """Return the logical id of the instance a component runs on, or None (a managed service)."""
    return next((logical for logical, names in COMPONENTS.items() if component in names), None)
