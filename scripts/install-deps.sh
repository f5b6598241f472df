#!/usr/bin/env bash
# Debian packages the tests use: Slurm and munge (the Slurm backend's tests run real daemons),
# iproute2 (the two-node Slurm cluster's namespaces and links), Chromium (the HTML report test),
# Gloo's headers (the c10d shim), and python3-venv where python3 cannot make the venvs of the
# export and weights tests (Debian's python3 without ensurepip). Installs the missing ones
# when run as root; otherwise names them and exits 1.
set -euo pipefail
packages=(slurm-wlm munge iproute2 chromium libgloo-dev)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
python3 -c "import ensurepip, venv" 2>/dev/null || missing+=(python3-venv)
[[ ${#missing[@]} -eq 0 ]] && exit 0
if [[ $(id -u) -ne 0 ]]; then
  echo "install-deps: missing Debian packages: ${missing[*]} (run: sudo apt-get install -y ${missing[*]})" >&2
  exit 1
fi
echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >/dev/null
apt-get install -y -q "${missing[@]}" >/dev/null
