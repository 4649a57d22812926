# vista-warmer: make demo to see it work, make test to test it.
GO      ?= go
BIN     ?= bin/vista-warmer
ARGS    ?=
FUZZTIME ?= 60s
DURATION ?= 2m
SEED     ?= 1
TOPOLOGY ?= both

.PHONY: all help build run demo test lint bench bench-memory bench-events bench-freshness fuzz chaos chaos-bugs clean

all: lint test build

VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo unknown)
LDFLAGS  = -X main.version=$(VERSION) -X main.commit=$(shell git rev-parse HEAD 2>/dev/null) -X main.buildDate=$(shell date -u +%Y-%m-%dT%H:%M:%SZ)

## help: list the targets
help:
	@grep -h '^## ' $(MAKEFILE_LIST) | sed 's/^## /  /'

## build: a static binary (CGO_ENABLED=0) in bin/, its version from git describe
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/vista-warmer

## run: build, then run against a real Vista (ARGS="--vista-url ... --redis-url ...")
run: build
	./$(BIN) $(ARGS)

## demo: the warmer on a simulated Vista and an embedded Redis; nothing to install but Go
demo: build
	./$(BIN) --demo $(ARGS)

## test: every test, race detector on, against a real redis-server (started if none answers)
test:
	scripts/with-redis.sh $(GO) test -race -count=1 ./...

## lint: go vet, gofmt, and staticcheck when it is installed
lint:
	$(GO) vet ./...
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	@sc=$$(command -v staticcheck || ls "$$($(GO) env GOPATH)/bin/staticcheck" 2>/dev/null); \
	if [ -n "$$sc" ]; then $$sc ./...; \
	else echo "staticcheck not installed (go install honnef.co/go/tools/cmd/staticcheck@latest); skipped"; fi

## bench: the benchmarks (cold load, steady state, decoding), against a real redis-server, then bench-memory, bench-events and bench-freshness
bench:
	scripts/with-redis.sh $(GO) test -run '^$$' -bench . -benchmem ./...
	$(MAKE) bench-memory
	$(MAKE) bench-events
	$(MAKE) bench-freshness

## bench-memory: the warmer's RSS at 500k sessions (cold load, settled, reload), from outside; about 5 minutes, needs redis-server
bench-memory:
	$(GO) run ./internal/membench $(MEMBENCH_ARGS)

## bench-events: from a seat check's answer leaving the simulated Vista to its event at a subscriber, p50/p90/p99/max against the 2 ms target, with the machine's floor and how long Redis ran each write, the warmer binary from outside (EVENTLAT_ARGS=-duration 5m); about 2.5 minutes, needs redis-server
bench-events:
	$(GO) run ./internal/eventlat $(EVENTLAT_ARGS)

## bench-freshness: how stale seats get in Redis and what it costs upstream, the warmer against three baselines on a simulated evening (FRESHNESS_ARGS=-full-day for all of it); about 10 minutes, needs redis-server; writes docs/freshness.svg
bench-freshness:
	$(GO) run ./internal/freshness/cmd/freshness $(FRESHNESS_ARGS)

## fuzz: run the decoder and scanner fuzz targets for FUZZTIME each
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeSessions$$' -fuzztime $(FUZZTIME) ./vista/
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeFilms$$' -fuzztime $(FUZZTIME) ./vista/
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeCinemas$$' -fuzztime $(FUZZTIME) ./vista/
	$(GO) test -run '^$$' -fuzz '^FuzzScanners$$' -fuzztime $(FUZZTIME) ./vista/

## chaos: the robustness suite: random faults drawn from SEED for DURATION (default 2m, SEED 1), then the history checked against the invariants; TOPOLOGY single, sentinel or both; needs redis-server
chaos:
	CHAOS_DURATION=$(DURATION) CHAOS_SEED=$(SEED) CHAOS_TOPOLOGY=$(TOPOLOGY) $(GO) test -count=1 -timeout 0 -run '^TestChaos$$' -v ./internal/chaos

## chaos-bugs: the suite's checker must fail: each warmer made wrong on purpose (-tags chaosbug) is caught by its invariant; about 3 minutes
chaos-bugs:
	CHAOS_BUGS=1 $(GO) test -count=1 -timeout 0 -run '^TestWrongWarmersAreCaught$$' -v ./internal/chaos

clean:
	rm -rf bin
