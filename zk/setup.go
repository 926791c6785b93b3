package zk

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/consensys/gnark"
	"github.com/consensys/gnark-crypto/ecc"
	groth16bn "github.com/consensys/gnark/backend/groth16/bn254"
	cs "github.com/consensys/gnark/constraint/bn254"
	"github.com/consensys/gnark/frontend"

	"github.com/fractalvm/fractal/internal/atomicfile"
	"github.com/fractalvm/fractal/internal/enc"
	"github.com/fractalvm/fractal/internal/inputfile"
)

// Setup kinds recorded beside cached keys.
const (
	// SetupDev is the single-party development setup: whoever ran it knows
	// the toxic waste and can forge proofs. Never use it for real value.
	SetupDev = "dev-unsafe"
	// SetupMPC is a multi-party ceremony: sound if one contributor was honest.
	SetupMPC = "mpc"
)

// Keys are a circuit's compiled constraint system and Groth16 keys.
type Keys struct {
	CCS  *cs.R1CS
	PK   *groth16bn.ProvingKey
	VK   *VerifyingKey
	Info Info
}

// Info describes cached keys; it is stored beside them as info.bin.
type Info struct {
	Circuit      string   // name of the circuit
	Setup        string   // SetupDev or SetupMPC
	GnarkVersion string   // gnark version that compiled the circuit and made the keys
	Constraints  int      // number of R1CS constraints
	CircuitHash  [32]byte // SHA-256 of the serialized constraint system
	PKHash       [32]byte // SHA-256 of pk.bin
	VKHash       [32]byte // SHA-256 of vk.bin
	Local        [32]byte // HMAC-SHA256 under this cache's local key; zero when imported
	// Raw reports that the last load used the unchecked raw loader (not stored).
	Raw bool
}

// Cache is a folder of circuit keys, one sub-folder per circuit
// (DIR/<circuit>/pk.bin, vk.bin, info.bin), and a local secret DIR/local.key
// that marks keys this cache wrote itself.
type Cache struct{ Dir string }

// Compiled is a circuit compiled and hashed, ready for setup or loading.
type Compiled struct {
	Name string
	CCS  *cs.R1CS
	Hash [32]byte
}

// maxFile bounds every key or ceremony file read for the circuit: a margin
// over the largest gnark object for a circuit of its size (a few points of
// 64 or 128 bytes per domain element and per wire), so a file that cannot
// belong to the circuit is refused before it is read.
func (cc *Compiled) maxFile() int64 {
	n := ecc.NextPowerOfTwo(uint64(cc.CCS.GetNbConstraints()))
	wires := cc.CCS.GetNbInternalVariables() + cc.CCS.GetNbPublicVariables() + cc.CCS.GetNbSecretVariables()
	return 1<<20 + 1024*(int64(n)+int64(wires))
}

// maxInfoFile bounds info.bin: three short strings and four hashes.
const maxInfoFile = 1 << 10

// CompileNamed compiles c and hashes its constraint system together with the
// gnark version.
func CompileNamed(name string, c frontend.Circuit) (*Compiled, error) {
	ccs, err := Compile(c)
	if err != nil {
		return nil, err
	}
	h := sha256.New()
	fmt.Fprintf(h, "gnark %s\n", gnark.Version)
	if _, err := ccs.WriteTo(h); err != nil {
		return nil, fmt.Errorf("zk: hash constraint system: %w", err)
	}
	out := &Compiled{Name: name, CCS: ccs}
	copy(out.Hash[:], h.Sum(nil))
	return out, nil
}

// ErrNoKeys reports a cache without keys for the circuit.
var ErrNoKeys = errors.New("zk: no keys for this circuit; run `fractal shielded setup`")

// DevSetup runs the single-party development setup and writes the keys to
// the cache, replacing any keys there. The result is labelled SetupDev.
func (c Cache) DevSetup(cc *Compiled) (*Keys, error) {
	var pk groth16bn.ProvingKey
	var vk groth16bn.VerifyingKey
	if err := groth16bn.Setup(cc.CCS, &pk, &vk); err != nil {
		return nil, fmt.Errorf("zk: setup: %w", err)
	}
	return c.Store(cc, &pk, &vk, SetupDev)
}

