# Fractal build, test, benchmark and demo entry points.
GO       ?= go
BIN      := bin/fractal
FUZZTIME ?= 3s

.PHONY: build test fuzz bench calibrate demo clean

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

demo: build
	./examples/demo.sh

clean:
	rm -rf bin
