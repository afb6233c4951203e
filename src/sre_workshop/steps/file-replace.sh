#!/bin/sh
# Replace fixed strings in a config file, atomically (a rename in the same directory), keeping the file's
# owner and mode. Every OLD must occur in the file, or nothing is changed: an edit that finds nothing to
# edit is an error, never a silent no-op.
#
#   file-replace.sh FILE OLD NEW [OLD NEW]...
#
# Exits 0; on failure prints one line on stderr and exits 1 (2: bad usage).
set -u

fail() { printf 'file-replace: %s\n' "$2" >&2; exit "$1"; }

[ $# -ge 3 ] && [ $(( ($# - 1) % 2 )) -eq 0 ] || fail 2 "usage: file-replace.sh FILE OLD NEW [OLD NEW]..."
file=$1
shift
[ -f "$file" ] || fail 1 "no file $file"
dir=$(dirname "$file")
tmp=$(mktemp "$dir/.file-replace.XXXXXX") || fail 1 "cannot write in $dir"
work=$(mktemp) || fail 1 "cannot create a temporary file"
trap 'rm -f "$tmp" "$work" "$work.next"' EXIT
cat "$file" > "$work" || fail 1 "cannot read $file"
while [ $# -gt 0 ]; do
  [ -n "$1" ] || fail 2 "OLD must not be empty"
  # The strings reach awk through its environment: -v would interpret backslashes in them.
  OLD=$1 NEW=$2 awk '
    BEGIN { old = ENVIRON["OLD"]; new = ENVIRON["NEW"]; found = 0 }
    {
      line = $0; out = ""
      while ((i = index(line, old)) > 0) {
        out = out substr(line, 1, i - 1) new; line = substr(line, i + length(old)); found = 1
      }
      print out line
    }
    END { exit found ? 0 : 3 }' "$work" > "$work.next"
  case $? in
    0) mv -f "$work.next" "$work" ;;
    3) fail 1 "'$1' is not in $file; nothing was changed" ;;
    *) fail 1 "cannot edit $file" ;;
  esac
  shift 2
done
cp -p "$file" "$tmp" && cat "$work" > "$tmp" || fail 1 "cannot write next to $file"
mv -f "$tmp" "$file" || fail 1 "cannot replace $file"
