#!/usr/bin/env sh
# A local stand-in for the "check" Lambda: reads the row on stdin, fails for blocked ids.
row=$(cat)
id=$(printf '%s' "$row" | sed -E 's/.*"id":"([^"]*)".*/\1/')
if grep -qx "$id" "$(dirname "$0")/blocked.txt" 2>/dev/null; then
  echo "{\"errorType\":\"AccountBlocked\",\"errorMessage\":\"account $id is blocked\"}"
  exit 1
fi
echo "{\"id\":\"$id\",\"ok\":true}"
