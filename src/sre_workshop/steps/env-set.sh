#!/bin/sh
# Set one variable of an environment file (systemd EnvironmentFile, NAME=value lines) to a new value,
# atomically, keeping the file's owner and mode. The variable must have exactly one line already: a deploy
# changes a setting, it does not invent one.
#
#   env-set.sh FILE NAME VALUE
#
# Exits 0; on failure prints one line on stderr, leaves FILE as it was and exits 1 (2: bad usage).
set -u

fail() { printf 'env-set: %s\n' "$2" >&2; exit "$1"; }

[ $# -eq 3 ] || fail 2 "usage: env-set.sh FILE NAME VALUE"
file=$1 name=$2
case $name in '' | [0-9]* | *[!A-Za-z0-9_]*) fail 2 "NAME must be a variable name, not '$name'" ;; esac
case $3 in *'
'*) fail 2 "VALUE must be one line" ;; esac
[ -f "$file" ] && [ -r "$file" ] || fail 1 "no readable file $file"
count=$(grep -c "^$name=" "$file")
[ "$count" -eq 1 ] || fail 1 "$file has $count lines setting $name, not one"
dir=$(dirname "$file")
tmp=$(mktemp "$dir/.env-set.XXXXXX") || fail 1 "cannot write in $dir"
trap 'rm -f "$tmp"' EXIT
cp -p "$file" "$tmp" || fail 1 "cannot copy $file"
# The value reaches awk through its environment: -v would interpret backslashes in it.
NAME=$name VALUE=$3 awk 'index($0, ENVIRON["NAME"] "=") == 1 { print ENVIRON["NAME"] "=" ENVIRON["VALUE"]; next }
  { print }' "$file" > "$tmp" || fail 1 "cannot edit $file"
mv -f "$tmp" "$file" || fail 1 "cannot replace $file"
trap - EXIT
