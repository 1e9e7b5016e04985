# Brickops build. Every target runs on a fresh machine after `.ci/run`'s installs
# (Go from go.mod, npm packages from package-lock.json).

VERSION   := $(shell cat VERSION)
GO        ?= go
LDFLAGS   := -s -w -X github.com/brickops/brickops/internal/buildinfo.Version=$(VERSION)
PLATFORMS := linux/amd64 linux/arm64 windows/amd64 darwin/amd64 darwin/arm64

.PHONY: all demo build build-host test test-go test-node test-python lint package bench stress fuzz node_modules clean

all: build

## demo: the sample pipeline end to end against emulated workspaces (see internal/demo)
demo: build-host node_modules
	$(GO) run ./cmd/brickops-demo -exe dist/bin/linux-amd64/brickops

## build: the brickops executable for every platform, in dist/bin/<goos>-<goarch>/
build:
	@for p in $(PLATFORMS); do \
		os=$${p%/*}; arch=$${p#*/}; ext=; [ $$os = windows ] && ext=.exe; \
		echo "build $$os/$$arch"; \
		CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch $(GO) build -trimpath -ldflags "$(LDFLAGS)" \
			-o dist/bin/$$os-$$arch/brickops$$ext ./cmd/brickops || exit 1; \
	done

## build-host: only linux/amd64 (what the Node tests and the Go black-box tests run)
build-host:
	CGO_ENABLED=0 GOOS=linux GOARCH=amd64 $(GO) build -trimpath -ldflags "$(LDFLAGS)" \
		-o dist/bin/linux-amd64/brickops ./cmd/brickops

node_modules: package-lock.json
	npm ci --no-audit --no-fund
	@touch node_modules

## test: everything the project checks (the short suites and fuzz runs)
test: lint test-go test-node test-python fuzz

# Fuzz targets: a short run of each in make test, a long one in make stress.
# A crasher lands in the package's testdata/fuzz and then runs as a test case.
# A count of executions, not a duration: a duration-bounded fuzz run can end
# with a spurious "context deadline exceeded" when the deadline falls mid-run
# on a loaded machine. 200000 executions take a few seconds per target here.
FUZZTIME ?= 200000x
FUZZ_TARGETS := agent:FuzzCommandRoundTrip agent:FuzzNeutralize agent:FuzzInputs \
	modeluri:FuzzParse jobspec:FuzzParse batchscore:FuzzTableName

## fuzz: every fuzz target for FUZZTIME
fuzz:
	@for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; fn=$${t#*:}; echo "fuzz $$pkg $$fn ($(FUZZTIME))"; \
		$(GO) test -run='^$$' -fuzz="^$$fn\$$" -fuzztime=$(FUZZTIME) ./internal/$$pkg/ || exit 1; \
	done

## stress: the long suites (200 fault seeds) and long fuzz runs
stress: build-host node_modules
	BRICKOPS_STRESS=1 BRICKOPS_EXE=$(CURDIR)/dist/bin/linux-amd64/brickops $(GO) test -count=1 -timeout 4h -run 'TestFaults' ./internal/demo/
	$(MAKE) fuzz FUZZTIME=5000000x

# Black-box tests run the linux/amd64 executable built above (agenttest.Executable).
test-go: build-host node_modules
	BRICKOPS_EXE=$(CURDIR)/dist/bin/linux-amd64/brickops $(GO) test -race -count=1 ./...

test-node: build-host node_modules
	node --test build/launcher/test/*.test.js

# The shipped notebooks compile and their parameter handling passes its
# standard-library unit tests (there is no Spark here).
test-python:
	python3 -m py_compile examples/notebooks/*.py
	python3 -m unittest discover -s examples/notebooks/tests -v

## lint: gofmt, go vet, golangci-lint (pinned by the tool line in go.mod)
lint:
	@out=$$(gofmt -l cmd internal build); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) tool golangci-lint run ./...

## package: dist/brickops-<version>.vsix
package: build node_modules
	$(GO) run ./build/package -version $(VERSION) -out dist

## bench: every figure the issues define, printed and written to dist/bench.json
bench: package
	$(GO) run ./build/bench -out dist/bench.json

clean:
	rm -rf dist
