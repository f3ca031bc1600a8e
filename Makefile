# Build, test and code generation for the Go implementation of Apache Pegasus.

GO        ?= go
MODULE    := github.com/pegasusgo/pegasus
BIN_DIR   ?= bin
VERSION   ?= $(shell cat VERSION 2>/dev/null || echo 0.0.0)
GIT_SHA   ?= $(shell git rev-parse --short=8 HEAD 2>/dev/null || echo unknown)
LDFLAGS   := -X $(MODULE)/daemon/version.Version=$(VERSION) -X $(MODULE)/daemon/version.GitSHA=$(GIT_SHA)
# dsn.thrift declares the placeholder types only; their Go code is hand-written in idl/base.
IDL_FILES := $(filter-out idl/dsn.thrift,$(wildcard idl/*.thrift))
THRIFT    ?= thrift
TEST_FLAGS ?=

.PHONY: all build test chaos lint vet fmt idl bench bench-peers bench-check bench-baseline clean

all: build

build:
	@mkdir -p $(BIN_DIR)
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN_DIR)/ ./cmd/...

# The default test run: vet, then every package under the race detector (the
# servers are concurrent throughout). Integration tests start real ZooKeeper and
# server processes on loopback ports.
test:
	$(GO) vet ./...
	$(GO) test $(TEST_FLAGS) -race -count=1 -timeout 20m ./...

# The chaos test: replica and meta servers killed under load (a few minutes).
chaos:
	$(GO) test $(TEST_FLAGS) -tags chaos -count=1 -timeout 20m -run TestChaos -v ./daemon/clustertest/

lint: vet
	@out=$$(gofmt -l $$(git ls-files '*.go' | grep -v '^idl/gen/')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

fmt:
	gofmt -w $$(git ls-files '*.go' | grep -v '^idl/gen/')

# Regenerate the Go code of the IDL. Requires the thrift compiler 0.17
# (Debian package thrift-compiler).
idl:
	rm -rf idl/gen
	for f in $(IDL_FILES); do \
		$(THRIFT) --gen go:package_prefix=$(MODULE)/idl/,skip_remote -out idl $$f || exit 1; \
	done
	gofmt -w idl/gen
	$(GO) build ./idl/...

bench:
	$(GO) test -run '^$$' -bench . -benchtime 3s ./rpc/

# The peer comparison: the same load on Redis, a 3-member etcd and a onebox, one
# after the other (a few minutes a run; docs/benchmark.md). PEERS_FLAGS, e.g.
# "-runs 3", go to pegasus_peers.
PEERS_FLAGS ?=
bench-peers:
	./run.sh bench --peers $(PEERS_FLAGS)

# Server CPU per write and per read on a fresh onebox against the committed
# baseline of this machine kind (bench/baseline-*.json): fails when either grew by
# more than 25%. Not part of `make test`: it takes about a minute and needs the
# onebox ports free.
bench-check:
	./run.sh bench --check

# Measure and write the baseline of this machine kind.
bench-baseline:
	./run.sh bench --baseline

clean:
	rm -rf $(BIN_DIR)
