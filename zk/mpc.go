package zk

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/consensys/gnark-crypto/ecc"
	groth16bn "github.com/consensys/gnark/backend/groth16/bn254"
	"github.com/consensys/gnark/backend/groth16/bn254/mpcsetup"

	"github.com/fractalvm/fractal/internal/atomicfile"
	"github.com/fractalvm/fractal/internal/enc"
	"github.com/fractalvm/fractal/internal/inputfile"
)

// Ceremony is a file-based multi-party Groth16 setup for one circuit, run
// with gnark's mpcsetup in a folder that participants pass along:
//
//	ceremony.bin        circuit name, circuit hash, domain size N
//	phase1-0001.bin …   Powers of Tau contributions, in order
//	phase1-beacon.bin   the beacon that sealed phase 1
//	srs.bin             the sealed phase-1 parameters
//	phase2-0001.bin …   circuit-specific contributions, in order
//
// Phase 2 opens when phase 1 is sealed; sealing phase 2 verifies the whole
// transcript and stores the keys in a Cache, labelled SetupMPC. The keys are
// sound if at least one contributor destroyed their randomness.
type Ceremony struct {
	dir string
	cc  *Compiled
	n   uint64
}

// InitCeremony starts a ceremony for cc in dir, which must not hold one.
func InitCeremony(dir string, cc *Compiled) (*Ceremony, error) {
	if _, err := os.Stat(filepath.Join(dir, "ceremony.bin")); err == nil {
		return nil, fmt.Errorf("zk: mpc: %s already holds a ceremony", dir)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("zk: mpc: %w", err)
	}
	c := &Ceremony{dir: dir, cc: cc, n: ecc.NextPowerOfTwo(uint64(cc.CCS.GetNbConstraints()))}
	w := enc.NewWriter(64)
	w.U8(1)
	w.String(cc.Name)
	w.Fixed(cc.Hash[:])
	w.U64(c.n)
	if err := atomicfile.Write(filepath.Join(dir, "ceremony.bin"), w.Bytes(), 0o644); err != nil {
		return nil, fmt.Errorf("zk: mpc: %w", err)
	}
	return c, nil
}

// OpenCeremony opens the ceremony in dir and checks that it is for cc.
func OpenCeremony(dir string, cc *Compiled) (*Ceremony, error) {
	b, err := inputfile.Read(filepath.Join(dir, "ceremony.bin"), maxInfoFile)
	if err != nil {
		return nil, fmt.Errorf("zk: mpc: no ceremony in %s: %w", dir, err)
	}
	r := enc.NewReader(b)
	if v := r.U8(); r.Err() == nil && v != 1 {
		return nil, fmt.Errorf("zk: mpc: ceremony.bin: unknown version %d", v)
	}
	name := r.String(64, "circuit name")
	var h [32]byte
	r.Into(h[:])
	n := r.U64()
	if err := r.Finish(); err != nil {
		return nil, fmt.Errorf("zk: mpc: ceremony.bin: %w", err)
	}
	if name != cc.Name || h != cc.Hash {
		return nil, fmt.Errorf("zk: mpc: ceremony is for circuit %s %x, not %s %x", name, h[:8], cc.Name, cc.Hash[:8])
	}
	if want := ecc.NextPowerOfTwo(uint64(cc.CCS.GetNbConstraints())); n != want {
		return nil, fmt.Errorf("zk: mpc: ceremony domain %d, circuit needs %d", n, want)
	}
	return &Ceremony{dir: dir, cc: cc, n: n}, nil
}

// Status is where a ceremony stands.
type Status struct {
	Phase1, Phase2 int  // contributions so far
	Sealed1        bool // phase 1 sealed (phase 2 open)
}

// maxBeacon bounds a beacon: public randomness is a few dozen bytes, with
// room for the text that names where it came from.
const maxBeacon = 64 << 10

func (c *Ceremony) file(phase, i int) string {
	return filepath.Join(c.dir, fmt.Sprintf("phase%d-%04d.bin", phase, i))
}