// Store writes keys made by this process (a dev setup or a sealed ceremony)
// and marks them local, so later loads use the fast raw loader.
func (c Cache) Store(cc *Compiled, pk *groth16bn.ProvingKey, vk *groth16bn.VerifyingKey, setup string) (*Keys, error) {
	pv, err := NewVerifyingKey(vk)
	if err != nil {
		return nil, err
	}
	var pkb, vkb bytes.Buffer
	if _, err := pk.WriteRawTo(&pkb); err != nil {
		return nil, fmt.Errorf("zk: encode proving key: %w", err)
	}
	if _, err := vk.WriteRawTo(&vkb); err != nil {
		return nil, fmt.Errorf("zk: encode verifying key: %w", err)
	}
	info := Info{Circuit: cc.Name, Setup: setup, GnarkVersion: gnark.Version.String(),
		Constraints: cc.CCS.GetNbConstraints(), CircuitHash: cc.Hash,
		PKHash: sha256.Sum256(pkb.Bytes()), VKHash: sha256.Sum256(vkb.Bytes())}
	key, err := c.localKey(true)
	if err != nil {
		return nil, err
	}
	info.Local = info.mac(key)
	dir := filepath.Join(c.Dir, cc.Name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("zk: cache: %w", err)
	}
	// info.bin goes last: a crash before it leaves no valid cache entry.
	_ = os.Remove(filepath.Join(dir, "info.bin"))
	for _, f := range []struct {
		name string
		b    []byte
	}{{"pk.bin", pkb.Bytes()}, {"vk.bin", vkb.Bytes()}, {"info.bin", info.marshal()}} {
		if err := atomicfile.Write(filepath.Join(dir, f.name), f.b, 0o644); err != nil {
			return nil, fmt.Errorf("zk: cache: %w", err)
		}
	}
	return &Keys{CCS: cc.CCS, PK: pk, VK: pv, Info: info}, nil
}

// Load reads the circuit's keys from the cache. It refuses keys whose
// recorded circuit hash or gnark version differ from cc's, or whose files do
// not match their recorded hashes. Keys this cache wrote (valid local mark)
// are read with gnark's raw unchecked loader; any other keys with the
// checked loader, which validates every point.
func (c Cache) Load(cc *Compiled) (*Keys, error) {
	info, err := c.info(cc)
	if err != nil {
		return nil, err
	}
	vk, err := c.verifyingKey(cc, info)
	if err != nil {
		return nil, err
	}
	var pk groth16bn.ProvingKey
	if err := c.readKey(cc, "pk.bin", info, info.PKHash, &pk); err != nil {
		return nil, err
	}
	return &Keys{CCS: cc.CCS, PK: &pk, VK: vk, Info: info}, nil
}

// LoadVerifyingKey reads only the circuit's verifying key from the cache,
// with the checks of Load: what a verifier needs, without reading the
// proving key (megabytes), which a cache may leave out.
func (c Cache) LoadVerifyingKey(cc *Compiled) (*VerifyingKey, error) {
	info, err := c.info(cc)
	if err != nil {
		return nil, err
	}
	return c.verifyingKey(cc, info)
}

// info reads and checks info.bin against cc and the local mark.
func (c Cache) info(cc *Compiled) (Info, error) {
	ib, err := inputfile.Read(filepath.Join(c.Dir, cc.Name, "info.bin"), maxInfoFile)
	if errors.Is(err, fs.ErrNotExist) {
		return Info{}, ErrNoKeys
	}
	if err != nil {
		return Info{}, fmt.Errorf("zk: cache: %w", err)
	}
	info, err := unmarshalInfo(ib)
	if err != nil {
		return Info{}, err
	}
	if info.Circuit != cc.Name || info.CircuitHash != cc.Hash {
		return Info{}, fmt.Errorf("zk: cached keys are for another circuit (hash %x, want %x); run setup again", info.CircuitHash[:8], cc.Hash[:8])
	}
	if info.GnarkVersion != gnark.Version.String() {
		return Info{}, fmt.Errorf("zk: cached keys made with gnark %s, this is %s; run setup again", info.GnarkVersion, gnark.Version)
	}
	key, err := c.localKey(false)
	if err != nil {
		return Info{}, err
	}
	want := info.mac(key)
	info.Raw = key != nil && hmac.Equal(want[:], info.Local[:])
	return info, nil
}

