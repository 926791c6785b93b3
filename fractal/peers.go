package fractal

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/fractalvm/fractal/fractal/certify"
	"github.com/fractalvm/fractal/fractal/chain"
	"github.com/fractalvm/fractal/internal/atomicfile"
	"github.com/fractalvm/fractal/internal/inputfile"
	"github.com/fractalvm/fractal/keys"
)

// peersFile is the trust file in the home folder: the instances whose
// exports this one imports, with their genesis block hash and executor keys.
const peersFile = "peers.json"

// Versions of the trust file: 1 names executor keys only; 2 may also name
// a validator set for an entry. A file is written as version 1 while no
// entry names a validator set, so programs from before version 2 read it.
const (
	peersVersion           = 1
	peersValidatorsVersion = 2
)

// maxPeersFile bounds the trust file: tens of thousands of peers with a few
// keys each. peers add refuses to grow it past this.
const maxPeersFile = 16 << 20

// Peer is one trusted instance: a solo instance, with the executor keys
// whose signed manifests are believed, or a validator-set instance, with
// the validator set whose commits certify its manifests (decision 123).
type Peer struct {
	ID         [32]byte
	Genesis    [32]byte              // hash of its genesis block
	Keys       []keys.PublicKey      // executor keys whose signed manifests are believed, sorted
	Validators *certify.ValidatorSet // or: the validator set whose commits certify them
}

// Authority is what the peer's manifests are checked against.
func (p *Peer) Authority() chain.Authority {
	if p.Validators != nil {
		return p.Validators
	}
	return chain.ExecutorKeys(p.Keys)
}

type peerJSON struct {
	ID         string                `json:"id"`
	Genesis    string                `json:"genesis"`
	Keys       []string              `json:"keys,omitempty"`
	Validators *certify.ValidatorSet `json:"validators,omitempty"`
}

type peersJSON struct {
	Version int        `json:"version"`
	Peers   []peerJSON `json:"peers"`
}

// Peers returns the trust file's entries sorted by ID (none when there is no
// file).
func (in *Instance) Peers() ([]Peer, error) {
	ps, err := readPeers(in.home)
	if err != nil {
		return nil, fmt.Errorf("fractal: peers: %w", err)
	}
	return ps, nil
}

// peer returns the trust entry for id, or nil.
func (in *Instance) peer(id [32]byte) (*Peer, error) {
	ps, err := readPeers(in.home)
	if err != nil {
		return nil, err
	}
	for i := range ps {
		if ps[i].ID == id {
			return &ps[i], nil
		}
	}
	return nil, nil
}

// AddPeer adds p to the trust file, or adds its keys to the entry with its
// ID. It refuses this instance's own ID and a genesis hash that differs from
// the one already recorded. Entries are only ever added to, so a chain
// replayed later meets every key it met when it was sealed.
func (in *Instance) AddPeer(p Peer) (*Peer, error) {
	in.lock()
	defer in.mu.Unlock()
	if p.ID == in.id {
		return nil, errors.New("fractal: peers add: that is this instance's own ID")
	}
	switch {
	case len(p.Keys) == 0 && p.Validators == nil:
		return nil, errors.New("fractal: peers add: no executor key given")
	case len(p.Keys) > 0 && p.Validators != nil:
		return nil, errors.New("fractal: peers add: an instance is trusted by its executor keys or by its validator set, not both")
	}
	ps, err := readPeers(in.home)
	if err != nil {
		return nil, fmt.Errorf("fractal: peers add: %w", err)
	}
	i := slices.IndexFunc(ps, func(q Peer) bool { return q.ID == p.ID })
	if i < 0 {
		ps = append(ps, Peer{ID: p.ID, Genesis: p.Genesis})
		i = len(ps) - 1
	} else if ps[i].Genesis != p.Genesis {
		return nil, fmt.Errorf("fractal: peers add: instance %x is trusted with genesis %x, not %x", p.ID, ps[i].Genesis, p.Genesis)
	} else if (ps[i].Validators == nil) != (p.Validators == nil) || p.Validators != nil && ps[i].Validators.Hash() != p.Validators.Hash() {
		return nil, fmt.Errorf("fractal: peers add: instance %x is trusted by other %s; a trust entry is only added to", p.ID, ps[i].authorityNoun())
	}
	if p.Validators != nil {
		ps[i].Validators = p.Validators
	}
	for _, k := range p.Keys {
		if !slices.Contains(ps[i].Keys, k) {
			ps[i].Keys = append(ps[i].Keys, k)
		}
	}
	slices.SortFunc(ps[i].Keys, func(a, b keys.PublicKey) int { return bytes.Compare(a[:], b[:]) })
	slices.SortFunc(ps, func(a, b Peer) int { return bytes.Compare(a.ID[:], b.ID[:]) })
	if err := writePeers(in.home, ps); err != nil {
		return nil, fmt.Errorf("fractal: peers add: %w", err)
	}
	out := ps[slices.IndexFunc(ps, func(q Peer) bool { return q.ID == p.ID })]
	return &out, nil
}

