# rsfm: `make demo` and `make test` set up everything they need (libtorch included).
SHELL := /bin/bash
# libtorch: yours when LIBTORCH (or LIBTORCH_USE_PYTORCH=1) is set, else .libtorch/ installed by
# scripts/setup-libtorch.sh from the pinned PyPI wheels.
ifdef LIBTORCH
SETUP_LIBTORCH := @echo "using LIBTORCH=$(LIBTORCH)"
export LIBTORCH
else ifeq ($(LIBTORCH_USE_PYTORCH),1)
SETUP_LIBTORCH := @echo "using the libtorch of python3's torch (LIBTORCH_USE_PYTORCH=1)"
else
LIBTORCH := $(CURDIR)/.libtorch
SETUP_LIBTORCH := @scripts/setup-libtorch.sh $(LIBTORCH) >/dev/null
export LIBTORCH
endif
CARGO ?= cargo
# The demo runs the dev-profile binaries that `make test` builds too (dependencies at -O3, the
# worker's crate at -O1, the CLI at -O0; see Cargo.toml): one build serves both, and
# build-support/workspace-hack keeps the worker, CLI and test builds on one set of dependency
# features, so no dependency compiles twice. The study's scores are bit-identical to a release
# build's and its time the same within the machine's noise (4 min 32 s vs 4 min 15 s, 2 cores).
RSFM := target/debug/rsfm
RELEASE_RSFM := target/release/rsfm
DEMO_RESULTS ?= $(CURDIR)/results/demo

.PHONY: libtorch gloo build release worker demo test fuzz lint bench clean

libtorch:
	$(SETUP_LIBTORCH)

## gloo: Gloo's headers (Debian's libgloo-dev), which rsfm-model's c10d shim compiles against
gloo:
	@test -e /usr/include/gloo/config.h || apt-get install -y libgloo-dev >/dev/null \
		|| { apt-get update >/dev/null && apt-get install -y libgloo-dev >/dev/null; }

## build: the rsfm CLI (no libtorch) and the rsfm-worker (libtorch), in the profile `make test`
## builds (target/debug)
build: libtorch gloo worker
	$(CARGO) build -p rsfm

## release: the same two binaries in release mode (target/release), for benches and installs
release: libtorch gloo
	$(CARGO) build --release -p rsfm
	$(CARGO) build --release -p rsfm-model --features torch --bin rsfm-worker

worker: libtorch gloo
	$(CARGO) build -p rsfm-model --features torch --bin rsfm-worker

## demo: the study at toy scale (recipes/smoke: synthetic data from prepare stages, three tiny
## ViTs, MAE, detection and segmentation fine-tuning, a fraction ladder), then its report
demo: build
	$(RSFM) --results $(DEMO_RESULTS) run recipes/smoke --jobs 2
	$(RSFM) --results $(DEMO_RESULTS) results --where "name like 'eval%' and metric in ('map', 'miou')"
	$(RSFM) --results $(DEMO_RESULTS) report recipes/smoke --out $(DEMO_RESULTS)/reports
	@echo "report: $(DEMO_RESULTS)/reports/index.html"

## test: unit, reference-vector, format and end-to-end tests
test: libtorch gloo worker
	$(CARGO) test -p rsfm -p rsfm-harness
	$(CARGO) test -p rsfm-model --features torch

## fuzz: random and mutated recipes, DOTA/DIOR-R/label files into their readers; no panic allowed
FUZZ_CASES ?= 20000
fuzz:
	PROPTEST_CASES=$(FUZZ_CASES) $(CARGO) test -p rsfm-harness --test fuzz

lint: libtorch gloo
	$(CARGO) fmt --all --check
	$(CARGO) clippy -p rsfm -p rsfm-harness --all-targets -- -D warnings
	$(CARGO) clippy -p rsfm-model --features torch --all-targets -- -D warnings

## bench: each figure as a ratio against its reference, measured in the same run. Benches build
## in their own target dir: `cargo bench` rebuilds the package's binaries with other features,
## and must not replace the rsfm and rsfm-worker that `make build` installed.
BENCH_TARGET := CARGO_TARGET_DIR=$(CURDIR)/target/bench
bench: release
	benches/harness/plan_and_overhead.sh $(RELEASE_RSFM)
	$(BENCH_TARGET) benches/fingerprint/run.sh
	$(BENCH_TARGET) benches/metrics/dota_map.sh
	$(BENCH_TARGET) benches/metrics/confusion.sh
	$(BENCH_TARGET) $(CARGO) bench -p rsfm-model --features torch --bench models
	$(BENCH_TARGET) benches/models/detector.sh
	$(BENCH_TARGET) benches/models/pytorch_eager.sh

clean:
	$(CARGO) clean