// gnarkKey is a Groth16 key as gnark reads it: checked, or raw.
type gnarkKey interface {
	ReadFrom(io.Reader) (int64, error)
	UnsafeReadFrom(io.Reader) (int64, error)
}

// readKey reads the key file name of the circuit into k, after checking it
// against its recorded hash, with the raw loader when info says so.
func (c Cache) readKey(cc *Compiled, name string, info Info, hash [32]byte, k gnarkKey) error {
	b, err := inputfile.Read(filepath.Join(c.Dir, cc.Name, name), cc.maxFile())
	if err != nil {
		return fmt.Errorf("zk: cache: %w", err)
	}
	if sha256.Sum256(b) != hash {
		return errors.New("zk: cached key files do not match info.bin; run setup again")
	}
	if info.Raw {
		_, err = k.UnsafeReadFrom(bytes.NewReader(b))
	} else {
		_, err = k.ReadFrom(bytes.NewReader(b))
	}
	if err != nil {
		return fmt.Errorf("zk: decode cached keys: %w", err)
	}
	return nil
}

// verifyingKey reads vk.bin.
func (c Cache) verifyingKey(cc *Compiled, info Info) (*VerifyingKey, error) {
	var vk groth16bn.VerifyingKey
	if err := c.readKey(cc, "vk.bin", info, info.VKHash, &vk); err != nil {
		return nil, err
	}
	if len(vk.G1.K) != cc.CCS.GetNbPublicVariables() {
		return nil, fmt.Errorf("zk: cached verifying key has %d public points, circuit needs %d", len(vk.G1.K), cc.CCS.GetNbPublicVariables())
	}
	return NewVerifyingKey(&vk)
}

// localKey returns the cache's local secret, creating it when create is set.
// It returns nil without error when it does not exist and create is unset.
func (c Cache) localKey(create bool) ([]byte, error) {
	path := filepath.Join(c.Dir, "local.key")
	b, err := inputfile.Read(path, 64)
	if err == nil && len(b) == 32 {
		return b, nil
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("zk: local key: %w", err)
	}
	if !create {
		return nil, nil
	}
	b = make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return nil, fmt.Errorf("zk: local key: %w", err)
	}
	if err := os.MkdirAll(c.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("zk: local key: %w", err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return nil, fmt.Errorf("zk: local key: %w", err)
	}
	return b, nil
}

// mac is HMAC-SHA256(key, "fractal.zk.local.v1" || info without Local).
func (i Info) mac(key []byte) [32]byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("fractal.zk.local.v1"))
	j := i
	j.Local = [32]byte{}
	m.Write(j.marshal())
	var out [32]byte
	copy(out[:], m.Sum(nil))
	return out
}

const infoVersion = 1

// marshal encodes Info: version 1, circuit, setup, gnark version (strings),
// constraints (u64), the three hashes and the local mark.
func (i Info) marshal() []byte {
	w := enc.NewWriter(256)
	w.U8(infoVersion)
	w.String(i.Circuit)
	w.String(i.Setup)
	w.String(i.GnarkVersion)
	w.U64(uint64(i.Constraints))
	w.Fixed(i.CircuitHash[:])
	w.Fixed(i.PKHash[:])
	w.Fixed(i.VKHash[:])
	w.Fixed(i.Local[:])
	return w.Bytes()
}

func unmarshalInfo(b []byte) (Info, error) {
	r := enc.NewReader(b)
	if v := r.U8(); r.Err() == nil && v != infoVersion {
		return Info{}, fmt.Errorf("zk: info.bin: unknown version %d", v)
	}
	var i Info
	i.Circuit = r.String(64, "circuit name")
	i.Setup = r.String(64, "setup kind")
	i.GnarkVersion = r.String(64, "gnark version")
	n := r.U64()
	if r.Err() == nil && n > 1<<32 {
		r.Fail(fmt.Errorf("constraint count %d too large", n))
	}
	i.Constraints = int(n)
	r.Into(i.CircuitHash[:])
	r.Into(i.PKHash[:])
	r.Into(i.VKHash[:])
	r.Into(i.Local[:])
	if err := r.Finish(); err != nil {
		return Info{}, fmt.Errorf("zk: info.bin: %w", err)
	}
	if i.Setup != SetupDev && i.Setup != SetupMPC {
		return Info{}, fmt.Errorf("zk: info.bin: unknown setup kind %q", i.Setup)
	}
	return i, nil
}
