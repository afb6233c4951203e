#!/bin/sh
# Show, set or release sre-app's deliberate leak through its /admin/leak API on this host. The same script
# runs locally and, through SSM Run Command, on the app's instance; only the port and the token file differ.
#
#   app-leak.sh PORT TOKEN_FILE get
#   app-leak.sh PORT TOKEN_FILE put '{"mode": "time", "mb_per_minute": 60, "cap_mb": 200}'
#   app-leak.sh PORT TOKEN_FILE release
#
# Prints the app's JSON answer and exits 0; on failure prints one line on stderr and exits 1 (2: bad usage).
# The token is handed to curl on its stdin, never on its command line, where any local user could read it.
set -u

fail() { printf 'app-leak: %s\n' "$2" >&2; exit "$1"; }

[ $# -ge 3 ] || fail 2 "usage: app-leak.sh PORT TOKEN_FILE get|put JSON|release"
port=$1 token_file=$2 action=$3
case $port in '' | *[!0-9]*) fail 2 "PORT must be a number, not '$port'" ;; esac
case $action in
  get) method=GET path=/admin/leak; [ $# -eq 3 ] || fail 2 "get takes no JSON" ;;
  release) method=POST path=/admin/leak/release; [ $# -eq 3 ] || fail 2 "release takes no JSON" ;;
  put) method=PUT path=/admin/leak; [ $# -eq 4 ] || fail 2 "put needs one JSON object, e.g. '{\"mode\": \"off\"}'" ;;
  *) fail 2 "unknown action '$action': use get, put or release" ;;
esac
[ -r "$token_file" ] || fail 2 "cannot read the token file $token_file"
token=$(tr -d '\r\n' < "$token_file")
[ -n "$token" ] || fail 2 "the token file $token_file is empty"
# The token goes into a curl config line between double quotes: refuse what would break out of them.
case $token in *[\"\\]*) fail 2 "the token in $token_file contains a quote or a backslash" ;; esac

url="http://127.0.0.1:$port$path"
json=${4:-}
tmp=$(mktemp -d) || fail 1 "cannot create a temporary directory"
trap 'rm -rf "$tmp"' EXIT
set -- --silent --show-error --connect-timeout 3 --max-time 30 -X "$method" -o "$tmp/body" -w '%{http_code}' -K - "$url"
if [ "$method" = PUT ]; then set -- -H 'Content-Type: application/json' --data-raw "$json" "$@"; fi
status=$(printf 'header = "X-Fault-Token: %s"\n' "$token" | curl "$@" 2>"$tmp/err") ||
  fail 1 "$method $url failed: $(tail -n 1 "$tmp/err")"
answer=$(tr -d '\n' < "$tmp/body")
case $status in
  2??) printf '%s\n' "$answer" ;;
  *) fail 1 "$method $url answered $status: $answer" ;;
esac
