package zk

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/consensys/gnark-crypto/ecc/bn254/fr"
	"github.com/consensys/gnark/frontend"

	"github.com/fractalvm/fractal/internal/inputfile/badfile"
)

// cubic proves knowledge of x with x³ + x + A = B, for public A and B.
type cubic struct {
	X    frontend.Variable
	A, B frontend.Variable `gnark:",public"`
}

func (c *cubic) Define(api frontend.API) error {
	x3 := api.Mul(c.X, c.X, c.X)
	api.AssertIsEqual(api.Add(x3, c.X, c.A), c.B)
	return nil
}

// square is another circuit with the same public-input count.
type square struct {
	X    frontend.Variable
	A, B frontend.Variable `gnark:",public"`
}

func (c *square) Define(api frontend.API) error {
	api.AssertIsEqual(api.Add(api.Mul(c.X, c.X), c.A), c.B)
	return nil
}

func cubicAssignment(x, a uint64) (*cubic, fr.Vector) {
	b := x*x*x + x + a
	var ea, eb fr.Element
	ea.SetUint64(a)
	eb.SetUint64(b)
	return &cubic{X: x, A: a, B: b}, fr.Vector{ea, eb}
}

var (
	keysOnce sync.Once
	keysDir  string
	cubicKey *Keys
	keysErr  error
)

// testKeys makes the cubic circuit's dev keys once for all tests.
func testKeys(t testing.TB) *Keys {
	keysOnce.Do(func() {
		keysDir, keysErr = os.MkdirTemp("", "zk-test")
		if keysErr != nil {
			return
		}
		var cc *Compiled
		cc, keysErr = CompileNamed("cubic", &cubic{})
		if keysErr == nil {
			cubicKey, keysErr = Cache{Dir: keysDir}.DevSetup(cc)
		}
	})
	if keysErr != nil {
		t.Fatal(keysErr)
	}
	return cubicKey
}

func TestMain(m *testing.M) {
	code := m.Run()
	if keysDir != "" {
		os.RemoveAll(keysDir)
	}
	os.Exit(code)
}

func prove(t testing.TB, k *Keys, x, a uint64) (Proof, fr.Vector) {
	asg, pub := cubicAssignment(x, a)
	p, err := Prove(k, asg)
	if err != nil {
		t.Fatal(err)
	}
	return p, pub
}

func TestProveVerify(t *testing.T) {
	k := testKeys(t)
	p, pub := prove(t, k, 3, 5)
	if err := Verify(k.VK, p, pub); err != nil {
		t.Fatalf("valid proof refused: %v", err)
	}
	// Wrong statement, reordered public inputs, wrong count.
	var one fr.Element
	one.SetOne()
	wrong := fr.Vector{pub[0], pub[1]}
	wrong[1].Add(&wrong[1], &one)
	if err := Verify(k.VK, p, wrong); !errors.Is(err, ErrInvalidProof) {
		t.Fatalf("wrong statement: %v", err)
	}
	if err := Verify(k.VK, p, fr.Vector{pub[1], pub[0]}); !errors.Is(err, ErrInvalidProof) {
		t.Fatalf("reordered inputs: %v", err)
	}
	if err := Verify(k.VK, p, pub[:1]); !errors.Is(err, ErrPublicInputs) {
		t.Fatalf("short inputs: %v", err)
	}
	// An unsatisfied witness gives no proof.
	bad, _ := cubicAssignment(3, 5)
	bad.B = 1
	if _, err := Prove(k, bad); err == nil || !strings.Contains(err.Error(), "zk: prove") {
		t.Fatalf("unsatisfied witness: %v", err)
	}
}

func TestProofForAnotherKey(t *testing.T) {
	k := testKeys(t)
	cc, err := CompileNamed("square", &square{})
	if err != nil {
		t.Fatal(err)
	}
	other, err := Cache{Dir: t.TempDir()}.DevSetup(cc)
	if err != nil {
		t.Fatal(err)
	}
	p, pub := prove(t, k, 2, 1)
	if err := Verify(other.VK, p, pub); !errors.Is(err, ErrInvalidProof) {
		t.Fatalf("proof checked under another circuit's key: %v", err)
	}
}

