# Brickferry build. Every target runs on a fresh machine after `.ci/run`'s installs
# (Go from go.mod, npm packages from package-lock.json and
# build/devtools/package-lock.json); the targets that need npm packages
# install them (node_modules, devtools).

VERSION   := $(shell cat VERSION)
# Every Go command of this Makefile runs on Go 1.27.3, which the go command
# fetches from the module proxy on first use (about 10 s). The machines start
# on Go 1.26.8, whose net/http, crypto/tls, crypto/x509 and html/template have
# known vulnerabilities fixed in 1.26.9/1.26.10 (make vulncheck lists them);
# 1.27.3 is the patched release this workplace's proxy serves. go.mod keeps
# `go 1.26.0` so that a plain `go test` on the machine's own Go still works.
export GOTOOLCHAIN := go1.27.3
GO        ?= go
LDFLAGS   := -s -w -X github.com/brickferry/brickferry/internal/buildinfo.Version=$(VERSION)
# grpcnotrace: grpc (linked only through databricks-sdk-go's GCP credentials)
# then leaves out golang.org/x/net/trace, whose init registers /debug/requests
# handlers that execute html/template. A reachable template executor makes the
# linker keep every exported method of every type (reflect MethodByName), so
# the tag takes ~21 % off each executable (docs/packaging.md, "Size").
TAGS      := grpcnotrace
PLATFORMS := linux/amd64 linux/arm64 windows/amd64 darwin/amd64 darwin/arm64

.PHONY: all demo live live-clean live-devops build build-host build-race test test-go test-node test-python lint vulncheck package bench stress fuzz mutate node_modules devtools clean

all: build

## demo: a sample pipeline end to end against emulated workspaces (see internal/testworld/demo):
## DEMO=uc (examples/azure-pipelines-uc.yml, the default) or DEMO=workspace (examples/azure-pipelines.yml)
DEMO ?= uc
# It needs only Azurite from npm (package.json), not the packaging tools. The
# executable's build and the npm install run side by side; the demo program is
# compiled with the executable's CGO_ENABLED, -trimpath and tags (CGO_ENABLED
# changes the net package and so everything above it), so that the packages
# they share come from the build cache instead of being compiled twice.
demo:
	@$(MAKE) --no-print-directory -j2 build-host node_modules
	CGO_ENABLED=0 $(GO) run -trimpath -tags "$(TAGS)" ./cmd/brickferry-demo -exe dist/bin/linux-amd64/brickferry -sample $(DEMO)

## live: both sample pipelines against REAL workspaces (creates, checks and deletes resources; costs money):
## BRICKFERRY_LIVE=1 and the variables of docs/live.md; prints its plan first
# The same code runs in make test against the emulator (TestLiveOnEmulator).
live: build-host node_modules
	@if [ "$$BRICKFERRY_LIVE" != 1 ]; then echo "make live: refused: set BRICKFERRY_LIVE=1 and the workspaces' variables (docs/live.md); it creates and deletes resources in real workspaces"; exit 2; fi
	BRICKFERRY_EXE=$(CURDIR)/dist/bin/linux-amd64/brickferry $(GO) test -count=1 -v -timeout 4h -run '^TestLive$$' ./internal/testworld/live/

## live-clean: delete what crashed live runs left (everything named $$BRICKFERRY_LIVE_PREFIX-<run>-...)
live-clean:
	@if [ "$$BRICKFERRY_LIVE" != 1 ]; then echo "make live-clean: refused: set BRICKFERRY_LIVE=1 and the workspaces' variables (docs/live.md)"; exit 2; fi
	$(GO) test -count=1 -v -timeout 30m -run '^TestLiveClean$$' ./internal/testworld/live/

## live-devops: in a real Azure DevOps organization, publish the extension under a test publisher, share and
## install it and download BrickferryTools as the launcher does; then in a project check the sample's variable
## groups, create or update a pipeline from examples/azure-pipelines-uc.yml, run it (it deploys to the
## workspaces the groups name), wait, and check each step's result, output variables and summary through the
## REST API: BRICKFERRY_LIVE=1, BRICKFERRY_LIVE_DEVOPS_URL, _PROJECT, _TOKEN, _REPOSITORY, _PUBLISHER, _PAT
## (docs/live.md, "Azure DevOps")
live-devops: build-host devtools
	@if [ "$$BRICKFERRY_LIVE" != 1 ]; then echo "make live-devops: refused: set BRICKFERRY_LIVE=1 and the BRICKFERRY_LIVE_DEVOPS_* variables (docs/live.md)"; exit 2; fi
	$(GO) test -count=1 -v -timeout 10m -run '^TestLivePublish$$' ./internal/testworld/live/
	$(GO) test -count=1 -v -timeout 90m -run '^TestLiveDevOps$$' ./internal/testworld/live/

