package keyholder

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"

	"github.com/fractalvm/fractal/internal/inputfile"
	"github.com/fractalvm/fractal/keys"
	"github.com/fractalvm/fractal/tfhe/dkg"
)

// maxPeersFile bounds the peers file: 256 keyholders take about 40 KB.
const maxPeersFile = 1 << 20

// Peers is the peers file of a DKG (docs/formats/keyholder.md): every
// keyholder, in keyholder order, with its Fractal public key and the
// host:port of its DKG endpoint. All keyholders use the same file: the
// order numbers them and, with the keys, is part of the session, so a
// keyholder with another file is in another session.
type Peers struct {
	Keys  []keys.PublicKey
	Addrs []string
}

type peersJSON struct {
	Keyholders []peerJSON `json:"keyholders"`
}

type peerJSON struct {
	Key     string `json:"key"`
	Address string `json:"address"`
}

// ReadPeers reads and checks a peers file: strict JSON (no unknown fields,
// one object), 2 to 256 keyholders, valid keys, host:port
// addresses, no key or address twice.
func ReadPeers(path string) (*Peers, error) {
	raw, err := inputfile.Read(path, maxPeersFile)
	if err != nil {
		return nil, fmt.Errorf("keyholder: peers file %w", err)
	}
	p, err := ParsePeers(raw)
	if err != nil {
		return nil, fmt.Errorf("keyholder: peers file %s: %w", path, err)
	}
	return p, nil
}

// ParsePeers parses a peers file's bytes (see ReadPeers).
func ParsePeers(raw []byte) (*Peers, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var j peersJSON
	if err := dec.Decode(&j); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, fmt.Errorf("more than one JSON value")
	}
	n := len(j.Keyholders)
	if n < 2 || n > dkg.MaxKeyholders {
		return nil, fmt.Errorf("%d keyholders, want 2..%d", n, dkg.MaxKeyholders)
	}
	p := &Peers{}
	seenKey, seenAddr := map[keys.PublicKey]int{}, map[string]int{}
	for i, kh := range j.Keyholders {
		k, err := keys.ParsePublicKey(kh.Key)
		if err != nil {
			return nil, fmt.Errorf("keyholder %d: %w", i+1, err)
		}
		if _, _, err := net.SplitHostPort(kh.Address); err != nil || kh.Address == "" {
			return nil, fmt.Errorf("keyholder %d: address %q is not host:port", i+1, kh.Address)
		}
		if o, ok := seenKey[k]; ok {
			return nil, fmt.Errorf("keyholders %d and %d have the same key", o, i+1)
		}
		if o, ok := seenAddr[kh.Address]; ok {
			return nil, fmt.Errorf("keyholders %d and %d have the same address %s", o, i+1, kh.Address)
		}
		seenKey[k], seenAddr[kh.Address] = i+1, i+1
		p.Keys, p.Addrs = append(p.Keys, k), append(p.Addrs, kh.Address)
	}
	return p, nil
}

// Encode writes the peers file for p.
func (p *Peers) Encode() []byte {
	var j peersJSON
	for i, k := range p.Keys {
		j.Keyholders = append(j.Keyholders, peerJSON{k.String(), p.Addrs[i]})
	}
	b, _ := json.MarshalIndent(j, "", "  ")
	return append(b, '\n')
}
