# alknet — the entry point. `make run` starts a dev node; `make test` runs every module's tests.
GO        ?= go
MODULES   := core vault call adapters agent cli napi-shim
BENCHMOD  := scripts/bench
FUZZTIME  ?= 30s
BIN       := bin/alknet
VERSION   ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)

# Fuzz targets as package:Target, run by `make fuzz` for FUZZTIME each.
FUZZ_TARGETS := \
	core/identity:FuzzParseTicket \
	core/identity:FuzzCheckFingerprint \
	core/identity:FuzzFingerprintDER \
	core/auth:FuzzNewPolicy \
	call/internal/wire:FuzzFrameReader \
	call/internal/wire:FuzzDecodeEnvelope \
	call/internal/wire:FuzzDecodeVia \
	call/.:FuzzCatalogue \
	call/toolname:FuzzToolName \
	adapters/internal/schemadoc:FuzzRelocate \
	adapters/internal/schemadoc:FuzzTranslate \
	adapters/openapi:FuzzImportDocument \
	call/internal/jsonscan:FuzzScanner \
	call/internal/schema:FuzzDecodeTree \
	call/internal/schema:FuzzFastSchema \
	vault/.:FuzzParsePath \
	vault/.:FuzzCanonicalMnemonic \
	vault/.:FuzzDecryptEncryptedData \
	vault/.:FuzzEthereumAddress

DURATION  ?= 10m

.PHONY: all build run test e2e check-imports interop-deps lint fuzz bench bench-full bench-go soak clean

all: build

build:
	cd cli && $(GO) build -ldflags "-X github.com/alkdev/alknet/cli/internal/app.Version=$(VERSION)" -o ../$(BIN) ./cmd/alknet

## run: build alknet and start a dev node (ephemeral key, loopback, 127.0.0.1:7443; HTTP and MCP on
## http://127.0.0.1:7480)
run: build
	./$(BIN) serve --dev

## interop-deps: the npm packages the adapters' interop tests run (committed lockfiles); without
## node the interop tests skip and say so. The MCP Inspector needs Node >= 22.19.
INTEROP   := adapters/testdata/interop
INSPECTOR := adapters/testdata/inspector
interop-deps:
	@if ! command -v node >/dev/null 2>&1; then echo "interop-deps: node not found on PATH: interop tests will skip"; exit 0; fi; \
	set -e; \
	if [ ! -f $(INTEROP)/node_modules/.package-lock.json ] || [ $(INTEROP)/package-lock.json -nt $(INTEROP)/node_modules/.package-lock.json ]; then \
		echo "== npm ci in $(INTEROP)"; (cd $(INTEROP) && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error); \
	fi; \
	if node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>22||(a==22&&b>=19)?0:1)'; then \
		if [ ! -f $(INSPECTOR)/node_modules/.package-lock.json ] || [ $(INSPECTOR)/package-lock.json -nt $(INSPECTOR)/node_modules/.package-lock.json ]; then \
			echo "== npm install in $(INSPECTOR)"; (cd $(INSPECTOR) && npm install --no-audit --no-fund --ignore-scripts --loglevel=error); \
		fi; \
	else echo "interop-deps: MCP Inspector not installed: it needs Node >= 22.19 (this is $$(node --version))"; fi

## test: every module's tests with -race (scripts/bench outside go.work, with GOWORK=off), and
## the module import rules
test: check-imports interop-deps e2e
	@set -e; for m in $(MODULES); do \
		echo "== $$m"; (cd $$m && $(GO) test -race -shuffle=on -count=1 -skip '^TestForwardingScenario$$' ./...); \
	done; \
	echo "== vault with GOEXPERIMENT=runtimesecret"; (cd vault && GOEXPERIMENT=runtimesecret $(GO) test -race -count=1 ./...); \
	echo "== $(BENCHMOD)"; (cd $(BENCHMOD) && GOWORK=off $(GO) test -race -count=1 ./...)

## e2e: build bin/alknet and run the forwarding scenario (hub, worker, mutual imports) verbosely;
## make test runs it first
e2e: build
	cd cli && $(GO) test -race -count=1 -run '^TestForwardingScenario$$' -v ./cmd/alknet

## check-imports: every module imports only the alknet modules the rule table allows
check-imports:
	@./scripts/check-imports.sh

## lint: gofmt and go vet in every module
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	@set -e; for m in $(MODULES); do (cd $$m && $(GO) vet ./...); done; (cd $(BENCHMOD) && GOWORK=off $(GO) vet ./...)

## fuzz: run each fuzz target for FUZZTIME (e.g. make fuzz FUZZTIME=5m)
fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; name=$${t##*:}; mod=$${pkg%%/*}; \
		echo "== $$name ($$pkg, $(FUZZTIME))"; \
		(cd $$mod && $(GO) test ./$${pkg#*/} -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME)); \
	done

## bench: alknet vs gRPC-go, connect-go and the raw transports, one quick run (bench.md);
## writes bench-results/report.md and report.json
bench:
	cd $(BENCHMOD) && GOWORK=off $(GO) build -o ../../bin/bench ./cmd/bench
	./bin/bench run --out bench-results

## bench-full: the same with longer cases and medians of 5 runs
bench-full:
	cd $(BENCHMOD) && GOWORK=off $(GO) build -o ../../bin/bench ./cmd/bench
	./bin/bench run --full --out bench-results

## bench-go: the Go testing benchmarks of every module (allocs/op for review)
bench-go:
	@set -e; for m in $(MODULES); do (cd $$m && $(GO) test -run '^$$' -bench . -benchmem ./...); done

## soak: a dev node under mixed load (calls, subscriptions, aborts, reconnects) for DURATION;
## prints its RSS, goroutines and FDs every 30 s and fails if they do not come back down
soak: build
	cd $(BENCHMOD) && GOWORK=off $(GO) build -o ../../bin/soak ./cmd/soak
	./bin/soak --bin $(BIN) --duration $(DURATION)

clean:
	rm -rf bin bench-results