## build: the brickferry executable for every platform, in dist/bin/<goos>-<goarch>/
build:
	@for p in $(PLATFORMS); do \
		os=$${p%/*}; arch=$${p#*/}; ext=; [ $$os = windows ] && ext=.exe; \
		echo "build $$os/$$arch"; \
		CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch $(GO) build -trimpath -tags "$(TAGS)" -ldflags "$(LDFLAGS)" \
			-o dist/bin/$$os-$$arch/brickferry$$ext ./cmd/brickferry || exit 1; \
	done

## build-host: only linux/amd64 (what the Node tests and the Go black-box tests run)
build-host:
	CGO_ENABLED=0 GOOS=linux GOARCH=amd64 $(GO) build -trimpath -tags "$(TAGS)" -ldflags "$(LDFLAGS)" \
		-o dist/bin/linux-amd64/brickferry ./cmd/brickferry

## build-race: the linux/amd64 executable with the race detector (CGO), for make stress
# Not shipped (about twice the size, and slower): the Go tests start it as the
# agent starts a task, so that -race covers the product's code in those
# processes as well as in the in-process tests. agenttest fails a test whose
# executable reported a data race; the pipeline runner fails the step (exit 66).
build-race:
	CGO_ENABLED=1 GOOS=linux GOARCH=amd64 $(GO) build -race -trimpath -tags "$(TAGS)" \
		-ldflags "-X github.com/brickferry/brickferry/internal/buildinfo.Version=$(VERSION)" \
		-o dist/race/linux-amd64/brickferry ./cmd/brickferry

# npm packages, each install redone only when its lockfile changes (npm
# writes node_modules/.package-lock.json at the end of a complete install).
## node_modules: Azurite (package.json), what make demo and the Go tests start
node_modules: node_modules/.package-lock.json
node_modules/.package-lock.json: package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

## devtools: the Node tools that build and check the extension (build/devtools/package.json):
## tfx-cli (make package), the pipeline schema's language service (make test-node), task-lib's schema
devtools: build/devtools/node_modules/.package-lock.json
build/devtools/node_modules/.package-lock.json: build/devtools/package-lock.json
	cd build/devtools && npm ci --no-audit --no-fund
	@touch $@

## test: everything the project checks (the short suites, fuzz runs, vulnerabilities), the suites side
## by side, TEST_JOBS at a time (default: the machine's cores)
# The suites are independent: make runs lint, vulncheck, test-go, test-node,
# test-python and fuzz as parallel jobs (their shared prerequisites, build-host
# and the npm installs, once), each suite's output kept together
# (--output-sync). test-go, the longest, runs the Go packages
# GOTEST_PARALLEL at a time (go test -p; default: the cores); its slow suites
# (internal/testworld/demo, internal/testworld/suites, internal/promote) spend
# most of their time waiting on emulated services and child processes, which
# is what lets the other suites run beside them on a small machine. TEST_JOBS=1
# runs the suites one after the other, as before.
TEST_JOBS ?= $(shell nproc 2>/dev/null || echo 2)
GOTEST_PARALLEL ?= $(shell nproc 2>/dev/null || echo 2)
# test-node runs after the others, alone: its signal-forwarding tests failed
# when test-go and fuzzing loaded both cores beside them.
test:
	$(MAKE) --no-print-directory -j$(TEST_JOBS) --output-sync=target lint vulncheck test-go test-python fuzz
	$(MAKE) --no-print-directory test-node

# govulncheck (a go.mod tool) needs the Go vulnerability database. vuln.go.dev
# is out of reach here and in CI, so the database is built from a pinned
# snapshot of its source, the golang.org/x/vulndb module (its data/osv folder,
# one OSV file per vulnerability), with that module's own indexer. Move
# VULNDB to a newer pseudo-version to take newer reports.
VULNDB := golang.org/x/vulndb@v0.0.0-20261105234957-e22db6528018

