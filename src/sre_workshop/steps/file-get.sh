#!/bin/sh
# Print a file's content as one line of base64, so that it survives any transport (SSM Run Command's
# output, a JSON ledger item) byte for byte. The same script runs locally and, through SSM, on an instance.
#
#   file-get.sh FILE
#
# Exits 0 with the base64 on stdout; on failure prints one line on stderr and exits 1 (2: bad usage).
set -u

fail() { printf 'file-get: %s\n' "$2" >&2; exit "$1"; }

[ $# -eq 1 ] || fail 2 "usage: file-get.sh FILE"
file=$1
[ -f "$file" ] || fail 1 "no file $file"
[ -r "$file" ] || fail 1 "cannot read $file"
# base64 wraps its lines; one unwrapped line is what the caller decodes.
base64 < "$file" | tr -d '\n' || fail 1 "cannot encode $file"
printf '\n'
