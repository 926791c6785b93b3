// Package shielded is the instance's shielded-pool component: the shielded
// transaction format (a header line and a proof bundle in a transaction's
// extradata), the pool's Lua code (lookup, calculation and the pool notes'
// owner predicate), and the per-block checks and storage of the commitment
// tree, the nullifier set and the window of recent anchors (pool.go).
//
// A shielded transaction is an ordinary phases.Tx whose extradata starts
// with Magic. The instance refuses it before phase 1 unless its proof
// verifies against the transaction's binding hash, its anchor is recent, its
// nullifiers are unseen and its code is the pool's; phases 1–3 then move the
// transparent side (the token's pool note), and phase 4 appends its
// commitments and records its nullifiers in the block's write (package kv).
// Formats: docs/formats/shielded-pool.md.
package shielded

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/fractalvm/fractal/circuits"
	"github.com/fractalvm/fractal/circuits/note"
	"github.com/fractalvm/fractal/internal/enc"
	"github.com/fractalvm/fractal/notes"
	"github.com/fractalvm/fractal/phases"
	"github.com/fractalvm/fractal/zk"
)

// The pool's Lua code. Every shielded transaction carries Lookup and
// Calculation as its lookup and calculation code; pool notes are owned by
// PoolPredicate (hash PoolOwner).
var (
	//go:embed lua/lookup.lua
	Lookup []byte
	//go:embed lua/calc.lua
	Calculation []byte
	//go:embed lua/pool.lua
	PoolPredicate []byte
	// PoolOwner is the owner hash of every pool note.
	PoolOwner = notes.Hash(sha256.Sum256(PoolPredicate))
)

// Magic starts the extradata of every shielded transaction.
const Magic = "fractal-shielded/1 "

// Limits of the header line.
const (
	MaxHeader    = 4096            // bytes of the header line
	MaxAmount    = 999999999999999 // largest |net|: the token application's largest amount
	MaxShieldIns = 8               // token notes one shield may spend
)

// SealedSize is the length of one output note sealed by AES-256-GCM: its
// encoding and the AEAD tag (see the wallet package).
const SealedSize = note.Size + 16

// The bundle versions. A version-1 bundle gives each output its own
// ephemeral X25519 key; a version-2 bundle gives the transaction one, which
// every output shares, and each output a one-byte view tag (decision 168).
// New bundles are of version 2; version 1 stays valid.
const (
	BundleV1 = 1
	BundleV2 = 2
)

// bundleSize is the length of the binary part after the header line of a
// bundle of version v, 0 for an unknown version.
func bundleSize(v byte) int {
	head := 1 + circuits.PublicSize + zk.ProofSize
	switch v {
	case BundleV1:
		return head + 2*(32+SealedSize)
	case BundleV2:
		return head + 32 + 2*(1+SealedSize)
	}
	return 0
}

// Ciphertexts are the encrypted notes of a transaction's outputs, one
// Sealed per output. Version 1: EPKs[i] is output i's ephemeral key, and
// there are no tags. Version 2: EPKs[0] is the one ephemeral key of every
// output, Tags[i] output i's view tag.
type Ciphertexts struct {
	Version byte
	EPKs    [][32]byte
	Tags    []byte
	Sealed  [][SealedSize]byte
}

// Check refuses a shape other than its version's for n outputs.
func (c *Ciphertexts) Check(n int) error {
	ok := len(c.Sealed) == n
	switch c.Version {
	case BundleV1:
		ok = ok && len(c.EPKs) == n && len(c.Tags) == 0
	case BundleV2:
		ok = ok && len(c.EPKs) == 1 && len(c.Tags) == n
	default:
		return fmt.Errorf("bundle version %d, want %d or %d", c.Version, BundleV1, BundleV2)
	}
	if !ok {
		return fmt.Errorf("version-%d ciphertexts of %d outputs with %d ephemeral keys, %d view tags and %d sealed notes", c.Version, n, len(c.EPKs), len(c.Tags), len(c.Sealed))
	}
	return nil
}

// EPK is the ephemeral key of output i (of a checked Ciphertexts).
func (c *Ciphertexts) EPK(i int) *[32]byte {
	if c.Version == BundleV1 {
		return &c.EPKs[i]
	}
	return &c.EPKs[0]
}

