# alknet — the entry point. `make run` starts a dev node; `make test` runs every module's tests.
GO        ?= go
MODULES   := core vault call iroh adapters agent cli napi-shim
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
	call/.:FuzzTypedOutputs \
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
	vault/.:FuzzEthereumAddress \
	iroh/.:FuzzABI

DURATION  ?= 10m

# iroh (spec iroh.md §2): the Rust crate iroh/ffi is built into a static archive that cli, iroh
# and the bench link with cgo. Its target dir is outside the tree so fresh clones reuse compiled
# dependencies. NOIROH=1 builds without it (-tags noiroh, no Rust needed).
IROH_TARGET_DIR ?= $(or $(CARGO_TARGET_DIR),$(or $(XDG_CACHE_HOME),$(HOME)/.cache)/alknet/cargo-target)
GOOSARCH  := $(shell $(GO) env GOOS)_$(shell $(GO) env GOARCH)
IROH_LIB  := iroh/ffi/lib/$(GOOSARCH)/libalknet_iroh.a
HAVE_CARGO := $(shell command -v cargo 2>/dev/null)
CARGO_OFF := CARGO_TARGET_DIR=$(IROH_TARGET_DIR) cargo
ifeq ($(NOIROH),1)
GOTAGS    := -tags noiroh
IROH_DEP  :=
else ifeq ($(HAVE_CARGO),)
GOTAGS    := -tags noiroh
IROH_DEP  := iroh-missing
else
GOTAGS    :=
IROH_DEP  := iroh-lib
endif
# The archive's hash, linked into the iroh package: Go does not hash #cgo LDFLAGS archives, so
# the stamp is what makes a rebuilt archive relink.
IROH_STAMP = $$( [ -f $(CURDIR)/$(IROH_LIB) ] && sha256sum $(CURDIR)/$(IROH_LIB) | cut -c1-16 || echo none)
LDX       = -X github.com/alkdev/alknet/iroh.libStamp=$(IROH_STAMP)

.PHONY: all build run test e2e check-imports interop-deps lint fuzz bench bench-full bench-go soak clean iroh-fetch iroh-lib iroh-missing iroh-test iroh-relay iroh-echo

all: build

build: $(IROH_DEP)
	cd cli && $(GO) build $(GOTAGS) -ldflags "-X github.com/alkdev/alknet/cli/internal/app.Version=$(VERSION) $(LDX)" -o ../$(BIN) ./cmd/alknet

## iroh-fetch: download the crate's dependencies from the committed Cargo.lock (once)
iroh-fetch:
	@cd iroh/ffi && { cargo fetch --locked --offline >/dev/null 2>&1 || cargo fetch --locked; } || \
		{ echo "iroh: cargo cannot fetch crates: the iroh build needs access to the crates registry (or use NOIROH=1)" >&2; exit 1; }

## iroh-lib: build the alknet-iroh archive (release) and copy it to $(IROH_LIB) when it changed
iroh-lib: iroh-fetch
	cd iroh/ffi && $(CARGO_OFF) build --release --locked --offline
	@mkdir -p $(dir $(IROH_LIB)); cmp -s $(IROH_TARGET_DIR)/release/libalknet_iroh.a $(IROH_LIB) || cp $(IROH_TARGET_DIR)/release/libalknet_iroh.a $(IROH_LIB)

# Only where cargo is absent: build refuses, test skips the iroh parts (loudly).
iroh-missing:
	@case "$(MAKECMDGOALS)" in *test*) \
		echo "*** cargo not found: iroh tests SKIPPED ***"; \
		if [ "$$ALKNET_IROH_TESTS" = require ]; then echo "ALKNET_IROH_TESTS=require: failing" >&2; exit 1; fi ;; \
	*) echo "cargo not found: install Rust >= 1.91 or use NOIROH=1" >&2; exit 1 ;; esac

## iroh-relay: the loopback relay the relay tests run (iroh/ffi/testrelay; never shipped)
TEST_RELAY := $(IROH_TARGET_DIR)/release/testrelay
IROH_ECHO  := $(IROH_TARGET_DIR)/release/examples/echo
iroh-relay: iroh-lib
	cd iroh/ffi && $(CARGO_OFF) build --release --locked --offline -p testrelay

## iroh-test: the crate's own tests (release profile, sharing the library's compiled dependencies),
## the relay test among them
iroh-test: iroh-relay
	cd iroh/ffi && ALKNET_TEST_RELAY=$(TEST_RELAY) $(CARGO_OFF) test --release --locked --offline

## run: build alknet and start a dev node (ephemeral key, loopback, 127.0.0.1:7443; HTTP and MCP on
## http://127.0.0.1:7480)
run: build
	./$(BIN) serve --dev

