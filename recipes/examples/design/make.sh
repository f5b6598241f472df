#!/bin/sh
# make.sh SIZE OUT: writes SIZE into OUT/value.txt and reports it as a metric.
set -eu
size=$1
out=$2
echo "$size" > "$out/value.txt"
printf '{"value": %s}\n' "$size" > "$out/metrics.json"