## vulncheck: govulncheck over every package, against the pinned database snapshot
vulncheck:
	@if [ "$$(cat dist/vulndb/SOURCE 2>/dev/null)" != "$(VULNDB)" ]; then \
		dir=$$($(GO) mod download -json $(VULNDB) | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$$/\1/p'); \
		[ -d "$$dir/data/osv" ] || { echo "no data/osv in $(VULNDB) ($$dir)"; exit 1; }; \
		echo "index $(VULNDB)"; rm -rf dist/vulndb; \
		$(GO) run $(word 1,$(subst @, ,$(VULNDB)))/cmd/indexdb@$(word 2,$(subst @, ,$(VULNDB))) -vulns "$$dir/data/osv" -out dist/vulndb || exit 1; \
		echo "$(VULNDB)" > dist/vulndb/SOURCE; \
	fi
	$(GO) tool govulncheck -db file://$(CURDIR)/dist/vulndb ./...

# Fuzz targets: a short run of each in make test, a long one in make stress.
# A crasher lands in the package's testdata/fuzz and then runs as a test case.
# A count of executions, not a duration: a duration-bounded fuzz run can end
# with a spurious "context deadline exceeded" when the deadline falls mid-run
# on a loaded machine. 100000 executions took 8 to 46 s per target here
# beside test-go (one core each, 2,000 to 7,000 executions a second): the
# fuzzing corpus kept in the Go cache grows with every run on a machine (each
# new interesting input is kept; 484 inputs for jobspec after some weeks), so
# a run slows as the machine ages, and 200000 executions per target had
# grown to 5 min of a core beside test-go, the most of make test's CPU after
# test-go itself. make stress fuzzes 10x as long.
# FUZZ_TIMEOUT bounds each target's run all the same (go test -timeout: a
# target that stops making progress fails instead of holding make test), and
# FUZZ_WORKERS caps its fuzzing processes (-parallel; default GOMAXPROCS),
# so that fuzzing beside test-go takes one core, not all of them.
FUZZTIME ?= 100000x
FUZZ_TIMEOUT ?= 10m
FUZZ_WORKERS ?= 1
FUZZ_TARGETS := agent:FuzzCommandRoundTrip agent:FuzzNeutralize agent:FuzzInputs \
	modeluri:FuzzParse jobspec:FuzzParse batchscore:FuzzTableName

## fuzz: every fuzz target for FUZZTIME
fuzz:
	@for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; fn=$${t#*:}; echo "fuzz $$pkg $$fn ($(FUZZTIME))"; \
		$(GO) test -run='^$$' -fuzz="^$$fn\$$" -fuzztime=$(FUZZTIME) -parallel=$(FUZZ_WORKERS) -timeout=$(FUZZ_TIMEOUT) ./internal/$$pkg/ || exit 1; \
	done

## stress: the long suites (200 fault seeds), every Go test against the executable built with the race
## detector, and long fuzz runs
# (1,000,000 executions per target, 10× make test's: about 13 min for the six here).
# The race build makes the black-box packages 2.3–2.7× slower (docs/reliability.md), too
# much for make test.
stress: build-host build-race node_modules devtools
	BRICKFERRY_STRESS=1 BRICKFERRY_EXE=$(CURDIR)/dist/bin/linux-amd64/brickferry $(GO) test -count=1 -timeout 4h -run 'TestFaults' ./internal/testworld/demo/
	BRICKFERRY_EXE=$(CURDIR)/dist/race/linux-amd64/brickferry $(GO) test -race -count=1 -timeout 2h ./...
	$(MAKE) fuzz FUZZTIME=1000000x FUZZ_WORKERS=$(shell nproc 2>/dev/null || echo 2) FUZZ_TIMEOUT=1h

## mutate: plant each bug of build/mutate/mutants in a copy of the repository, one at a time, and check
## that its tests catch it (not part of make test; MUTANTS=regexp runs some)
# About 9 min for the 31 mutants on this 2-core machine, 35 min when it is busy (docs/reliability.md).
mutate: node_modules devtools
	$(GO) run ./build/mutate $(if $(MUTANTS),-run '$(MUTANTS)')

# Black-box tests run the linux/amd64 executable built above (agenttest.Executable).
# make stress runs them again against the build with the race detector.
test-go: build-host node_modules devtools
	BRICKFERRY_EXE=$(CURDIR)/dist/bin/linux-amd64/brickferry $(GO) test -race -count=1 -p $(GOTEST_PARALLEL) ./...

test-node: build-host devtools
	node --test build/launcher/test/*.test.js build/pipelineschema/test/*.test.js

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

## package: dist/brickferry-<version>.vsix; PUBLISHER=<Marketplace publisher id>,
## REPO_URL=<https repository URL> and DOCS_URL=<https URL of the docs/ folder's parent>
## set the links (none to a repository by default; docs/setup.md, "Package and publish")
PUBLISHER ?=
REPO_URL  ?=
DOCS_URL  ?=
package: build devtools
	$(GO) run ./build/package -version $(VERSION) -out dist -publisher "$(PUBLISHER)" -repo-url "$(REPO_URL)" -docs-url "$(DOCS_URL)"

## bench: every figure the issues define, printed and written to dist/bench.json
bench: package
	$(GO) run ./build/bench -out dist/bench.json

clean:
	rm -rf dist
