# Fractal build, test, benchmark and demo entry points.
GO       ?= go
BIN      := bin/fractal
FUZZTIME ?= 3s

.PHONY: build test fuzz bench demo clean

build:
	$(GO) build -o $(BIN) ./cmd/fractal

# Unit tests, CLI scripts, and each fuzz target's seed corpus; then a short
# fuzzing run of every target.
test:
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 30m ./...
	$(MAKE) --no-print-directory fuzz

# Runs every `func FuzzXxx` for FUZZTIME (go test allows one target per run).
fuzz:
	@set -e; for f in $$(grep -rl --include='*_test.go' '^func Fuzz' .); do \
	  pkg=./$$(dirname $$f); \
	  for t in $$(grep -o '^func Fuzz[A-Za-z0-9_]*' $$f | cut -d' ' -f2); do \
	    echo "fuzz $$pkg $$t ($(FUZZTIME))"; \
	    $(GO) test -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) $$pkg >/dev/null || \
	      { $(GO) test -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) $$pkg; exit 1; }; \
	  done; \
	done

bench:
	$(GO) test -run '^$$' -bench . -benchmem -timeout 60m ./...

demo: build
	./examples/demo.sh

clean:
	rm -rf bin
