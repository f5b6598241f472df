echo "{ broken" > "$1/metrics.json"
