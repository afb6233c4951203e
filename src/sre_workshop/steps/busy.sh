#!/bin/sh
# N busy processes for a duration, on the host that runs it (a runaway job). The very same script runs on
# an instance through SSM Run Command, on AWS and in the local stack's AWS API twin; only the pid file's
# path is the instance's. Nothing here names why it runs: SSM's command history shows this text.
#
#   busy.sh start N DURATION_S PIDFILE   start N busy processes (none if those of PIDFILE still run)
#   busy.sh stop PIDFILE                 stop exactly the processes PIDFILE records, then remove it
#   busy.sh status PIDFILE               print the pid of each recorded process that still runs
#
# Each is `timeout DURATION_S` around a busy loop, so it ends by itself even if nobody stops it; timeout
# gives itself a process group of its own and passes SIGTERM on to the loop. The processes outlive the
# command that starts them. PIDFILE holds one "pid start_time" line per process: the start time (field 22
# of /proc/PID/stat) tells one from an unrelated process that was given its pid later, so stop never
# signals anything else.
set -eu

usage() {
    echo "usage: busy.sh start N DURATION_S PIDFILE | stop PIDFILE | status PIDFILE" >&2
    exit 2
}

number() {  # check that $1 is a whole number from $2 to $3
    case $1 in '' | *[!0-9]*) usage ;; esac
    [ "$1" -ge "$2" ] && [ "$1" -le "$3" ] || usage
}

start_time() {  # print the start time of a live (not zombie) process; fail if there is none
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    # The command name (field 2) may hold spaces: read the fields after its closing parenthesis.
    set -- ${stat##*") "}
    [ "$1" != Z ] || return 1
    echo "${20}"
}

live() {  # print the pid of each busy process recorded in $1 that still runs
    [ -f "$1" ] || return 0
    while read -r pid started; do
        if [ "$(start_time "$pid" || true)" = "$started" ]; then echo "$pid"; fi
    done <"$1"
}

start() {
    number "$1" 1 64
    number "$2" 1 86400
    running=$(live "$3")
    if [ -n "$running" ]; then
        echo "already running: $(echo $running)"
        return 0
    fi
    mkdir -p "$(dirname "$3")"
    : >"$3"
    i=0
    while [ "$i" -lt "$1" ]; do
        # No output kept open: SSM (and the local caller) wait until the script's output closes.
        timeout "$2" sh -c 'while :; do :; done' worker </dev/null >/dev/null 2>&1 &
        echo "$! $(start_time $!)" >>"$3"  # recorded at once: stop finds every process started so far
        i=$((i + 1))
    done
    echo "started $1 busy processes for $2 s: $(echo $(live "$3"))"
}

stop() {
    pids=$(live "$1")
    if [ -n "$pids" ]; then
        kill -TERM $pids 2>/dev/null || true
    fi
    tries=0
    while [ -n "$(live "$1")" ] && [ "$tries" -lt 50 ]; do
        sleep 0.1
        tries=$((tries + 1))
    done
    if [ -n "$(live "$1")" ]; then
        echo "busy processes still running after SIGTERM: $(echo $(live "$1"))" >&2
        exit 1
    fi
    rm -f "$1"
    echo "stopped: $(echo $pids)"
}

[ $# -ge 1 ] || usage
action=$1
shift
case $action in
    start) [ $# -eq 3 ] || usage; start "$@" ;;
    stop) [ $# -eq 1 ] || usage; stop "$1" ;;
    status) [ $# -eq 1 ] || usage; live "$1" ;;
    *) usage ;;
esac
