#!/bin/sh
# square.sh IN OUT: squares the value in IN/value.txt into OUT/value.txt and metrics.json.
set -eu
in=$1
out=$2
value=$(cat "$in/value.txt")
square=$((value * value))
echo "$square" > "$out/value.txt"
printf '{"square": %s}\n' "$square" > "$out/metrics.json"
