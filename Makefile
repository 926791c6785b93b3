# Fractal build, test, benchmark and demo entry points.
GO       ?= go
BIN      := bin/fractal
FUZZTIME ?= 3s

.PHONY: build test fuzz bench calibrate demo clean proto proto-check proto-breaking flip-full dkg-timing load soak devnet devnet-stop devnet-long devnet-bench devnet-latency devnet-epochs

build:
	$(GO) build -o $(BIN) ./cmd/fractal

# Unit tests, CLI scripts, and each fuzz target's seed corpus; then a short
# fuzzing run of every target.
test:
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 30m ./...
	$(MAKE) --no-print-directory fuzz

# Runs every `func FuzzXxx` for FUZZTIME (go test allows one target per run).
# A run that fails and saves a failing input fails at once; a run that fails
# without saving one (the fuzzing engine itself gave up, e.g. a worker that did
# not start in time on a loaded machine) is run once more, and fails if that
# run fails too.
fuzz:
	@set -e; log=$$(mktemp); for f in $$(grep -rl --include='*_test.go' '^func Fuzz' . | sort); do \
	  pkg=./$$(dirname $$f); \
	  for t in $$(grep -o '^func Fuzz[A-Za-z0-9_]*' $$f | cut -d' ' -f2); do \
	    echo "fuzz $$pkg $$t ($(FUZZTIME))"; \
	    before=$$(ls $$pkg/testdata/fuzz/$$t 2>/dev/null | wc -l); \
	    if ! $(GO) test -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) $$pkg >$$log 2>&1; then \
	      cat $$log; \
	      after=$$(ls $$pkg/testdata/fuzz/$$t 2>/dev/null | wc -l); \
	      if [ "$$after" != "$$before" ]; then echo "fuzz: $$t found a failing input (saved in $$pkg/testdata/fuzz/$$t)"; exit 1; fi; \
	      echo "fuzz: $$t failed without a failing input; running it once more"; \
	      $(GO) test -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) $$pkg; \
	    fi; \
	  done; \
	done

# Flips every byte of every file of a three-block instance home and opens,
# verifies and lists it each time (make test flips a spread of positions);
# prints the files, positions, refusals and unchanged results. Minutes.
flip-full:
	FRACTAL_FLIP_FULL=1 $(GO) test -count=1 -timeout 120m -run '^TestDamagedStoreFlips$$' -v ./fractal

# The DKG among separate keyholder processes over loopback, n = 4, k = 3 and
# n = 16, k = 11, three times each, with the wall time of each run.
dkg-timing:
	$(GO) test -count=3 -run '^TestKeyholderDKGProcesses$$' -v ./cmd/fractal | grep -E 'wall time|^(ok|FAIL|---)'

bench:
	$(GO) test -run '^$$' -bench . -benchmem -timeout 60m ./...

# Gas calibration: nanoseconds per gas for the hostile corpus and generated
# fragments, and the worst/median ratio (at most 10); then the peak memory of
# the hostile corpus and of a block of 40 memory-hungry transactions, each in
# a process of its own (docs/decisions/090-gas-tracks-work.md).
calibrate:
	$(GO) test ./vp -run '^$$' -bench GasCalibration -benchtime 3x -count 3 -timeout 60m
	$(GO) test ./vp -run '^$$' -bench HostileMemory -benchtime 1x
	$(GO) test ./phases -run '^$$' -bench BlockMemory -benchtime 1x

# A 4-validator instance on 127.0.0.1-.4 in the background (docs/cli/validator.md):
# `make devnet` writes DEVNET (once) and starts one `fractal node` per home (the
# validator and its API), its log in DEVNET/vK.log and its process ID in DEVNET/vK.pid;
# `make devnet-stop` stops exactly those processes (SIGTERM, by PID).
DEVNET    ?= .devnet
DEVNET_N  ?= 4
DEVNET_PORT ?= 26600

devnet: build
	@test -d $(DEVNET)/v0 || ./$(BIN) devnet --validators $(DEVNET_N) --out $(DEVNET) --base-port $(DEVNET_PORT)
	@for d in $(DEVNET)/v*/; do v=$$(basename $$d); \
	  if [ -f $(DEVNET)/$$v.pid ] && kill -0 $$(cat $(DEVNET)/$$v.pid) 2>/dev/null; then echo "$$v already runs (pid $$(cat $(DEVNET)/$$v.pid))"; continue; fi; \
	  ./$(BIN) --home $$d node >$(DEVNET)/$$v.log 2>&1 & echo $$! >$(DEVNET)/$$v.pid; \
	  echo "$$v: pid $$(cat $(DEVNET)/$$v.pid), log $(DEVNET)/$$v.log"; \
	done
	@echo "trust entry: $(DEVNET)/trust.json; stop with make devnet-stop"