// Header is the text line that opens a shielded transaction's extradata; the
// pool's Lua code reads it, the instance checks it against the proof.
type Header struct {
	App   notes.Hash // the token application
	Pool  notes.Hash // owner of the pool note; must be PoolOwner
	Token string     // "<issuer>:<symbol>"
	Net   int64      // amount entering the pool (negative: leaving it)
	Args  []string   // shield: the sender's token notes' state keys; unshield: recipient key and owner hex
}

// Bundle is a parsed shielded transaction: header, public statement, proof
// and the two outputs' ciphertexts, whose version is the bundle's.
type Bundle struct {
	Header
	Public      circuits.Public
	Proof       [zk.ProofSize]byte
	Ciphertexts Ciphertexts
}

// AssetOf is the shielded asset of a token: note.NewAsset over
// "<application hex>/<issuer>:<symbol>", so a token of another application
// (another conservation rule) is another asset.
func AssetOf(app notes.Hash, token string) note.Asset {
	return note.NewAsset([]byte(hex.EncodeToString(app[:]) + "/" + token))
}

// IsShielded reports whether tx claims to be a shielded transaction. Such a
// transaction is only accepted when its bundle checks out.
func IsShielded(tx *phases.Tx) bool { return bytes.HasPrefix(tx.Extradata, []byte(Magic)) }

// Extradata encodes the bundle: the header line, '\n', then version,
// public statement, proof and ciphertexts (version 1: each output's
// ephemeral key and sealed note; version 2: the ephemeral key, then each
// output's view tag and sealed note).
func (b *Bundle) Extradata() ([]byte, error) {
	line, err := b.Header.line()
	if err != nil {
		return nil, err
	}
	c := &b.Ciphertexts
	if err := c.Check(len(b.Public.Commitments)); err != nil {
		return nil, fmt.Errorf("shielded: %w", err)
	}
	pub, err := b.Public.MarshalBinary()
	if err != nil {
		return nil, err
	}
	w := enc.NewWriter(len(line) + 1 + bundleSize(c.Version))
	w.Fixed([]byte(line))
	w.U8('\n')
	w.U8(c.Version)
	w.Fixed(pub)
	w.Fixed(b.Proof[:])
	if c.Version == BundleV2 {
		w.Fixed(c.EPKs[0][:])
	}
	for i := range c.Sealed {
		if c.Version == BundleV1 {
			w.Fixed(c.EPKs[i][:])
		} else {
			w.U8(c.Tags[i])
		}
		w.Fixed(c.Sealed[i][:])
	}
	return w.Bytes(), nil
}

func (h *Header) line() (string, error) {
	if err := h.check(); err != nil {
		return "", err
	}
	parts := append([]string{strings.TrimSuffix(Magic, " "), hex.EncodeToString(h.App[:]), hex.EncodeToString(h.Pool[:]), h.Token, strconv.FormatInt(h.Net, 10)}, h.Args...)
	line := strings.Join(parts, " ")
	if len(line) > MaxHeader {
		return "", fmt.Errorf("shielded: header line is %d bytes, limit %d", len(line), MaxHeader)
	}
	return line, nil
}

// check refuses header fields that the Lua code would read differently
// from Go: every field must be non-empty and free of spaces and newlines.
func (h *Header) check() error {
	if h.Net < -MaxAmount || h.Net > MaxAmount {
		return fmt.Errorf("shielded: net amount %d outside ±%d", h.Net, MaxAmount)
	}
	if err := checkToken(h.Token); err != nil {
		return err
	}
	for i, a := range h.Args {
		if a == "" || strings.ContainsAny(a, " \n") {
			return fmt.Errorf("shielded: header argument %d is empty or holds a space", i+1)
		}
	}
	return nil
}

// checkToken accepts "<issuer>:<symbol>" as the token application writes it:
// a 44-character base64 key, a symbol of 1–16 of A-Z0-9.
func checkToken(t string) error {
	issuer, symbol, ok := strings.Cut(t, ":")
	bad := !ok || len(issuer) != 44 || !strings.HasSuffix(issuer, "=") || len(symbol) < 1 || len(symbol) > 16
	for _, c := range issuer[:max(len(issuer)-1, 0)] {
		bad = bad || !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '+' || c == '/')
	}
	for _, c := range symbol {
		bad = bad || !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9')
	}
	if bad {
		return fmt.Errorf("shielded: token %q is not <issuer key>:<SYMBOL>", t)
	}
	return nil
}