// Every single flipped bit of an encoded proof is refused, by the decoder or
// by the verifier.
func TestFlippedProofBytes(t *testing.T) {
	k := testKeys(t)
	p, pub := prove(t, k, 4, 9)
	b, _ := p.MarshalBinary()
	if len(b) != ProofSize || ProofSize != 129 {
		t.Fatalf("proof size %d", len(b))
	}
	var q Proof
	if err := q.UnmarshalBinary(b); err != nil || Verify(k.VK, q, pub) != nil {
		t.Fatalf("round trip: %v", err)
	}
	for i := range b {
		for _, bit := range []byte{0x01, 0x80} {
			c := append([]byte(nil), b...)
			c[i] ^= bit
			var r Proof
			if err := r.UnmarshalBinary(c); err != nil {
				if !errors.Is(err, ErrMalformedProof) {
					t.Fatalf("byte %d: %v", i, err)
				}
				continue
			}
			if Verify(k.VK, r, pub) == nil {
				t.Fatalf("flipped bit %#x of byte %d accepted", bit, i)
			}
		}
	}
	for _, c := range [][]byte{nil, b[:128], append(append([]byte(nil), b...), 0)} {
		var r Proof
		if err := r.UnmarshalBinary(c); !errors.Is(err, ErrMalformedProof) {
			t.Fatalf("length %d: %v", len(c), err)
		}
	}
}

func FuzzProofDecode(f *testing.F) {
	k := testKeys(f)
	p, _ := prove(f, k, 2, 2)
	b, _ := p.MarshalBinary()
	f.Add(b)
	f.Add(b[:64])
	f.Fuzz(func(t *testing.T, in []byte) {
		var q Proof
		if q.UnmarshalBinary(in) != nil {
			return
		}
		out, _ := q.MarshalBinary()
		if !bytes.Equal(out, in) {
			t.Fatal("decode/encode not canonical")
		}
	})
}

func TestBatchVerify(t *testing.T) {
	k := testKeys(t)
	var proofs []Proof
	var pubs []fr.Vector
	for i := uint64(0); i < 6; i++ {
		p, pub := prove(t, k, i+2, i)
		proofs, pubs = append(proofs, p), append(pubs, pub)
	}
	if err := BatchVerify(k.VK, proofs, pubs); err != nil {
		t.Fatalf("valid batch refused: %v", err)
	}
	// Proof 4 checked against proof 1's statement: the batch fails and names 4.
	pubs[4] = pubs[1]
	err := BatchVerify(k.VK, proofs, pubs)
	var be *BatchError
	if !errors.As(err, &be) || len(be.Bad) != 1 || be.Bad[0] != 4 {
		t.Fatalf("bad proof not found: %v", err)
	}
	// Two swapped proofs, each valid for the other's statement.
	pubs[4] = pubs[5]
	pubs[5], _ = func() (fr.Vector, error) { _, v := cubicAssignment(6, 4); return v, nil }()
	err = BatchVerify(k.VK, proofs, pubs)
	if !errors.As(err, &be) || len(be.Bad) != 2 || be.Bad[0] != 4 || be.Bad[1] != 5 {
		t.Fatalf("swapped proofs not found: %v", err)
	}
	if err := BatchVerify(k.VK, proofs, pubs[:5]); err == nil {
		t.Fatal("mismatched lengths accepted")
	}
}

