# SPDX-License-Identifier: Apache-2.0

GO      ?= go
CLANG_FORMAT ?= clang-format-19
PKGS    := ./...
# The datapath tests need root (CAP_BPF, CAP_NET_ADMIN, network namespaces).
TESTFLAGS ?= -count=1 -timeout 15m

# vmtest: the datapath tests inside real Debian kernels under qemu (TCG).
# -short: emulated CPUs are 6 to 25 times slower, so load-heavy tests run
# smaller there (the full sizes run natively in "make test").
VMTEST_KERNELS ?= 6.1 6.12
VMTEST_PKGS    ?= ./bpf ./exporter/agent
VMTEST_FLAGS   ?= -count=1 -short -timeout 9m

.PHONY: help deps generate check-generate web-deps web check-web screenshots build test lint fuzz bench bench-compare demo soak vmtest clean

help: ## Show the targets.
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

deps: ## Install the Debian packages the build and tests need (if missing).
	@tools/install-deps.sh

generate: deps ## Regenerate the eBPF objects and Go bindings (bpf2go, clang-19).
	$(GO) generate ./bpf/... ./tools/benchcmp/...

check-generate: generate ## Fail if the committed generated files are stale.
	@git diff --exit-code -- bpf/ tools/benchcmp/ || { echo "generated files differ: run 'make generate' and commit"; exit 1; }

# The flow explorer's page: web/ is an npm project (Vite, ECharts); its
# build output web/dist is committed and embedded, so go build needs no
# Node. CI rebuilds it and fails on a difference, like the eBPF objects.
web-deps: web/node_modules/.package-lock.json ## Install the page's npm packages (npm ci in web/, when the lock file changed).

web/node_modules/.package-lock.json: web/package.json web/package-lock.json
	cd web && npm ci --no-audit --no-fund

web: web-deps ## Rebuild the page into web/dist (commit the result).
	cd web && npm run build

check-web: web ## Fail if the committed web/dist is stale.
	@git diff --exit-code -- web/dist && test -z "$$(git status --porcelain -- web/dist)" || { echo "web/dist differs: run 'make web' and commit"; exit 1; }

screenshots: deps web-deps ## Regenerate docs/screenshots/*.png with the browser test.
	mkdir -p docs/screenshots
	KFLOW_SCREENSHOTS=$(CURDIR)/docs/screenshots $(GO) test -count=1 -run '^TestBrowser$$' ./cmd/kflow

build: ## Build kflow and kflow-query into bin/ (static, no cgo: needed to drop capabilities on every thread).
	CGO_ENABLED=0 $(GO) build -o bin/kflow ./cmd/kflow
	CGO_ENABLED=0 $(GO) build -o bin/kflow-query ./cmd/kflow-query

lint: deps ## gofmt, go vet and clang-format checks.
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	$(CLANG_FORMAT) --dry-run -Werror bpf/*.c bpf/*.h tools/benchcmp/*.c

test: deps web-deps lint ## Run every test (run as root for the datapath tests).
	$(GO) test $(TESTFLAGS) $(PKGS)

demo: deps build ## Run the exporter end to end in throwaway network namespaces (as root).
	$(GO) run ./tools/demo -kflow bin/kflow

# soak: SOAK_DURATION=60s for the CI length; SOAK_FLAGS="-seed N" to replay a schedule.
SOAK_DURATION ?= 10m
SOAK_FLAGS    ?=
soak: deps build ## The whole pipeline under faults for SOAK_DURATION (as root); writes its ledger to docs/soak.md.
	$(GO) build -o bin/soak ./tools/soak
	bin/soak -kflow bin/kflow -duration $(SOAK_DURATION) -out docs/soak.md $(SOAK_FLAGS)

vmtest: deps ## Run the datapath tests in Debian's 6.1 and 6.12 kernels under qemu.
	$(GO) build -o bin/vmtest ./tools/vmtest
	@status=0; for k in $(VMTEST_KERNELS); do \
		echo "vmtest: kernel $$k"; \
		bin/vmtest -kernel $$k -fetch || { status=1; continue; }; \
		CGO_ENABLED=0 $(GO) test $(VMTEST_FLAGS) -exec "$(CURDIR)/bin/vmtest -kernel $$k" $(VMTEST_PKGS) || status=1; \
	done; exit $$status

fuzz: ## Run every fuzz target briefly (FUZZTIME=100000x each; FUZZTIME=10m for a long run).
	tools/fuzz.sh

bench: ## Run the Go benchmarks.
	$(GO) test -run '^$$' -bench . -benchmem $(PKGS)

# bench-compare: BENCHCMP_FLAGS="-runs 5" for more runs (see bin/benchcmp -h).
BENCHCMP_FLAGS ?=
bench-compare: deps build ## kflow side by side with softflowd, fprobe, pmacctd, nfcapd and nfdump (as root); rewrites the measured part of docs/benchmarks.md.
	$(GO) build -o bin/benchcmp ./tools/benchcmp
	bin/benchcmp -kflow bin/kflow $(BENCHCMP_FLAGS)

clean: ## Remove build output.
	rm -rf bin