// Parse reads the bundle of a shielded transaction (version 1 or 2),
// refusing a malformed header, a non-canonical number, a bundle of another
// version or of another length than its version's, and a header whose net
// amount or asset differ from the public statement.
func Parse(tx *phases.Tx) (*Bundle, error) {
	b, err := parse(tx.Extradata)
	if err != nil {
		return nil, fmt.Errorf("shielded: %w", err)
	}
	return b, nil
}

func parse(x []byte) (*Bundle, error) {
	if !bytes.HasPrefix(x, []byte(Magic)) {
		return nil, errors.New("extradata does not start with " + strconv.Quote(Magic))
	}
	nl := bytes.IndexByte(x, '\n')
	if nl < 0 || nl > MaxHeader {
		return nil, errors.New("no header line")
	}
	f := strings.Split(string(x[:nl]), " ")
	if len(f) < 5 {
		return nil, errors.New("header line has fewer than 5 fields")
	}
	b := &Bundle{}
	for i, dst := range []*notes.Hash{&b.App, &b.Pool} {
		raw, err := hex.DecodeString(f[1+i])
		if err != nil || len(raw) != 32 || hex.EncodeToString(raw) != f[1+i] {
			return nil, fmt.Errorf("header field %d is not 64 lower-case hex digits", 2+i)
		}
		copy(dst[:], raw)
	}
	b.Token = f[3]
	net, err := strconv.ParseInt(f[4], 10, 64)
	if err != nil || strconv.FormatInt(net, 10) != f[4] {
		return nil, fmt.Errorf("net amount %q is not a canonical decimal", f[4])
	}
	b.Net, b.Args = net, f[5:]
	if err := b.Header.check(); err != nil {
		return nil, err
	}
	r := enc.NewReader(x[nl+1:])
	c := &b.Ciphertexts
	if c.Version = r.U8(); r.Err() == nil && bundleSize(c.Version) == 0 {
		return nil, fmt.Errorf("bundle version %d, want %d or %d", c.Version, BundleV1, BundleV2)
	}
	if err := b.Public.UnmarshalBinary(r.Fixed(circuits.PublicSize)); r.Err() == nil && err != nil {
		return nil, err
	}
	r.Into(b.Proof[:])
	n := len(b.Public.Commitments)
	c.Sealed = make([][SealedSize]byte, n)
	if c.Version == BundleV1 {
		c.EPKs = make([][32]byte, n)
	} else {
		c.EPKs, c.Tags = make([][32]byte, 1), make([]byte, n)
		r.Into(c.EPKs[0][:])
	}
	for i := range n {
		if c.Version == BundleV1 {
			r.Into(c.EPKs[i][:])
		} else {
			c.Tags[i] = r.U8()
		}
		r.Into(c.Sealed[i][:])
	}
	if err := r.Finish(); err != nil {
		return nil, fmt.Errorf("bundle: %w", err)
	}
	if b.Public.Net != b.Net {
		return nil, fmt.Errorf("header net amount %d differs from the proof's %d", b.Net, b.Public.Net)
	}
	if b.Public.Asset != AssetOf(b.App, b.Token) {
		return nil, errors.New("the proof's asset is not the header's token")
	}
	return b, nil
}

// BindingHash is what the proof's Binding input commits to: the ID of tx
// with the proof and the Binding field zeroed. Every other byte of the
// transaction (header, statement, ciphertexts, code, constraints, signers,
// nonce), the ephemeral keys, view tags and sealed notes included, is
// covered, so a proof cannot be moved to another transaction and no
// ciphertext changed without a new proof.
func BindingHash(tx *phases.Tx) ([32]byte, error) {
	x := tx.Extradata
	nl := bytes.IndexByte(x, '\n')
	if nl < 0 || nl+1 >= len(x) || len(x)-nl-1 != bundleSize(x[nl+1]) {
		return [32]byte{}, errors.New("shielded: binding: not a bundle")
	}
	blank := bytes.Clone(x)
	pub := nl + 2 // after '\n' and the version
	clear(blank[pub+circuits.PublicSize-32 : pub+circuits.PublicSize+zk.ProofSize])
	cp := *tx
	cp.Extradata = blank
	return cp.ID(), nil
}
