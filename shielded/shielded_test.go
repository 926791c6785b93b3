package shielded

import (
	"bytes"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/fractalvm/fractal/circuits"
	"github.com/fractalvm/fractal/notes"
	"github.com/fractalvm/fractal/phases"
	"github.com/fractalvm/fractal/zk"
)

const testToken = "rhiLmrhEs/JhVvCrSMN4bePYPBqA8H/GOM+JUmPM7iQ=:TOK"

// testBundleOf is a bundle of the given version with recognisable bytes
// in every part of its ciphertexts.
func testBundleOf(version byte) *Bundle {
	app := notes.Hash{0xab}
	b := &Bundle{Header: Header{App: app, Pool: PoolOwner, Token: testToken, Net: -5, Args: []string{"x", "y"}}}
	b.Public.Asset, b.Public.Net = AssetOf(app, testToken), -5
	b.Public.Root.SetUint64(3)
	b.Proof[0] = 1
	c := &b.Ciphertexts
	c.Version, c.EPKs, c.Sealed = version, [][32]byte{{1}, {2}}, make([][SealedSize]byte, 2)
	if version == BundleV2 {
		c.EPKs, c.Tags = c.EPKs[:1], []byte{0x71, 0x72}
	}
	c.Sealed[1][7] = 9
	return b
}

func testBundle() *Bundle { return testBundleOf(BundleV2) }

func extradata(t testing.TB, b *Bundle) []byte {
	t.Helper()
	x, err := b.Extradata()
	if err != nil {
		t.Fatal(err)
	}
	return x
}

// TestBundleRoundTrip: both versions encode to their layout
// (docs/formats/shielded-pool.md) and parse back to the same bundle.
func TestBundleRoundTrip(t *testing.T) {
	head := "fractal-shielded/1 ab" + strings.Repeat("0", 62) + " 2fcd69cad05d61e0751bf98f9eacbbab59213653e575ba576f09c28490d3e685 " + testToken + " -5 x y\n"
	pub := 1 + circuits.PublicSize + zk.ProofSize // version, statement, proof
	for _, c := range []struct {
		version byte
		size    int
		tail    []byte // the bytes after the proof
	}{
		{BundleV1, 1 + 232 + 129 + 2*176, slices.Concat([]byte{1}, make([]byte, 31+144), []byte{2}, make([]byte, 31+7), []byte{9}, make([]byte, 136))},
		{BundleV2, 1 + 232 + 129 + 32 + 2*145, slices.Concat([]byte{1}, make([]byte, 31), []byte{0x71}, make([]byte, 144), []byte{0x72}, make([]byte, 7), []byte{9}, make([]byte, 136))},
	} {
		b := testBundleOf(c.version)
		x := extradata(t, b)
		if !bytes.HasPrefix(x, []byte(head)) {
			t.Fatalf("version %d: header line %q", c.version, x[:len(head)])
		}
		body := x[len(head):]
		if len(body) != c.size || bundleSize(c.version) != c.size || body[0] != c.version || !bytes.Equal(body[pub:], c.tail) {
			t.Fatalf("version %d: bundle of %d bytes, version byte %d, ciphertexts %x", c.version, len(body), body[0], body[pub:])
		}
		got, err := Parse(&phases.Tx{Extradata: x})
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, b) {
			t.Fatalf("version %d: parsed %+v, want %+v", c.version, got.Ciphertexts, b.Ciphertexts)
		}
		if again := extradata(t, got); !bytes.Equal(again, x) {
			t.Fatal("re-encoding differs")
		}
	}
	bad := testBundle()
	bad.Ciphertexts.Tags = nil
	if _, err := bad.Extradata(); err == nil || !strings.Contains(err.Error(), "version-2 ciphertexts of 2 outputs with 1 ephemeral keys, 0 view tags and 2 sealed notes") {
		t.Fatalf("encoding ciphertexts of the wrong shape: %v", err)
	}
}

func TestParseRefusals(t *testing.T) {
	good := string(extradata(t, testBundle()))
	nl := strings.IndexByte(good, '\n')
	line, body := good[:nl], good[nl:]
	sub := func(old, new string) string { return strings.Replace(line, old, new, 1) + body }
	other := testBundle()
	other.Public.Net = -6
	otherAsset := testBundle()
	otherAsset.Public.Asset[0] ^= 1
	cases := []struct{ name, x, want string }{
		{"not shielded", "hello", "does not start with"},
		{"no header line", line, "no header line"},
		{"too few fields", "fractal-shielded/1 a b\n", "fewer than 5 fields"},
		{"upper-case hex", sub(" ab00", " AB00"), "header field 2 is not 64 lower-case hex digits"},
		{"plus sign", sub(" -5 ", " +5 "), "net amount \"+5\" is not a canonical decimal"},
		{"leading zero", sub(" -5 ", " -05 "), "is not a canonical decimal"},
		{"net too large", sub(" -5 ", " 1000000000000000 "), "outside ±999999999999999"},
		{"bad token", sub(":TOK", ":tok"), "is not <issuer key>:<SYMBOL>"},
		{"empty argument", sub(" x y", " x  y"), "header argument 2 is empty"},
		{"bundle version", line + "\n\x03" + body[2:], "bundle version 3, want 1 or 2"},
		{"version-1 byte on a version-2 bundle", line + "\n\x01" + body[2:], "bundle"},
		{"truncated", good[:len(good)-1], "bundle"},
		{"trailing byte", good + "\x00", "bundle"},
		{"net differs from the proof", string(extradata(t, testBundle()))[:nl] + string(extradata(t, other))[nl:], "header net amount -5 differs from the proof's -6"},
		{"asset differs", string(extradata(t, otherAsset)), "the proof's asset is not the header's token"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse(&phases.Tx{Extradata: []byte(c.x)})
			if err == nil || !strings.HasPrefix(err.Error(), "shielded: ") || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want %q", err, c.want)
			}
		})
	}
}

