# docker-backup — see README.md.
# The build's identity from git (tools/version.sh): VERSION=vX.Y.Z overrides the semver.
VERSION  ?= $(shell tools/version.sh version)
COMMIT   ?= $(shell tools/version.sh commit)
SOURCE_DATE_EPOCH ?= $(shell tools/version.sh epoch)
VERSION_PKG := github.com/docker-backup/docker-backup/internal/version
LDFLAGS  := -s -w -X $(VERSION_PKG).Version=$(VERSION) -X $(VERSION_PKG).Commit=$(COMMIT)
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
# The release (make dist): where it is written, the registry repository its sidecar image is
# pushed to (linked into the plugin, which pulls it by digest as its worker image where it
# cannot be its own), the license (an SPDX expression) for the packages, image and SBOMs.
DIST       ?= dist
IMAGE_REPO ?=
LICENSE    ?= NOASSERTION
# The release tooling (packages, images, SBOM) is its own module: tools/dist/go.mod.
DIST_TOOL  := bin/dist
RELEASE_FLAGS = -version '$(VERSION)' -commit '$(COMMIT)' -epoch '$(SOURCE_DATE_EPOCH)' -license '$(LICENSE)'

.PHONY: build install image check test unit faults setup setup-demo bench fixtures demo demo-down vet clean docs dist dist-check dist-reproducible dist-test dist-push

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

$(DIST_TOOL): FORCE
	go -C tools/dist build -o $(abspath $@) .

## image: the sidecar image $(IMAGE) for this machine's architecture (one static binary FROM
## scratch, non-root; assembled by tools/dist, as make dist does, and loaded: no Dockerfile)
image: $(DIST_TOOL)
	GOOS=linux CGO_ENABLED=0 go build $(GOFLAGS) -tags '$(TAGS)' -ldflags '$(LDFLAGS)' -o bin/image/sidecar ./cmd/sidecar
	$(DIST_TOOL) image $(RELEASE_FLAGS) -binary bin/image/sidecar -platform linux/$$(go env GOARCH) -tag $(IMAGE) -out bin/image/sidecar.tar
	docker load -i bin/image/sidecar.tar

vet:
	go vet ./...

# staticcheck is pinned in its own module (tools/lint/go.mod), built by the Go toolchain.
STATICCHECK := go tool -modfile=tools/lint/go.mod staticcheck

## check: the two-minute loop, no Docker needed: formatting, vet, staticcheck, tidy modules, unit tests with -race
## (the main module, then tools/dist and test/dist, install.sh and the scripts)
check:
	@out=$$(gofmt -l cmd internal test tools); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	go vet ./...
	GOOS=darwin GOARCH=arm64 go build -o /dev/null ./cmd/docker-backup
	GOOS=windows GOARCH=amd64 go build -o /dev/null ./cmd/docker-backup
	$(STATICCHECK) ./...
	@d=$$(mktemp -d) && cp go.mod go.sum $$d/ && go mod tidy && \
	  if ! cmp -s go.mod $$d/go.mod || ! cmp -s go.sum $$d/go.sum; then \
	    diff -u $$d/go.mod go.mod; cp $$d/go.mod $$d/go.sum .; rm -rf $$d; \
	    echo "go.mod/go.sum are not tidy: run go mod tidy"; exit 1; fi; rm -rf $$d
	go test -count=1 -race -short ./...
	go -C tools/dist vet ./...
	go vet -tags dist ./test/dist
	go build -modfile=tools/lint/go.mod -o bin/staticcheck honnef.co/go/tools/cmd/staticcheck
	cd tools/dist && ../../bin/staticcheck ./...
	bin/staticcheck -tags dist ./test/dist
	@cd tools/dist && cp go.mod go.sum $(abspath bin)/ && go mod tidy && \
	  if ! cmp -s go.mod $(abspath bin)/go.mod || ! cmp -s go.sum $(abspath bin)/go.sum; then \
	    cp $(abspath bin)/go.mod $(abspath bin)/go.sum .; echo "tools/dist/go.mod is not tidy: run go mod tidy there"; exit 1; fi
	go -C tools/dist test -count=1 ./...
	sh -n install.sh && sh -n tools/version.sh
	@if command -v shellcheck >/dev/null; then shellcheck -s sh install.sh tools/version.sh && shellcheck test/dist/*.sh .ci/run; else echo "shellcheck is not installed: install.sh checked with sh -n only"; fi

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

## dist: every release file in $(DIST)/ (VERSION=vX.Y.Z, else from git): the plugin for 7
## platforms, .deb/.rpm, the sidecar image per platform and as one OCI layout, SBOMs,
## install.sh, checksums.txt. Reproducible: see docs/releasing.md.
dist: $(DIST_TOOL)
	rm -rf $(DIST)
	$(DIST_TOOL) build $(RELEASE_FLAGS) -out $(DIST) -repo '$(IMAGE_REPO)'

## dist-check: the release files checked for real (test/dist): checksums, platforms, the .deb
## installed in a Debian container, the images loaded and run, install.sh, a registry push
dist-check: $(DIST_TOOL)
	test/dist/setup.sh
	DIST_DIR=$(abspath $(DIST)) DIST_VERSION='$(VERSION)' DIST_TOOL=$(abspath $(DIST_TOOL)) \
	  go test -tags dist -count=1 -timeout 30m -v ./test/dist

## dist-reproducible: make dist again from a fresh clone of HEAD with an empty build cache;
## every checksum must match $(DIST)/checksums.txt
dist-reproducible:
	test/dist/reproducible.sh $(DIST) '$(VERSION)' '$(IMAGE_REPO)' '$(LICENSE)'

## dist-test: make dist, dist-check and dist-reproducible, each timed (CI runs it)
dist-test:
	@t=$$(date +%s); $(MAKE) --no-print-directory dist; rc=$$?; echo "make dist took $$(( $$(date +%s) - t )) s"; exit $$rc
	@t=$$(date +%s); $(MAKE) --no-print-directory dist-check; rc=$$?; echo "make dist-check took $$(( $$(date +%s) - t )) s"; exit $$rc
	@t=$$(date +%s); $(MAKE) --no-print-directory dist-reproducible; rc=$$?; echo "make dist-reproducible took $$(( $$(date +%s) - t )) s"; exit $$rc

## dist-push: the sidecar image's OCI layout to IMAGE_REPO, tagged VERSION and, for a
## release, vX.Y, vX and latest (credentials: docker login)
dist-push: $(DIST_TOOL)
	@test -n '$(IMAGE_REPO)' || { echo "dist-push: set IMAGE_REPO=host/path"; exit 1; }
	$(DIST_TOOL) push -archive $(DIST)/sidecar.oci.tar -repo '$(IMAGE_REPO)' -version '$(VERSION)'

clean:
	rm -rf bin $(DIST)
