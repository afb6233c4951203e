#!/bin/sh
# Read one instance for `sre-workshop doctor`, as an SRE logged in there would: the unit's state and its
# processes' CPU and memory, the host's CPU and its busiest processes outside the unit, the hops probed from
# here, nginx.conf, the app's table settings and the settings its process runs with (secrets as a digest
# only); and its finite resources: the unit's process nearest its open-files limit, the connections
# established to the ports it listens on, the free space where logs are written. Runs as root through SSM Run
# Command (locally: in the instance's view); changes nothing.
#
#   observe-host.sh UNIT ENV_FILE NGINX_CONF [NAME=URL ...]
#
# ENV_FILE and NGINX_CONF may be "-" (none on this instance). Prints one JSON object on one line; only the
# *_TABLE settings and the threads per worker of ENV_FILE are printed (it also holds the fault-control token,
# which never leaves here).
# Python 3.9 (Amazon Linux 2023's /usr/bin/python3) and the standard library only.
set -eu
[ $# -ge 3 ] || { echo "observe-host: usage: observe-host.sh UNIT ENV_FILE NGINX_CONF [NAME=URL ...]" >&2; exit 2; }
# The system's Python, isolated and without site-packages (the script needs the standard library only): it
# starts in a hundredth of a second, where a python3 found on PATH may be a version manager's wrapper.
py=/usr/bin/python3
[ -x "$py" ] || py=python3
exec "$py" -I -S - "$@" <<'OBSERVE_HOST_PY'
import hashlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

UNIT, ENV_FILE, NGINX_CONF = sys.argv[1:4]
# NAME=URL: the URL starts at its scheme, since a name may hold "=" too ("sre-app /health?deep=1").
HOPS = [(a.split("=http", 1)[0], "http" + a.split("=http", 1)[1]) for a in sys.argv[4:] if "=http" in a]
# In the local stack's view of an instance (twin/hostview.py) /proc holds every process of the machine: only
# those whose environment names this stack's host, and no other instance, run here (as doctor counts them
# locally: diagnose/local/readers.py). On AWS these variables are not set: every process is the instance's.
HOST = os.environ.get("SRE_WORKSHOP_HOST", "")
INSTANCE = os.environ.get("SRE_WORKSHOP_INSTANCE", "")
TICKS = os.sysconf("SC_CLK_TCK")
SAMPLE_S = 0.4  # the CPU shares are measured over this long
# A busy process outside the unit counts as a hog as locally (diagnose/local/readers.py): it wants this % of a
# core over the sample (ran or waited to run: its demand), running this long and wanting this % of its life.
# A runaway loop does, however little CPU a crowded host gives it; a program starting up does not.
BURNER_CPU = 50.0
BURNER_MIN_AGE_S = 10.0
BURNER_LIFETIME_CPU = 50.0
# A hop that has not answered by then is a timeout: the whole reading fits in doctor's local deadline (2.5 s).
PROBE_TIMEOUT = 1.5
# Where each unit writes its log (the CloudWatch agent ships these): its disk is the one that fills up.
LOGS = {"nginx": "/var/log/nginx/access.log", "sre-app": "/var/log/sre-app/app.log",
        "crm-app": "/var/log/crm-app/app.log"}
SHOWN = ("CRM_THREADS",)  # settings of ENV_FILE printed besides the *_TABLE ones
# The settings that point the app at DynamoDB, as its main process runs with them (diagnose/appsettings.py):
# the secrets leave only as a digest.
POINTING = ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB",
            "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")
SECRETS = ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")