func (c *Ceremony) count(phase int) int {
	i := 0
	for {
		if _, err := os.Stat(c.file(phase, i+1)); err != nil {
			return i
		}
		i++
	}
}

// Status reports the contributions present (not verified; see Verify).
func (c *Ceremony) Status() Status {
	_, err := os.Stat(filepath.Join(c.dir, "srs.bin"))
	return Status{Phase1: c.count(1), Phase2: c.count(2), Sealed1: err == nil}
}

// readObject reads a gnark object of the ceremony from path.
func (c *Ceremony) readObject(path string, v io.ReaderFrom) error {
	b, err := inputfile.Read(path, c.cc.maxFile())
	if err != nil {
		return err
	}
	n, err := v.ReadFrom(bytes.NewReader(b))
	if err != nil {
		return fmt.Errorf("%s: %w", filepath.Base(path), err)
	}
	if int(n) != len(b) {
		return fmt.Errorf("%s: %d trailing bytes", filepath.Base(path), len(b)-int(n))
	}
	return nil
}

func writeObject(path string, v io.WriterTo) error {
	var b bytes.Buffer
	if _, err := v.WriteTo(&b); err != nil {
		return err
	}
	return atomicfile.Write(path, b.Bytes(), 0o644)
}

// Contribute adds this process's randomness to the open phase and writes the
// next contribution file; it returns the phase and the contribution's number.
// The randomness comes from crypto/rand and is dropped on return.
func (c *Ceremony) Contribute() (phase, index int, err error) {
	st := c.Status()
	if !st.Sealed1 {
		p := mpcsetup.NewPhase1(c.n)
		if st.Phase1 > 0 {
			p = new(mpcsetup.Phase1)
			if err := c.readObject(c.file(1, st.Phase1), p); err != nil {
				return 0, 0, fmt.Errorf("zk: mpc: %w", err)
			}
		}
		p.Contribute()
		if err := writeObject(c.file(1, st.Phase1+1), p); err != nil {
			return 0, 0, fmt.Errorf("zk: mpc: %w", err)
		}
		return 1, st.Phase1 + 1, nil
	}
	var p *mpcsetup.Phase2
	if st.Phase2 == 0 {
		srs, err := c.srs()
		if err != nil {
			return 0, 0, err
		}
		p = new(mpcsetup.Phase2)
		p.Initialize(c.cc.CCS, srs)
	} else {
		p = new(mpcsetup.Phase2)
		if err := c.readObject(c.file(2, st.Phase2), p); err != nil {
			return 0, 0, fmt.Errorf("zk: mpc: %w", err)
		}
	}
	p.Contribute()
	if err := writeObject(c.file(2, st.Phase2+1), p); err != nil {
		return 0, 0, fmt.Errorf("zk: mpc: %w", err)
	}
	return 2, st.Phase2 + 1, nil
}

func (c *Ceremony) srs() (*mpcsetup.SrsCommons, error) {
	srs := new(mpcsetup.SrsCommons)
	if err := c.readObject(filepath.Join(c.dir, "srs.bin"), srs); err != nil {
		return nil, fmt.Errorf("zk: mpc: %w", err)
	}
	return srs, nil
}

func (c *Ceremony) phase1() ([]*mpcsetup.Phase1, error) {
	st := c.Status()
	if st.Phase1 == 0 {
		return nil, errors.New("zk: mpc: phase 1 has no contributions")
	}
	ps := make([]*mpcsetup.Phase1, st.Phase1)
	for i := range ps {
		ps[i] = new(mpcsetup.Phase1)
		if err := c.readObject(c.file(1, i+1), ps[i]); err != nil {
			return nil, fmt.Errorf("zk: mpc: %w", err)
		}
	}
	return ps, nil
}

