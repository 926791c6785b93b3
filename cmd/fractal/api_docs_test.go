package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/fractalvm/fractal/fractal"
	"github.com/fractalvm/fractal/fractal/node"
	"github.com/fractalvm/fractal/internal/nodetest"
)

// TestAPIExamples runs the console blocks of docs/API.md (curl against the
// node's JSON form) against a real node serving a fresh instance: the
// page's default address is replaced by the node's.
func TestAPIExamples(t *testing.T) {
	repo, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	s := newSession(t, repo, "docs/API.md")
	home := filepath.Join(s.dir, "node-home")
	in, err := fractal.Init(home, fractal.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	if err := in.Close(); err != nil {
		t.Fatal(err)
	}
	n := nodetest.Start(t, home, nodetest.Config())
	addr := strings.TrimPrefix(n.URL, "http://")
	s.rewrite = func(cmd string) string { return strings.ReplaceAll(cmd, "127.0.0.1:"+node.DefaultPort, addr) }
	s.runPage(filepath.Join(repo, "docs", "API.md"))
}
