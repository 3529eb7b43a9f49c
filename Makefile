# docker-backup — see README.md.
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -s -w -X github.com/docker-backup/docker-backup/internal/version.Version=$(VERSION)
GOFLAGS  := -trimpath
PLUGIN_DIR ?= $(or $(DOCKER_CONFIG),$(HOME)/.docker)/cli-plugins
IMAGE    ?= docker-backup-sidecar:dev
GO_TEST_TIMEOUT ?= 60m
# Most end-to-end tests wait on containers: more of them at once than there are cores.
GO_TEST_PARALLEL ?= 4
# Go as installed on the project's machines, also from a plain root shell.
export PATH := $(PATH):/usr/local/go/bin:$(HOME)/go/bin
# TAGS=faultinject builds binaries with the fault-injection points of the fault suite.
TAGS     ?=

.PHONY: build install image check test unit faults setup setup-demo bench fixtures demo demo-down vet clean docs

build: bin/docker-backup bin/sidecar

bin/docker-backup: FORCE
	CGO_ENABLED=0 go build $(GOFLAGS) -tags '$(TAGS)' -ldflags '$(LDFLAGS)' -o $@ ./cmd/docker-backup

bin/sidecar: FORCE
	CGO_ENABLED=0 go build $(GOFLAGS) -tags '$(TAGS)' -ldflags '$(LDFLAGS)' -o $@ ./cmd/sidecar

FORCE:

## install: put the plugin where the docker CLI finds it (`docker backup --help`)
install: bin/docker-backup
	mkdir -p $(PLUGIN_DIR)
	install -m 0755 bin/docker-backup $(PLUGIN_DIR)/docker-backup

## image: the sidecar image, from scratch
image: bin/sidecar
	mkdir -p bin/image-dirs/var/lib/docker-backup bin/image-dirs/backups
	docker build -t $(IMAGE) .

vet:
	go vet ./...

# staticcheck is pinned in its own module (tools/lint/go.mod), built by the Go toolchain.
STATICCHECK := go tool -modfile=tools/lint/go.mod staticcheck

## check: the two-minute loop, no Docker needed: formatting, vet, staticcheck, tidy modules, unit tests with -race
check:
	@out=$$(gofmt -l cmd internal test tools); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	go vet ./...
	$(STATICCHECK) ./...
	@d=$$(mktemp -d) && cp go.mod go.sum $$d/ && go mod tidy && \
	  if ! cmp -s go.mod $$d/go.mod || ! cmp -s go.sum $$d/go.sum; then \
	    diff -u $$d/go.mod go.mod; cp $$d/go.mod $$d/go.sum .; rm -rf $$d; \
	    echo "go.mod/go.sum are not tidy: run go mod tidy"; exit 1; fi; rm -rf $$d
	go test -count=1 -race -short ./...

## docs: the CLI reference in docs/cli, from the commands (a test fails when it is stale)
docs:
	rm -rf docs/cli && go run ./tools/clidocs docs/cli

## setup: install and start what tests and demo need (Docker engine, debootstrap), if missing
setup:
	test/setup.sh

## test: unit tests, then end-to-end tests on the real Docker engine (builds fixture images)
test: setup vet
	go test -count=1 -timeout $(GO_TEST_TIMEOUT) -parallel $(GO_TEST_PARALLEL) ./...

## faults: the fault-injection suite alone (kills, stops, full disks, forged backups)
faults: setup
	go test -count=1 -timeout $(GO_TEST_TIMEOUT) -parallel $(GO_TEST_PARALLEL) -run 'Fault|Forged' ./test/e2e

## unit: the tests that need no Docker engine
unit:
	go test -count=1 -short ./...

fixtures: setup
	@for f in plain pause postgres; do test/fixtures/build.sh $$f; done

## bench: wall time, throughput and peak RSS of run/restore beside raw shell pipelines
bench: setup install fixtures
	test/bench/bench.sh

## demo: the example project with the sidecar, backed up to ./demo-backups (installs only what it needs)
demo: setup-demo install image
	@for f in plain postgres; do test/fixtures/build.sh $$f >/dev/null; done
	test/demo.sh

setup-demo:
	test/setup.sh demo

demo-down:
	test/demo.sh down

clean:
	rm -rf bin