## interop-deps: the npm packages the adapters' interop tests run (committed lockfiles); without
## node the interop tests skip and say so. The MCP Inspector needs Node >= 22.19.
INTEROP   := adapters/testdata/interop
INSPECTOR := adapters/testdata/inspector
IROHJS    := iroh/interop
interop-deps:
	@if ! command -v node >/dev/null 2>&1; then echo "interop-deps: node not found on PATH: interop tests will skip"; exit 0; fi; \
	set -e; \
	if [ ! -f $(INTEROP)/node_modules/.package-lock.json ] || [ $(INTEROP)/package-lock.json -nt $(INTEROP)/node_modules/.package-lock.json ]; then \
		echo "== npm ci in $(INTEROP)"; (cd $(INTEROP) && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error); \
	fi; \
	if [ "$(NOIROH)" != 1 ] && { [ ! -f $(IROHJS)/node_modules/.package-lock.json ] || [ $(IROHJS)/package-lock.json -nt $(IROHJS)/node_modules/.package-lock.json ]; }; then \
		echo "== npm ci in $(IROHJS)"; (cd $(IROHJS) && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error); \
	fi; \
	if node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>22||(a==22&&b>=19)?0:1)'; then \
		if [ ! -f $(INSPECTOR)/node_modules/.package-lock.json ] || [ $(INSPECTOR)/package-lock.json -nt $(INSPECTOR)/node_modules/.package-lock.json ]; then \
			echo "== npm install in $(INSPECTOR)"; (cd $(INSPECTOR) && npm install --no-audit --no-fund --ignore-scripts --loglevel=error); \
		fi; \
	else echo "interop-deps: MCP Inspector not installed: it needs Node >= 22.19 (this is $$(node --version))"; fi

## test: every module's tests with -race (scripts/bench outside go.work, with GOWORK=off), and
## the module import rules
test: check-imports interop-deps $(if $(filter iroh-lib,$(IROH_DEP)),iroh-test) e2e
	@set -e; $(if $(filter iroh-lib,$(IROH_DEP)),export ALKNET_TEST_RELAY=$(TEST_RELAY) ALKNET_IROH_ECHO=$(IROH_ECHO);) for m in $(MODULES); do \
		echo "== $$m"; (cd $$m && $(GO) test $(GOTAGS) -ldflags "$(LDX)" -race -shuffle=on -count=1 -skip '^TestForwardingScenario$$' ./...); \
	done; \
	echo "== vault with GOEXPERIMENT=runtimesecret"; (cd vault && GOEXPERIMENT=runtimesecret $(GO) test -race -count=1 ./...); \
	echo "== $(BENCHMOD)"; (cd $(BENCHMOD) && GOWORK=off $(GO) test $(GOTAGS) -ldflags "$(LDX)" -race -count=1 ./...)

## e2e: build bin/alknet and run the forwarding scenario (hub, worker, mutual imports) verbosely;
## make test runs it first
e2e: build
	cd cli && $(GO) test $(GOTAGS) -ldflags "$(LDX)" -race -count=1 -run '^TestForwardingScenario$$' -v ./cmd/alknet

## check-imports: every module imports only the alknet modules the rule table allows
check-imports:
	@./scripts/check-imports.sh

## lint: gofmt and go vet in every module; rustfmt and clippy (release, -D warnings) on the crate
lint: $(IROH_DEP)
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	@set -e; for m in $(MODULES); do (cd $$m && $(GO) vet $(GOTAGS) ./...); done; (cd $(BENCHMOD) && GOWORK=off $(GO) vet $(GOTAGS) ./...)
	@if [ -n "$(HAVE_CARGO)" ] && [ "$(NOIROH)" != 1 ]; then set -e; cd iroh/ffi; cargo fmt --check; \
		$(CARGO_OFF) clippy --release --locked --offline --all-targets --workspace -- -D warnings; fi

## fuzz: run each fuzz target for FUZZTIME (e.g. make fuzz FUZZTIME=5m)
fuzz: $(IROH_DEP)
	@set -e; for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; name=$${t##*:}; mod=$${pkg%%/*}; \
		echo "== $$name ($$pkg, $(FUZZTIME))"; \
		(cd $$mod && $(GO) test $(GOTAGS) ./$${pkg#*/} -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME)); \
	done

## bench: alknet vs gRPC-go, connect-go and the raw transports, one quick run (bench.md);
## writes bench-results/report.md and report.json
bench: $(if $(filter iroh-lib,$(IROH_DEP)),iroh-echo,$(IROH_DEP))
	cd $(BENCHMOD) && GOWORK=off $(GO) build $(GOTAGS) -ldflags "$(LDX)" -o ../../bin/bench ./cmd/bench
	ALKNET_IROH_ECHO=$(IROH_ECHO) ./bin/bench run $(if $(BENCH_ONLY),--only $(BENCH_ONLY)) --out bench-results

## bench-full: the same with longer cases and medians of 5 runs (BENCH_ONLY=a,b: those contestants only)
bench-full: $(if $(filter iroh-lib,$(IROH_DEP)),iroh-echo,$(IROH_DEP))
	cd $(BENCHMOD) && GOWORK=off $(GO) build $(GOTAGS) -ldflags "$(LDX)" -o ../../bin/bench ./cmd/bench
	ALKNET_IROH_ECHO=$(IROH_ECHO) ./bin/bench run --full $(if $(BENCH_ONLY),--only $(BENCH_ONLY)) --out bench-results

## iroh-echo: iroh-raw's server for the benchmark (iroh/ffi/examples/echo.rs)
iroh-echo: iroh-lib
	cd iroh/ffi && $(CARGO_OFF) build --release --locked --offline --example echo

## bench-go: the Go testing benchmarks of every module (allocs/op for review)
bench-go: $(IROH_DEP)
	@set -e; for m in $(MODULES); do (cd $$m && $(GO) test $(GOTAGS) -run '^$$' -bench . -benchmem ./...); done

## soak: a dev node under mixed load (calls, subscriptions, aborts, reconnects) for DURATION;
## prints its RSS, goroutines and FDs every 30 s and fails if they do not come back down
soak: build
	cd $(BENCHMOD) && GOWORK=off $(GO) build $(GOTAGS) -ldflags "$(LDX)" -o ../../bin/soak ./cmd/soak
	./bin/soak --bin $(BIN) --duration $(DURATION)

clean:
	rm -rf bin bench-results
