package main

import (
	"strings"
	"testing"

	"github.com/fractalvm/fractal/phases"
)

func TestOneLine(t *testing.T) {
	for in, want := range map[string]string{
		"plain text, ünïcode":     "plain text, ünïcode",
		"a\nb\r\tc\x00\x7f":       `a\nb\r\tc\x00\x7f`,
		"bad \xff\xfe utf-8":      `bad \xff\xfe utf-8`,
		"c1 \u0085 control":       `c1 \u0085 control`,
		strings.Repeat("x", 2010): strings.Repeat("x", 2000) + "... (10 more bytes)",
	} {
		if got := oneLine(in); got != want {
			t.Errorf("oneLine(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestChunkNamesShownAsFiles(t *testing.T) {
	n := codeNames{}
	n.addCode([]byte("return true\n"), "dir/allow.lua") // SHA-256 ea247e820cda9e68…
	n["calculation"] = "transfer.lua"
	for in, want := range map[string]struct {
		text string
		at   *where
	}{
		"input 1 owner predicate ea247e820cda9e68: code:ea247e820cda9e68:3: no":  {"input 1 owner predicate ea247e820cda9e68: allow.lua:3: no", &where{"allow.lua", 3}},
		"fragment: chunk-ea247e820cda: chunk-0123456789ab:11: assertion failed!": {"fragment: allow.lua: chunk-0123456789ab:11: assertion failed!", &where{"chunk-0123456789ab", 11}},
		"refused in calculation: calculation:5: boom":                            {"refused in calculation: transfer.lua:5: boom", &where{"transfer.lua", 5}},
		"refused in lookup: lookup:2: x":                                         {"refused in lookup: lookup:2: x", &where{"lookup", 2}},
		"no code here":                                                           {"no code here", nil},
	} {
		text, at := n.text(in)
		if text != want.text || (at == nil) != (want.at == nil) || at != nil && *at != *want.at {
			t.Errorf("text(%q) = %q, %+v; want %q, %+v", in, text, at, want.text, want.at)
		}
	}
}

// TestReceiptLogIsOneLine: a transaction's log reaches the terminal with its
// control characters escaped, as its refusal reason does: a log line cannot
// retitle the window, clear the screen or print a fake status line.
func TestReceiptLogIsOneLine(t *testing.T) {
	var b strings.Builder
	printReceipt(&b, &phases.Receipt{Status: phases.Accepted, Log: []string{"calculation: \x1b]0;pwned\x07\x1b[2J\rfake: accepted"}}, nil)
	want := `  log: calculation: \x1b]0;pwned\a\x1b[2J\rfake: accepted` + "\n"
	if got := b.String(); !strings.HasSuffix(got, want) || strings.ContainsRune(got, 0x1b) {
		t.Fatalf("receipt printed %q, want it to end %q", got, want)
	}
}
