# keyceremony. `make demo` runs a complete dry-run ceremony (it needs only
# Go: the demo binary is built without cgo); `make test` installs what the
# tests need (as root, via apt-get) and runs them all, printing each test
# and package as it finishes.
GO       ?= go
BIN      := bin/keyceremony
# Reproducible: no paths, no build date; the version comes from build info.
BUILDFLAGS := -trimpath -buildvcs=auto -ldflags=-buildid=
DEMO_DIR ?= demo-out

.PHONY: all deps build build-nocgo test lint demo fuzz bench clean

all: build

build:
	CGO_ENABLED=1 $(GO) build $(BUILDFLAGS) -o $(BIN) ./cmd/keyceremony

# The auditor's verifier builds without cgo (no PIV support compiled in).
build-nocgo:
	CGO_ENABLED=0 $(GO) build $(BUILDFLAGS) -o $(BIN)-nocgo ./cmd/keyceremony

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) mod tidy -diff
	$(GO) vet ./...
	CGO_ENABLED=0 $(GO) vet ./...

deps:
	sh scripts/install-test-deps

# Progress as the tests run (scripts/testprogress); a failure still fails
# make (pipefail, and the filter exits 1 on any failed event).
# The tests' temporary directories go to a fresh directory in memory
# (under /dev/shm, or under $TEST_TMPDIR if set), removed afterwards: the
# ceremonies fsync every journal entry and file, which on this project's
# VM disks costs three quarters of the suite's time (TestReadBackRejects
# with TestRollbackOfThePublishedState: 20.4 s on /tmp, 5.6 s on /dev/shm,
# nproc 2). The code still calls every fsync; no test can check that a
# disk honours one. Without a writable /dev/shm, $TMPDIR (or /tmp) is used.
TEST_TMPDIR ?= /dev/shm
test: SHELL := /bin/bash
test: .SHELLFLAGS := -o pipefail -c
test: deps lint
	base="$(TEST_TMPDIR)"; [ -d "$$base" ] && [ -w "$$base" ] || base="$${TMPDIR:-/tmp}"; \
	tmp=$$(mktemp -d "$$base/keyceremony-test.XXXXXX"); trap 'rm -rf "$$tmp"' EXIT; \
	echo "make test: temporary files in $$tmp"; \
	TMPDIR="$$tmp" $(GO) test -count=1 -json ./... | $(GO) run ./scripts/testprogress
	$(MAKE) --no-print-directory build-nocgo

# The demo uses soft devices only, so it needs no cgo and no C library.
demo: build-nocgo
	rm -rf $(DEMO_DIR)
	$(BIN)-nocgo demo --out $(DEMO_DIR)
	$(BIN)-nocgo verify --root $(DEMO_DIR)/metadata/1.root.json $(DEMO_DIR)

# Short runs of every fuzz target (each -fuzztime).
FUZZTIME ?= 10s
fuzz:
	sh scripts/fuzz-all $(FUZZTIME)

clean:
	rm -rf bin $(DEMO_DIR)

# The stable pipeline at 1 M and 10 M files, one process per size
# (docs/stable-pipeline.md). Needs about 30 GB free in $TMPDIR at 10 M.
# One process run per size: wall, CPU and peak RSS per stage; at 1 M the
# go-tuf baseline and the sha256sum floor run in the same process run.
# Exports are generated first (not timed), under $TMPDIR, and removed.
# The CLI bench (bench/cli) runs the real binary's stable diff, stable sign
# --batch and verify as children, each measured (BENCH_N files, 1 M by
# default; 10 M and 25 M in docs/stable-pipeline.md, on a quiet machine),
# and at 1 M the go-tuf baseline beside them with the ratio. The layout
# bench (bench/layout) builds the first ceremony's metadata alone from the
# same export and prints the same size report (docs/tuf-layout.md; 25 M
# there, not here), at 1 M in both target modes (about a minute).
BENCH_N ?= 1000000
bench:
	$(GO) test -run '^$$' -bench . -benchmem ./tuf/ ./stableset/
	$(GO) run ./bench/pipeline -n 1000000 -rm
	$(GO) run ./bench/cli -n $(BENCH_N) -rm
	$(GO) run ./bench/layout -n 1000000
	$(GO) run ./bench/layout -n 1000000 -mode pages
	$(GO) run ./bench/pipeline -n 10000000 -rm
