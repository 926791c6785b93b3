package explorer_test

import (
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/fractalvm/fractal/internal/nodetest"
)

// TestPagesSelfContained: every page and asset is the node's own: each
// page carries the Content-Security-Policy that forbids anything else,
// and no page or asset names another host. (Runs without a browser.)
func TestPagesSelfContained(t *testing.T) {
	tk := nodetest.NewToken(t)
	tk.Close(t)
	n := nodetest.Start(t, tk.Home, nodetest.Config())
	external := regexp.MustCompile(`(?i)(src|href|action)\s*=\s*"?(https?:)?//|url\(|@import|https?://`)
	for _, tc := range []struct{ path, ctype string }{
		{"/", "text/html; charset=utf-8"},
		{"/blocks", "text/html; charset=utf-8"},
		{"/block/0", "text/html; charset=utf-8"},
		{"/notes", "text/html; charset=utf-8"},
		{"/exports", "text/html; charset=utf-8"},
		{"/encrypted", "text/html; charset=utf-8"},
		{"/static/explorer.js", "text/javascript; charset=utf-8"},
		{"/static/explorer.css", "text/css; charset=utf-8"},
	} {
		resp, err := http.Get(n.URL + tc.path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != tc.ctype {
			t.Errorf("%s: %d %q", tc.path, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		if csp := resp.Header.Get("Content-Security-Policy"); !strings.HasPrefix(csp, "default-src 'none'; script-src 'self';") {
			t.Errorf("%s: Content-Security-Policy %q", tc.path, csp)
		}
		if m := external.Find(body); m != nil {
			t.Errorf("%s names something outside the node: %q", tc.path, m)
		}
	}
	// The embedded assets are served one by one, never as a folder listing.
	for _, path := range []string{"/static/", "/static//"} {
		resp, err := http.Get(n.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound || strings.Contains(string(body), "explorer.js") {
			t.Errorf("%s: %d %q", path, resp.StatusCode, body)
		}
	}
}
