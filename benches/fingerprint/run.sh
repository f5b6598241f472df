#!/usr/bin/env bash
# Dataset fingerprint throughput: rsfm (all cores, stat cache) against `openssl dgst -sha256`
# (one process: the per-core reference) on a generated tree, then the cached second pass.
# Usage: benches/fingerprint/run.sh [FILES] [BYTES]   (default 100000 files, 2 GB)
set -euo pipefail
FILES=${1:-100000}
BYTES=${2:-2000000000}
cd "$(dirname "$0")/../.."

cargo build --release -p rsfm-harness --example fingerprint_bench >&2
BENCH="${CARGO_TARGET_DIR:-target}/release/examples/fingerprint_bench"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/rsfm-fingerprint-bench.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
need=$((BYTES / 1024 * 3 / 2))
free=$(df -Pk "$WORK" | awk 'NR == 2 { print $4 }')
if (( free < need )); then
    echo "not enough space in $WORK: need ~$((need / 1024 / 1024)) GiB, have $((free / 1024 / 1024)) GiB (set TMPDIR)" >&2
    exit 2
fi

echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
"$BENCH" generate "$WORK/tree" "$FILES" "$BYTES"
sync

export WORK
/usr/bin/time -f "%e %U %S" -o "$WORK/openssl.time" \
    sh -c 'find "$WORK/tree" -type f -print0 | xargs -0 -n 2000 openssl dgst -sha256 > "$WORK/openssl.txt"'
read -r openssl_s openssl_user openssl_sys < "$WORK/openssl.time"
test "$(wc -l < "$WORK/openssl.txt")" -eq "$FILES"

"$BENCH" measure "$WORK/tree" "$WORK/rsfm.db" > "$WORK/rsfm.txt"
get() { awk -F= -v k="$1" '$1 == k { print $2 }' "$WORK/rsfm.txt" | tail -1; }
bytes=$(get bytes)
awk -v b="$bytes" -v o="$openssl_s" -v oc="$(echo "$openssl_user + $openssl_sys" | bc -l)" -v w="$(get first_wall_s)" -v c="$(get first_cpu_s)" \
    -v t="$(get threads)" -v w2="$(get second_wall_s)" -v h="$(get second_cache_hits)" -v f="$(get files)" '
BEGIN {
    ogbs = b / o / 1e9; rgbs = b / w / 1e9; busy = c / w
    printf "files %d, %.3f GB\n", f, b / 1e9
    printf "openssl dgst -sha256, 1 process: %.2f s, %.3f GB/s (per-core reference)\n", o, ogbs
    printf "rsfm first pass (%d threads):    %.2f s, %.3f GB/s, CPU %.2f s = %.2f cores busy\n", t, w, rgbs, c, busy
    printf "ratio rsfm/openssl: overall %.2fx, per thread %.2fx, per busy core %.2fx\n", rgbs / ogbs, rgbs / ogbs / t, rgbs / ogbs / busy
    printf "GB per CPU-second (load-independent): openssl %.3f (%.2f s CPU), rsfm %.3f (%.2f s CPU): %.2fx\n", b / oc / 1e9, oc, b / c / 1e9, c, oc / c
    printf "rsfm second pass (stat cache): %.3f s, %d of %d files from the cache\n", w2, h, f
}'
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg) (other work on the machine slows both tools)"
if [ "$(get first_sha256)" != "$(get second_sha256)" ]; then echo "fingerprints differ between passes" >&2; exit 1; fi
