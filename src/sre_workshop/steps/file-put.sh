#!/bin/sh
# Replace a file's content with the given base64 content, atomically (a rename in the same directory),
# keeping the file's owner and mode. Restores what file-get.sh printed, byte for byte.
#
#   file-put.sh FILE BASE64
#
# Prints the new content's size and exits 0; on failure prints one line on stderr, leaves FILE as it was
# and exits 1 (2: bad usage).
set -u

fail() { printf 'file-put: %s\n' "$2" >&2; exit "$1"; }

[ $# -eq 2 ] || fail 2 "usage: file-put.sh FILE BASE64"
file=$1 content=$2
[ -f "$file" ] || fail 1 "no file $file (file-put only replaces an existing file)"
dir=$(dirname "$file")
tmp=$(mktemp "$dir/.file-put.XXXXXX") || fail 1 "cannot write in $dir"
trap 'rm -f "$tmp"' EXIT
# Owner and mode first (cp -p as root keeps the owner too), then the content over it.
cp -p "$file" "$tmp" || fail 1 "cannot copy $file"
printf '%s' "$content" | base64 -d > "$tmp" 2>/dev/null || fail 1 "the content is not valid base64"
mv -f "$tmp" "$file" || fail 1 "cannot replace $file"
trap - EXIT
printf '%s bytes written to %s\n' "$(wc -c < "$file" | tr -d ' ')" "$file"
