package keyholder_test

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/fractalvm/fractal/keys"
	"github.com/fractalvm/fractal/tfhe"
	"github.com/fractalvm/fractal/tfhe/dkg"
	"github.com/fractalvm/fractal/tfhe/keyholder"
	"github.com/fractalvm/fractal/tfhe/keyholder/keyholdertest"
)

// shareFiles finds every file under dir that reads as a key share.
func shareFiles(t *testing.T, dir string) map[string]*tfhe.KeyShare {
	t.Helper()
	out := map[string]*tfhe.KeyShare{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		raw, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if sk, err := tfhe.DecodeKeyShare(raw); err == nil {
			out[path] = sk
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Four keyholder homes run the DKG, each its own party with its own
// endpoint: each home then holds exactly one share, its own, beside the
// same key and the same transcript, which checks.
func TestEveryHomeHoldsItsOwnShareOnly(t *testing.T) {
	hs, res := keyholdertest.DKG(t, [32]byte{7}, 1, 4, 3)
	_, peers, _ := keyholdertest.Homes(t, 4)
	var transcript []byte
	for i, h := range hs {
		found := shareFiles(t, h.Dir)
		want := filepath.Join(h.Dir, "epoch-1", keyholder.ShareFile)
		if len(found) != 1 || found[want] == nil || found[want].Index != i+1 {
			t.Fatalf("home of keyholder %d holds shares %v, want only its own at %s", i+1, found, want)
		}
		if fi, err := os.Stat(want); err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("share file mode %v, %v", fi.Mode(), err)
		}
		if found[want].PK.ID() != res[0].Key.ID() || res[i].Key.Origin != tfhe.OriginDKG || res[i].Self != i+1 {
			t.Fatalf("keyholder %d: key %x origin %v self %d", i+1, found[want].PK.ID(), res[i].Key.Origin, res[i].Self)
		}
		b, err := os.ReadFile(filepath.Join(h.Dir, "epoch-1", keyholder.TranscriptFile))
		if err != nil {
			t.Fatal(err)
		}
		if transcript != nil && !bytes.Equal(b, transcript) {
			t.Fatalf("keyholder %d wrote another transcript", i+1)
		}
		transcript = b
	}
	tr, err := hs[2].Transcript(1)
	if err != nil {
		t.Fatal(err)
	}
	o, err := dkg.Check(tr)
	if err != nil {
		t.Fatal(err)
	}
	pk, err := tfhe.KeyFromDKG(tfhe.OriginDKG, o)
	if err != nil || pk.ID() != res[0].Key.ID() || pk.Transcript != tr.Hash() || tr.Session.Instance != [32]byte{7} {
		t.Fatalf("the transcript gives key %x, the keyholders wrote %x (%v)", pk.ID(), res[0].Key.ID(), err)
	}
	// A share from each of three homes decrypts what the key encrypts.
	ct, err := tfhe.Encrypt(pk, 42)
	if err != nil {
		t.Fatal(err)
	}
	var ds []*tfhe.Share
	for _, i := range []int{0, 2, 3} {
		sk, err := hs[i].Share(1)
		if err != nil {
			t.Fatal(err)
		}
		d, err := tfhe.PartDec(sk, ct)
		if err != nil {
			t.Fatal(err)
		}
		ds = append(ds, d)
	}
	if m, err := tfhe.DecryptCounter(pk, ct, ds); err != nil || m != 42 {
		t.Fatalf("decrypted %d, %v", m, err)
	}
	// The epoch is never run twice into the same home.
	peers.Keys[0] = hs[0].Key.Public()
	if _, err := hs[0].RunDKG(t.Context(), keyholder.DKGConfig{Epoch: 1, N: 4, K: 3, Peers: peers, RoundTimeout: time.Second}); err == nil ||
		!strings.Contains(err.Error(), "epoch-1 already exists; refusing to overwrite it (this keyholder already holds a share for it)") {
		t.Fatalf("second run of epoch 1: %v", err)
	}
}

func TestRunDKGRefusals(t *testing.T) {
	hs, peers, _ := keyholdertest.Homes(t, 3)
	if _, err := hs[0].RunDKG(t.Context(), keyholder.DKGConfig{Epoch: 1, N: 4, K: 3, Peers: peers}); err == nil ||
		err.Error() != "keyholder: n = 4, but the peers file lists 3 keyholders" {
		t.Fatalf("n mismatch: %v", err)
	}
	outsider, err := keyholder.Init(filepath.Join(t.TempDir(), "x"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := outsider.RunDKG(t.Context(), keyholder.DKGConfig{Epoch: 1, N: 3, K: 2, Peers: peers}); err == nil ||
		!strings.Contains(err.Error(), "is not in the peers file") {
		t.Fatalf("outsider: %v", err)
	}
}

func TestInitAndOpen(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "kh")
	h, err := keyholder.Init(dir)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("home mode %v, %v", fi.Mode(), err)
	}
	if _, err := keyholder.Init(dir); err == nil || !strings.Contains(err.Error(), "is not empty") {
		t.Fatalf("init twice: %v", err)
	}
	back, err := keyholder.OpenHome(dir)
	if err != nil || back.Key != h.Key {
		t.Fatalf("open: %v", err)
	}
	if _, err := keyholder.OpenHome(t.TempDir()); err == nil || !strings.Contains(err.Error(), "is not a keyholder home (no keyholder.key; run fractal keyholder init --home") {
		t.Fatalf("open a plain folder: %v", err)
	}
	if _, err := back.Share(1); err == nil || err.Error() != "keyholder: "+dir+" holds no share for epoch 1 (fractal keyholder dkg makes one)" {
		t.Fatalf("no share yet: %v", err)
	}
}

func TestParsePeers(t *testing.T) {
	k1, k2 := mustKey(t), mustKey(t)
	good := &keyholder.Peers{Keys: []keys.PublicKey{k1, k2}, Addrs: []string{"127.0.0.1:1", "127.0.0.1:2"}}
	p, err := keyholder.ParsePeers(good.Encode())
	if err != nil || !reflect.DeepEqual(p, good) {
		t.Fatalf("round trip: %v %+v", err, p)
	}
	one := `{"keyholders":[{"key":"` + k1.String() + `","address":"127.0.0.1:1"}]}`
	for _, c := range []struct{ in, want string }{
		{one, "1 keyholders, want 2..256"},
		{`{"keyholders":[],"extra":1}`, `unknown field "extra"`},
		{`{"keyholders":[{"key":"x","address":"127.0.0.1:1"},{"key":"x","address":"a:2"}]}`, "keyholder 1: keys: public key: 1 base64 characters"},
		{strings.Replace(string(good.Encode()), "127.0.0.1:2", "nowhere", 1), `keyholder 2: address "nowhere" is not host:port`},
		{strings.Replace(string(good.Encode()), k2.String(), k1.String(), 1), "keyholders 1 and 2 have the same key"},
		{strings.Replace(string(good.Encode()), "127.0.0.1:2", "127.0.0.1:1", 1), "keyholders 1 and 2 have the same address 127.0.0.1:1"},
		{string(good.Encode()) + "{}", "more than one JSON value"},
	} {
		if _, err := keyholder.ParsePeers([]byte(c.in)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Fatalf("%s: %v, want %q", c.in, err, c.want)
		}
	}
}

func mustKey(t *testing.T) keys.PublicKey {
	t.Helper()
	h, err := keyholder.Init(filepath.Join(t.TempDir(), "k"))
	if err != nil {
		t.Fatal(err)
	}
	return h.Key.Public()
}

func FuzzParsePeers(f *testing.F) {
	f.Add([]byte(`{"keyholders":[{"key":"HbaGF7h9gqcVvwq+l219m7trwOIk44wuDZpQDSclpCE=","address":"127.0.0.1:1"},{"key":"Ifni9gFFvIBsyXRJTMSFKPnUJIU+lPpcm+Fn6ixtkTw=","address":"127.0.0.1:2"}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := keyholder.ParsePeers(b)
		if err != nil {
			return
		}
		back, err := keyholder.ParsePeers(p.Encode())
		if err != nil || !reflect.DeepEqual(back, p) {
			t.Fatalf("re-encoded peers read back as %v, %v", back, err)
		}
	})
}
