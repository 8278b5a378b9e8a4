# Developer and CI targets. `make test` is the project's test command (.ci/run).

GO ?= go

.PHONY: test deps etcd bench bench-ci fuzz fuzz-ci windows

# test runs every check CI runs. Integration tests start a real Samba AD DC and
# OpenLDAP slapd (directory/ldaplab); each test binary runs in its own network
# namespace (scripts/netns-exec.sh, needs root) so their fixed ports never
# collide. REPLYRESET_INTEGRATION=1 and CI=1 turn a server that cannot start
# into a failure instead of a skip. Output: one summary line per package, the
# full log only for failures. The etcd server of the etcd tests
# (enroll/store/etcdlab) is built before, outside the namespaces.
test: deps etcd
	$(GO) mod download
	@echo '--- gofmt -l'
	@unformatted="$$(gofmt -l .)"; \
	if [ -n "$$unformatted" ]; then \
		echo "gofmt: these files are not formatted (run gofmt -w on them):"; echo "$$unformatted"; exit 1; \
	fi
	@echo '--- go vet'
	$(GO) vet ./...
	@$(MAKE) --no-print-directory windows
	@echo '--- go test'
	REPLYRESET_INTEGRATION=1 CI=1 $(GO) test -race -count=1 -timeout 20m -exec $(CURDIR)/scripts/netns-exec.sh ./...
	@$(MAKE) --no-print-directory bench-ci
	@$(MAKE) --no-print-directory fuzz-ci

# deps installs the system packages the tests need (idempotent).
deps:
	$(CURDIR)/scripts/install-test-deps.sh

# etcd builds the etcd server v3.6.16 of the tests once per machine from the Go
# module proxy (about 2 minutes) into a cache outside the repository
# ($REPLYRESET_ETCD_CACHE, or ~/.cache/replyreset/etcd-v3.6.16); later runs
# only check its version.
etcd:
	@echo '--- etcd server for the tests'
	$(GO) run ./enroll/store/etcdlab/etcdbuild

# bench prints the performance figures (bench/) as one table: RESET round trip
# against the raw directory work (p50/p99, concurrency 1 and 8), HELP and
# STATUS throughput against the raw search, the lockout poll at 50,000 users,
# idle memory; on a real Samba AD DC and OpenLDAP slapd in a private network
# namespace. Figures only, no pass/fail on timing. The table, with the
# machine, is written into bench/README.md.
bench: deps etcd
	REPLYRESET_INTEGRATION=1 CI=1 REPLYRESET_BENCH_RECORD=README.md $(GO) test -count=1 -run '^$$' -bench . -benchtime 1x -timeout 60m -exec $(CURDIR)/scripts/netns-exec.sh ./bench/

# bench-ci is the part of `make test` that runs every benchmark of the module
# once, with the small fixtures of -short, in the same network namespace and
# integration setup as the tests, so a broken benchmark fails CI.
bench-ci:
	@echo '--- benchmarks (each once, -short fixtures)'
	REPLYRESET_INTEGRATION=1 CI=1 $(GO) test -race -count=1 -short -run '^$$' -bench . -benchtime 1x -timeout 15m -exec $(CURDIR)/scripts/netns-exec.sh ./...

# windows checks that the binary builds for Windows, where it runs as a
# service (cmd/replyreset/service_windows.go). The tests are Linux-only
# (real slapd and Samba), so only the binary is built.
windows:
	@echo '--- GOOS=windows go build ./cmd/replyreset'
	GOOS=windows $(GO) build -o /dev/null ./cmd/replyreset

# fuzz runs every fuzz target (func FuzzXxx) for FUZZTIME each; a failing
# input is left under the package's testdata/fuzz/ to be fixed and kept as a
# seed (scripts/fuzz.sh). `make fuzz FUZZTIME=10m` for a longer run.
FUZZTIME ?= 2m
fuzz:
	FUZZTIME=$(FUZZTIME) GO=$(GO) $(CURDIR)/scripts/fuzz.sh

# fuzz-ci is the short run of every fuzz target that `make test` does.
fuzz-ci:
	@echo '--- fuzz (15s per target)'
	@FUZZTIME=15s GO=$(GO) $(CURDIR)/scripts/fuzz.sh
