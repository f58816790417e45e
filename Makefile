# rhoai-bootstrap — build, test and rehearse on the local test bed.
# The test bed's binaries (kube-apiserver, etcd, kubectl, pebble) are built from the Go
# module proxy into ~/.cache/rhoai-bootstrap/testbin on first use (about 10 minutes cold,
# instant warm); nothing is downloaded prebuilt.

GO        ?= go
BIN       := bin
VERSION   ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X main.version=$(VERSION)
TEST_TIMEOUT ?= 40m
# go test's -p bounds the actions it runs at once, builds and test runs alike (default
# GOMAXPROCS: 2 here). The e2e package runs for most of the suite, so with -p 2 one slot
# was left to link and then run every other package in turn: that sequence, not e2e, was
# the suite's critical path (make testtime: it ended at 1441 s of a 1468 s run, ~300 s of
# it gaps while test binaries linked). -p 3 links and runs the others two at a time; they
# now end long before e2e (866 s of 1134 s), which is the critical path again.
TEST_P ?= 3
# The e2e package is listed first: go test starts test runs in the order the packages are
# listed, so the longest one starts as soon as it is built.
TEST_PKGS := ./e2e ./...
# -ldflags=-w: go test relinks every test binary on every run (-count=1), and writing
# their DWARF debug info was a quarter of that link work (go test -c of ./e2e: 11.7 ->
# 8.5 CPU-s, ./manifests 14.0 -> 10.2); tests never read it (panics and stack traces use
# the symbol table, which -w keeps). Compiled packages stay cached either way.
TEST_FLAGS = -tags e2e -count=1 -p $(TEST_P) -parallel 3 -timeout $(TEST_TIMEOUT) -ldflags=-w
export GOFLAGS := -buildvcs=false

.PHONY: all build testbin test testtime unit e2e demo bench startbench chaos lint fuzz clean

all: build

build:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/rhoai-bootstrap ./cmd/rhoai-bootstrap
	$(GO) build -trimpath -o $(BIN)/openshift-install ./e2e/cmd/openshift-install

testbin:
	./e2e/testbin/build.sh >/dev/null

# Everything: unit tests, and the end-to-end suites on the real test bed.
test: lint testbin
	$(GO) test $(TEST_FLAGS) $(TEST_PKGS)

# The suite as `make test` runs it, with where its time went: wall and CPU seconds per
# package, the slowest tests and the durations they logged, the load average around it.
# The machine may be shared: run it under the same lock as make test.
testtime: testbin
	./e2e/testtime.sh $(TEST_FLAGS) $(TEST_PKGS)

# Unit tests only (no test bed).
unit:
	$(GO) test -count=1 ./...

e2e: testbin
	$(GO) test $(TEST_FLAGS) ./e2e ./e2e/...

# A full bootstrap rehearsal on the local test bed: starts the bed, runs
# `rhoai-bootstrap install -f configs/examples/local.yaml`, prints where things are.
demo: build testbin
	./e2e/demo.sh

# Figures on the test bed: rehearsal wall time with realistic (scaled) latencies, with the
# graph's concurrency and with --max-parallel 1; converged re-run; peak RSS; --help
# latency; binary size. BENCH_SCALE scales the latencies (default 0.05).
BENCH_SCALE ?= 0.05
bench: testbin
	$(GO) run ./e2e/cmd/bench -scale $(BENCH_SCALE)

# Start-up latency without the test bed: `rhoai-bootstrap --help` run STARTBENCH_RUNS times,
# median wall and CPU time and page faults. STARTBENCH_OLD=<another build> alternates the two
# binaries run by run, so both see the same machine load (issue #19: --help < 50 ms).
STARTBENCH_RUNS ?= 20
startbench: build
	$(GO) run ./e2e/cmd/startbench -n $(STARTBENCH_RUNS) $(BIN)/rhoai-bootstrap $(STARTBENCH_OLD)

# kill -9 at seeded random moments, then one more run must converge with nothing
# duplicated. CHAOS_KILLS (default 20), CHAOS_SEED (default: the clock; printed),
# CHAOS_OVERLAY (default the dev overlay; manifests/gitops/clusters/overlays/bed: the small one).
CHAOS_KILLS ?= 20
chaos: testbin
	$(GO) run ./e2e/cmd/chaos -kills $(CHAOS_KILLS) $(if $(CHAOS_SEED),-seed $(CHAOS_SEED)) $(if $(CHAOS_OVERLAY),-overlay $(CHAOS_OVERLAY))

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet -tags e2e ./...

# The config decoder fuzz target (60 s).
fuzz:
	$(GO) test ./configs -run '^$$' -fuzz FuzzParse -fuzztime 60s -fuzzminimizetime 5s

clean:
	rm -rf $(BIN)
