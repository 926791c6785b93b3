package shielded

import (
	"bytes"
	"strings"
	"testing"

	"github.com/fractalvm/fractal/circuits"
	"github.com/fractalvm/fractal/notes"
	"github.com/fractalvm/fractal/phases"
	"github.com/fractalvm/fractal/zk"
)

const testToken = "rhiLmrhEs/JhVvCrSMN4bePYPBqA8H/GOM+JUmPM7iQ=:TOK"

func testBundle() *Bundle {
	app := notes.Hash{0xab}
	b := &Bundle{Header: Header{App: app, Pool: PoolOwner, Token: testToken, Net: -5, Args: []string{"x", "y"}}}
	b.Public.Asset, b.Public.Net = AssetOf(app, testToken), -5
	b.Public.Root.SetUint64(3)
	b.Proof[0] = 1
	b.Ciphertexts[1][7] = 9
	return b
}

func extradata(t testing.TB, b *Bundle) []byte {
	t.Helper()
	x, err := b.Extradata()
	if err != nil {
		t.Fatal(err)
	}
	return x
}

func TestBundleRoundTrip(t *testing.T) {
	x := extradata(t, testBundle())
	want := "fractal-shielded/1 ab" + strings.Repeat("0", 62) + " 2fcd69cad05d61e0751bf98f9eacbbab59213653e575ba576f09c28490d3e685 " + testToken + " -5 x y\n"
	if !bytes.HasPrefix(x, []byte(want)) {
		t.Fatalf("header line %q", x[:len(want)])
	}
	if len(x)-bytes.IndexByte(x, '\n')-1 != bundleSize || bundleSize != 1+232+129+2*176 {
		t.Fatalf("bundle is %d bytes", bundleSize)
	}
	got, err := Parse(&phases.Tx{Extradata: x})
	if err != nil {
		t.Fatal(err)
	}
	if again := extradata(t, got); !bytes.Equal(again, x) {
		t.Fatal("re-encoding differs")
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
		{"bundle version", line + "\n\x02" + body[2:], "bundle version 2"},
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
// than the proof and the Binding field changes the binding hash, and those
// two never do.
func TestBindingCoversAllButProof(t *testing.T) {
	x := extradata(t, testBundle())
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
	f.Add(extradata(f, testBundle()))
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