// Keys the cache wrote load raw; copied-in keys (no local mark) load through
// the checked loader; tampered files and another circuit are refused.
func TestCache(t *testing.T) {
	dir := t.TempDir()
	cc, err := CompileNamed("cubic", &cubic{})
	if err != nil {
		t.Fatal(err)
	}
	c := Cache{Dir: dir}
	if _, err := c.Load(cc); !errors.Is(err, ErrNoKeys) {
		t.Fatalf("empty cache: %v", err)
	}
	made, err := c.DevSetup(cc)
	if err != nil {
		t.Fatal(err)
	}
	if made.Info.Setup != SetupDev || made.Info.Constraints != cc.CCS.GetNbConstraints() {
		t.Fatalf("info %+v", made.Info)
	}
	loaded, err := c.Load(cc)
	if err != nil || !loaded.Info.Raw {
		t.Fatalf("own keys: raw=%v err=%v", loaded != nil && loaded.Info.Raw, err)
	}
	p, pub := prove(t, loaded, 5, 5)
	if err := Verify(made.VK, p, pub); err != nil {
		t.Fatalf("loaded keys prove differently: %v", err)
	}

	// Another instance's copy: same files, other local key.
	other := t.TempDir()
	copyDir(t, filepath.Join(dir, "cubic"), filepath.Join(other, "cubic"))
	imported, err := Cache{Dir: other}.Load(cc)
	if err != nil || imported.Info.Raw {
		t.Fatalf("imported keys: raw=%v err=%v", imported != nil && imported.Info.Raw, err)
	}

	// The circuit changed.
	cc2, _ := CompileNamed("cubic", &square{})
	if _, err := c.Load(cc2); err == nil || !strings.Contains(err.Error(), "another circuit") {
		t.Fatalf("changed circuit: %v", err)
	}
	// A tampered proving key: Load refuses it, a verifier does not read it.
	pkPath := filepath.Join(dir, "cubic", "pk.bin")
	b, _ := os.ReadFile(pkPath)
	b[len(b)/2] ^= 1
	os.WriteFile(pkPath, b, 0o644)
	if _, err := c.Load(cc); err == nil || !strings.Contains(err.Error(), "do not match") {
		t.Fatalf("tampered key: %v", err)
	}
	os.Remove(pkPath)
	vk, err := c.LoadVerifyingKey(cc)
	if err != nil {
		t.Fatalf("verifying key without pk.bin: %v", err)
	}
	if err := Verify(vk, p, pub); err != nil {
		t.Fatalf("verifying key alone: %v", err)
	}
	// A tampered verifying key.
	vkPath := filepath.Join(dir, "cubic", "vk.bin")
	b, _ = os.ReadFile(vkPath)
	b[len(b)/2] ^= 1
	os.WriteFile(vkPath, b, 0o644)
	if _, err := c.LoadVerifyingKey(cc); err == nil || !strings.Contains(err.Error(), "do not match") {
		t.Fatalf("tampered verifying key: %v", err)
	}
}

func copyDir(t *testing.T, from, to string) {
	os.MkdirAll(to, 0o755)
	ents, _ := os.ReadDir(from)
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(from, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(to, e.Name()), b, 0o644)
	}
}