devnet-stop:
	@for f in $(DEVNET)/v*.pid; do [ -f $$f ] || continue; \
	  kill $$(cat $$f) 2>/dev/null && echo "stopped $$(basename $$f .pid) (pid $$(cat $$f))"; rm -f $$f; \
	done

# Issue 14's benchmark (decision 127): 4 validators under 64 clients for 20 s,
# then CometBFT's kvstore under the same load, in the same run. Minutes.
# The longer validator-set tests: a Smart Lua chain and the shielded pool on four
# validators (setup, proofs), beside the ones make test runs.
devnet-long:
	FRACTAL_DEVNET_LONG=1 $(GO) test -count=1 -timeout 20m -v -run '^(TestAppsOnValidators|TestFourValidators|TestFaults|TestCrossInstanceBothWays)$$' ./fractal/validator
	FRACTAL_DEVNET_LONG=1 $(GO) test -count=1 -timeout 10m -v -run '^TestShieldedWalletOverValidatorAPI$$' ./fractal/validator/gateway
	FRACTAL_DEVNET_LONG=1 $(GO) test -count=1 -timeout 10m -v -run '^TestValidatorSubmitEncryptedAfterEpochSwitch$$' ./cmd/fractal

devnet-bench:
	$(GO) test -count=1 -timeout 30m -run '^$$' -bench '^BenchmarkDevnet$$' -benchtime 1x -v ./fractal/validator

# The latency an encrypted transfer adds on four validators (decision 161):
# plain and encrypted transfers one after the other, submit to receipt.
devnet-latency:
	$(GO) test -count=1 -timeout 10m -run '^$$' -bench '^BenchmarkEncryptedLatency$$' -benchtime 20x ./fractal/validator

# The time an epoch's DKG takes as transactions on four validators (decision 162).
devnet-epochs:
	$(GO) test -count=1 -timeout 20m -run '^$$' -bench '^BenchmarkEpochDKG$$' -benchtime 3x ./fractal/validator

demo: build
	./examples/demo.sh
	./examples/demo-node.sh

# The node under load: 100 clients, each on its own connection, submit
# token transfers (3,000 senders, 30,000 transfers, signed beforehand) to a
# node run as a child process; prints transfers/s, submit-to-receipt
# latency (p50, p99) and CPU per transfer. LOAD_ARGS passes more, e.g.
# LOAD_ARGS="FRACTAL_LOAD_CODE=example" (examples/token's transfer code),
# LOAD_ARGS="FRACTAL_LOAD_PROFILE=DIR" (the node's CPU and allocation profiles
# in DIR: fractal node --profile) or LOAD_ARGS="FRACTAL_LOAD_BATCH=30" (each
# client sends the transfers its senders have ready, up to 30, in one
# SubmitTransactions call; decision 179).
load:
	$(LOAD_ARGS) FRACTAL_LOAD=1 $(GO) test -count=1 -timeout 20m -run '^TestLoad$$' -v ./cmd/fractal | grep -E '^(load:|---|ok|FAIL)'

# The node SIGKILLed under load SOAK times (default 20): after each kill,
# verify passes and every acknowledged submission is committed or queued
# (make test runs it with 3 kills).
SOAK ?= 20
soak:
	FRACTAL_SOAK=$(SOAK) $(GO) test -count=1 -timeout 30m -run '^TestKilledUnderLoad$$' -v ./cmd/fractal | grep -E '(kill [0-9]+:|acknowledged:|^---|^ok|FAIL)'

# The node API schema (proto/fractal/v1, decision 110). buf is built once into
# bin/tools at its pinned version; the protoc plugins are go.mod tools, so
# go.mod pins them. `make proto` lints the schema and regenerates api/fractalv1
# (committed); `make proto-check` fails when the committed code is not what
# the schema generates; `make proto-breaking` compares the schema with BASE's.
BUF_VERSION := v1.75.0
BUF         := bin/tools/buf-$(BUF_VERSION)
BASE        ?= main

$(BUF):
	GOBIN=$(CURDIR)/bin/tools/buf-install $(GO) install github.com/bufbuild/buf/cmd/buf@$(BUF_VERSION)
	mv bin/tools/buf-install/buf $@
	rmdir bin/tools/buf-install

proto: $(BUF)
	$(BUF) lint
	$(BUF) generate
	$(GO) build ./api/...

proto-check: proto
	git diff --exit-code -- api
	@test -z "$$(git status --porcelain -- api)" || { git status --porcelain -- api; echo "proto-check: generated files not committed"; exit 1; }

proto-breaking: $(BUF)
	$(BUF) breaking --against "$$(git rev-parse --git-common-dir)#branch=$(BASE),subdir=proto"

clean:
	rm -rf bin
