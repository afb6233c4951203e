#!/bin/sh
# Print the pids listed in a pid file (one or more per line) that are still alive, one per line; nothing
# when the file is missing or every process is gone. Tells whether background processes still run.
#
#   pidfile-alive.sh PIDFILE
#
# Exits 0 (2: bad usage).
set -u

[ $# -eq 1 ] || { printf 'pidfile-alive: usage: pidfile-alive.sh PIDFILE\n' >&2; exit 2; }
[ -f "$1" ] || exit 0
for pid in $(cat "$1"); do
  case $pid in '' | *[!0-9]*) continue ;; esac
  if kill -0 "$pid" 2>/dev/null; then printf '%s\n' "$pid"; fi
done
exit 0
