#!/usr/bin/env bash
# Installs libtorch 2.11.0 (CPU part) for tch 0.24.0 from the PyPI wheels, pinned by sha256.
#
#   scripts/setup-libtorch.sh [DEST]      default DEST: .libtorch in the repository root
#
# Prints nothing but the install path on stdout. Without DEST, a no-op when LIBTORCH or
# LIBTORCH_USE_PYTORCH=1 is set (your libtorch is used). Downloads are kept in ${XDG_CACHE_HOME:-~/.cache}/rsfm/wheels,
# so fresh clones on one machine fetch them once. Idempotent: an existing, complete install
# (marked by .rsfm-libtorch-ok) is left alone.
set -euo pipefail

if [[ $# -eq 0 && -n "${LIBTORCH:-}" ]]; then echo "$LIBTORCH"; exit 0; fi
if [[ $# -eq 0 && "${LIBTORCH_USE_PYTORCH:-}" == "1" ]]; then echo "(python torch)"; exit 0; fi

root=$(cd "$(dirname "$0")/.." && pwd)
dest=${1:-$root/.libtorch}
marker="$dest/.rsfm-libtorch-ok"
version=2.11.0
if [[ -f "$marker" && "$(cat "$marker")" == "$version" ]]; then
  [[ -f "$dest/build-version" ]] || echo "$version" > "$dest/build-version"
  echo "$dest"; exit 0
fi

cache=${XDG_CACHE_HOME:-$HOME/.cache}/rsfm/wheels
mkdir -p "$cache"

# name|sha256 of each wheel (CPython 3.11, manylinux x86_64).
wheels=(
  "torch-2.11.0-cp311-cp311-manylinux_2_28_x86_64.whl|7aa2f9bbc6d4595ba72138026b2074be1233186150e9292865e04b7a63b8c67a"
  "nvidia_cuda_runtime-13.0.96-py3-none-manylinux2014_x86_64.manylinux_2_17_x86_64.whl|7f82250d7782aa23b6cfe765ecc7db554bd3c2870c43f3d1821f1d18aebf0548"
  "nvidia_cuda_cupti-13.0.85-py3-none-manylinux_2_25_x86_64.whl|4eb01c08e859bf924d222250d2e8f8b8ff6d3db4721288cf35d14252a4d933c8"
)
specs=(torch==2.11.0 nvidia-cuda-runtime==13.0.96 nvidia-cuda-cupti==13.0.85)

verified() { [[ -f "$cache/$1" ]] && echo "$2  $cache/$1" | sha256sum --check --status; }

need_download=()
for i in "${!wheels[@]}"; do
  IFS='|' read -r name sum <<<"${wheels[$i]}"
  verified "$name" "$sum" || need_download+=("${specs[$i]}")
done
if ((${#need_download[@]})); then
  echo "setup-libtorch: downloading ${need_download[*]} from PyPI into $cache" >&2
  if ! python3 -m pip download --quiet --no-deps --only-binary=:all: \
      --python-version 3.11 --platform manylinux_2_28_x86_64 --platform manylinux_2_25_x86_64 \
      --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
      -d "$cache" "${need_download[@]}" >&2; then
    echo "setup-libtorch: error: could not download ${need_download[*]} from PyPI." >&2
    echo "  Are you offline? Either connect, set LIBTORCH=/path/to/libtorch-2.11.0," >&2
    echo "  or set LIBTORCH_USE_PYTORCH=1 with torch 2.11.0 installed in python3." >&2
    exit 1
  fi
fi
for w in "${wheels[@]}"; do
  IFS='|' read -r name sum <<<"$w"
  if ! verified "$name" "$sum"; then
    echo "setup-libtorch: error: $cache/$name does not match its pinned sha256 $sum; delete it and rerun." >&2
    exit 1
  fi
done

tmp=$(mktemp -d "${dest%/*}/.libtorch-tmp.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
echo "setup-libtorch: extracting libtorch into $dest" >&2
# libtorch proper: lib/ (no CUDA libraries), include/, share/.
python3 - "$cache/${wheels[0]%%|*}" "$tmp" <<'PY'
import sys, zipfile, os
wheel, out = sys.argv[1], sys.argv[2]
skip_libs = ("libtorch_cuda", "libc10_cuda", "libcaffe2_nvrtc", "libtorch_nvshmem", "libtorch_python")
with zipfile.ZipFile(wheel) as z:
    for info in z.infolist():
        name = info.filename
        if not name.startswith(("torch/lib/", "torch/include/", "torch/share/")) or name.endswith("/"):
            continue
        if name.startswith("torch/lib/") and os.path.basename(name).startswith(skip_libs):
            continue
        target = os.path.join(out, name[len("torch/"):])
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with z.open(info) as src, open(target, "wb") as dst:
            while chunk := src.read(1 << 20):
                dst.write(chunk)
PY
for w in "${wheels[1]}" "${wheels[2]}"; do
  name=${w%%|*}
  python3 - "$cache/$name" "$tmp/lib" <<'PY'
import sys, zipfile, os
wheel, out = sys.argv[1], sys.argv[2]
wanted = ("libcudart.so.13", "libcupti.so.13")
with zipfile.ZipFile(wheel) as z:
    for info in z.infolist():
        if os.path.basename(info.filename) in wanted:
            with z.open(info) as src, open(os.path.join(out, os.path.basename(info.filename)), "wb") as dst:
                dst.write(src.read())
PY
done
echo "$version" > "$tmp/build-version"   # as libtorch archives record it
echo "$version" > "$tmp/.rsfm-libtorch-ok"
rm -rf "$dest"
mv "$tmp" "$dest"
trap - EXIT
echo "$dest"
