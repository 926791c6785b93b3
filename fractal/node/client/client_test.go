package client

import (
	"strings"
	"testing"
)

// TestNewRefusesAURLWithAPath: the node's address alone is a client (with
// or without the scheme, with or without a trailing slash); an explorer
// page's address, a query or another scheme is refused saying what to give.
func TestNewRefusesAURLWithAPath(t *testing.T) {
	for _, ok := range []string{"http://127.0.0.1:7810", "http://127.0.0.1:7810/", "127.0.0.1:7810"} {
		if _, err := New(ok); err != nil {
			t.Errorf("New(%q): %v", ok, err)
		}
	}
	for bad, want := range map[string]string{
		"http://127.0.0.1:7810/blocks/3": "no path or query",
		"http://127.0.0.1:7810/?x=1":     "no path or query",
		"http://":                        "no path or query",
		"https://127.0.0.1:7810":         "only http://",
	} {
		if _, err := New(bad); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("New(%q) = %v, want an error with %q", bad, err, want)
		}
	}
}
