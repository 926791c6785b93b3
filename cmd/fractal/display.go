package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/fractalvm/fractal/fractal/chain"
	"github.com/fractalvm/fractal/internal/atomicfile"
	"github.com/fractalvm/fractal/internal/inputfile"
	"github.com/fractalvm/fractal/vp"
)

// Messages for people. Lua code runs under chunk names the chain keeps:
// code:<16 hex> for deployed code, chunk-<12 hex> in Smart Lua states,
// lookup and calculation for a transaction's own code. A message shown to a
// person names the file the code came from instead, where this program
// knows it (decision 089): deploy records file names in a names file beside
// the code (HOME, or a Smart Lua chain folder), and tx submit knows the
// files its JSON names. Nothing hashed or stored in the chain changes.

// namesFile maps the SHA-256 of code (hex) to the name of the file it was
// deployed from, in the instance folder and in a Smart Lua chain folder.
const namesFile = "code-names.json"

// maxNamesFile bounds the names file: ten thousand names or so. A name that
// would make it longer is not recorded.
const maxNamesFile = 1 << 20

// shown is this run's chunk name -> file name map.
var shown = codeNames{}

type codeNames map[string]string

// addCode names the chunks src runs under after file.
func (n codeNames) addCode(src []byte, file string) {
	n.addHash(sha256.Sum256(src), filepath.Base(file))
}

func (n codeNames) addHash(h [32]byte, file string) {
	n[chain.CodeName(h)] = file
	n[vp.ChunkName(h)] = file
}

// load adds the names recorded in dir. The names only word messages, so a
// missing or unreadable names file leaves the hashes in them.
func (n codeNames) load(dir string) {
	for h, file := range readNames(dir) {
		n.addHash(h, file)
	}
}

// readNames reads dir's names file, skipping entries that are not a hash
// and a printable name.
func readNames(dir string) map[[32]byte]string {
	out := map[[32]byte]string{}
	raw, err := inputfile.Read(filepath.Join(dir, namesFile), maxNamesFile)
	if err != nil {
		return out
	}
	var m map[string]string
	if json.Unmarshal(raw, &m) != nil {
		return out
	}
	for k, name := range m {
		var h [32]byte
		if b, err := hex.DecodeString(k); err == nil && len(b) == 32 && printable(name) && len(name) <= 255 {
			copy(h[:], b)
			out[h] = name
		}
	}
	return out
}

// recordName records in dir's names file that src was read from file.
func recordName(dir string, src []byte, file string) error {
	names := readNames(dir)
	names[sha256.Sum256(src)] = filepath.Base(file)
	m := make(map[string]string, len(names))
	for h, name := range names {
		m[hex.EncodeToString(h[:])] = name
	}
	data, err := json.MarshalIndent(m, "", "  ") // keys sorted
	if err != nil || len(data) >= maxNamesFile {
		return err
	}
	return atomicfile.Write(filepath.Join(dir, namesFile), append(data, '\n'), 0o644)
}

// chunkRef finds the chunk names in a message, with the line that follows.
// lookup and calculation are names only when a line follows.
var chunkRef = regexp.MustCompile(`\b(?:(code:[0-9a-f]{16}|chunk-[0-9a-f]{12})(?::(\d+))?|(lookup|calculation):(\d+))`)

// where is a place in Lua code that a message names.
type where struct {
	File string
	Line int
}

// text returns msg with chunk names replaced by file names, and the first
// place in it that has a line.
func (n codeNames) text(msg string) (string, *where) {
	var b strings.Builder
	var at *where
	last := 0
	for _, m := range chunkRef.FindAllStringSubmatchIndex(msg, -1) {
		nameAt, lineAt := 2, 4
		if m[2] < 0 {
			nameAt, lineAt = 6, 8
		}
		name := msg[m[nameAt]:m[nameAt+1]]
		file, ok := n[name]
		if !ok {
			file = name
		}
		b.WriteString(msg[last:m[nameAt]])
		b.WriteString(file)
		last = m[nameAt+1]
		if at == nil && m[lineAt] >= 0 {
			line, _ := strconv.Atoi(msg[m[lineAt]:m[lineAt+1]])
			at = &where{file, line}
		}
	}
	b.WriteString(msg[last:])
	return b.String(), at
}

// maxMessage bounds a message shown to a person.
const maxMessage = 2000

// oneLine escapes what would break a message over lines or into bytes a
// terminal acts on (control characters and invalid UTF-8, as %q writes
// them), and cuts a long message short, saying how much was left out.
func oneLine(msg string) string {
	var b strings.Builder
	for i, r := range msg {
		if b.Len() >= maxMessage {
			b.WriteString("... (" + strconv.Itoa(len(msg)-i) + " more bytes)")
			break
		}
		switch {
		case r == utf8.RuneError:
			if _, size := utf8.DecodeRuneInString(msg[i:]); size == 1 {
				b.WriteString(`\x` + hex.EncodeToString([]byte{msg[i]}))
				continue
			}
			b.WriteRune(r)
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0):
			q := strconv.QuoteRune(r)
			b.WriteString(q[1 : len(q)-1])
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// show is a message as this program prints it.
func (n codeNames) show(msg string) string {
	s, _ := n.text(msg)
	return oneLine(s)
}
