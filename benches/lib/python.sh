# Sourced by the bench scripts that compare rsfm with PyTorch: picks the Python side.
#
# bench_python VENV IMPORTS INSTALL sets `python` to $RSFM_BENCH_PYTHON, or else to
# VENV/bin/python. When that interpreter cannot `import IMPORTS` (a comma-separated module
# list), a given RSFM_BENCH_PYTHON is an error; otherwise VENV is created and the function
# named INSTALL is called with VENV's pip to fill it.
bench_python() {
    local venv="$1" imports="$2" install="$3"
    python="${RSFM_BENCH_PYTHON:-$venv/bin/python}"
    if ! "$python" -c "import $imports" 2>/dev/null; then
        if [[ -n "${RSFM_BENCH_PYTHON:-}" ]]; then
            echo "RSFM_BENCH_PYTHON=$python cannot import $imports" >&2
            exit 1
        fi
        echo "creating $venv for: $imports" >&2
        python3 -m venv "$venv"
        "$install" "$venv/bin/pip"
    fi
}
