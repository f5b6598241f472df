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
RSFM := target/release/rsfm
DEMO_RESULTS ?= $(CURDIR)/results/demo

.PHONY: libtorch build worker demo test lint bench clean

libtorch:
	$(SETUP_LIBTORCH)

## build: the rsfm CLI (no libtorch) and the rsfm-worker (libtorch), release mode
build: libtorch
	$(CARGO) build --release -p rsfm
	$(CARGO) build --release -p rsfm-model --features torch --bin rsfm-worker

worker: libtorch
	$(CARGO) build -p rsfm-model --features torch --bin rsfm-worker

## demo: the study at toy scale (recipes/smoke: synthetic data from prepare stages, three tiny
## ViTs, MAE, detection and segmentation fine-tuning, a fraction ladder), then its report
demo: build
	$(RSFM) --results $(DEMO_RESULTS) run recipes/smoke --jobs 2
	$(RSFM) --results $(DEMO_RESULTS) results --where "name like 'eval%' and metric in ('map', 'miou')"
	$(RSFM) --results $(DEMO_RESULTS) report recipes/smoke --out $(DEMO_RESULTS)/reports
	@echo "report: $(DEMO_RESULTS)/reports/index.html"

## test: unit, reference-vector, format and end-to-end tests
test: libtorch worker
	$(CARGO) test -p rsfm -p rsfm-harness
	$(CARGO) test -p rsfm-model --features torch

lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy -p rsfm -p rsfm-harness --all-targets -- -D warnings
	$(CARGO) clippy -p rsfm-model --features torch --all-targets -- -D warnings

## bench: each figure as a ratio against its reference, measured in the same run
bench: build
	benches/harness/plan_and_overhead.sh $(RSFM)
	benches/fingerprint/run.sh
	benches/metrics/dota_map.sh
	benches/metrics/confusion.sh
	$(CARGO) bench -p rsfm-model --features torch --bench models
	benches/models/detector.sh
	benches/models/pytorch_eager.sh

clean:
	$(CARGO) clean
