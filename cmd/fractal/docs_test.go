package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// The CLI pages' examples are run as written, so that what they show stays
// true. A page shows a session in a console block:
//
//	```console
//	$ fractal keys gen --out alice.key
//	{alice}
//	$ fractal keys show alice.key
//	{alice}
//	```
//
// Each "$ " line is run by sh in a folder of its own for the page (with
// examples/ of the repository in it), and the lines up to the next command
// are its stdout and stderr together. In them {name} stands for a word
// that differs between runs (a key, an ID): its first appearance takes the
// word, later ones (in output, commands and files) must match it or are
// replaced by it. "…" stands for any text within a line. A command whose
// output has a line starting "fractal: " must fail, any other must succeed.
// A fenced block whose info string holds file=NAME is written to NAME
// ({name} replaced) before the blocks after it run.

// pageBlock is a fenced block of a page.
type pageBlock struct {
	line int    // of the opening fence
	info string // the words after the fence
	body []string
}

func pageBlocks(t *testing.T, path string) []pageBlock {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var blocks []pageBlock
	var cur *pageBlock
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		switch {
		case cur == nil && strings.HasPrefix(line, "```"):
			cur = &pageBlock{line: n, info: strings.TrimPrefix(line, "```")}
		case cur != nil && line == "```":
			blocks = append(blocks, *cur)
			cur = nil
		case cur != nil:
			cur.body = append(cur.body, line)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return blocks
}

var (
	placeholder = regexp.MustCompile(`\{([a-z][a-z0-9_]*)\}`)
	fileAttr    = regexp.MustCompile(`(?:^|\s)file=(\S+)`)
)

// session runs one page.
type session struct {
	t    *testing.T
	dir  string
	page string
	vars map[string]string
	// rewrite, when not nil, changes each command before it runs (the
	// API page's node address).
	rewrite func(cmd string) string
}

// fill replaces the placeholders bound so far.
func (s *session) fill(text string, line int) string {
	return placeholder.ReplaceAllStringFunc(text, func(m string) string {
		v, ok := s.vars[m[1:len(m)-1]]
		if !ok {
			s.t.Fatalf("%s:%d: %s is used before any output shows it", s.page, line, m)
		}
		return v
	})
}

// expect matches got against the expected lines, binding new placeholders.
func (s *session) expect(cmd string, line int, want, got []string) {
	mismatch := func(why string) {
		s.t.Fatalf("%s:%d: $ %s\n%s\n--- want\n%s\n--- got\n%s", s.page, line, cmd, why, strings.Join(want, "\n"), strings.Join(got, "\n"))
	}
	if len(want) != len(got) {
		mismatch(fmt.Sprintf("%d lines of output, the page shows %d", len(got), len(want)))
	}
	for i, w := range want {
		var names []string
		var pat strings.Builder
		pat.WriteString("^")
		rest := w
		for rest != "" {
			loc := placeholder.FindStringIndex(rest)
			ell := strings.Index(rest, "…")
			switch {
			case loc == nil && ell < 0:
				pat.WriteString(regexp.QuoteMeta(rest))
				rest = ""
			case loc == nil || (ell >= 0 && ell < loc[0]):
				pat.WriteString(regexp.QuoteMeta(rest[:ell]) + ".*?")
				rest = rest[ell+len("…"):]
			default:
				pat.WriteString(regexp.QuoteMeta(rest[:loc[0]]))
				name := rest[loc[0]+1 : loc[1]-1]
				if v, ok := s.vars[name]; ok {
					pat.WriteString(regexp.QuoteMeta(v))
				} else {
					pat.WriteString(`([^\s"]+)`)
					names = append(names, name)
				}
				rest = rest[loc[1]:]
			}
		}
		pat.WriteString("$")
		m := regexp.MustCompile(pat.String()).FindStringSubmatch(got[i])
		if m == nil {
			mismatch(fmt.Sprintf("line %d differs", i+1))
		}
		for j, name := range names {
			if v, ok := s.vars[name]; ok && v != m[j+1] { // named twice on one line
				mismatch(fmt.Sprintf("{%s} is %q and %q", name, v, m[j+1]))
			}
			s.vars[name] = m[j+1]
		}
	}
}

// run runs one console block.
func (s *session) run(b pageBlock) {
	for i := 0; i < len(b.body); {
		cmd, ok := strings.CutPrefix(b.body[i], "$ ")
		if !ok {
			s.t.Fatalf("%s:%d: console block line %q is not a command", s.page, b.line+1+i, b.body[i])
		}
		line := b.line + 1 + i
		i++
		var want []string
		for ; i < len(b.body) && !strings.HasPrefix(b.body[i], "$ "); i++ {
			want = append(want, b.body[i])
		}
		run := s.fill(cmd, line)
		if s.rewrite != nil {
			run = s.rewrite(run)
		}
		c := exec.Command("sh", "-c", run)
		c.Dir = s.dir
		c.Env = append(os.Environ(), "COLUMNS=80")
		out, err := c.CombinedOutput()
		failed := false
		if err != nil {
			if _, ok := err.(*exec.ExitError); !ok {
				s.t.Fatalf("%s:%d: $ %s: %v", s.page, line, cmd, err)
			}
			failed = true
		}
		got := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
		if len(out) == 0 {
			got = nil
		}
		s.expect(cmd, line, want, got)
		wantFail := false
		for _, w := range want {
			wantFail = wantFail || strings.HasPrefix(w, "fractal: ")
		}
		if failed != wantFail {
			s.t.Fatalf("%s:%d: $ %s: failed %v, the page shows failed %v", s.page, line, cmd, failed, wantFail)
		}
	}
}

// TestDocsExamples runs the console blocks of docs/CLI.md and docs/cli/*.md
// against this program.
func TestDocsExamples(t *testing.T) {
	repo, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	pages, _ := filepath.Glob(filepath.Join(repo, "docs", "cli", "*.md"))
	pages = append(pages, filepath.Join(repo, "docs", "CLI.md"))
	for _, page := range pages {
		rel, _ := filepath.Rel(repo, page)
		t.Run(filepath.Base(page), func(t *testing.T) {
			t.Parallel()
			s := newSession(t, repo, rel)
			s.runPage(filepath.Join(repo, rel))
		})
	}
}

// newSession starts a page's session in a folder of its own, with the
// repository's examples/ in it.
func newSession(t *testing.T, repo, page string) *session {
	s := &session{t: t, dir: t.TempDir(), page: page, vars: map[string]string{}}
	if err := os.Symlink(filepath.Join(repo, "examples"), filepath.Join(s.dir, "examples")); err != nil {
		t.Fatal(err)
	}
	return s
}

// runPage writes the page's files and runs its console blocks in order.
func (s *session) runPage(path string) {
	start := time.Now()
	ran := 0
	for _, b := range pageBlocks(s.t, path) {
		if m := fileAttr.FindStringSubmatch(b.info); m != nil {
			path := filepath.Join(s.dir, m[1])
			os.MkdirAll(filepath.Dir(path), 0o755)
			text := s.fill(strings.Join(b.body, "\n")+"\n", b.line)
			if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
				s.t.Fatal(err)
			}
		}
		if strings.Fields(b.info + " x")[0] == "console" {
			s.run(b)
			ran++
		}
	}
	s.t.Logf("%d console blocks in %v", ran, time.Since(start).Round(time.Millisecond))
}