// TestBindingCoversAllButProof: changing any byte of the extradata other
// than the proof and the Binding field changes the binding hash (of a
// version-2 bundle: its ephemeral key, view tags and sealed notes too), and
// those two never do.
func TestBindingCoversAllButProof(t *testing.T) {
	for _, v := range []byte{BundleV1, BundleV2} {
		t.Run(fmt.Sprintf("v%d", v), func(t *testing.T) { testBindingCovers(t, extradata(t, testBundleOf(v))) })
	}
}

func testBindingCovers(t *testing.T, x []byte) {
	tx := &phases.Tx{Extradata: x, GasLimit: 1}
	h0, err := BindingHash(tx)
	if err != nil {
		t.Fatal(err)
	}
	nl := bytes.IndexByte(x, '\n')
	blankFrom, blankTo := nl+2+circuits.PublicSize-32, nl+2+circuits.PublicSize+zk.ProofSize
	for i := range x {
		y := bytes.Clone(x)
		y[i] ^= 0x40
		h, err := BindingHash(&phases.Tx{Extradata: y, GasLimit: 1})
		if err != nil { // the flip made a newline inside the header line
			continue
		}
		if blank := i >= blankFrom && i < blankTo; blank != (h == h0) {
			t.Fatalf("byte %d (blank %v): hash unchanged %v", i, blank, h == h0)
		}
	}
	if h, _ := BindingHash(&phases.Tx{Extradata: x, GasLimit: 1, Nonce: 1}); h == h0 {
		t.Fatal("nonce not covered")
	}
	if _, err := BindingHash(&phases.Tx{Extradata: x[:len(x)-1]}); err == nil {
		t.Fatal("binding of a short bundle")
	}
}

func TestPoolCodeIsEmbedded(t *testing.T) {
	for name, src := range map[string][]byte{"lookup": Lookup, "calculation": Calculation, "pool": PoolPredicate} {
		if !bytes.Contains(src, []byte("fractal-shielded/1")) {
			t.Fatalf("%s code does not mention the header", name)
		}
	}
	if !bytes.Contains(PoolPredicate, []byte(`"`+Magic+`"`)) {
		t.Fatal("the pool predicate checks another magic than Magic")
	}
}

func FuzzParse(f *testing.F) {
	f.Add(extradata(f, testBundleOf(BundleV1)))
	f.Add(extradata(f, testBundleOf(BundleV2)))
	b := testBundle()
	b.Net, b.Public.Net, b.Args = 7, 7, nil
	f.Add(extradata(f, b))
	f.Add([]byte(Magic + "\n"))
	f.Fuzz(func(t *testing.T, x []byte) {
		b, err := Parse(&phases.Tx{Extradata: x})
		if err != nil {
			return
		}
		if again := extradata(t, b); !bytes.Equal(again, x) {
			t.Fatalf("accepted a non-canonical bundle %q", x)
		}
	})
}

// TestVersionRelabelChangesBinding: a version-2 bundle relabelled as
// version 1 and padded to version 1's length parses (its ephemeral key and
// view tags read as other fields), but its binding hash is not the
// original's, so the proof made for the original does not verify for it;
// and the reverse, a version-1 bundle cut to version 2's length.
func TestVersionRelabelChangesBinding(t *testing.T) {
	for _, c := range []struct {
		from, to byte
		resize   func([]byte) []byte
	}{
		{BundleV2, BundleV1, func(x []byte) []byte { return append(x, make([]byte, 30)...) }},
		{BundleV1, BundleV2, func(x []byte) []byte { return x[:len(x)-30] }},
	} {
		x := extradata(t, testBundleOf(c.from))
		h0, err := BindingHash(&phases.Tx{Extradata: x, GasLimit: 1})
		if err != nil {
			t.Fatal(err)
		}
		y := c.resize(bytes.Clone(x))
		y[bytes.IndexByte(y, '\n')+1] = c.to
		b, err := Parse(&phases.Tx{Extradata: y})
		if err != nil || b.Ciphertexts.Version != c.to {
			t.Fatalf("version %d relabelled %d: %v", c.from, c.to, err)
		}
		if h, err := BindingHash(&phases.Tx{Extradata: y, GasLimit: 1}); err != nil || h == h0 {
			t.Fatalf("version %d relabelled %d: binding %x (%v), unchanged: %v", c.from, c.to, h[:4], err, h == h0)
		}
	}
}
