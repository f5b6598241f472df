# rsfm: `make demo` and `make test` set up everything they need (libtorch included).
SHELL := /bin/bash
LIBTORCH ?= $(CURDIR)/.libtorch
export LIBTORCH
CARGO ?= cargo

.PHONY: libtorch build worker demo test lint bench clean

libtorch:
	@scripts/setup-libtorch.sh >/dev/null

## build: the rsfm CLI (no libtorch) and the rsfm-worker (libtorch)
build: libtorch
	$(CARGO) build --release -p rsfm
	$(CARGO) build --release -p rsfm-model --features torch --bin rsfm-worker

worker: libtorch
	$(CARGO) build -p rsfm-model --features torch --bin rsfm-worker

## test: unit, reference-vector, format and end-to-end tests
test: libtorch worker
	$(CARGO) test -p rsfm -p rsfm-harness
	$(CARGO) test -p rsfm-model --features torch

lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) clippy -p rsfm-model --features torch --all-targets -- -D warnings

clean:
	$(CARGO) clean