// A ceremony with two contributors per phase makes keys that prove and
// verify; a tampered contribution fails verification.
func TestCeremony(t *testing.T) {
	dir := t.TempDir()
	cc, err := CompileNamed("cubic", &cubic{})
	if err != nil {
		t.Fatal(err)
	}
	c, err := InitCeremony(filepath.Join(dir, "mpc"), cc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := InitCeremony(filepath.Join(dir, "mpc"), cc); err == nil {
		t.Fatal("second init accepted")
	}
	for i := 1; i <= 2; i++ {
		if ph, n, err := c.Contribute(); err != nil || ph != 1 || n != i {
			t.Fatalf("phase 1 contribution: %d %d %v", ph, n, err)
		}
	}
	if _, err := c.Verify(); err != nil {
		t.Fatal(err)
	}
	cache := Cache{Dir: filepath.Join(dir, "zk")}
	if k, err := c.Seal([]byte("beacon 1"), cache); err != nil || k != nil {
		t.Fatalf("seal phase 1: %v", err)
	}
	for i := 1; i <= 2; i++ {
		if ph, n, err := c.Contribute(); err != nil || ph != 2 || n != i {
			t.Fatalf("phase 2 contribution: %d %d %v", ph, n, err)
		}
	}
	st, err := c.Verify()
	if err != nil || st != (Status{Phase1: 2, Phase2: 2, Sealed1: true}) {
		t.Fatalf("verify: %+v %v", st, err)
	}
	// Tamper with the first phase-2 contribution: swap in the second.
	saved, _ := os.ReadFile(c.file(2, 1))
	second, _ := os.ReadFile(c.file(2, 2))
	os.WriteFile(c.file(2, 1), second, 0o644)
	if _, err := c.Verify(); err == nil || !strings.Contains(err.Error(), "phase 2") {
		t.Fatalf("tampered transcript: %v", err)
	}
	os.WriteFile(c.file(2, 1), saved, 0o644)

	k, err := c.Seal([]byte("beacon 2"), cache)
	if err != nil {
		t.Fatal(err)
	}
	if k.Info.Setup != SetupMPC {
		t.Fatalf("setup kind %q", k.Info.Setup)
	}
	p, pub := prove(t, k, 7, 1)
	if err := Verify(k.VK, p, pub); err != nil {
		t.Fatalf("ceremony keys: %v", err)
	}
	if _, err := OpenCeremony(filepath.Join(dir, "mpc"), &Compiled{Name: "square", CCS: cc.CCS}); err == nil {
		t.Fatal("ceremony opened for another circuit")
	}
}

// TestKeyAndCeremonyFilesBounded: key and ceremony files come from other
// people (a ceremony folder is passed along); a named pipe, a device or a
// file too large for the circuit is refused before it is read.
func TestKeyAndCeremonyFilesBounded(t *testing.T) {
	dir := t.TempDir()
	cc, err := CompileNamed("cubic", &cubic{})
	if err != nil {
		t.Fatal(err)
	}
	c := Cache{Dir: dir}
	if _, err := c.DevSetup(cc); err != nil {
		t.Fatal(err)
	}
	pk := filepath.Join(dir, "cubic", "pk.bin")
	os.Remove(pk)
	badfile.Sparse(t, pk, 64<<30)
	if _, err := c.Load(cc); err == nil || !strings.Contains(err.Error(), "pk.bin: too large: 68719476736 bytes, the limit is ") {
		t.Fatalf("oversize pk.bin: %v", err)
	}
	vk := filepath.Join(dir, "cubic", "vk.bin")
	os.Remove(vk)
	badfile.Pipe(t, vk)
	os.WriteFile(pk, nil, 0o644)
	if _, err := c.Load(cc); err == nil || !strings.HasSuffix(err.Error(), "vk.bin: not a regular file (a named pipe)") {
		t.Fatalf("vk.bin a named pipe: %v", err)
	}

	cer, err := InitCeremony(filepath.Join(dir, "mpc"), cc)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := cer.Contribute(); err != nil {
		t.Fatal(err)
	}
	os.Remove(cer.file(1, 1))
	badfile.Pipe(t, cer.file(1, 1))
	if _, err := cer.Verify(); err == nil || !strings.HasSuffix(err.Error(), "phase1-0001.bin: not a regular file (a named pipe)") {
		t.Fatalf("contribution a named pipe: %v", err)
	}
	if _, err := cer.Seal(make([]byte, 64<<10+1), c); err == nil || err.Error() != "zk: mpc: beacon of 65537 bytes, the limit is 65536" {
		t.Fatalf("oversize beacon: %v", err)
	}
	ceremony := filepath.Join(dir, "mpc", "ceremony.bin")
	os.Remove(ceremony)
	if err := os.Symlink("/dev/zero", ceremony); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenCeremony(filepath.Join(dir, "mpc"), cc); err == nil || !strings.HasSuffix(err.Error(), "ceremony.bin: not a regular file (a device)") {
		t.Fatalf("ceremony.bin a device: %v", err)
	}
}