def systemctl(*args):
    """systemctl's answer, or "" where there is no systemd (the answer is then "unknown", not a state)."""
    try:
        done = subprocess.run(["systemctl", *args], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                              universal_newlines=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return ""
    return done.stdout.strip()


def stat(pid):
    try:
        text = open("/proc/%d/stat" % pid).read()
    except OSError:
        return None
    return text[text.rindex(")") + 2:].split()  # [0] is the state; [1] ppid, [11] utime, [12] stime, [19] start


def all_pids():
    return [int(e) for e in os.listdir("/proc") if e.isdigit()]


def unit_properties():
    """ActiveState, MainPID and ControlGroup of the unit, with one systemctl call ({} without systemd)."""
    shown = systemctl("show", "-p", "ActiveState", "-p", "MainPID", "-p", "ControlGroup", UNIT)
    return dict(line.split("=", 1) for line in shown.splitlines() if "=" in line)


def unit_pids(main_pid, group):
    """The unit's processes: its cgroup (v2), else its main process and that one's descendants."""
    try:
        if group:
            return [int(p) for p in open("/sys/fs/cgroup%s/cgroup.procs" % group).read().split()]
    except OSError:
        pass
    found = {main_pid} if main_pid else set()
    for _ in range(3):  # gunicorn: master -> workers
        found |= {p for p in all_pids() if (stat(p) or ["", "0"])[1] in {str(f) for f in found}}
    return sorted(found)


def ticks(pid):
    fields = stat(pid)
    return int(fields[11]) + int(fields[12]) if fields else None


def rss_mb(pid):
    try:
        for line in open("/proc/%d/status" % pid):
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def demand_s(pid):
    """Seconds the process's main thread ran or waited in a run queue to run (/proc/PID/schedstat), else 0."""
    try:
        run, wait = open("/proc/%d/schedstat" % pid).read().split()[:2]
        return (int(run) + int(wait)) / 1e9
    except (OSError, ValueError):
        return 0.0


def sustained(fields, now, wanted_s=0.0):
    """True for a process (its stat fields; `wanted_s` its demand so far) that has run BURNER_MIN_AGE_S,
    wanting the CPU BURNER_LIFETIME_CPU % of it (never less than it used: schedstat counts one thread)."""
    if not fields:
        return False
    age = now - int(fields[19]) / TICKS
    busy = max((int(fields[11]) + int(fields[12])) / TICKS, wanted_s)
    return age >= BURNER_MIN_AGE_S and 100.0 * busy / age >= BURNER_LIFETIME_CPU


def host_ticks():
    values = [int(v) for v in open("/proc/stat").readline().split()[1:]]
    return sum(values), values[3] + values[4]  # total, idle + iowait


def has_sockets(pid):
    try:
        return any(os.readlink("/proc/%d/fd/%s" % (pid, fd)).startswith("socket:")
                   for fd in os.listdir("/proc/%d/fd" % pid))
    except OSError:
        return True


def on_host(pid):
    """True if the process runs here: always on AWS; in a local view, if it names this host and no other instance."""
    if not HOST:
        return True
    try:
        with open("/proc/%d/environ" % pid, "rb") as f:
            environ = f.read().split(b"\0")
    except OSError:
        return False
    named = [e.split(b"=", 1)[1].decode() for e in environ if e.startswith(b"SRE_WORKSHOP_INSTANCE=")]
    return ("SRE_WORKSHOP_HOST=%s" % HOST).encode() in environ and named in ([], [INSTANCE])


def cmdline(pid):
    try:
        return open("/proc/%d/cmdline" % pid, "rb").read().replace(b"\0", b" ").decode(errors="replace").strip()[:80]
    except OSError:
        return "?"


def own_pids():
    """This script and its callers (sh, the SSM agent's worker): their CPU is not the host's problem."""
    pids, pid = set(), os.getpid()
    while pid > 1 and pid not in pids:
        pids.add(pid)
        pid = int((stat(pid) or ["", "1"])[1])
    return pids


def failure(reason):
    """Name why nothing answered (as diagnose/local/probes.py does)."""
    if isinstance(reason, socket.timeout) or "timed out" in str(reason):
        return "timeout"
    if isinstance(reason, socket.gaierror):
        return "dns"
    if isinstance(reason, ConnectionRefusedError):
        return "refused"
    if isinstance(reason, ConnectionResetError):
        return "reset"
    return "unreachable"


def probe(name, url, out):
    started = time.monotonic()
    answer = {"name": name, "url": url, "status": 0, "body": "", "error": ""}
    try:
        with urllib.request.urlopen(url, timeout=PROBE_TIMEOUT) as response:
            answer.update(status=response.status, body=response.read(2048).decode(errors="replace"))
    except urllib.error.HTTPError as exc:
        answer.update(status=exc.code, body=exc.read(2048).decode(errors="replace"))
    except (OSError, ValueError) as exc:
        answer["error"] = failure(getattr(exc, "reason", exc))
    answer["seconds"] = round(time.monotonic() - started, 4)
    out.append(answer)


def tables():
    if ENV_FILE == "-":
        return None
    found = {}
    try:
        for line in open(ENV_FILE):
            key, sep, value = line.strip().partition("=")
            if sep and (key.endswith("_TABLE") or key in SHOWN):
                found[key] = value.strip().strip('"')
    except OSError as exc:
        return {"error": str(exc)}
    return found


def settings(pid):
    """The app's pointing settings and *_TABLE ones from its main process's environment (None: not an app, or
    not running); the secrets as their digest."""
    if ENV_FILE == "-" or not pid:
        return None
    try:
        with open("/proc/%d/environ" % pid, "rb") as f:
            pairs = [e.decode(errors="replace").split("=", 1) for e in f.read().split(b"\0") if b"=" in e]
    except OSError as exc:
        return {"error": str(exc)}
    found = {}
    for key, value in pairs:
        if key in SECRETS:
            found[key] = "sha256:" + hashlib.sha256(value.encode()).hexdigest()[:16]
        elif key in POINTING or key.endswith("_TABLE"):
            found[key] = value
    return found


def descriptors(pids):
    """[open, soft limit] of the unit's process nearest its open-files limit (None: no limit could be read)."""
    best = None
    for pid in pids:
        try:
            count = len(os.listdir("/proc/%d/fd" % pid))
            with open("/proc/%d/limits" % pid) as f:
                limit = next(line.split()[3] for line in f if line.startswith("Max open files"))
        except (OSError, StopIteration, IndexError):
            continue
        if limit.isdigit() and int(limit) and (best is None or count / int(limit) > best[0] / best[1]):
            best = [count, int(limit)]
    return best


def connections(pids):
    """[ports the unit listens on, TCP connections established to them]."""
    inodes = set()
    for pid in pids:
        try:
            for fd in os.listdir("/proc/%d/fd" % pid):
                link = os.readlink("/proc/%d/fd/%s" % (pid, fd))
                if link.startswith("socket:["):
                    inodes.add(link[8:-1])
        except OSError:
            continue
    rows = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                lines = f.read().splitlines()[1:]
        except OSError:
            continue
        rows += [(f[3], int(f[1].rsplit(":", 1)[1], 16), f[9]) for f in (line.split() for line in lines) if len(f) > 9]
    ports = sorted({port for state, port, inode in rows if state == "0A" and inode in inodes})
    return [ports, sum(1 for state, port, _ in rows if state == "01" and port in ports)]


def disk_free(path):
    try:
        stat = os.statvfs(path)
    except OSError:
        return None
    return round(100.0 * stat.f_bavail / max(stat.f_blocks, 1), 1)


def nginx_conf():
    if NGINX_CONF == "-":
        return None
    try:
        return open(NGINX_CONF).read()
    except OSError as exc:
        return {"error": str(exc)}


def main():
    probes = []
    threads = [threading.Thread(target=probe, args=(name, url, probes)) for name, url in HOPS]
    for thread in threads:
        thread.start()
    # The sample starts first and systemd is asked during it (a systemctl call takes a moment).
    started, (total0, idle0) = time.monotonic(), host_ticks()
    before = {p: ticks(p) for p in all_pids()}
    wanted_before = {p: demand_s(p) for p in before}
    unit = unit_properties()
    state = unit.get("ActiveState") or "unknown"
    main_pid = int(unit.get("MainPID") or 0) if (unit.get("MainPID") or "0").isdigit() else 0
    mine = unit_pids(main_pid, unit.get("ControlGroup", "")) if main_pid else []
    skip = own_pids() | set(mine)
    time.sleep(max(0.0, SAMPLE_S - (time.monotonic() - started)))
    total1, idle1 = host_ticks()
    after = {p: ticks(p) for p in before}
    wanted_after = {p: demand_s(p) for p in before}
    seconds = time.monotonic() - started
    share = {p: 100.0 * (after[p] - before[p]) / TICKS / seconds for p in before
             if before[p] is not None and after[p] is not None}
    wanted = {p: max(c, 100.0 * (wanted_after[p] - wanted_before[p]) / seconds) for p, c in share.items()}
    now = float(open("/proc/uptime").read().split()[0])
    top = sorted(((p, cmdline(p), round(c, 1)) for p, c in wanted.items()
                  if p not in skip and c >= BURNER_CPU and sustained(stat(p), now, wanted_after[p]) and on_host(p)),
                 key=lambda t: -t[2])
    start = (stat(main_pid) or [0] * 20)[19] if main_pid else 0
    uptime = float(open("/proc/uptime").read().split()[0]) - int(start) / TICKS if main_pid else 0.0
    for thread in threads:
        thread.join()
    print(json.dumps({
        "unit": UNIT, "state": state, "main_pid": main_pid, "pids": mine, "hostname": socket.gethostname(),
        "cpu_percent": round(sum(share.get(p, 0.0) for p in mine), 1), "rss_mb": round(sum(rss_mb(p) for p in mine), 1),
        "uptime_s": round(uptime, 1), "suspended": sum(1 for p in mine if (stat(p) or ["?"])[0] in ("T", "t")),
        "host_cpu_percent": round(100.0 * (1 - (idle1 - idle0) / ((total1 - total0) or 1)), 1),
        "top": [t for t in top if not has_sockets(t[0])][:5],
        "probes": probes, "tables": tables(), "settings": settings(main_pid), "nginx_conf": nginx_conf(),
        "descriptors": descriptors(mine), "connections": connections(mine),
        "workers": len([p for p in mine if p != main_pid]), "disk_free": {LOGS.get(UNIT, "/var/log"): disk_free(LOGS.get(UNIT, "/var/log"))},
    }))


if __name__ == "__main__":  # run by python3 -; the tests load the functions alone
    main()
OBSERVE_HOST_PY