func (c *Ceremony) phase2() ([]*mpcsetup.Phase2, error) {
	st := c.Status()
	if st.Phase2 == 0 {
		return nil, errors.New("zk: mpc: phase 2 has no contributions")
	}
	ps := make([]*mpcsetup.Phase2, st.Phase2)
	for i := range ps {
		ps[i] = new(mpcsetup.Phase2)
		if err := c.readObject(c.file(2, i+1), ps[i]); err != nil {
			return nil, fmt.Errorf("zk: mpc: %w", err)
		}
	}
	return ps, nil
}

// verifyPhase1 checks every phase-1 contribution against the previous one
// and returns the parameters sealed with beacon.
func (c *Ceremony) verifyPhase1(beacon []byte) (mpcsetup.SrsCommons, error) {
	ps, err := c.phase1()
	if err != nil {
		return mpcsetup.SrsCommons{}, err
	}
	srs, err := mpcsetup.VerifyPhase1(c.n, beacon, ps...)
	if err != nil {
		return mpcsetup.SrsCommons{}, fmt.Errorf("zk: mpc: phase 1 does not verify: %w", err)
	}
	return srs, nil
}

// Verify checks the whole transcript so far: every phase-1 contribution,
// that srs.bin is phase 1 sealed with the recorded beacon, and every phase-2
// contribution.
func (c *Ceremony) Verify() (Status, error) {
	st := c.Status()
	if !st.Sealed1 {
		_, err := c.verifyPhase1(nil)
		return st, err
	}
	beacon, err := inputfile.Read(filepath.Join(c.dir, "phase1-beacon.bin"), maxBeacon)
	if err != nil {
		return st, fmt.Errorf("zk: mpc: %w", err)
	}
	srs, err := c.verifyPhase1(beacon)
	if err != nil {
		return st, err
	}
	stored, err := c.srs()
	if err != nil {
		return st, err
	}
	var a, b bytes.Buffer
	srs.WriteTo(&a)
	stored.WriteTo(&b)
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		return st, errors.New("zk: mpc: srs.bin is not phase 1 sealed with the recorded beacon")
	}
	if st.Phase2 > 0 {
		ps, err := c.phase2()
		if err != nil {
			return st, err
		}
		prev := new(mpcsetup.Phase2)
		prev.Initialize(c.cc.CCS, stored)
		for i, p := range ps {
			if err := prev.Verify(p); err != nil {
				return st, fmt.Errorf("zk: mpc: phase 2 contribution %d does not verify: %w", i+1, err)
			}
			prev = p
		}
	}
	return st, nil
}

// Seal closes the open phase with beacon (public randomness chosen after the
// last contribution). Sealing phase 1 verifies it and writes srs.bin;
// sealing phase 2 verifies the whole transcript and stores the keys in cache.
func (c *Ceremony) Seal(beacon []byte, cache Cache) (*Keys, error) {
	if len(beacon) == 0 {
		return nil, errors.New("zk: mpc: seal needs a beacon")
	}
	if len(beacon) > maxBeacon {
		return nil, fmt.Errorf("zk: mpc: beacon of %d bytes, the limit is %d", len(beacon), maxBeacon)
	}
	st := c.Status()
	if !st.Sealed1 {
		srs, err := c.verifyPhase1(beacon)
		if err != nil {
			return nil, err
		}
		if err := atomicfile.Write(filepath.Join(c.dir, "phase1-beacon.bin"), beacon, 0o644); err != nil {
			return nil, fmt.Errorf("zk: mpc: %w", err)
		}
		if err := writeObject(filepath.Join(c.dir, "srs.bin"), &srs); err != nil {
			return nil, fmt.Errorf("zk: mpc: %w", err)
		}
		return nil, nil
	}
	srs, err := c.srs()
	if err != nil {
		return nil, err
	}
	ps, err := c.phase2()
	if err != nil {
		return nil, err
	}
	pk, vk, err := mpcsetup.VerifyPhase2(c.cc.CCS, srs, beacon, ps...)
	if err != nil {
		return nil, fmt.Errorf("zk: mpc: phase 2 does not verify: %w", err)
	}
	return cache.Store(c.cc, pk.(*groth16bn.ProvingKey), vk.(*groth16bn.VerifyingKey), SetupMPC)
}