// TrustEntry returns this instance's own trust entry, what another
// instance's `fractal peers add` needs.
func (in *Instance) TrustEntry() (Peer, error) {
	g, err := in.Block(0)
	if err != nil {
		return Peer{}, err
	}
	if in.validators != nil {
		return Peer{ID: in.id, Genesis: g.Hash(), Validators: in.validators}, nil
	}
	return Peer{ID: in.id, Genesis: g.Hash(), Keys: []keys.PublicKey{in.pub}}, nil
}

func (p *Peer) authorityNoun() string {
	if p.Validators != nil {
		return "a validator set"
	}
	return "executor keys"
}

func readPeers(home string) ([]Peer, error) {
	raw, err := inputfile.Read(filepath.Join(home, peersFile), maxPeersFile)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var f peersJSON
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("%s: %w", peersFile, err)
	}
	return parsePeers(f)
}

// parsePeers checks and converts the trust file's JSON form.
func parsePeers(f peersJSON) ([]Peer, error) {
	if f.Version != peersVersion && f.Version != peersValidatorsVersion {
		return nil, fmt.Errorf("%s: version %d, this program reads %d and %d", peersFile, f.Version, peersVersion, peersValidatorsVersion)
	}
	out := make([]Peer, len(f.Peers))
	for i, pj := range f.Peers {
		p := &out[i]
		if err := parseHex32(pj.ID, &p.ID); err != nil {
			return nil, fmt.Errorf("%s: peer %d: id: %w", peersFile, i+1, err)
		}
		if err := parseHex32(pj.Genesis, &p.Genesis); err != nil {
			return nil, fmt.Errorf("%s: peer %d: genesis: %w", peersFile, i+1, err)
		}
		for _, ks := range pj.Keys {
			k, err := keys.ParsePublicKey(ks)
			if err != nil {
				return nil, fmt.Errorf("%s: peer %d: %w", peersFile, i+1, err)
			}
			p.Keys = append(p.Keys, k)
		}
		p.Validators = pj.Validators
		switch {
		case p.Validators != nil && f.Version == peersVersion:
			return nil, fmt.Errorf("%s: peer %d: names a validator set in a version %d file", peersFile, i+1, peersVersion)
		case (len(p.Keys) == 0) == (p.Validators == nil):
			return nil, fmt.Errorf("%s: peer %d: names either executor keys or a validator set", peersFile, i+1)
		}
	}
	return out, nil
}

func writePeers(home string, ps []Peer) error {
	f := peersJSON{Version: peersVersion, Peers: make([]peerJSON, len(ps))}
	for i, p := range ps {
		f.Peers[i] = p.json()
		if p.Validators != nil {
			f.Version = peersValidatorsVersion
		}
	}
	data, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return err
	}
	if len(data)+1 > maxPeersFile {
		return fmt.Errorf("%s would be %d bytes, more than the limit of %d", peersFile, len(data)+1, maxPeersFile)
	}
	return atomicfile.Write(filepath.Join(home, peersFile), append(data, '\n'), 0o600)
}

func (p Peer) json() peerJSON {
	j := peerJSON{ID: hex.EncodeToString(p.ID[:]), Genesis: hex.EncodeToString(p.Genesis[:]), Validators: p.Validators}
	for _, k := range p.Keys {
		j.Keys = append(j.Keys, k.String())
	}
	return j
}

// UnmarshalJSON reads one entry as the trust file holds it (what
// MarshalJSON and "fractal peers self --json" write).
func (p *Peer) UnmarshalJSON(raw []byte) error {
	var j peerJSON
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&j); err != nil {
		return err
	}
	ps, err := parsePeers(peersJSON{Version: peersValidatorsVersion, Peers: []peerJSON{j}})
	if err != nil {
		return err
	}
	*p = ps[0]
	return nil
}

// MarshalJSON writes the entry as it stands in the trust file.
func (p Peer) MarshalJSON() ([]byte, error) { return json.Marshal(p.json()) }

// parseHex32 parses 64 lower-case hex digits.
func parseHex32(s string, out *[32]byte) error {
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != 32 || strings.ToLower(s) != s {
		return fmt.Errorf("%q is not 64 lower-case hex digits", s)
	}
	copy(out[:], b)
	return nil
}
