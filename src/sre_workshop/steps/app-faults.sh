#!/bin/sh
# Set, show or clear an app's run-time faults (latency, error rate, failing /health) through its
# /admin/faults API on this host. The same script runs locally and, through SSM Run Command, on an instance;
# only the port and the token file differ.
#
#   app-faults.sh PORT TOKEN_FILE get
#   app-faults.sh PORT TOKEN_FILE put '{"latency_ms": 200, "latency_fraction": 0.5}'
#   app-faults.sh PORT TOKEN_FILE delete
#
# Prints the app's JSON answer and exits 0; on failure prints one line on stderr and exits 1 (2: bad usage).
# The token is handed to curl on its stdin, never on its command line, where any local user could read it.
set -u

fail() { printf 'app-faults: %s\n' "$2" >&2; exit "$1"; }

[ $# -ge 3 ] || fail 2 "usage: app-faults.sh PORT TOKEN_FILE get|put JSON|delete"
port=$1 token_file=$2 action=$3
case $port in '' | *[!0-9]*) fail 2 "PORT must be a number, not '$port'" ;; esac
case $action in
  get) method=GET; [ $# -eq 3 ] || fail 2 "get takes no JSON" ;;
  delete) method=DELETE; [ $# -eq 3 ] || fail 2 "delete takes no JSON" ;;
  put) method=PUT; [ $# -eq 4 ] || fail 2 "put needs one JSON object, e.g. '{\"latency_ms\": 200}'" ;;
  *) fail 2 "unknown action '$action': use get, put or delete" ;;
esac
[ -r "$token_file" ] || fail 2 "cannot read the token file $token_file"
token=$(tr -d '\r\n' < "$token_file")
[ -n "$token" ] || fail 2 "the token file $token_file is empty"
# The token goes into a curl config line between double quotes: refuse what would break out of them.
case $token in *[\"\\]*) fail 2 "the token in $token_file contains a quote or a backslash" ;; esac

url="http://127.0.0.1:$port/admin/faults"
json=${4:-}
tmp=$(mktemp -d) || fail 1 "cannot create a temporary directory"
trap 'rm -rf "$tmp"' EXIT
# Long enough for a request queued behind workers that a latency fault keeps busy.
set -- --silent --show-error --connect-timeout 3 --max-time 75 -X "$method" -o "$tmp/body" -w '%{http_code}' \
  -K - "$url"
if [ "$method" = PUT ]; then set -- -H 'Content-Type: application/json' --data-raw "$json" "$@"; fi
status=$(printf 'header = "X-Fault-Token: %s"\n' "$token" | curl "$@" 2>"$tmp/err") ||
  fail 1 "$method $url failed: $(tail -n 1 "$tmp/err")"
answer=$(tr -d '\n' < "$tmp/body")
case $status in
  2??) printf '%s\n' "$answer" ;;
  *) fail 1 "$method $url answered $status: $answer" ;;
esac
